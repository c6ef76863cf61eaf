"""Pod plumbing in real namespaces: veth, proxy ARP, gateway, /32 route, ping."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from felix.dataplane import host_interface_name
from felix.desired import DesiredInputs, LocalWorkload, compute_desired
from felix.kernel import NetlinkKernel
from felix.links import (
    WorkloadSpec,
    check_workload,
    enable_forwarding,
    plumb_workload,
    unplumb_workload,
)
from felix.reconcile import Reconciler, reconcile_once
from tests.support.netns import Netns, Topology


def make_node(topo: Topology) -> Netns:
    """A node namespace with an uplink to a router namespace and a default route."""
    node, router = topo.netns("nd"), topo.netns("rt")
    topo.veth(node, "up0", router, "down0")
    node.ip("addr add 192.0.2.1/24 dev up0")
    router.ip("addr add 192.0.2.254/24 dev down0")
    node.ip("route add default via 192.0.2.254")
    enable_forwarding(node.path)
    return node


def program(node: Netns, spec: WorkloadSpec) -> None:
    inputs = DesiredInputs(node="n1", workloads=[LocalWorkload(spec.host_interface, spec.ips)])
    kernel = NetlinkKernel(node.path)
    try:
        rec = Reconciler(datastore_synced=True, routes_synced=True)
        results = reconcile_once(rec, kernel, compute_desired(inputs).state, 0.0, resync=True)
        assert all(r.ok for r in results), results
    finally:
        kernel.close()


def test_workload_plumbing_and_ping(topo: Topology) -> None:
    node = make_node(topo)
    pod = topo.netns("pd")
    spec = WorkloadSpec(
        host_interface=host_interface_name("c0ffee", "eth0"),
        pod_interface="eth0",
        netns=pod.path,
        ips=(IPv4Address("10.65.0.5"),),
        mtu=1400,
    )
    plumbed = plumb_workload(node.path, spec)
    again = plumb_workload(node.path, spec)  # idempotent
    assert again == plumbed
    program(node, spec)

    assert "10.65.0.5/32" in pod.ip("-4 addr show dev eth0")
    assert "mtu 1400" in pod.ip("link show dev eth0")
    pod_routes = pod.routes()
    assert "default via 169.254.1.1 dev eth0" in pod_routes
    gateway_route = pod.routes("169.254.1.1")
    assert "169.254.1.1 dev eth0" in gateway_route and "scope link" in gateway_route
    gh = spec.host_interface
    assert node.sysctl(f"net.ipv4.conf.{gh}.proxy_arp") == "1"
    assert node.sysctl(f"net.ipv4.neigh.{gh}.proxy_delay") == "0"
    assert node.sysctl("net.ipv4.ip_forward") == "1"
    assert "PERMANENT" in node.ip(f"neigh show 10.65.0.5 dev {gh}")
    assert f"10.65.0.5 dev {gh} proto 77 scope link" in node.routes()
    assert plumbed.pod_mac in pod.ip("link show dev eth0")

    assert pod.ping("192.0.2.1"), "pod cannot reach its node"
    assert check_workload(node.path, spec) == []

    pod.ip("route del default")
    assert check_workload(node.path, spec) == ["default route via 169.254.1.1 missing in pod"]


def test_delete_is_idempotent_and_works_without_the_netns(topo: Topology) -> None:
    node = make_node(topo)
    pod = topo.netns("pd")
    spec = WorkloadSpec(
        host_interface_name("dead", "eth0"), "eth0", pod.path, (IPv4Address("10.65.0.9"),)
    )
    plumb_workload(node.path, spec)
    program(node, spec)
    pod.destroy()  # the runtime removed the netns first (containerd's second DEL)
    assert unplumb_workload(node.path, spec.host_interface) in (True, False)
    assert unplumb_workload(node.path, spec.host_interface) is False
    assert spec.host_interface not in node.ip("link show")
    assert "10.65.0.9" not in node.routes()
    assert check_workload(node.path, spec) == [f"host interface {spec.host_interface} missing"]
    assert IPv4Network("10.65.0.9/32")
