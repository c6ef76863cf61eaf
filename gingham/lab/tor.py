"""Top-of-rack routers for `--topology racks`: FRR or BIRD 2 configuration, from the plan. Pure.

Each ToR (AS 65000+r) peers eBGP with every node of its rack (the nodes' AS
is 65100+r) and with every other ToR over the spine, and programs what it
learns into its namespace's kernel (FRR: zebra; BIRD: ``protocol kernel``) so
it can forward pod traffic between racks. It also originates its rack subnet,
which is how the other racks' nodes reach this rack's node addresses (the
underlay; the nodes' default route points at their ToR).

Next hops: a ToR advertises itself as the next hop to every peer (eBGP), so
same-rack traffic between pods also hairpins through the ToR: the plain
AS-per-rack design, where the nodes do not peer with each other.

Short BGP connect timers: BIRD otherwise waits 5 s after a refused connect
(FACTS.md), FRR 10 s by default, and the nodes' speakers start at about the
same time as the ToR.
"""

from __future__ import annotations

from gingham.lab.topology import LabPlan, NodePlan, TorPlan

BGP_TIMERS = "connect delay time 1; connect retry time 1; error wait time 1, 5;"
FRR_HOLD = 9


def _neighbours(plan: LabPlan, tor: TorPlan) -> tuple[list[NodePlan], list[TorPlan]]:
    nodes = [n for n in plan.nodes if n.rack == tor.rack]
    return nodes, [t for t in plan.tors if t.rack != tor.rack]


def bird_config(plan: LabPlan, tor: TorPlan) -> str:
    nodes, others = _neighbours(plan, tor)
    lines = [
        f"router id {tor.spine_address.ip};",
        "protocol device { scan time 5; }",
        'protocol direct { ipv4; interface "br0"; }',
        "protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }",
    ]
    for node in nodes:
        lines.append(
            f"protocol bgp {node.name} {{ local {tor.rack_address.ip} as {tor.asn}; "
            f"neighbor {node.address.ip} as {node.asn}; {BGP_TIMERS} "
            "ipv4 { import all; export all; next hop self; }; }"
        )
    for other in others:
        lines.append(
            f"protocol bgp {other.name} {{ local {tor.spine_address.ip} as {tor.asn}; "
            f"neighbor {other.spine_address.ip} as {other.asn}; {BGP_TIMERS} "
            "ipv4 { import all; export all; next hop self; }; }"
        )
    return "\n".join(lines) + "\n"


def frr_bgpd_config(plan: LabPlan, tor: TorPlan) -> str:
    """bgpd.conf for FRR 8.x (zebra beside it installs the routes)."""
    nodes, others = _neighbours(plan, tor)
    lines = [
        f"hostname {tor.name}",
        f"router bgp {tor.asn}",
        f" bgp router-id {tor.spine_address.ip}",
        # A lab ToR passes everything (FRR 8 otherwise sends nothing over eBGP without policy).
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        " bgp bestpath as-path multipath-relax",
    ]
    peers = [(n.address.ip, n.asn, tor.rack_address.ip) for n in nodes]
    peers += [(t.spine_address.ip, t.asn, tor.spine_address.ip) for t in others]
    for address, asn, source in peers:
        lines += [
            f" neighbor {address} remote-as {asn}",
            f" neighbor {address} update-source {source}",
            f" neighbor {address} timers {FRR_HOLD // 3} {FRR_HOLD}",
            f" neighbor {address} timers connect 1",
        ]
    lines += [
        " address-family ipv4 unicast",
        f"  network {tor.rack_address.network}",
        "  maximum-paths 8",
        " exit-address-family",
    ]
    return "\n".join(lines) + "\n"


def frr_zebra_config(tor: TorPlan) -> str:
    return f"hostname {tor.name}\n"
