"""Top-of-rack routers for `--topology racks`: BIRD 2 configuration, rendered from the plan. Pure.

Each ToR (AS 65000+r) peers eBGP with every node of its rack (the nodes' AS
is 65100+r) and with every other ToR over the spine, re-advertising with
itself as next hop, and programs what it learns into its namespace's kernel
(``protocol kernel``, BGP routes only) so it can forward pod traffic between
racks. It also originates its rack subnet (``protocol direct``), which is how
the other racks' nodes reach this rack's node addresses (the underlay; the
nodes' default route points at their ToR).

Short BGP connect timers: BIRD otherwise waits 5 s after a refused connect
(FACTS.md), and the nodes' speakers start at about the same time as the ToR.
"""

from __future__ import annotations

from gingham.lab.topology import LabPlan, TorPlan

BGP_TIMERS = "connect delay time 1; connect retry time 1; error wait time 1, 5;"


def bird_config(plan: LabPlan, tor: TorPlan) -> str:
    lines = [
        f"router id {tor.spine_address.ip};",
        "protocol device { scan time 5; }",
        'protocol direct { ipv4; interface "br0"; }',
        "protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }",
    ]
    for node in plan.nodes:
        if node.rack != tor.rack:
            continue
        lines.append(
            f"protocol bgp {node.name} {{ local {tor.rack_address.ip} as {tor.asn}; "
            f"neighbor {node.address.ip} as {node.asn}; {BGP_TIMERS} "
            "ipv4 { import all; export all; next hop self; }; }"
        )
    for other in plan.tors:
        if other.rack == tor.rack:
            continue
        lines.append(
            f"protocol bgp {other.name} {{ local {tor.spine_address.ip} as {tor.asn}; "
            f"neighbor {other.spine_address.ip} as {other.asn}; {BGP_TIMERS} "
            "ipv4 { import all; export all; next hop self; }; }"
        )
    return "\n".join(lines) + "\n"
