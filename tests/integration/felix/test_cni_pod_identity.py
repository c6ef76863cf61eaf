"""Pods that must not disturb each other, through the real plugin and the real felix.

Issue 16: container IDs that differ only in case or punctuation (item 2), a
second ADD of one container ID into another netns (item 3), and a pod whose
netns vanished without a DEL (item 10).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.felix.cni_node import CniNode, PodNamespaces, cni_node, pod_namespaces
from tests.support.poll import wait_for
from tests.support.runtimes.netns import ipv4_addresses, ping

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CniNode]:
    with cni_node(tmp_path_factory.mktemp("cni-node"), resync=0.5) as node:
        yield node


@pytest.fixture
def pods() -> Iterator[PodNamespaces]:
    with pod_namespaces() as pods:
        yield pods


def address(run: object) -> str:
    data = run.json  # type: ignore[attr-defined]
    return str(data["ips"][0]["address"].split("/")[0])


def test_container_ids_that_differ_in_case_or_punctuation_are_two_pods(
    node: CniNode, pods: PodNamespaces
) -> None:
    ids = ["CaseTest", "casetest", "pod_x1", "pod-x1"]
    netns = {cid: pods.make() for cid in ids}
    ips = {}
    for cid in ids:
        run = node.add(netns[cid], cid)
        assert run.returncode == 0, run.stdout
        ips[cid] = address(run)
    assert len(set(ips.values())) == 4
    recorded = node.endpoints()
    assert {cid: recorded.get(cid) for cid in ids} == {cid: [ips[cid]] for cid in ids}
    assert node.ipam_problems() == [], "ipam check calls a live pod's address leaked"

    for gone, kept in (("casetest", "CaseTest"), ("pod_x1", "pod-x1")):
        assert node.delete(netns[gone], gone).returncode == 0
        assert ipv4_addresses(netns[kept]) == [ips[kept]]
        assert node.endpoints().get(kept) == [ips[kept]], f"DEL {gone} took {kept}'s record"
        assert node.held().get(f"{kept}.eth0") == [ips[kept]]
        assert ping(node.netns, ips[kept]), f"{kept} unreachable after DEL of {gone}"
    assert node.ipam_problems() == []
    for cid in ("CaseTest", "pod-x1"):
        assert node.delete(netns[cid], cid).returncode == 0
    assert not any(cid in node.endpoints() for cid in ids)


def test_a_second_add_into_another_netns_is_refused_and_the_first_pod_keeps_working(
    node: CniNode, pods: PodNamespaces
) -> None:
    first_ns, second_ns = pods.make(), pods.make()
    first = node.add(first_ns, "twice1")
    assert first.returncode == 0, first.stdout
    ip = address(first)
    second = node.add(second_ns, "twice1")
    assert second.returncode != 0 and second.error_code == 4, second.stdout  # invalid env
    assert "netns" in second.json["msg"] and first_ns in second.stdout, second.stdout
    assert "Traceback" not in second.stdout + second.stderr
    # A runtime DELs the sandbox whose ADD failed: the first pod must survive it.
    assert node.delete(second_ns, "twice1").returncode == 0
    assert node.held().get("twice1.eth0") == [ip], "a second address, or the first freed"
    assert ipv4_addresses(first_ns) == [ip] and ipv4_addresses(second_ns) == []
    assert f"{ip} dev gh" in node.route_to(ip)
    assert ping(node.netns, ip), "the first sandbox went dark"
    # The same ADD again (same ID, netns and interface) is still idempotent.
    again = node.add(first_ns, "twice1")
    assert again.returncode == 0 and address(again) == ip
    assert node.delete(first_ns, "twice1").returncode == 0
    assert "twice1.eth0" not in node.held()


def test_a_vanished_netns_does_not_hold_back_other_pods(node: CniNode, pods: PodNamespaces) -> None:
    vanishing = pods.make()
    run = node.add(vanishing, "vanish1")
    assert run.returncode == 0, run.stdout
    lost_ip = address(run)
    pods.remove(vanishing)  # by hand, no DEL: the kernel deletes the veth and its /32
    # felix adopts that at its next periodic resync (every 0.5 s here) and then
    # stops listing the pod as one of its workloads.
    wait_for(lambda: "vanish1" not in node.listed(), timeout=15, what="felix to adopt the loss")
    assert node.route_to(lost_ip) == ""
    others = []
    started = time.monotonic()
    for i in range(5):  # across several resyncs: none may retry the lost route and back off
        ns = pods.make()
        add = node.add(ns, f"after{i}")
        assert add.returncode == 0, add.stdout
        others.append((ns, f"after{i}", address(add)))
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"5 ADDs took {elapsed:.1f}s: something holds reconciles back"
    for _ns, _cid, ip in others:
        assert ping(node.netns, ip), f"{ip} unreachable"
    assert node.route_to(lost_ip) == ""
    # Several resyncs later felix still retries nothing (a retried /32 said ENODEV).
    assert node.problems() == []
    assert node.held().get("vanish1.eth0") == [lost_ip], "freed before its DEL"
    delete = node.delete(vanishing, "vanish1")  # the netns is gone: the plugin says so
    assert delete.returncode == 0, delete.stdout
    assert "vanish1.eth0" not in node.held()
    assert "vanish1" not in node.endpoints()
    for ns, cid, _ip in others:
        assert node.delete(ns, cid).returncode == 0
    assert node.ipam_problems() == []
