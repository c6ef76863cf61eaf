"""felix.veth: the pod veth AddWorkload makes, and CHECK reads back, in real namespaces.

The kernel is the judge: `ip` shows every item, felix.links' pyroute2
`describe_workload` names the attachment from what veth wrote, the pod
reaches its node through its /32 (programmed by the reconciler), a repeat or
a half-made pair converges, and `check` names each item that is changed
behind felix's back.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from felix import veth
from felix.dataplane import host_interface_name
from felix.desired import DesiredInputs, LocalWorkload, compute_desired
from felix.kernel import NetlinkKernel
from felix.links import describe_workload
from felix.reconcile import Reconciler, reconcile_once
from tests.support.netns import Netns, Topology


def program_route(node: Netns, spec: veth.VethSpec) -> None:
    """The pod's /32, as the reconciler writes it (veth leaves it to the reconciler)."""
    inputs = DesiredInputs(node="n1", workloads=[LocalWorkload(spec.host_interface, spec.ips)])
    kernel = NetlinkKernel(node.path)
    try:
        rec = Reconciler(datastore_synced=True, routes_synced=True)
        results = reconcile_once(rec, kernel, compute_desired(inputs).state, 0.0, resync=True)
        assert all(r.ok for r in results), results
    finally:
        kernel.close()


def test_plumb_wires_a_pod_that_check_accepts_and_that_reaches_its_node(
    topo: Topology, node: Netns
) -> None:
    pod = topo.netns("pd")
    spec = veth.VethSpec(
        host_interface=host_interface_name("c0ffee", "eth0"),
        pod_interface="eth0",
        netns=pod.path,
        ips=(IPv4Address("10.65.0.5"),),
        mtu=1400,
        container_id="c0ffee",
        mac="0a:58:0a:41:00:05",
    )
    plumbed = veth.plumb(node.path, spec)
    assert plumbed.pod_mac == "0a:58:0a:41:00:05"
    assert plumbed.host_mac in node.ip(f"link show dev {spec.host_interface}")
    again = veth.plumb(node.path, spec)  # idempotent
    assert plumbed.created and not again.created
    assert (again.host_mac, again.pod_mac) == (plumbed.host_mac, plumbed.pod_mac)
    program_route(node, spec)

    gh = spec.host_interface
    assert "10.65.0.5/32" in pod.ip("-4 addr show dev eth0")
    assert "mtu 1400" in pod.ip("link show dev eth0") and "mtu 1400" in node.ip(f"link show {gh}")
    assert "default via 169.254.1.1 dev eth0" in pod.routes()
    assert "scope link" in pod.routes("169.254.1.1")
    assert plumbed.host_mac in pod.ip("neigh show 169.254.1.1 dev eth0")
    assert "PERMANENT" in pod.ip("neigh show 169.254.1.1 dev eth0")
    assert node.sysctl(f"net.ipv4.conf.{gh}.proxy_arp") == "1"
    assert node.sysctl(f"net.ipv4.neigh.{gh}.proxy_delay") == "0"
    assert node.sysctl(f"net.ipv4.conf.{gh}.forwarding") == "1"
    assert f"lladdr {plumbed.pod_mac} PERMANENT" in node.ip(f"neigh show 10.65.0.5 dev {gh}")
    assert f"10.65.0.5 dev {gh} proto 77 scope link" in node.routes()
    assert veth.check(node.path, spec) == []
    found = describe_workload(node.path, gh)
    assert found is not None
    assert (found.container_id, found.pod_interface, found.pod_mac) == (
        "c0ffee", "eth0", plumbed.pod_mac,
    )  # fmt: skip
    assert pod.ping("192.0.2.1"), "pod cannot reach its node"

    assert veth.unplumb(node.path, gh) is True
    assert veth.unplumb(node.path, gh) is False
    assert gh not in node.ip("link show")
    assert "eth0" not in pod.ip("link show")


def test_a_half_made_pair_is_made_again(topo: Topology, node: Netns) -> None:
    pod = topo.netns("pd")
    spec = veth.VethSpec(
        host_interface_name("half", "eth0"), "eth0", pod.path, (IPv4Address("10.65.0.6"),)
    )
    veth.plumb(node.path, spec)
    pod.ip("link del eth0")  # a crash between creating the pair and configuring it
    plumbed = veth.plumb(node.path, spec)
    assert "10.65.0.6/32" in pod.ip("-4 addr show dev eth0")
    assert plumbed.pod_mac in pod.ip("link show dev eth0")
    assert veth.check(node.path, spec) == []


def test_a_pair_in_another_sandbox_is_never_taken_over(topo: Topology, node: Netns) -> None:
    """Same container ID and interface, another netns: refused, the first pod untouched."""
    first, second = topo.netns("pd"), topo.netns("pd")
    spec = veth.VethSpec(
        host_interface_name("twice", "eth0"), "eth0", first.path, (IPv4Address("10.65.0.8"),)
    )
    plumbed = veth.plumb(node.path, spec)
    other = veth.VethSpec(spec.host_interface, "eth0", second.path, (IPv4Address("10.65.0.9"),))
    with pytest.raises(veth.AttachedElsewhere, match="another network namespace"):
        veth.plumb(node.path, other)
    second.ip("link add eth0 type veth peer name eth0b")  # an unrelated eth0 there
    with pytest.raises(veth.AttachedElsewhere):
        veth.plumb(node.path, other)
    assert "10.65.0.9" not in second.ip("-4 addr show")
    assert "10.65.0.8/32" in first.ip("-4 addr show dev eth0")
    assert plumbed.host_mac in node.ip(f"link show dev {spec.host_interface}")
    assert veth.check(node.path, spec) == []


def test_unplumb_works_with_the_netns_gone(topo: Topology, node: Netns) -> None:
    pod = topo.netns("pd")
    spec = veth.VethSpec(
        host_interface_name("gone", "eth0"), "eth0", pod.path, (IPv4Address("10.65.0.7"),)
    )
    veth.plumb(node.path, spec)
    pod.destroy()  # the runtime removed the netns first (containerd's second DEL)
    assert veth.unplumb(node.path, spec.host_interface) in (True, False)
    assert veth.unplumb(node.path, spec.host_interface) is False
    assert spec.host_interface not in node.ip("link show")


def test_errors_name_the_netns_or_the_step(topo: Topology, node: Netns) -> None:
    missing = veth.VethSpec("ghmissing", "eth0", "/run/netns/gingham-no-such-ns", ())
    with pytest.raises(veth.PlumbingError, match="netns /run/netns/gingham-no-such-ns"):
        veth.plumb(node.path, missing)
    pod = topo.netns("pd")
    pod.ip("link add eth0 type veth peer name other0")  # the pod's eth0 is taken
    taken = veth.VethSpec(host_interface_name("taken", "eth0"), "eth0", pod.path, ())
    with pytest.raises(veth.PlumbingError, match=r"creating veth .* in"):
        veth.plumb(node.path, taken)
    assert taken.host_interface not in node.ip("link show"), "a failed create left a veth"


def test_disconnect_takes_the_pods_routes_away_at_once(topo: Topology, node: Netns) -> None:
    pod = topo.netns("pd")
    spec = veth.VethSpec(
        host_interface_name("down", "eth0"), "eth0", pod.path, (IPv4Address("10.65.0.8"),)
    )
    veth.plumb(node.path, spec)
    program_route(node, spec)
    assert pod.ping("192.0.2.1")
    assert veth.disconnect(node.path, spec.host_interface) is True
    assert "10.65.0.8" not in node.routes(), "the /32 outlived its veth going down"
    assert not pod.ping("192.0.2.1", timeout=0.5)
    assert veth.unplumb(node.path, spec.host_interface) is True
    assert veth.disconnect(node.path, spec.host_interface) is False


def test_check_names_each_item_changed_behind_felixs_back(topo: Topology, node: Netns) -> None:
    pod = topo.netns("pd")
    spec = veth.VethSpec(
        host_interface_name("chk", "eth0"), "eth0", pod.path, (IPv4Address("10.65.0.4"),)
    )
    veth.plumb(node.path, spec)
    gh = spec.host_interface
    assert veth.check(node.path, spec) == []
    tampering = [
        (pod, "route del default", "default route via 169.254.1.1 missing in pod"),
        (pod, "route del 169.254.1.1/32 dev eth0", "route 169.254.1.1/32 scope link missing"),
        (pod, "neigh del 169.254.1.1 dev eth0", "neighbour entry for 169.254.1.1 on eth0"),
        (pod, "addr flush dev eth0", "address 10.65.0.4/32 missing on eth0"),
        (node, f"neigh del 10.65.0.4 dev {gh}", f"neighbour entry for 10.65.0.4 on {gh}"),
        (node, f"link set {gh} down", f"host interface {gh} is not up"),
    ]
    for where, command, problem in tampering:
        where.ip(command)
        problems = veth.check(node.path, spec)
        assert any(p.startswith(problem) for p in problems), (command, problems)
        veth.plumb(node.path, spec)  # converges it again
        assert veth.check(node.path, spec) == [], command
    assert veth.unplumb(node.path, gh) is True
    assert veth.check(node.path, spec) == [f"host interface {gh} missing"]


def test_check_of_a_pod_interface_that_is_not_the_pair(topo: Topology, node: Netns) -> None:
    """CHECK names a netns whose eth0 is not the other end of the host veth."""
    first, second = topo.netns("pd"), topo.netns("pd")
    spec = veth.VethSpec(
        host_interface_name("elsewhere", "eth0"), "eth0", first.path, (IPv4Address("10.65.0.3"),)
    )
    veth.plumb(node.path, spec)
    second.ip("link add eth0 type veth peer name eth0b")
    other = veth.VethSpec(spec.host_interface, "eth0", second.path, spec.ips)
    assert veth.check(node.path, other) == [
        f"eth0 in {second.path} is not the peer of {spec.host_interface}"
    ]
    assert veth.check(node.path, spec) == []
