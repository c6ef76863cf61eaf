"""containerd's CRI creates pod sandboxes through a CNI plugin, as a kubelet would.

The reference test (Go ptp + host-local) proves the harness; the gingham test
runs the same steps through our plugin and the real felix.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.runtimes.conftest import (
    REFERENCE_BIN,
    _need,
    install_gingham,
    reference_conflist,
)
from tests.support.runtimes.containerd import Containerd
from tests.support.runtimes.felix_node import FelixNode
from tests.support.runtimes.netns import in_netns, in_pid_netns, ipv4_addresses, links, ping

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def containerd_ref(short_tmp: Path, node: str, image_cache: Path) -> Iterator[Containerd]:
    _need("containerd", "ctr", "runc", "podman")
    reference_conflist(short_tmp / "net.d", "gtref", "10.250.1.0/24", short_tmp / "ipam")
    cd = Containerd(short_tmp / "cd", REFERENCE_BIN, short_tmp / "net.d", node, image_cache)
    try:
        cd.start()
        yield cd
    finally:
        cd.stop()


def test_reference_ptp_pods_get_addresses_and_ping(
    containerd_ref: Containerd, node: str, short_tmp: Path
) -> None:
    cd = containerd_ref
    pods = [cd.run_pod(name) for name in ("pod-a", "pod-b")]
    ips = [cd.status(p)[0].network.ip for p in pods]
    pids = [cd.pod_pid(p) for p in pods]
    subnet = ipaddress.ip_network("10.250.1.0/24")
    assert all(ipaddress.ip_address(ip) in subnet for ip in ips), ips
    assert len(set(ips)) == 2
    for pid, ip in zip(pids, ips, strict=True):
        assert ipv4_addresses(pid) == [ip]
        routes = json.loads(in_pid_netns(pid, "ip", "-j", "-4", "route"))
        assert any(r["dst"] == "default" for r in routes), routes
    assert ping(pids[0], ips[1]) and ping(pids[1], ips[0])
    host_veths_before = [n for n in links(node) if n.startswith("veth")]
    assert len(host_veths_before) == 2

    cd.stop_pod(pods[0])
    cd.remove_pod(pods[0])  # containerd sends DEL again here, with CNI_NETNS=""
    assert not (short_tmp / "ipam" / "gtref" / ips[0]).exists()
    assert len([n for n in links(node) if n.startswith("veth")]) == 1


def test_gingham_pods_get_addresses_ping_and_are_released(
    gingham_felix: FelixNode, short_tmp: Path, node: str, image_cache: Path
) -> None:
    _need("containerd", "ctr", "runc", "podman")
    bin_dir, conf_dir = install_gingham(short_tmp, gingham_felix)
    cd = Containerd(short_tmp / "cd", bin_dir, conf_dir, node, image_cache)
    try:
        cd.start()
        pods = [cd.run_pod(name) for name in ("pod-a", "pod-b")]
        ips = [cd.status(p)[0].network.ip for p in pods]
        pids = [cd.pod_pid(p) for p in pods]
        assert len(set(ips)) == 2 and all(ips)
        for pid, ip in zip(pids, ips, strict=True):
            assert ipv4_addresses(pid) == [ip]
            routes = json.loads(in_pid_netns(pid, "ip", "-j", "-4", "route"))
            assert {"default", "169.254.1.1"} <= {r["dst"] for r in routes}, routes
        assert ping(pids[0], ips[1]) and ping(pids[1], ips[0])
        assert ping(node, ips[0])

        links_before = links(node)
        cd.stop_pod(pods[0])
        cd.remove_pod(pods[0])  # the second DEL, with CNI_NETNS=""
        assert len(links(node)) == len(links_before) - 1
        assert in_netns(node, "ip", "route", "show", ips[0]).strip() == ""
    finally:
        cd.stop()
