"""The installed plugin against the REAL felix: pods wired, reachable, released.

Exec'd exactly as a runtime does. felix runs in a test-made "node" netns; each
pod is a netns the test makes. Skipped while the felix daemon does not exist.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cni.install import install
from tests.integration.cni.test_spec_errors import assert_error
from tests.support.cni_exec import PluginRun, exec_plugin
from tests.support.runtimes.felix_node import POOL_CIDR, FelixNode, felix_unavailable, running_felix
from tests.support.runtimes.netns import in_netns, ipv4_addresses, links, node_netns, ping

pytestmark = [pytest.mark.root]


@dataclass
class Node:
    netns: str
    felix: FelixNode
    plugin: Path

    def config(self, version: str = "1.1.0", **extra: Any) -> dict[str, Any]:
        conf = {
            "cniVersion": version,
            "name": "gingham",
            "type": "gingham",
            "felix_socket": str(self.felix.socket),
        }
        conf.update(extra)
        return conf

    def run(self, command: str, pod: str, cid: str, **kw: Any) -> PluginRun:
        config = kw.pop("config", None) or self.config()
        return exec_plugin(
            self.plugin,
            command,
            config,
            container_id=cid,
            netns=pod,
            cni_args=f"K8S_POD_NAMESPACE=default;K8S_POD_NAME={cid}",
            **kw,
        )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One felix for the module (each test uses its own container IDs and cleans up)."""
    reason = felix_unavailable()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("felix-node")
    with node_netns("fx") as netns, running_felix(root / "felix", netns) as felix:
        install(root / "bin", root / "conf", run_dir=str(felix.run_dir))
        yield Node(netns, felix, root / "bin" / "gingham")


@pytest.fixture
def bare_felix(tmp_path: Path) -> Iterator[Node]:
    """The real felix, whether or not its AddWorkload works yet."""
    reason = felix_unavailable()
    if reason:
        pytest.skip(reason)
    with node_netns("fx") as netns:
        felix = FelixNode(tmp_path / "felix", netns)
        try:
            felix.start()
            install(tmp_path / "bin", tmp_path / "conf", run_dir=str(felix.run_dir))
            yield Node(netns, felix, tmp_path / "bin" / "gingham")
        finally:
            felix.stop()


def test_status_del_and_gc_against_real_felix(bare_felix: Node) -> None:
    node = bare_felix
    status = exec_plugin(node.plugin, "STATUS", node.config())
    assert status.returncode == 0, status.stdout
    # DEL of an attachment felix never had, with the netns already gone: success.
    assert node.run("DEL", "", "never-added").returncode == 0
    assert node.run("DEL", "/var/run/netns/gone", "never-added").returncode == 0
    valid = {"cni.dev/valid-attachments": [{"containerID": "x", "ifname": "eth0"}]}
    assert exec_plugin(node.plugin, "GC", node.config(**valid)).returncode == 0
    node.felix.stop()
    assert_error(exec_plugin(node.plugin, "STATUS", node.config()), 50)
    assert_error(node.run("DEL", "", "never-added"), 11)


@pytest.fixture
def pods() -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(node_netns("p")) for _ in range(30)]


def test_30_concurrent_adds_get_unique_reachable_addresses(node: Node, pods: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=30) as pool:
        runs = list(pool.map(lambda i: node.run("ADD", pods[i], f"pod{i}"), range(30)))
    assert all(r.returncode == 0 for r in runs), [r.stdout for r in runs if r.returncode]
    ips = [r.json["ips"][0]["address"].split("/")[0] for r in runs]
    assert len(set(ips)) == 30
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(POOL_CIDR) for ip in ips)
    for pod, ip in zip(pods, ips, strict=True):
        assert ipv4_addresses(pod) == [ip]
        routes = json.loads(in_netns(pod, "ip", "-j", "-4", "route"))
        assert {"default", "169.254.1.1"} <= {r["dst"] for r in routes}, routes
        assert ping(node.netns, ip), f"pod {ip} unreachable from the node"

    with ThreadPoolExecutor(max_workers=30) as pool:
        dels = list(pool.map(lambda i: node.run("DEL", pods[i], f"pod{i}"), range(30)))
    assert all(r.returncode == 0 for r in dels), [r.stdout for r in dels if r.returncode]
    for ip in ips:
        assert in_netns(node.netns, "ip", "route", "show", ip).strip() == ""


def test_del_twice_with_netns_gone(node: Node) -> None:
    with node_netns("p") as pod:
        assert node.run("ADD", pod, "gone1").returncode == 0
        assert node.run("DEL", pod, "gone1").returncode == 0
    assert node.run("DEL", "", "gone1").returncode == 0
    assert node.run("DEL", pod, "gone1").returncode == 0  # path no longer exists


def test_failed_add_leaves_nothing_behind(node: Node, pods: list[str]) -> None:
    before = links(node.netns)
    run = node.run(
        "ADD", pods[0], "bad1", config=node.config(runtimeConfig={"ips": ["192.0.2.5/32"]})
    )
    assert run.returncode != 0 and "Traceback" not in run.stdout + run.stderr
    assert links(node.netns) == before
    assert in_netns(node.netns, "ip", "route", "show", "192.0.2.5").strip() == ""


def held_by(node: Node, handle: str) -> list[str]:
    """The addresses IPAM holds for `handle`, read from felix's datastore."""
    import asyncio

    from gingham.datastore import open_datastore
    from gingham.ipam.query import allocations

    async def read() -> list[str]:
        store = open_datastore(node.felix.datastore)
        try:
            return [str(h.allocation.address) for h in await allocations(store, handle=handle)]
        finally:
            await store.close()

    return asyncio.run(read())


def test_add_failing_after_ipam_gives_the_address_back(node: Node) -> None:
    """Plumbing fails after IPAM assigned (the pod already has an eth0): nothing is left."""
    with node_netns("p") as pod:
        in_netns(pod, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other0")
        before = links(node.netns)
        run = node.run("ADD", pod, "taken1")
        assert_error(run, 100, "creating veth")
        assert links(node.netns) == before, "a failed ADD left a veth behind"
        assert held_by(node, "taken1.eth0") == [], "a failed ADD kept its address"
        assert node.run("DEL", pod, "taken1").returncode == 0  # the runtime's DEL after it


def test_check_against_prev_result(node: Node, pods: list[str]) -> None:
    add = node.run("ADD", pods[0], "chk1")
    assert add.returncode == 0, add.stdout
    config = node.config(prevResult=add.json)
    assert node.run("CHECK", pods[0], "chk1", config=config).returncode == 0
    subprocess.run(
        ["ip", "netns", "exec", pods[0].rsplit("/", 1)[1], "ip", "addr", "flush", "dev", "eth0"],
        check=True,
    )
    assert_error(node.run("CHECK", pods[0], "chk1", config=config), 102)
    assert node.run("DEL", pods[0], "chk1").returncode == 0


def test_status_ready_and_gc(node: Node, pods: list[str]) -> None:
    status = exec_plugin(node.plugin, "STATUS", node.config())
    assert status.returncode == 0, status.stdout
    for i in range(2):
        assert node.run("ADD", pods[i], f"gc{i}").returncode == 0
    valid = {"cni.dev/valid-attachments": [{"containerID": "gc0", "ifname": "eth0"}]}
    assert exec_plugin(node.plugin, "GC", node.config(**valid)).returncode == 0
    assert ipv4_addresses(pods[1]) == []
    assert len(ipv4_addresses(pods[0])) == 1


def test_add_del_add_again_with_the_same_container_id(node: Node) -> None:
    """A runtime retrying a sandbox reuses the container ID: the re-ADD works first time."""
    with node_netns("p") as pod:
        first = node.run("ADD", pod, "again1")
        assert first.returncode == 0, first.stdout
        ip = first.json["ips"][0]["address"].split("/")[0]
        for attempt in range(3):
            assert node.run("DEL", pod, "again1").returncode == 0
            again = node.run("ADD", pod, "again1")
            assert again.returncode == 0, (attempt, again.stdout)
            assert ping(node.netns, again.json["ips"][0]["address"].split("/")[0]), attempt
        assert node.run("DEL", pod, "again1").returncode == 0
    assert in_netns(node.netns, "ip", "route", "show", ip).strip() == ""


def test_mac_pools_by_name_or_cidr_and_check_in_one_call(node: Node) -> None:
    with node_netns("p") as pod_a, node_netns("p") as pod_b:
        by_name = node.config(
            ipam={"ipv4_pools": ["test-pool"]}, runtimeConfig={"mac": "0a:58:0a:fb:00:63"}
        )
        add = node.run("ADD", pod_a, "mac1", config=by_name)
        assert add.returncode == 0, add.stdout
        (pod_if,) = [i for i in add.json["interfaces"] if i.get("sandbox")]
        assert pod_if["mac"] == "0a:58:0a:fb:00:63"
        assert "0a:58:0a:fb:00:63" in in_netns(pod_a, "ip", "link", "show", "eth0")
        assert ping(node.netns, add.json["ips"][0]["address"].split("/")[0])
        check = node.run("CHECK", pod_a, "mac1", config=node.config(prevResult=add.json))
        assert check.returncode == 0, check.stdout

        by_cidr = node.run(
            "ADD", pod_b, "cidr1", config=node.config(ipam={"ipv4_pools": [POOL_CIDR]})
        )
        assert by_cidr.returncode == 0, by_cidr.stdout
        unknown = node.config(ipam={"ipv4_pools": ["test-pool", "no-such-pool"]})
        run = node.run("ADD", pod_b, "cidr2", config=unknown)
        assert_error(run, 7, "no-such-pool")
        for cid, pod in (("mac1", pod_a), ("cidr1", pod_b), ("cidr2", pod_b)):
            assert node.run("DEL", pod, cid).returncode == 0
