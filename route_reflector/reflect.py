"""RFC 4456 route reflection: from what peers sent to what each peer must hear.

`Reflector` is the whole engine, pure and synchronous. The speaker reports
sessions (`peer_up`, `peer_down`) and UPDATE contents (`announce`,
`withdraw`); each call returns the resulting `GroupChange`s — to this group
of peers, announce a prefix with these attributes, or withdraw it — which the
speaker turns into BGP UPDATEs. It keeps:

- the Adj-RIB-In of every peer (`rib.AdjRibIn`),
- the best path per prefix (`decision.best_path`) and its attributes as
  reflected: every peer allowed to hear a best path holds exactly those, so
  this one table is every peer's Adj-RIB-Out, and each call returns a *diff*
  of it. Nothing is kept per prefix x peer: a prefix's audience (who hears
  it) is one shared set per (source, originator, role) — an update group.

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
- A change to one prefix recomputes only that prefix, once (not once per peer).
- A peer that is down has no Adj-RIB-Out; changes are never emitted for it.
- The changes of one call, applied per peer in order, take every peer from
  what it held to its Adj-RIB-Out (no change that changes nothing).
- `may_reflect` states the rules; `_refresh` inlines them for speed and the
  property tests hold the two to the same answers via `expected_adj_rib_out`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import AddressValueError, IPv4Address, IPv4Network

from route_reflector.api.messages import NOBODY, GroupChange, PathAttributes, Peer, Peers
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
# What decides who hears a best path: (source address, originator, source is a client).
_AudienceKey = tuple[int, int, bool]


def _keyed(peer: Peer) -> _KeyedPeer:
    return (peer, int(peer.address), int(peer.router_id), peer.client)


def _audience_key(path: Path) -> _AudienceKey:
    return (int(path.peer.address), int(path.originator), path.peer.client)


class Reflector:
    """The route reflector of one node: see the module docstring."""

    def __init__(self, cluster_id: IPv4Address, router_id: IPv4Address) -> None:
        self.cluster_id = cluster_id
        self.router_id = router_id
        self.rib = AdjRibIn()
        self._peers: dict[IPv4Address, Peer] = {}
        self._best: dict[IPv4Network, Path] = {}
        # The best path's attributes as reflected (as sent), per prefix: every
        # peer in the best path's audience holds exactly these. That is the
        # whole Adj-RIB-Out of every peer: one table, not one per peer.
        self._sent: dict[IPv4Network, PathAttributes] = {}
        # Who hears each best path is decided by its audience key (one tuple
        # object per distinct key): kept, so a new peer's table is a dict walk.
        self._keys: dict[IPv4Network, _AudienceKey] = {}
        self._key_objects: dict[_AudienceKey, _AudienceKey] = {}
        # Every peer as the audience is computed from, rebuilt after a peer change,
        # and the audiences (and their differences) computed since, by key.
        self._keyed: list[_KeyedPeer] | None = None
        self._audiences: dict[_AudienceKey, Peers] = {}
        self._differences: dict[tuple[int, int], tuple[Peers, Peers, Peers]] = {}
        # Routes refused on input because they looped back to us.
        self.loops_dropped = 0

    # -- events ---------------------------------------------------------------

    def peer_up(self, peer: Peer) -> list[GroupChange]:
        """A session is Established (or its router ID / client flag changed)."""
        old = self._peers.get(peer.address)
        if old == peer:
            return []
        changes: list[GroupChange] = []
        if old is not None:
            # A new router ID or role changes what it may hear and possibly best
            # paths: it is told to forget all it heard, the others hear what
            # changes for them, then it hears everything anew.
            changes += self._everything_for(old, withdraw=True)
            del self._peers[peer.address]
            self._forget_peers()
            self._peers[peer.address] = peer
            changes += self._refresh(list(self.rib.prefixes()), exclude=peer.address)
        else:
            self._peers[peer.address] = peer
        self._forget_peers()
        # A new session's Adj-RIB-In is empty, so no best path changes: it only
        # needs everything it may hear, from the best paths as they are.
        return changes + self._everything_for(peer)

    def peer_down(self, address: IPv4Address) -> list[GroupChange]:
        """The session ended: forget what it sent (nothing is sent to it any more)."""
        if address not in self._peers:
            raise UnknownPeer(f"peer {address}: session end for a peer that is not up")
        del self._peers[address]
        self._forget_peers()
        return self._refresh(self.rib.drop_peer(address))

    def announce(
        self, address: IPv4Address, prefixes: Iterable[IPv4Network], attributes: PathAttributes
    ) -> list[GroupChange]:
        """`address` announced `prefixes` with `attributes` (one UPDATE)."""
        self._require(address)
        prefixes = list(prefixes)
        if self._loops(attributes):
            self.loops_dropped += len(prefixes)
            return self.withdraw(address, prefixes)
        changed = [p for p in prefixes if self.rib.announce(address, p, attributes)]
        return self._refresh(changed)

    def withdraw(self, address: IPv4Address, prefixes: Iterable[IPv4Network]) -> list[GroupChange]:
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
        return {
            prefix: self._sent[prefix]
            for prefix, key in self._keys.items()
            if address in self._audience(key)
        }

    def advertised_to(self, prefix: IPv4Network) -> list[IPv4Address]:
        best = self._best.get(prefix)
        return sorted(self._audience(self._keys[prefix])) if best is not None else []

    def advertised_counts(self) -> dict[IPv4Address, int]:
        """Per peer, how many prefixes it has been told (O(prefixes))."""
        per_audience: dict[int, tuple[Peers, int]] = {}
        for key in self._keys.values():
            audience = self._audience(key)
            _, count = per_audience.get(id(audience), (audience, 0))
            per_audience[id(audience)] = (audience, count + 1)
        counts = dict.fromkeys(self._peers, 0)
        for audience, count in per_audience.values():
            for address in audience:
                counts[address] += count
        return counts

    def snapshot(self) -> list[GroupChange]:
        """Everything every peer has been told, as announcements, prefixes in order."""
        return [
            GroupChange(audience, prefix, self._sent[prefix])
            for prefix, key in sorted(self._keys.items())
            if (audience := self._audience(key))
        ]

    # -- internals ------------------------------------------------------------

    def _require(self, address: IPv4Address) -> None:
        if address not in self._peers:
            raise UnknownPeer(f"peer {address}: routes from a peer that is not up")

    def _loops(self, attributes: PathAttributes) -> bool:
        return (
            self.cluster_id in attributes.cluster_list or attributes.originator_id == self.router_id
        )

    def _forget_peers(self) -> None:
        self._keyed = None
        self._audiences.clear()
        self._differences.clear()

    def _audience(self, key: _AudienceKey) -> Peers:
        """The peers that hear a best path of `key` (`may_reflect`, inlined), one
        object per key."""
        found = self._audiences.get(key)
        if found is not None:
            return found
        if self._keyed is None:
            self._keyed = [_keyed(p) for p in self._peers.values()]
        source_key, originator_key, source_client = key
        found = frozenset(
            peer.address
            for peer, peer_key, router_key, client in self._keyed
            if peer_key != source_key and (source_client or client) and router_key != originator_key
        )
        self._audiences[key] = found = found or NOBODY
        return found

    def _minus(self, peers: Peers, others: Peers) -> Peers:
        """`peers - others`, one object per pair of audiences (kept with the
        pair, so an id reused by a later object never finds it)."""
        if not others:
            return peers
        key = (id(peers), id(others))
        found = self._differences.get(key)
        if found is None or found[0] is not peers or found[1] is not others:
            found = self._differences[key] = (peers, others, (peers - others) or NOBODY)
        return found[2]

    def _everything_for(self, peer: Peer, withdraw: bool = False) -> list[GroupChange]:
        """Every prefix `peer` may hear, announced (or withdrawn) to it alone."""
        only: Peers = frozenset((peer.address,))
        _, peer_key, router_key, client = _keyed(peer)
        hears: dict[_AudienceKey, bool] = {}
        sent = self._sent
        changes = []
        for prefix, key in self._keys.items():
            verdict = hears.get(key)
            if verdict is None:
                source_key, originator_key, source_client = key
                verdict = hears[key] = (
                    peer_key != source_key
                    and (source_client or client)
                    and router_key != originator_key
                )
            if verdict:
                changes.append(GroupChange(only, prefix, None if withdraw else sent[prefix]))
        return changes

    def _refresh(
        self, prefixes: Iterable[IPv4Network], exclude: IPv4Address | None = None
    ) -> list[GroupChange]:
        """Recompute the best path of `prefixes` and what changes for whom.

        This is the hot loop (once per prefix, not per prefix x peer): the
        reflected attributes are built once per distinct received attribute
        set (one UPDATE's prefixes share one object), and each prefix's old and
        new audiences are shared objects, so their difference is computed once
        per pair. `exclude`: a peer left out of every change (it is told
        separately).
        """
        memo: dict[tuple[int, IPv4Address], PathAttributes] = {}
        excluded: Peers = frozenset((exclude,)) if exclude is not None else NOBODY
        changes: list[GroupChange] = []
        for prefix in dict.fromkeys(prefixes):
            old = self._best.get(prefix)
            was = self._sent.get(prefix)
            best = best_path(paths_for(prefix, self.rib.candidate_items(prefix), self._peers))
            had = self._audience(self._keys[prefix]) if old is not None else NOBODY
            if best is None:
                if old is None:
                    continue
                del self._best[prefix], self._sent[prefix], self._keys[prefix]
                gone = self._minus(had, excluded)
                if gone:
                    changes.append(GroupChange(gone, prefix, None))
                continue
            self._best[prefix] = best
            originator = best.originator
            made = (id(best.attributes), originator)
            sent = memo.get(made)
            if sent is None:
                sent = memo[made] = best.attributes.with_reflection(self.cluster_id, originator)
            if was is not None and (was is sent or was == sent):
                sent = was  # unchanged: keep the object peers already hold
            self._sent[prefix] = sent
            key = _audience_key(best)
            key = self._key_objects.setdefault(key, key)
            self._keys[prefix] = key
            hears = self._audience(key)
            # Everyone in the new audience, unless they hold these attributes already.
            told = hears if sent is not was else self._minus(hears, had)
            told = self._minus(told, excluded)
            if told:
                changes.append(GroupChange(told, prefix, sent))
            gone = self._minus(self._minus(had, hears), excluded)
            if gone:
                changes.append(GroupChange(gone, prefix, None))
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
        best = best_path(paths_for(prefix, reflector.rib.candidate_items(prefix), peers))
        for peer in peers.values():
            want = reflected(best, peer, reflector.cluster_id)
            if want is not None:
                result[peer.address][prefix] = want
    return result
