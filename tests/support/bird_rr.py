"""BIRD 2 as a route reflector, and reading RFC 4456 attributes out of BIRD and FRR.

`BirdReflector` is a `bgpd.Bird` whose configuration has one iBGP protocol
per client (`c<i>`, from a template with `rr client; rr cluster id …;`),
so one BIRD process reflects for any number of clients. `route_attributes`
(BIRD) and `frr_route_attributes` (FRR) return what a daemon holds for one
prefix — next hop, ORIGINATOR_ID, CLUSTER_LIST — as plain data, so tests can
assert the reflection attributes a real implementation saw on the wire.

`imported_count` reads how many routes a BIRD protocol accepted (one birdc
call, cheap enough to poll twenty clients while timing a benchmark).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from tests.support import bgpd


@dataclass(frozen=True)
class ReflectedRoute:
    """One BGP path as a daemon holds it: where to send traffic and the RR trail."""

    next_hop: IPv4Address | None
    originator_id: IPv4Address | None
    cluster_list: tuple[IPv4Address, ...]


class BirdReflector(bgpd.Bird):
    """One BIRD reflecting between `clients` (all iBGP, same AS, cluster `cluster_id`)."""

    def __init__(
        self,
        peering: bgpd.DaemonPeering,
        clients: list[IPv4Address],
        cluster_id: IPv4Address,
        passive: bool = False,
    ) -> None:
        super().__init__(peering)
        self.clients = list(clients)
        self.cluster_id = cluster_id
        # Only accept the clients' connections (no collisions when all start at once).
        self.passive = passive

    def protocol(self, client: IPv4Address) -> str:
        return f"c{self.clients.index(client)}"

    def write_config(self) -> None:
        p = self.peering
        statics = "".join(f"  route {prefix} blackhole;\n" for prefix in p.originate)
        clients = "".join(
            f"protocol bgp {self.protocol(c)} from clients {{ neighbor {c} as {p.asn}; }}\n"
            for c in self.clients
        )
        (self.dir / "bird.conf").write_text(
            f"router id {p.address};\n"
            "protocol device {}\n"
            f"protocol static originated {{\n  ipv4;\n{statics}}}\n"
            "template bgp clients {\n"
            f"  local {p.address} as {p.asn};\n"
            f"  rr client;\n  rr cluster id {self.cluster_id};\n"
            "  direct;\n"
            f"  hold time {p.hold_time};\n"
            "  connect delay time 1;\n  connect retry time 1;\n  error wait time 1, 2;\n"
            + ("  passive on;\n" if self.passive else "")
            + "  ipv4 { import all; export all; };\n"
            "}\n"
            f"{clients}"
        )

    def established(self) -> bool:
        return self.established_count() == len(self.clients)

    def routes(self) -> dict[IPv4Network, IPv4Address]:
        """Every BGP route in BIRD's table (from any client) with its next hop."""
        found: dict[IPv4Network, IPv4Address] = {}
        prefix: IPv4Network | None = None
        for line in self.birdc("show", "route").splitlines():
            head = re.match(r"^(\d+\.\d+\.\d+\.\d+/\d+)\s", line)
            if head:
                prefix = IPv4Network(head.group(1))
            via = re.match(r"^\s+via (\d+\.\d+\.\d+\.\d+)", line)
            if via and prefix is not None and prefix not in found:
                found[prefix] = IPv4Address(via.group(1))
        return found

    def established_count(self) -> int:
        out = self.birdc("show", "protocols")
        return sum(
            1 for line in out.splitlines() if re.match(r"^c\d+\s", line) and "Established" in line
        )


def route_attributes(bird: bgpd.Bird, prefix: IPv4Network) -> list[ReflectedRoute]:
    """Every BGP path BIRD holds for `prefix` (`show route all`), best first."""
    # birdc exits 1 with "Network not found" when BIRD holds no route for it.
    out = bgpd.run("birdc", "-s", str(bird.socket), "show", "route", "all", "for", str(prefix),
                   check=False)  # fmt: skip
    routes: list[ReflectedRoute] = []
    current: dict[str, str] | None = None

    def flush() -> None:
        if current is not None and "BGP.next_hop" in current:
            routes.append(_reflected(current))

    for line in out.splitlines():
        if re.match(r"^\S*\d+\.\d+\.\d+\.\d+/\d+\s", line) or re.match(r"^\s+unicast \[", line):
            flush()
            current = {}
            continue
        attribute = re.match(r"^\s+(BGP\.\w+):\s*(.*)$", line)
        if attribute and current is not None:
            current[attribute.group(1)] = attribute.group(2).strip()
    flush()
    return routes


def _reflected(attributes: dict[str, str]) -> ReflectedRoute:
    hop = attributes.get("BGP.next_hop", "").split()
    originator = attributes.get("BGP.originator_id")
    clusters = attributes.get("BGP.cluster_list", "").split()
    return ReflectedRoute(
        next_hop=IPv4Address(hop[0]) if hop else None,
        originator_id=IPv4Address(originator) if originator else None,
        cluster_list=tuple(IPv4Address(c) for c in clusters),
    )


def frr_route_attributes(frr: bgpd.Frr, prefix: IPv4Network) -> list[ReflectedRoute]:
    """Every path FRR's bgpd holds for `prefix` (`show bgp ipv4 unicast P json`)."""
    data = json.loads(frr.vtysh(f"show bgp ipv4 unicast {prefix} json") or "{}")
    routes: list[ReflectedRoute] = []
    for path in data.get("paths") or []:
        hops = path.get("nexthops") or [{}]
        hop = hops[0].get("ip")
        originator = path.get("originatorId")
        clusters = (path.get("clusterList") or {}).get("list") or []
        routes.append(
            ReflectedRoute(
                next_hop=IPv4Address(hop) if hop else None,
                originator_id=IPv4Address(originator) if originator else None,
                cluster_list=tuple(IPv4Address(c) for c in clusters),
            )
        )
    return routes


def session_and_imported(bird: bgpd.Bird, protocol: str = "peer") -> tuple[bool, int]:
    """(Established?, routes imported) of BIRD's `protocol`, in one birdc call."""
    out = bird.birdc("show", "protocols", "all", protocol)
    found = re.search(r"Routes:\s+(\d+) imported", out)
    return "Established" in out, int(found.group(1)) if found else 0


def imported_count(bird: bgpd.Bird, protocol: str = "peer") -> int:
    """Routes BIRD's `protocol` has imported (accepted from its neighbour)."""
    out = bird.birdc("show", "protocols", "all", protocol)
    found = re.search(r"Routes:\s+(\d+) imported", out)
    return int(found.group(1)) if found else 0
