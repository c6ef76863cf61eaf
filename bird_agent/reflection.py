"""The speaker's side of route reflection: feeding gingham-rr, applying its answers.

A node has one BGP identity (one ExaBGP, owned by the speaker); on a node
whose Node has `routeReflectorClusterID` the decisions of RFC 4456 are made
by `gingham-rr` (route_reflector/), reached through a `ReflectorLink` on
`<run-dir>/rr.sock`. This module connects the two:

- `ReflectionFeed` (pure) follows the speaker's `BgpEvent`s and keeps, for
  every Established iBGP session, the peer's router ID (from its OPEN), its
  role (client or not, from the peer plan) and every route it sent with full
  path attributes (next hop, AS path, origin, MED, LOCAL_PREF,
  ORIGINATOR_ID, CLUSTER_LIST, communities). It turns each event into the
  reflector's inputs (`route_reflector.api.messages`) and gives the link a snapshot
  on every (re)connection. Routes are kept by prefix key, as the speaker
  receives them (`events.Prefixes`): an `IPv4Network` is made only for what
  goes to the reflector.
- `screen` (pure): loop prevention for what the speaker itself installs —
  a route whose ORIGINATOR_ID is our router ID, or (on a reflector) whose
  CLUSTER_LIST holds our cluster ID, is treated as a withdrawal of that
  prefix from that peer (RFC 4456 §8).
- `Reflection` (the asyncio glue): runs the link while the node is a route
  reflector and turns `on_change(changes)` into `ExaBGPAdapter.set_reflected`
  — the link's one table (per prefix, the route and the peers that hear it,
  next hop unchanged) and what changed for whom.

Invariants:
- What reaches the reflector is what iBGP peers sent, before the speaker's
  import policy (clients apply their own), minus nothing: the reflector
  itself drops cluster/originator loops and counts them.
- Graceful restart: a session that ends with a restart time keeps its
  routes in the reflector (so clients keep them) until the peer's
  End-of-RIB after it returns — then what it did not re-announce is
  withdrawn — or until the time runs out (then PEER_DOWN).
- While gingham-rr is down or restarting, the adapter keeps sending what it
  sent (the link only replaces its table when a new snapshot is answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Protocol

from bird_agent.events import (
    BgpEvent,
    EndOfRib,
    PeerDown,
    PeerOpen,
    PeerUp,
    PrefixKey,
    RoutesAnnounced,
    RoutesWithdrawn,
    key_network,
)
from bird_agent.exabgp_reflect import attributes_from_json
from bird_agent.peers import PeerSpec
from route_reflector.api import messages as feed
from route_reflector.api.client import Reflected, ReflectorLink
from route_reflector.api.messages import PathAttributes, Peer
from route_reflector.api.messages import Peers as PeerGroup

log = logging.getLogger(__name__)

Peers = Mapping[IPv4Address, PeerSpec]

ORIGINATOR_LOOP = "originator-loop"
CLUSTER_LOOP = "cluster-loop"


def screen(
    event: BgpEvent, router_id: IPv4Address | None, cluster_id: IPv4Address | None
) -> tuple[BgpEvent, str | None]:
    """`event`, or a withdrawal of its prefixes when it loops back to us, and why."""
    if not isinstance(event, RoutesAnnounced) or not event.attributes:
        return event, None
    raw = event.attributes
    originator = raw.get("originator-id")
    if originator is not None and router_id is not None and str(originator) == str(router_id):
        return RoutesWithdrawn(event.peer, event.prefixes), ORIGINATOR_LOOP
    clusters = raw.get("cluster-list")
    if cluster_id is not None and isinstance(clusters, list) and str(cluster_id) in clusters:
        return RoutesWithdrawn(event.peer, event.prefixes), CLUSTER_LOOP
    return event, None


class ReflectionFeed:
    """Sessions and routes of iBGP peers, as the reflector must hear them."""

    def __init__(self) -> None:
        self.router_ids: dict[IPv4Address, IPv4Address] = {}
        # Sessions the reflector was told are up, as told.
        self.up: dict[IPv4Address, Peer] = {}
        self.routes: dict[IPv4Address, dict[PrefixKey, PathAttributes]] = {}
        # Graceful restart: peers kept through a restart, the prefixes not yet
        # re-sent, and which of them have no session right now.
        self.stale: dict[IPv4Address, set[PrefixKey]] = {}
        self.restarting: set[IPv4Address] = set()

    def inputs(self, event: BgpEvent, peers: Peers, emit: bool = True) -> list[feed.FeedInput]:
        """The reflector inputs one speaker event causes (possibly none).

        `emit=False` (not a reflector now) only keeps the state, so a node
        that becomes one has everything for its first snapshot, without
        paying for reflector inputs it would throw away.
        """
        if isinstance(event, PeerOpen):
            self.router_ids[event.peer] = event.router_id
            old = self.up.get(event.peer)
            if old is None or old.router_id == event.router_id:
                return []
            return self._session(Peer(old.address, event.router_id, old.client))
        if isinstance(event, PeerUp):
            self.restarting.discard(event.peer)
            spec = peers.get(event.peer)
            if spec is None or not spec.ibgp:
                return []
            return self._session(self._peer(spec))
        if isinstance(event, PeerDown):
            if event.peer not in self.up:
                return []
            if event.graceful_restart_time and self.routes.get(event.peer):
                self.stale[event.peer] = set(self.routes[event.peer])
                self.restarting.add(event.peer)
                return []
            return self.drop(event.peer)
        if event_peer(event) not in self.up:
            return []
        if isinstance(event, RoutesAnnounced):
            attributes = attributes_from_json(event.next_hop, event.as_path, event.attributes)
            batch = event.batch
            self.routes.setdefault(event.peer, {}).update(dict.fromkeys(batch.keys, attributes))
            stale = self.stale.get(event.peer)
            if stale:
                stale.difference_update(batch.keys)
            return [feed.Announce(event.peer, tuple(batch), attributes)] if emit else []
        if isinstance(event, RoutesWithdrawn):
            return self._withdraw(event.peer, event.batch.keys, emit)
        if isinstance(event, EndOfRib):
            left = self.stale.pop(event.peer, None)
            return self._withdraw(event.peer, left, emit) if left else []
        return []

    def expire(self, address: IPv4Address, emit: bool = True) -> list[feed.FeedInput]:
        """A restart window ran out: the session is gone for good, or (back up
        without an End-of-RIB) what it did not re-send is withdrawn."""
        if address in self.restarting:
            return self.drop(address)
        left = self.stale.pop(address, None)
        return self._withdraw(address, left, emit) if left else []

    def drop(self, address: IPv4Address) -> list[feed.FeedInput]:
        """The session is gone for good: PEER_DOWN (when the reflector has it up)."""
        self.restarting.discard(address)
        self.stale.pop(address, None)
        self.routes.pop(address, None)
        if self.up.pop(address, None) is None:
            return []
        return [feed.PeerDown(address)]

    def replan(self, peers: Peers) -> list[feed.FeedInput]:
        """Roles may have changed (a Node became an RR): PEER_UP with the new role."""
        out: list[feed.FeedInput] = []
        for address in list(self.up):
            spec = peers.get(address)
            if spec is None:
                continue  # the adapter ends the session and says PeerDown
            out += self._session(self._peer(spec))
        return out

    def snapshot(self) -> list[feed.FeedInput]:
        """Every session up and every route held (one ANNOUNCE per attribute set)."""
        out: list[feed.FeedInput] = [feed.PeerUp(peer) for peer in self.up.values()]
        for address, table in self.routes.items():
            groups: dict[int, tuple[PathAttributes, list[PrefixKey]]] = {}
            for key, attributes in table.items():
                groups.setdefault(id(attributes), (attributes, []))[1].append(key)
            for attributes, keys in groups.values():
                out.append(feed.Announce(address, tuple(map(key_network, keys)), attributes))
        return out

    def _peer(self, spec: PeerSpec) -> Peer:
        router_id = self.router_ids.get(spec.address, spec.address)
        return Peer(spec.address, router_id, spec.route_reflector_client)

    def _session(self, peer: Peer) -> list[feed.FeedInput]:
        if self.up.get(peer.address) == peer:
            return []
        self.up[peer.address] = peer
        return [feed.PeerUp(peer)]

    def _withdraw(
        self, address: IPv4Address, keys: Iterable[PrefixKey], emit: bool
    ) -> list[feed.FeedInput]:
        table = self.routes.get(address, {})
        gone = [k for k in keys if table.pop(k, None) is not None]
        if not gone or not emit:
            return []
        return [feed.Withdraw(address, tuple(map(key_network, gone)))]


def event_peer(event: BgpEvent) -> IPv4Address | None:
    peer = getattr(event, "peer", None)
    return peer if isinstance(peer, IPv4Address) else None


class PeerRoutesTarget(Protocol):
    """What `Reflection` needs of the ExaBGP adapter."""

    end_of_rib_ready: Callable[[IPv4Address], bool]

    def set_reflected(self, table: Reflected, changes: Mapping[IPv4Network, PeerGroup]) -> None: ...

    def kick(self) -> None: ...


class Reflection:
    """Runs the link to gingham-rr while this node is a route reflector."""

    def __init__(self, socket_path: Path, adapter: PeerRoutesTarget) -> None:
        self.socket_path = socket_path
        self.adapter = adapter
        self.feed = ReflectionFeed()
        self.cluster_id: IPv4Address | None = None
        self.router_id: IPv4Address | None = None
        self.link: ReflectorLink | None = None
        self.loops: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._expiry: dict[IPv4Address, asyncio.TimerHandle] = {}
        # New sessions whose End-of-RIB waits for the reflector's answer to
        # their PEER_UP: peer -> (stream number, input number).
        self._awaiting: dict[IPv4Address, tuple[int, int]] = {}
        # The stream (link.connections) whose snapshot answer was acted on.
        self._in_sync_stream = 0
        adapter.end_of_rib_ready = self.end_of_rib_ready

    def configure(
        self, cluster_id: IPv4Address | None, router_id: IPv4Address | None, peers: Peers
    ) -> None:
        """After every replan: start, restart or stop reflecting; roles may change."""
        if router_id is None:
            cluster_id = None
        changed = (cluster_id, router_id) != (self.cluster_id, self.router_id)
        self.cluster_id, self.router_id = cluster_id, router_id
        if cluster_id is None:
            if self._task is not None:
                log.info("no longer a route reflector: reflected routes withdrawn")
                self._stop_link()
            return
        for event in self.feed.replan(peers):
            self._send(event)
        if self._task is None:
            log.info("route reflector, cluster ID %s: following %s", cluster_id, self.socket_path)
            self.link = ReflectorLink(
                self.socket_path, self._identity, self.feed.snapshot, self._on_change
            )
            self.link.on_answer = self._on_answer
            self._in_sync_stream = 0
            self._task = asyncio.create_task(self.link.run(), name="reflector-link")
        elif changed and self.link is not None:
            self.link.resnapshot()

    def observe(self, event: BgpEvent, peers: Peers) -> BgpEvent:
        """Feed one speaker event; the event the speaker should itself install."""
        screened, reason = screen(event, self.router_id, self.cluster_id)
        if reason is not None:
            self.loops[reason] += len(screened.prefixes)  # type: ignore[union-attr]
        for item in self.feed.inputs(event, peers, emit=self.link is not None):
            self._send(item)
        if isinstance(event, PeerDown):
            self._after_down(event)
        elif isinstance(event, EndOfRib) and event.peer not in self.feed.stale:
            timer = self._expiry.pop(event.peer, None)
            if timer is not None:
                timer.cancel()
        return screened

    def end_of_rib_ready(self, peer: IPv4Address) -> bool:
        """Whether `peer` may get our End-of-RIB: the reflector has answered its
        session (so what it must hear is queued before the End-of-RIB, and a
        restarting client does not sweep reflected routes it is about to get
        again). Never waits on a reflector that is not there."""
        link = self.link
        if link is None or not link.connected or peer not in self.feed.up:
            return True
        if not link.in_sync.is_set():
            return False
        stream, number = self._awaiting.get(peer, (link.connections, 0))
        return stream != link.connections or link.answered >= number

    async def stop(self) -> None:
        task, self._task = self._task, None
        for timer in self._expiry.values():
            timer.cancel()
        self._expiry.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- internals ------------------------------------------------------------

    def _identity(self) -> feed.SnapshotBegin:
        assert self.cluster_id is not None and self.router_id is not None
        return feed.SnapshotBegin(self.cluster_id, self.router_id)

    def _send(self, event: feed.FeedInput) -> None:
        link = self.link
        if link is None:
            return
        link.send(event)
        if isinstance(event, feed.PeerUp) and link.connected:
            self._awaiting[event.peer.address] = (link.connections, link.inputs_sent)

    def _on_answer(self) -> None:
        """The reflector answered more: open End-of-RIB gates that are now open."""
        link = self.link
        if link is None or not link.in_sync.is_set():
            return
        opened = [p for p in list(self._awaiting) if self.end_of_rib_ready(p)]
        for peer in opened:
            del self._awaiting[peer]
        # The first answer after a snapshot opens every gate the snapshot held.
        if opened or self._in_sync_stream != link.connections:
            self._in_sync_stream = link.connections
            self.adapter.kick()

    def _after_down(self, event: PeerDown) -> None:
        address = event.peer
        if address in self.feed.stale and event.graceful_restart_time:
            loop = asyncio.get_running_loop()
            old = self._expiry.pop(address, None)
            if old is not None:
                old.cancel()
            self._expiry[address] = loop.call_later(
                event.graceful_restart_time, self._expire, address
            )
            return
        # The session is gone: the link took it out of every group (the
        # PeerDown it was sent), and the adapter withdraws what ExaBGP holds.

    def _expire(self, address: IPv4Address) -> None:
        self._expiry.pop(address, None)
        if address not in self.feed.stale:
            return
        log.info("graceful restart of %s ran out: its stale routes are withdrawn", address)
        for item in self.feed.expire(address, emit=self.link is not None):
            self._send(item)

    def _on_change(self, changes: Mapping[IPv4Network, PeerGroup]) -> None:
        link = self.link
        if link is None:
            return
        self.adapter.set_reflected(link.reflected, changes)

    def _stop_link(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = None
        link, self.link = self.link, None
        if link is not None and link.reflected:
            # Everything reflected is withdrawn from everyone who heard it.
            self.adapter.set_reflected({}, {p: peers for p, (_, peers) in link.reflected.items()})
