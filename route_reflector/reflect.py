"""RFC 4456 route reflection: from what peers sent to what each peer must hear.

`Reflector` is the whole engine, pure and synchronous. The speaker reports
sessions (`peer_up`, `peer_down`) and UPDATE contents (`announce`,
`withdraw`); each call returns the resulting `OutboundChange`s — per peer,
announce a prefix with these attributes, or withdraw it — which the speaker
turns into BGP UPDATEs. It keeps:

- the Adj-RIB-In of every peer (`rib.AdjRibIn`),
- the best path per prefix (`decision.best_path`),
- the Adj-RIB-Out of every peer: exactly what the changes returned so far
  have told that peer, so each call returns a *diff*.

Reflection rules (RFC 4456 §6, §8):
- the best path from a client goes to every other client and to every
  non-client; the best path from a non-client goes to clients only;
- never back to the peer it came from, and never to a peer whose router ID
  equals the path's ORIGINATOR_ID;
- as sent: ORIGINATOR_ID set to the originating peer's router ID when absent,
  our CLUSTER_ID prepended to CLUSTER_LIST, next hop and everything else
  unchanged;
- on input, a route whose CLUSTER_LIST holds our CLUSTER_ID, or whose
  ORIGINATOR_ID is our own router ID, is a loop: it is dropped (and, being a
  new UPDATE for the prefix, replaces what that peer sent before for it).

Only the best path of a prefix is advertised (no add-path): when the best
path may not go to a peer (it came from that peer, say) that peer hears
nothing for the prefix, and a previous advertisement is withdrawn.

Redundant pair (two RRs with the same CLUSTER_ID, peered as non-clients):
RR1 reflects a client's route to RR2 with CLUSTER_LIST [C]; RR2 drops it as
a loop. That is the standard behaviour (RFC 4456 §8) and costs nothing:
every client peers with both RRs, so RR2 has the route directly from the
client and reflects it itself; each client hears it from both RRs and keeps
working when one RR is gone. RRs of *different* clusters accept each other's
reflections (the cluster lists differ) and treat each other as clients (as
Calico does), so routes cross between clusters.

Invariants:
- `adj_rib_out(p)` always equals what a from-scratch computation over the
  current Adj-RIB-In and peers gives (the property tests check this after
  arbitrary event sequences).
- A change to one prefix recomputes only that prefix.
- A peer that is down has no Adj-RIB-Out; changes are never emitted for it.
- `may_reflect` states the rules; `_refresh` inlines them for speed and the
  property tests hold the two to the same answers via `expected_adj_rib_out`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import AddressValueError, IPv4Address, IPv4Network

from route_reflector.api.messages import OutboundChange, PathAttributes, Peer
from route_reflector.decision import best_path
from route_reflector.rib import AdjRibIn, Path, paths_for


class UnknownPeer(ValueError):
    """Routes from, or the end of, a session the reflector was not told is up."""


def parse_cluster_id(value: str, where: str = "routeReflectorClusterID") -> IPv4Address:
    """A cluster ID as Calico writes it ("224.0.0.1"); ValueError naming `where`."""
    try:
        return IPv4Address(value.strip())
    except AddressValueError:
        raise ValueError(
            f"{where}: {value!r} is not a cluster ID (a dotted quad such as 224.0.0.1)"
        ) from None


def is_client(my_cluster_id: IPv4Address, peer_cluster_id: IPv4Address | None) -> bool:
    """Whether an iBGP peer of a route reflector is its client.

    Every iBGP peer is a client except a route reflector of the same cluster
    (`peer_cluster_id` is the peer node's routeReflectorClusterID, None for
    ordinary nodes and external routers).
    """
    return peer_cluster_id != my_cluster_id


def may_reflect(path: Path, to: Peer) -> bool:
    """RFC 4456 §6/§8: whether `path`, if it is the best, is advertised to `to`."""
    if to.address == path.peer.address:
        return False
    if not path.peer.client and not to.client:
        return False
    return to.router_id != path.originator


def reflected(path: Path | None, to: Peer, cluster_id: IPv4Address) -> PathAttributes | None:
    """What `to` should hear for a prefix whose best path is `path` (None: nothing)."""
    if path is None or not may_reflect(path, to):
        return None
    return path.attributes.with_reflection(cluster_id, path.originator)


# (peer, address as int, router ID as int, client): ints hash and compare in C.
_KeyedPeer = tuple[Peer, int, int, bool]


def _keyed(peer: Peer) -> _KeyedPeer:
    return (peer, int(peer.address), int(peer.router_id), peer.client)


class Reflector:
    """The route reflector of one node: see the module docstring."""

    def __init__(self, cluster_id: IPv4Address, router_id: IPv4Address) -> None:
        self.cluster_id = cluster_id
        self.router_id = router_id
        self.rib = AdjRibIn()
        self._peers: dict[IPv4Address, Peer] = {}
        self._best: dict[IPv4Network, Path] = {}
        # The Adj-RIB-Out of every peer, stored by prefix then peer (as an int):
        # the hot loop then hashes each prefix once, not once per peer
        # (IPv4Network's hash is Python code, an int's is not).
        self._sent: dict[IPv4Network, dict[int, PathAttributes]] = {}
        # Every peer as `_refresh` uses it, rebuilt after a peer change.
        self._keyed: list[_KeyedPeer] | None = None
        # Routes refused on input because they looped back to us.
        self.loops_dropped = 0

    # -- events ---------------------------------------------------------------

    def peer_up(self, peer: Peer) -> list[OutboundChange]:
        """A session is Established (or its router ID / client flag changed)."""
        old = self._peers.get(peer.address)
        if old == peer:
            return []
        self._peers[peer.address] = peer
        self._keyed = None
        if old is None:
            # Its Adj-RIB-In is empty, so no best path changes: it only needs
            # everything it may hear, from the best paths as they are.
            return self._refresh(self._best, only=peer.address, decided=True)
        # A new router ID or role can change best paths and every decision.
        return self._refresh(list(self.rib.prefixes()))

    def peer_down(self, address: IPv4Address) -> list[OutboundChange]:
        """The session ended: forget what it sent and what it was sent."""
        if address not in self._peers:
            raise UnknownPeer(f"peer {address}: session end for a peer that is not up")
        del self._peers[address]
        self._keyed = None
        key = int(address)
        for prefix in [p for p, row in self._sent.items() if key in row]:
            row = self._sent[prefix]
            del row[key]
            if not row:
                del self._sent[prefix]
        return self._refresh(self.rib.drop_peer(address))

    def announce(
        self, address: IPv4Address, prefixes: Iterable[IPv4Network], attributes: PathAttributes
    ) -> list[OutboundChange]:
        """`address` announced `prefixes` with `attributes` (one UPDATE)."""
        self._require(address)
        prefixes = list(prefixes)
        if self._loops(attributes):
            self.loops_dropped += len(prefixes)
            return self.withdraw(address, prefixes)
        changed = [p for p in prefixes if self.rib.announce(address, p, attributes)]
        return self._refresh(changed)

    def withdraw(
        self, address: IPv4Address, prefixes: Iterable[IPv4Network]
    ) -> list[OutboundChange]:
        self._require(address)
        changed = [p for p in prefixes if self.rib.withdraw(address, p)]
        return self._refresh(changed)

    # -- queries --------------------------------------------------------------

    @property
    def peers(self) -> Mapping[IPv4Address, Peer]:
        return self._peers

    def best(self, prefix: IPv4Network) -> Path | None:
        return self._best.get(prefix)

    def best_paths(self) -> Mapping[IPv4Network, Path]:
        return self._best

    def adj_rib_out(self, address: IPv4Address) -> dict[IPv4Network, PathAttributes]:
        """What `address` has been told (a copy; O(prefixes))."""
        key = int(address)
        return {prefix: row[key] for prefix, row in self._sent.items() if key in row}

    def advertised_to(self, prefix: IPv4Network) -> list[IPv4Address]:
        return sorted(IPv4Address(key) for key in self._sent.get(prefix, {}))

    # -- internals ------------------------------------------------------------

    def _require(self, address: IPv4Address) -> None:
        if address not in self._peers:
            raise UnknownPeer(f"peer {address}: routes from a peer that is not up")

    def _loops(self, attributes: PathAttributes) -> bool:
        return (
            self.cluster_id in attributes.cluster_list or attributes.originator_id == self.router_id
        )

    def _refresh(
        self,
        prefixes: Iterable[IPv4Network],
        only: IPv4Address | None = None,
        decided: bool = False,
    ) -> list[OutboundChange]:
        """Recompute the best path of `prefixes` and diff every (or one) Adj-RIB-Out.

        `decided`: the best paths are known to be current (a new peer with
        nothing sent yet); only the Adj-RIB-Outs are diffed.

        This is the hot loop (prefixes x peers): the reflected attributes are
        built once per distinct received attribute set (one UPDATE's prefixes
        share one object), and `may_reflect` is inlined.
        """
        if only is not None:
            keyed = [_keyed(self._peers[only])]
        else:
            if self._keyed is None:
                self._keyed = [_keyed(p) for p in self._peers.values()]
            keyed = self._keyed
        # id() is stable here: every keyed object lives in the RIB for the whole call.
        memo: dict[tuple[int, IPv4Address], PathAttributes] = {}
        changes: list[OutboundChange] = []
        for prefix in dict.fromkeys(prefixes):
            if decided:
                best: Path | None = self._best.get(prefix)
            else:
                best = best_path(paths_for(prefix, self.rib.candidates(prefix), self._peers))
            sent: PathAttributes | None = None
            source_key = originator_key = -1
            source_client = False
            if best is None:
                self._best.pop(prefix, None)
            else:
                self._best[prefix] = best
                originator = best.originator
                key = (id(best.attributes), originator)
                sent = memo.get(key)
                if sent is None:
                    sent = best.attributes.with_reflection(self.cluster_id, originator)
                    memo[key] = sent
                source_key, originator_key = int(best.peer.address), int(originator)
                source_client = best.peer.client
            row = self._sent.get(prefix) or {}
            for peer, peer_key, router_key, client in keyed:
                # may_reflect(best, peer), inlined.
                want = (
                    sent
                    if peer_key != source_key
                    and (source_client or client)
                    and router_key != originator_key
                    else None
                )
                have = row.get(peer_key)
                if want is have or want == have:
                    continue
                if want is None:
                    del row[peer_key]
                else:
                    row[peer_key] = want
                changes.append(OutboundChange(peer.address, prefix, want))
            if row:
                self._sent[prefix] = row
            else:
                self._sent.pop(prefix, None)
        return changes


def expected_adj_rib_out(
    reflector: Reflector,
) -> dict[IPv4Address, dict[IPv4Network, PathAttributes]]:
    """Every peer's Adj-RIB-Out computed from scratch from the Adj-RIB-In.

    The reference the incremental engine must always agree with (tests and
    the bench's self-check use it).
    """
    peers = dict(reflector.peers)
    result: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = {a: {} for a in peers}
    for prefix in list(reflector.rib.prefixes()):
        best = best_path(paths_for(prefix, reflector.rib.candidates(prefix), peers))
        for peer in peers.values():
            want = reflected(best, peer, reflector.cluster_id)
            if want is not None:
                result[peer.address][prefix] = want
    return result
