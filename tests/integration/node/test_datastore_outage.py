"""An etcd outage during pod ADD/DEL: ADDs fail cleanly, pods keep talking, nothing leaks.

Two nodes (`gingham node run` on a test etcd), a pod on each, pings every
`INTERVAL` seconds from node1's pod to node2's throughout. The CNI plugin is
exec'd as a runtime does, against node1's felix:

- before: ADD of pods "a" and "c" works;
- etcd stopped (by PID) for `OUTAGE` seconds at least: ADD of pod "b" fails
  with CNI code 11 ("try again later") and leaves nothing behind (no host
  veth, no address); DEL of "c" either works or fails with code 11 too (a
  runtime retries DEL until it works); "a" answers node2's pod throughout;
- etcd back (same data dir): ADD of "b" works within `BACK_WITHIN` seconds
  (each try before that fails with code 11), then DEL of "a", "b" and "c"
  work;
- the pings lost at most `LOST_AT_MOST`, and IPAM holds exactly the two pods
  that still live (`gingham ipam check` finds no leaked address).
(By hand, with a 90 s outage on an idle machine: no ping lost, ADDs code 11,
working right after.)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cni.install import install
from gingham.ipam import blocks as ipam_blocks
from tests.support.cni_exec import PluginRun, exec_plugin
from tests.support.etcd import require_etcd
from tests.support.netns import Netns
from tests.support.node_fabric import Fabric, NodeRun, Pings, resource
from tests.support.poll import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

POOL = "10.74.0.0/16"
INTERVAL = 0.05
OUTAGE = 8.0
BACK_WITHIN = 30.0
LOST_AT_MOST = 2
TRY_AGAIN_LATER = 11


@pytest.fixture
def etcd_fabric(tmp_path: Path) -> Iterator[Fabric]:
    require_etcd()
    made = Fabric(tmp_path, etcd=True)
    try:
        yield made
    finally:
        made.close()


class Plugin:
    """The installed plugin, exec'd against one node's felix."""

    def __init__(self, root: Path, node: NodeRun) -> None:
        install(root / "bin", root / "conf", run_dir=str(node.run_dir))
        self.path = root / "bin" / "gingham"
        self.config = {
            "cniVersion": "1.0.0",
            "name": "gingham",
            "type": "gingham",
            "felix_socket": str(node.felix_sock),
        }

    def run(self, command: str, cid: str, pod: Netns) -> PluginRun:
        return exec_plugin(
            self.path, command, self.config, container_id=cid, netns=pod.path,
            cni_args=f"K8S_POD_NAMESPACE=default;K8S_POD_NAME={cid}",
        )  # fmt: skip


def pod_veths(node: NodeRun) -> set[str]:
    """Host-side pod veths in the node's namespace (felix's, not the uplink)."""
    links: list[dict[str, Any]] = json.loads(node.ns.ip("-j link show type veth") or "[]")
    return {link["ifname"] for link in links if link["ifname"] != "up0"}


def eth0_address(pod: Netns) -> str | None:
    out = pod.ip("-4 -o addr show dev eth0", check=False)
    found = re.search(r"inet (\S+)/", out)
    return found.group(1) if found else None


async def held_addresses(fabric: Fabric) -> int:
    return sum(
        len(ipam_blocks.allocations(block.spec)) for block in await fabric.items("IPAMBlock")
    )


async def test_etcd_outage_during_add_and_del(etcd_fabric: Fabric, tmp_path: Path) -> None:
    fabric = etcd_fabric
    await fabric.apply(resource("IPPool", "pool", {"cidr": POOL}))
    node1 = await fabric.add_node(1)
    await fabric.add_node(2)
    await fabric.add_pod("node1")
    target = await fabric.add_pod("node2")
    wait_for(fabric.all_pods_ping, 120, 0.2, "pod to pod across the nodes")
    plugin = Plugin(tmp_path / "cni", node1)
    pod_a, pod_b, pod_c = (fabric.topo.netns(tag) for tag in ("pa", "pb", "pc"))
    for cid, pod in (("pod-a", pod_a), ("pod-c", pod_c)):
        added = plugin.run("ADD", cid, pod)
        assert added.returncode == 0, added.stdout + added.stderr
    address_a = eth0_address(pod_a)
    assert address_a is not None
    veths_before = pod_veths(node1)

    pings = Pings(fabric.pods["node1"], target, INTERVAL)
    try:
        # The outage.
        fabric.stop_etcd()
        down_since = time.monotonic()
        refused = plugin.run("ADD", "pod-b", pod_b)
        refused_in = time.monotonic() - down_since
        assert refused.returncode != 0 and refused.error_code == TRY_AGAIN_LATER, (
            refused.stdout + refused.stderr
        )
        assert eth0_address(pod_b) is None  # nothing left in the pod ...
        assert pod_veths(node1) == veths_before  # ... nor on the host
        deleted_during = plugin.run("DEL", "pod-c", pod_c)
        assert deleted_during.returncode == 0 or deleted_during.error_code == TRY_AGAIN_LATER, (
            deleted_during.stdout + deleted_during.stderr
        )

        def pod_a_answers_until_the_outage_is_long_enough() -> bool:
            assert fabric.pods["node2"].ping(address_a, timeout=1.0), "pod a lost during outage"
            return time.monotonic() - down_since >= OUTAGE

        wait_for(pod_a_answers_until_the_outage_is_long_enough, OUTAGE + 30, 0.2, "the outage")
        outage = time.monotonic() - down_since

        # Back: ADD works right after, each try before that a clean code 11.
        fabric.start_etcd()
        back_since = time.monotonic()
        tries: list[PluginRun] = []

        def add_b() -> bool:
            tries.append(plugin.run("ADD", "pod-b", pod_b))
            return tries[-1].returncode == 0

        wait_for(add_b, BACK_WITHIN, 0.2, "ADD to work once etcd is back")
        add_works_after = time.monotonic() - back_since
        for failed in tries[:-1]:
            assert failed.error_code == TRY_AGAIN_LATER, failed.stdout + failed.stderr
        assert fabric.pods["node2"].ping(address_a, timeout=1.0)
        for cid, pod in (("pod-a", pod_a), ("pod-b", pod_b), ("pod-c", pod_c)):
            deleted = plugin.run("DEL", cid, pod)
            assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    finally:
        sent, received = pings.stop()
    print(
        f"etcd down {outage:.1f}s: ADD code 11 in {refused_in:.2f}s, DEL during outage code"
        f" {deleted_during.error_code or 0}; ADD worked {add_works_after:.1f}s after etcd was"
        f" back ({len(tries)} tries); pings lost {sent - received} of {sent}"
    )
    assert sent - received <= LOST_AT_MOST, pings.output[-500:]

    # Nothing leaked: the two fabric pods are all IPAM holds, and all felix plumbs.
    assert len(pod_veths(node1)) == 1
    assert await held_addresses(fabric) == 2
    assert "IPAM is consistent" in fabric.gingham("ipam", "check")
