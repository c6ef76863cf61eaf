"""Top-of-rack routers for `--topology racks`: FRR or BIRD 2 configuration and command lines. Pure.

Each ToR (AS 65000+r) peers eBGP with every node of its rack (the nodes' AS
is 65100+r) and with every other ToR over the spine, and programs what it
learns into its namespace's kernel (FRR: zebra; BIRD: ``protocol kernel``) so
it can forward pod traffic between racks. It also originates its rack subnet,
which is how the other racks' nodes reach this rack's node addresses (the
underlay; the nodes' default route points at their ToR).

The nodes of a rack share an AS, so a route from a rack neighbour arrives
with the node's own AS in its path and the speaker drops it as a loop: FRR
ToRs use ``as-override`` towards their nodes (BIRD has no such knob: with a
BIRD ToR same-rack traffic follows the nodes' default route via the ToR).

Next hops: FRR keeps a rack neighbour's own address as the next hop inside
the rack (third-party next hop on a shared subnet), so same-rack traffic goes
node to node. Across racks, with an unencapsulated pool the ToR is the next
hop (eBGP next-hop-self) and routes pod traffic itself. With an encapsulated
pool (``--encap vxlan|ipip``: CrossSubnet) the ToRs keep the originating
node's address as the next hop end to end (``attribute-unchanged next-hop``;
BIRD ``next hop keep``): felix then sees a next hop outside its subnet and
tunnels to that node, while same-rack next hops are on-link and stay plain —
the point of CrossSubnet. The spine sessions then carry next hops that are not
on the spine, resolved recursively over the rack subnets the ToRs originate.

Short BGP connect timers: BIRD otherwise waits 5 s after a refused connect
(its `connect delay time`), FRR 10 s by default, and the nodes' speakers start at about the
same time as the ToR.
"""

from __future__ import annotations

from pathlib import Path

from gingham.lab.topology import LabPlan, NodePlan, TorPlan

FRR_DIR = "/usr/lib/frr"
FRR_VTY_GROUP = "frrvty"
BGP_TIMERS = "connect delay time 1; connect retry time 1; error wait time 1, 5;"
FRR_HOLD = 9


def _neighbours(plan: LabPlan, tor: TorPlan) -> tuple[list[NodePlan], list[TorPlan]]:
    nodes = [n for n in plan.nodes if n.rack == tor.rack]
    return nodes, [t for t in plan.tors if t.rack != tor.rack]


def keeps_next_hop(plan: LabPlan) -> bool:
    """Whether the ToRs pass the originating node's address on as the next hop."""
    return plan.options.encap != "none"


def bird_config(plan: LabPlan, tor: TorPlan) -> str:
    nodes, others = _neighbours(plan, tor)
    keep = keeps_next_hop(plan)
    hop = "next hop keep;" if keep else "next hop self;"
    spine_hop = "next hop keep; gateway recursive;" if keep else "next hop self;"
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
            f"ipv4 {{ import all; export all; {hop} }}; }}"
        )
    for other in others:
        lines.append(
            f"protocol bgp {other.name} {{ local {tor.spine_address.ip} as {tor.asn}; "
            f"neighbor {other.spine_address.ip} as {other.asn}; {BGP_TIMERS} "
            f"{'multihop; ' if keep else ''}ipv4 {{ import all; export all; {spine_hop} }}; }}"
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
    keep = keeps_next_hop(plan)
    for address, asn, source in peers:
        lines += [
            f" neighbor {address} remote-as {asn}",
            f" neighbor {address} update-source {source}",
            f" neighbor {address} timers {FRR_HOLD // 3} {FRR_HOLD}",
            f" neighbor {address} timers connect 1",
        ]
    if keep:
        # Next hops from the other racks are not on the spine: resolve them recursively.
        lines += [f" neighbor {t.spine_address.ip} disable-connected-check" for t in others]
    lines += [
        " address-family ipv4 unicast",
        f"  network {tor.rack_address.network}",
        "  maximum-paths 8",
    ]
    lines += [f"  neighbor {n.address.ip} as-override" for n in nodes]
    if keep:
        lines += [f"  neighbor {address} attribute-unchanged next-hop" for address, _, _ in peers]
    lines += [" exit-address-family"]
    return "\n".join(lines) + "\n"


def frr_zebra_config(tor: TorPlan) -> str:
    return f"hostname {tor.name}\n"


def tor_files(plan: LabPlan, tor: TorPlan) -> dict[str, str]:
    """The configuration files of `tor`'s daemons: file name → text."""
    if plan.options.tor == "bird":
        return {"bird.conf": bird_config(plan, tor)}
    return {"zebra.conf": frr_zebra_config(tor), "bgpd.conf": frr_bgpd_config(plan, tor)}


def tor_commands(plan: LabPlan, directory: Path) -> list[tuple[str, list[str]]]:
    """The daemons of one ToR whose files (`tor_files`) are in `directory`, in start order.

    Each runs inside the ToR's namespace. FRR runs as root in the ``frrvty``
    group (FRR insists the run-as user is in its vty group) with every path
    under `directory`, so two labs' ToRs never share a socket.
    """
    if plan.options.tor == "bird":
        return [("bird", ["bird", "-f", "-c", str(directory / "bird.conf"),
                          "-s", str(directory / "bird.ctl")])]  # fmt: skip
    return [
        (daemon, [
            f"{FRR_DIR}/{daemon}", "-f", str(directory / f"{daemon}.conf"),
            "-i", str(directory / f"{daemon}.pid"), "-z", str(directory / "zserv.api"),
            "--vty_socket", str(directory), "-u", "root", "-g", FRR_VTY_GROUP,
            "-P", "0", "--log", f"file:{directory / f'{daemon}.log'}",
        ])
        for daemon in ("zebra", "bgpd")
    ]  # fmt: skip
