"""`Host`: the real `HostPort` — a NetlinkKernel plus pyroute2 link/tunnel work.

One object per namespace felix manages (None: felix's own, the normal case;
tests and the lab pass a node namespace).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from felix import links, nft
from felix.desired import LocalWorkload
from felix.kernel import NetlinkKernel


class Host(NetlinkKernel):
    def discover_workloads(self) -> list[LocalWorkload]:
        return [
            LocalWorkload(name, ips)
            for name, ips in links.discover_workloads(self.netns)
            if ips  # a veth without its neighbour entry is half-made: GC'd later
        ]

    def ensure_vxlan(self, vtep_ip: IPv4Address, vtep_mac: str, local: IPv4Address | None) -> None:
        links.ensure_vxlan(self.netns, vtep_ip, vtep_mac, local)

    def ensure_tunl0(self, tunnel_ip: IPv4Address | None) -> str | None:
        return links.ensure_tunl0(self.netns, tunnel_ip)

    def apply_nat(self, ruleset: str | None) -> None:
        nft.apply_nat(self.netns, ruleset)
