"""An in-memory BGP fabric of `Reflector`s and plain clients, for topology tests.

Each reflector's `OutboundChange`s are delivered as UPDATEs to the receiving
peer: another reflector applies them as input (as the speaker would), a
client stores them in its Adj-RIB-In keyed by (sender, prefix). Delivery is
breadth-first until nothing moves, like BGP converging.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from route_reflector.api.messages import GroupChange, OutboundChange, PathAttributes, Peer, per_peer
from route_reflector.reflect import Reflector


@dataclass
class Fabric:
    reflectors: dict[IPv4Address, Reflector] = field(default_factory=dict)
    # client address → (sender, prefix) → attributes received
    clients: dict[IPv4Address, dict[tuple[IPv4Address, IPv4Network], PathAttributes]] = field(
        default_factory=dict
    )
    _queue: deque[tuple[IPv4Address, OutboundChange]] = field(default_factory=deque)

    def add_reflector(self, address: IPv4Address, cluster_id: IPv4Address) -> Reflector:
        self.reflectors[address] = Reflector(cluster_id, router_id=address)
        return self.reflectors[address]

    def add_client(self, address: IPv4Address) -> None:
        self.clients[address] = {}

    def connect(self, rr: IPv4Address, other: IPv4Address, *, client: bool) -> None:
        """Bring up the session between reflector `rr` and `other` (on rr's side)."""
        self._send(rr, self.reflectors[rr].peer_up(Peer(other, other, client)))
        self.run()

    def originate(
        self, client: IPv4Address, prefix: IPv4Network, attributes: PathAttributes
    ) -> None:
        for address, reflector in self.reflectors.items():
            if client in reflector.peers:
                self._send(address, reflector.announce(client, [prefix], attributes))
        self.run()

    def withdraw(self, client: IPv4Address, prefix: IPv4Network) -> None:
        for address, reflector in self.reflectors.items():
            if client in reflector.peers:
                self._send(address, reflector.withdraw(client, [prefix]))
        self.run()

    def stop_reflector(self, address: IPv4Address) -> None:
        """The RR dies: every peer loses the session (and what it learned from it)."""
        del self.reflectors[address]
        for table in self.clients.values():
            for key in [k for k in table if k[0] == address]:
                del table[key]
        for other_address, other in self.reflectors.items():
            if address in other.peers:
                self._send(other_address, other.peer_down(address))
        self.run()

    def _send(self, sender: IPv4Address, changes: list[GroupChange]) -> None:
        self._queue.extend((sender, c) for c in per_peer(changes))

    def run(self) -> None:
        while self._queue:
            sender, change = self._queue.popleft()
            receiver = self.reflectors.get(change.peer)
            if receiver is not None:
                if change.attributes is None:
                    out = receiver.withdraw(sender, [change.prefix])
                else:
                    out = receiver.announce(sender, [change.prefix], change.attributes)
                self._send(change.peer, out)
            elif change.peer in self.clients:
                table = self.clients[change.peer]
                if change.attributes is None:
                    table.pop((sender, change.prefix), None)
                else:
                    table[(sender, change.prefix)] = change.attributes

    def routes_of(self, client: IPv4Address) -> dict[IPv4Network, set[IPv4Address]]:
        """Prefix → the reflectors it was heard from."""
        result: dict[IPv4Network, set[IPv4Address]] = {}
        for sender, prefix in self.clients[client]:
            result.setdefault(prefix, set()).add(sender)
        return result
