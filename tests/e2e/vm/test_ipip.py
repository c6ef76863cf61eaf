"""IPIP for real: two QEMU guests (a kernel with ipip), the real felix in each.

The lab namespace runs etcd on the guests' segment (198.18.0.254); both
guests' `gingham-felix` daemons share it, so IPAM gives each node its own
block and its own IPIP tunnel address. Each guest loads ipip (tunl0 appears),
felix brings tunl0 up with the node's tunnel address from its Node resource,
and a pod is created through the real CNI plugin (`gingham-cni`, exactly as a
runtime execs it) → felix's AddWorkload. The test plays the BGP speaker: a
small feeder in each guest pushes the other node's block on felix's RouteFeed.
felix must then route the remote block `via <node IP> dev tunl0 onlink`, and
pod1 pings pod2 with tunl0's counters rising on both nodes: the packets went
through the tunnel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from gingham.lab.vm import Vm, VmLab
from tests.support.etcd import require_etcd
from tests.support.poll import wait_for

pytestmark = pytest.mark.root

POOL = "10.77.0.0/16"
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[3]
FEED = [str(BIN / "python"), "-m", "tests.e2e.vm.feed_routes", "/run/gingham/felix.sock"]


def resources(lab: VmLab) -> str:
    docs = [
        {"kind": "IPPool", "metadata": {"name": "ipip"},
         "spec": {"cidr": POOL, "ipipMode": "Always", "blockSize": 26}},
        *({"kind": "Node", "metadata": {"name": vm.name},
           "spec": {"bgp": {"ipv4Address": str(vm.address)}}} for vm in lab.vms),
    ]  # fmt: skip
    return "\n---\n".join(json.dumps({"apiVersion": "gingham.io/v1", **d}) for d in docs)


def start_etcd(lab: VmLab) -> tuple[subprocess.Popen[bytes], str]:
    """etcd on the lab segment (inside the lab namespace): the guests' datastore."""
    url = f"http://{lab.gateway.ip}:2379"
    peer = "http://127.0.0.1:2380"
    args = ["ip", "netns", "exec", lab.netns, require_etcd(), "--name", "lab",
            "--data-dir", str(lab.workdir / "etcd"), "--listen-client-urls", url,
            "--advertise-client-urls", url, "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer, "--initial-cluster", f"lab={peer}"]  # fmt: skip
    log = (lab.workdir / "etcd.log").open("wb")
    with log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"etcd://{lab.gateway.ip}:2379"


def seed(lab: VmLab, datastore: str) -> bool:
    """Apply the pool and Nodes (from the lab namespace); False while etcd is not up."""
    path = lab.workdir / "resources.json"
    path.write_text(resources(lab))
    done = lab.ns_exec(str(BIN / "gingham"), "--datastore", datastore, "apply", "-f", str(path),
                       check=False)  # fmt: skip
    if done.returncode != 0:
        (lab.workdir / "seed.err").write_text(done.stderr)
    return done.returncode == 0


def write_routes(vm: Vm, line: str) -> None:
    """The feeder's input, renamed into place so it never reads half of it."""
    tmp = vm.share / ".routes.tmp"
    tmp.write_text(line + "\n")
    tmp.rename(vm.share / "routes")


def tunl0(vm: Vm) -> dict[str, object]:
    out = vm.run(["ip", "-j", "-s", "addr", "show", "dev", "tunl0"]).stdout
    link: dict[str, object] = json.loads(out)[0]
    return link


def tunnel_address(vm: Vm) -> IPv4Address | None:
    """tunl0's IPv4 address once it is up, else None."""
    info = tunl0(vm)
    flags, addr_info = info["flags"], info.get("addr_info", [])
    assert isinstance(flags, list) and isinstance(addr_info, list)
    addrs = [IPv4Address(a["local"]) for a in addr_info if a.get("family") == "inet"]
    return addrs[0] if addrs and "UP" in flags else None


def has_route(vm: Vm, route: str) -> bool:
    return route in vm.run(["ip", "route"]).stdout


def counters(vm: Vm) -> tuple[int, int]:
    stats = tunl0(vm)["stats64"]
    assert isinstance(stats, dict)
    return int(stats["tx"]["packets"]), int(stats["rx"]["packets"])


def add_pod(vm: Vm) -> str:
    """`ip netns add pod` then CNI ADD through the real plugin; the pod's IPv4."""
    vm.run(["ip", "netns", "add", "pod"])
    conf = {"cniVersion": "1.0.0", "name": "gingham", "type": "gingham",
            "felix_socket": "/run/gingham/felix.sock"}  # fmt: skip
    (vm.share / "cni.json").write_text(json.dumps(conf))
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"ctr-{vm.name}", "CNI_NETNS": "/run/netns/pod",
           "CNI_IFNAME": "eth0", "CNI_PATH": str(BIN),
           "CNI_ARGS": f"K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-{vm.name}"}  # fmt: skip
    cni = f"{BIN / 'gingham-cni'} < {vm.guest_path(vm.share / 'cni.json')}"
    result = json.loads(vm.run(["sh", "-c", cni], env=env, timeout=60).stdout)
    return str(result["ips"][0]["address"]).split("/")[0]


@pytest.mark.timeout(600)
def test_pods_in_two_vms_ping_over_ipip(two_vms: VmLab) -> None:
    lab = two_vms
    vm1, vm2 = lab.vms
    started = time.monotonic()
    marks: dict[str, float] = {}
    etcd, datastore = start_etcd(lab)
    try:
        wait_for(lambda: seed(lab, datastore), timeout=30, what="etcd up and seeded")
        for vm in lab.vms:
            assert "tunl0" in vm.run(["ip", "-br", "link"]).stdout, f"{vm.name}: no tunl0"
            felix = [str(BIN / "gingham-felix"), "--node", vm.name, "--datastore", datastore,
                     "--run-dir", "/run/gingham", "--resync", "2"]  # fmt: skip
            vm.spawn(felix, env={"PYTHONPATH": str(ROOT)})
            # The speaker's part, started now so its imports overlap felix's.
            routes = vm.guest_path(vm.share / "routes")
            vm.spawn([*FEED, routes], env={"PYTHONPATH": str(ROOT)})

        for vm in lab.vms:
            what = f"{vm.name}: felix brings tunl0 up with its tunnel address"
            address = wait_for(partial(tunnel_address, vm), timeout=180, interval=1.0, what=what)
            assert address in IPv4Network(POOL), address
        marks["felix"] = time.monotonic()
        with ThreadPoolExecutor(2) as pool:  # each guest has its own vCPU
            ip1, ip2 = pool.map(add_pod, lab.vms)
        marks["pods"] = time.monotonic()
        block1 = IPv4Network(f"{ip1}/26", strict=False)
        block2 = IPv4Network(f"{ip2}/26", strict=False)
        assert block1 != block2, "IPAM gave both nodes the same block"
        # Each felix learns the other node's block from its feeder.
        write_routes(vm1, f"{block2} {vm2.address.ip} {vm2.name}")
        write_routes(vm2, f"{block1} {vm1.address.ip} {vm1.name}")
        for vm, block, hop in ((vm1, block2, vm2), (vm2, block1, vm1)):
            want = f"{block} via {hop.address.ip} dev tunl0 proto 77 onlink"
            wait_for(partial(has_route, vm, want), timeout=120, interval=1.0,
                     what=f"{vm.name}: IPIP route {want}")  # fmt: skip

        marks["routes"] = time.monotonic()
        before1, before2 = counters(vm1), counters(vm2)
        ping = ["ip", "netns", "exec", "pod", "ping", "-n", "-c", "1", "-W", "2"]
        wait_for(lambda: vm1.run([*ping, ip2], check=False).rc == 0, timeout=30, interval=0.2,
                 what="pod in vm1 pings pod in vm2")  # fmt: skip
        assert vm2.run([*ping, ip1], check=False).rc == 0, "pod in vm2 pings pod in vm1"
        after1, after2 = counters(vm1), counters(vm2)
        # Echo requests and replies crossed tunl0 in both directions on both nodes.
        assert after1[0] >= before1[0] + 2 and after1[1] >= before1[1] + 2, (before1, after1)
        assert after2[0] >= before2[0] + 2 and after2[1] >= before2[1] + 2, (before2, after2)
        marks["ping"] = time.monotonic()
        print(f"\nstages {json.dumps({k: round(v - started, 1) for k, v in marks.items()})}")
        print(f"\nboot {[round(v.boot_seconds or 0, 1) for v in lab.vms]} s; "
              f"rss {[v.rss_bytes() >> 20 for v in lab.vms]} MB; "
              f"felix→ping {time.monotonic() - started:.1f} s")  # fmt: skip
    except BaseException:
        for vm in lab.vms:
            print(vm.report())
        raise
    finally:
        etcd.kill()
        etcd.wait(timeout=10)
