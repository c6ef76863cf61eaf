"""The lab plan: unique addresses, valid resources, Calico's RR peering, racks with eBGP."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gingham.lab.topology import RR_LABEL, LabOptions, PlanError, plan_lab
from gingham.lab.tor import bird_config, frr_bgpd_config
from gingham.model.bgp import BGPPeer, Node
from gingham.model.documents import check_set, parse_resource
from gingham.model.network import IPPool
from gingham.selector import parse_selector

ALL = [
    LabOptions(name="a", nodes=n, topology=t, encap=e, pods_per_node=2)
    for n in (1, 4, 7)
    for t in ("mesh", "rr", "racks")
    for e in ("none", "vxlan", "ipip")
    if not (t == "rr" and n < 2)
]


@pytest.mark.parametrize("options", ALL, ids=lambda o: f"{o.topology}-{o.nodes}-{o.encap}")
def test_addresses_names_and_resources(options: LabOptions) -> None:
    plan = plan_lab(options)
    addresses = [n.address.ip for n in plan.nodes]
    addresses += [t.rack_address.ip for t in plan.tors] + [t.spine_address.ip for t in plan.tors]
    addresses.append(plan.fabric_address.ip)
    assert len(set(addresses)) == len(addresses)
    assert len(set(plan.namespaces)) == len(plan.namespaces)
    assert all(ns.startswith(f"{options.name}-") for ns in plan.namespaces)
    links = [n.fabric_link for n in plan.nodes] + [t.spine_link for t in plan.tors]
    assert len(set(links)) == len(links) and all(len(name) <= 15 for name in links)
    for node in plan.nodes:
        if node.gateway is not None:
            assert node.gateway in node.address.network
    parsed = [parse_resource(doc) for doc in plan.resources]
    assert check_set(parsed) == []
    nodes = [r for r in parsed if isinstance(r, Node)]
    assert sorted(n.metadata.name for n in nodes) == sorted(n.name for n in plan.nodes)
    (pool,) = [r for r in parsed if isinstance(r, IPPool)]
    expected = {"none": ("Never", "Never"), "vxlan": ("Never", "x"), "ipip": ("x", "Never")}
    ipip, vxlan = expected[options.encap]
    mode = "CrossSubnet" if options.topology == "racks" else "Always"
    assert pool.spec.ipip_mode == (mode if ipip == "x" else ipip)
    assert pool.spec.vxlan_mode == (mode if vxlan == "x" else vxlan)


def test_rr_peer_selectors_pair_every_client_with_every_reflector() -> None:
    plan = plan_lab(LabOptions(name="r", nodes=6, topology="rr"))
    parsed = [parse_resource(doc) for doc in plan.resources]
    labels = {n.metadata.name: n.metadata.labels or {} for n in parsed if isinstance(n, Node)}
    reflectors = {name for name, lab in labels.items() if RR_LABEL in lab}
    assert reflectors == {"node1", "node2"}
    for node in parsed:
        if isinstance(node, Node):
            has_id = node.spec.bgp is not None and node.spec.bgp.route_reflector_cluster_id
            assert bool(has_id) == (node.metadata.name in reflectors)
    sessions = set()
    for peer in (r for r in parsed if isinstance(r, BGPPeer)):
        local = parse_selector(peer.spec.node_selector or "all()")
        remote = parse_selector(peer.spec.peer_selector or "")
        for a, la in labels.items():
            for b, lb in labels.items():
                if a != b and local.matches(la) and remote.matches(lb):
                    sessions.add(frozenset((a, b)))
    clients = set(labels) - reflectors
    wanted = {frozenset((c, r)) for c in clients for r in reflectors} | {frozenset(reflectors)}
    assert sessions == wanted
    config = next(doc for doc in plan.resources if doc["kind"] == "BGPConfiguration")
    assert config["spec"]["nodeToNodeMeshEnabled"] is False


def test_racks_peer_ebgp_with_their_own_tor() -> None:
    plan = plan_lab(LabOptions(name="k", nodes=6, topology="racks", racks=2))
    peers = {d["spec"]["node"]: d["spec"] for d in plan.resources if d["kind"] == "BGPPeer"}
    for node in plan.nodes:
        assert node.rack is not None
        tor = plan.tors[node.rack - 1]
        assert peers[node.name]["peerIP"] == str(tor.rack_address.ip)
        assert peers[node.name]["asNumber"] == tor.asn != node.asn
        assert node.address in tor.rack_address.network


@pytest.mark.parametrize(
    ("options", "word"),
    [
        (LabOptions(name="Bad_Name"), "--name"),
        (LabOptions(nodes=0), "--nodes"),
        (LabOptions(topology="ring"), "--topology"),
        (LabOptions(encap="gre"), "--encap"),
        (LabOptions(topology="rr", nodes=1), "--topology rr"),
    ],
)
def test_bad_options_name_the_option(options: LabOptions, word: str) -> None:
    with pytest.raises(PlanError, match=word):
        plan_lab(options)


@pytest.mark.parametrize("encap", ["none", "vxlan"])
def test_tor_configs_are_valid_bird(tmp_path: Path, encap: str) -> None:
    """`bird -p` parses each ToR's configuration (skipped without the bird binary)."""
    if shutil.which("bird") is None:
        pytest.skip("bird is not installed (Debian package bird2)")
    plan = plan_lab(LabOptions(name="k", nodes=5, topology="racks", racks=3, encap=encap))
    for tor in plan.tors:
        path = tmp_path / f"{tor.name}.conf"
        path.write_text(bird_config(plan, tor))
        done = subprocess.run(
            ["bird", "-p", "-c", str(path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        rack_nodes = [n for n in plan.nodes if n.rack == tor.rack]
        assert all(f"neighbor {n.address.ip} as {n.asn};" in path.read_text() for n in rack_nodes)


@pytest.mark.parametrize("encap", ["none", "vxlan"])
def test_tor_configs_are_valid_frr(tmp_path: Path, encap: str) -> None:
    """FRR bgpd's dry run (-C) takes each ToR's bgpd.conf without a complaint; rack nodes
    get as-override (they share an AS); an encapsulated pool keeps next hops end to end."""
    bgpd = Path("/usr/lib/frr/bgpd")
    if not bgpd.is_file():
        pytest.skip("FRR is not installed (Debian package frr)")
    options = LabOptions(name="k", nodes=5, topology="racks", racks=3, tor="frr", encap=encap)
    plan = plan_lab(options)
    for tor in plan.tors:
        path = tmp_path / f"{tor.name}.conf"
        path.write_text(frr_bgpd_config(plan, tor))
        done = subprocess.run(
            [str(bgpd), "-C", "-f", str(path), "-S", "-Z", "--vty_socket", str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        # bgpd -C exits 0 even on a bad line: its complaints carry an [EC ...] code.
        assert done.returncode == 0 and "[EC" not in done.stdout + done.stderr, done.stdout
        rack_nodes = [n for n in plan.nodes if n.rack == tor.rack]
        others = [t for t in plan.tors if t is not tor]
        text = path.read_text()
        assert all(f"neighbor {n.address.ip} remote-as {n.asn}\n" in text for n in rack_nodes)
        assert all(f"neighbor {t.spine_address.ip} remote-as {t.asn}\n" in text for t in others)
        assert f"network {tor.rack_address.network}\n" in text
        assert all(f"neighbor {n.address.ip} as-override\n" in text for n in rack_nodes)
        keeps = text.count("attribute-unchanged next-hop")
        assert keeps == (0 if encap == "none" else len(rack_nodes) + len(others))
