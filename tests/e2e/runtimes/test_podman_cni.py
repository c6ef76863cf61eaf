"""podman 4.3 with its CNI backend runs containers through a CNI plugin chain.

The reference test (Go ptp + host-local, then tuning/portmap/bandwidth chained)
proves the harness; the gingham test runs two containers through our plugin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runtimes.conftest import (
    REFERENCE_BIN,
    _need,
    install_gingham,
    reference_conflist,
)
from tests.support.runtimes.felix_node import FelixNode
from tests.support.runtimes.netns import ipv4_addresses, links, ping
from tests.support.runtimes.podman import IMAGE, Podman

pytestmark = [pytest.mark.root, pytest.mark.slow]

CHAIN: list[dict[str, object]] = [
    {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.accept_local": "1"}},
    {"type": "portmap", "capabilities": {"portMappings": True}},
    {"type": "bandwidth", "capabilities": {"bandwidth": True}},
]


@pytest.fixture
def podman_ref(short_tmp: Path, node: str) -> Iterator[Podman]:
    _need("podman", "runc")
    reference_conflist(short_tmp / "net.d", "gtref", "10.250.2.0/24", short_tmp / "ipam", CHAIN)
    podman = Podman(short_tmp / "pm", REFERENCE_BIN, short_tmp / "net.d", netns=node)
    try:
        podman.import_busybox()
        yield podman
    finally:
        podman.close()


def container_ip(podman: Podman, name: str, network: str) -> str:
    info: Any = podman.inspect(name)
    return str(info["NetworkSettings"]["Networks"][network]["IPAddress"])


def test_reference_two_containers_reach_each_other(
    podman_ref: Podman, node: str, short_tmp: Path
) -> None:
    pm = podman_ref
    for port, name in ((18081, "ca"), (18082, "cb")):
        pm.run(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "gtref",
            "-p",
            f"{port}:80",
            IMAGE,
        )
    ips = [container_ip(pm, n, "gtref") for n in ("ca", "cb")]
    pids = [pm.pid(n) for n in ("ca", "cb")]
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.250.2.0/24") for ip in ips)
    assert [ipv4_addresses(pid) for pid in pids] == [[ip] for ip in ips]
    assert ping(pids[0], ips[1]) and ping(pids[1], ips[0])
    assert len([n for n in links(node) if n.startswith("veth")]) == 2

    pm.run("rm", "--force", "--time", "0", "ca")
    assert not (short_tmp / "ipam" / "gtref" / ips[0]).exists()
    assert len([n for n in links(node) if n.startswith("veth")]) == 1


def test_gingham_two_containers_reach_each_other(
    gingham_felix: FelixNode, short_tmp: Path, node: str
) -> None:
    _need("podman", "runc")
    bin_dir, conf_dir = install_gingham(short_tmp, gingham_felix)
    pm = Podman(short_tmp / "pm", bin_dir, conf_dir, netns=node)
    try:
        pm.import_busybox()
        for name in ("ga", "gb"):
            pm.run("run", "-d", "--name", name, "--network", "gingham", IMAGE)
        ips = [container_ip(pm, n, "gingham") for n in ("ga", "gb")]
        pids = [pm.pid(n) for n in ("ga", "gb")]
        assert len(set(ips)) == 2
        assert [ipv4_addresses(pid) for pid in pids] == [[ip] for ip in ips]
        assert ping(pids[0], ips[1]) and ping(pids[1], ips[0])
        links_before = links(node)
        pm.run("rm", "--force", "--time", "0", "ga")
        assert len(links(node)) == len(links_before) - 1
    finally:
        pm.close()
