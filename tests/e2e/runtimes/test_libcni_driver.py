"""A libcni program drives ADD / CHECK / DEL through a chain with tuning, portmap, bandwidth.

The reference test runs Go ptp + host-local first in the chain (proving the
driver); the gingham test puts our plugin there with the real felix.
"""

from __future__ import annotations

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
from tests.support.runtimes.felix_node import FelixNode
from tests.support.runtimes.libcni import LibcniDriver, build_driver
from tests.support.runtimes.netns import in_netns, ipv4_addresses, node_netns, ping

pytestmark = [pytest.mark.root]

CHAIN: list[dict[str, object]] = [
    {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.accept_local": "1"}},
    {"type": "portmap", "capabilities": {"portMappings": True}},
    {"type": "bandwidth", "capabilities": {"bandwidth": True}},
]
CAPS = {
    "portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}],
    "bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 80_000},
}


@pytest.fixture(scope="session")
def driver_binary(image_cache: Path) -> Path:
    _need("go")
    if not Path("/usr/share/gocode/src/github.com/containernetworking/cni/libcni").is_dir():
        pytest.skip("golang-github-appc-cni-dev is not installed (scripts/install-system-deps)")
    return build_driver(image_cache / "go")


@pytest.fixture
def pods() -> Iterator[list[str]]:
    with node_netns("pa") as a, node_netns("pb") as b:
        yield [a, b]


def host_veth_of(node: str, pod_ip: str) -> str:
    routes = json.loads(in_netns(node, "ip", "-j", "route", "show", pod_ip))
    return str(routes[0]["dev"])


def test_reference_chain_add_check_del(
    driver_binary: Path, node: str, pods: list[str], short_tmp: Path
) -> None:
    conflist = reference_conflist(
        short_tmp / "net.d", "gtref", "10.250.3.0/24", short_tmp / "ipam", CHAIN
    )
    driver = LibcniDriver(driver_binary, node, [REFERENCE_BIN], short_tmp / "cache")
    ips = []
    for i, pod in enumerate(pods):
        add = driver.run("add", conflist, f"ctr{i}", pod, caps=CAPS)
        assert add.returncode == 0, add.stderr
        ip = add.result["ips"][0]["address"].split("/")[0]
        assert ipv4_addresses(pod) == [ip]
        ips.append(ip)
    try:
        assert ping(pods[0], ips[1]) and ping(pods[1], ips[0])
        # tuning, portmap and bandwidth all acted on this pod.
        assert in_netns(pods[0], "sysctl", "-n", "net.ipv4.conf.eth0.accept_local").strip() == "1"
        assert "18080" in in_netns(node, "iptables", "-t", "nat", "-S")
        qdisc = in_netns(node, "tc", "qdisc", "show", "dev", host_veth_of(node, ips[0]))
        assert "tbf" in qdisc, qdisc

        assert driver.run("check", conflist, "ctr0", pods[0], caps=CAPS).returncode == 0
        in_netns(pods[0], "ip", "addr", "flush", "dev", "eth0")
        broken = driver.run("check", conflist, "ctr0", pods[0], caps=CAPS)
        assert broken.returncode != 0 and ips[0] in broken.stderr, broken.stderr
    finally:
        for i, pod in enumerate(pods):
            deleted = driver.run("del", conflist, f"ctr{i}", pod, caps=CAPS)
            assert deleted.returncode == 0, deleted.stderr
    assert not (short_tmp / "ipam" / "gtref" / ips[0]).exists()
    assert "18080" not in in_netns(node, "iptables", "-t", "nat", "-S")


def test_gingham_chain_add_check_del(
    driver_binary: Path, gingham_felix: FelixNode, node: str, pods: list[str], short_tmp: Path
) -> None:
    bin_dir, conf_dir = install_gingham(short_tmp, gingham_felix)
    conflist = conf_dir / "10-gingham.conflist"
    # The installed list chains portmap + bandwidth; add tuning to exercise all three.
    doc = json.loads(conflist.read_text())
    doc["plugins"].insert(1, CHAIN[0])
    conflist.write_text(json.dumps(doc))
    driver = LibcniDriver(driver_binary, node, [bin_dir, REFERENCE_BIN], short_tmp / "cache")
    ips = []
    try:
        for i, pod in enumerate(pods):
            add = driver.run("add", conflist, f"gctr{i}", pod, caps=CAPS)
            assert add.returncode == 0, add.stderr
            ips.append(add.result["ips"][0]["address"].split("/")[0])
            assert ipv4_addresses(pod) == [ips[-1]]
        assert ping(pods[0], ips[1]) and ping(node, ips[0])
        assert in_netns(pods[0], "sysctl", "-n", "net.ipv4.conf.eth0.accept_local").strip() == "1"
        assert "18080" in in_netns(node, "iptables", "-t", "nat", "-S")
        assert "tbf" in in_netns(node, "tc", "qdisc", "show", "dev", host_veth_of(node, ips[0]))
        assert driver.run("check", conflist, "gctr0", pods[0], caps=CAPS).returncode == 0
        in_netns(pods[0], "ip", "addr", "flush", "dev", "eth0")
        broken = driver.run("check", conflist, "gctr0", pods[0], caps=CAPS)
        assert broken.returncode != 0 and "gctr0/eth0" in broken.stderr, broken.stderr
    finally:
        for i, pod in enumerate(pods):
            deleted = driver.run("del", conflist, f"gctr{i}", pod, caps=CAPS)
            assert deleted.returncode == 0, deleted.stderr
    for ip in ips:
        assert in_netns(node, "ip", "route", "show", ip).strip() == ""
