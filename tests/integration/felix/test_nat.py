"""natOutgoing in a real namespace: the pod reaches a router that has no route back."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from felix.dataplane import host_interface_name
from felix.desired import DesiredInputs, LocalWorkload, PoolInfo, compute_desired
from felix.kernel import NetlinkKernel
from felix.nat import nat_ruleset
from felix.nft import apply_nat, nat_table_present
from felix.reconcile import Reconciler, reconcile_once
from felix.veth import VethSpec, plumb
from tests.support.netns import Netns, Topology


def test_nat_outgoing_masquerades_to_outside_only(topo: Topology, node: Netns) -> None:
    pod = topo.netns("pd")
    ip = IPv4Address("10.65.0.5")
    spec = VethSpec(host_interface_name("nat1", "eth0"), "eth0", pod.path, (ip,))
    plumb(node.path, spec)
    kernel = NetlinkKernel(node.path)
    try:
        inputs = DesiredInputs("n1", workloads=[LocalWorkload(spec.host_interface, (ip,))])
        rec = Reconciler(datastore_synced=True, routes_synced=True)
        assert all(
            r.ok for r in reconcile_once(rec, kernel, compute_desired(inputs).state, 0, True)
        )
    finally:
        kernel.close()
    node.exec("nft add table ip operator")  # someone else's table: must survive
    # The router (192.0.2.254) has no route to 10.65.0.0/16: only NAT gets replies back.
    assert not pod.ping("192.0.2.254", timeout=0.5)

    pool = PoolInfo(IPv4Network("10.65.0.0/16"), nat_outgoing=True)
    apply_nat(node.path, nat_ruleset([pool]))
    apply_nat(node.path, nat_ruleset([pool]))  # idempotent: replaced, not duplicated
    assert node.exec("nft list table ip gingham_nat").stdout.count("masquerade") == 1
    assert pod.ping("192.0.2.254")
    assert pod.ping("192.0.2.1"), "node address still reachable"

    apply_nat(node.path, nat_ruleset([PoolInfo(pool.cidr)]))  # natOutgoing turned off
    assert not nat_table_present(node.path)
    assert "table ip operator" in node.exec("nft list tables").stdout
