"""Pods on a real Kubernetes: created -> Ready, and created -> first ping from
a pod on another node, with Gingham beside the Go ptp + host-local plugins.

    .venv/bin/python bench/k8s_pods.py [--pods 30] [--rounds 3]

Brings up its own `gingham.k8s.localcluster.LocalCluster` (2 kubelet nodes,
the DaemonSet as shipped; removed on exit), starts one "pinger" pod on node1,
then creates pods on node2 one at a time with the API server (no kubectl in
the timed path) and times, from the create request:

- Ready: the pod's Ready condition, as a watch on the API server reports it;
- first ping: the first echo reply to the pinger pod's ``ping -D`` (run in the
  pinger's network namespace on node1, started the moment the pod's address
  appears, 20 probes a second).

The reference is the same cluster and run: node2's containerd is switched to a
``ptp`` + ``host-local`` conflist (Debian's containernetworking-plugins, the
subnet 10.245.2.0/24, a static route to it on node1 — what a plain ptp
cluster would have) by writing it before Gingham's (containerd takes the
first conflist by name). Phases alternate per round (``--rounds`` rounds of
``--pods`` pods each per plugin, so load drift hits both); a pod whose address
shows the other plugin served it (containerd reloads its CNI configuration
shortly after the file changes) is dropped from the figures.

Prints p50/p90 per plugin in milliseconds and ours over the reference.
Both figures are bounded below by the kubelet: a pod's address and its Ready
condition reach the API server in the kubelet's status updates (its pod
lifecycle events are relisted every second), so the first ping cannot start
before the address is known; what the plugins themselves take (tens of
milliseconds, bench/cni.py) hides inside that.

Notes (history; the README has the current figures):
- 2026-12-08 04:38 UTC, 3 rounds x 10 pods per plugin, load 14-16 (another
  cluster and a test suite running): Ready p50 1011 vs 1006 ms (1.00x), p90
  1998 vs 2009 ms; first ping p50 1018 vs 1009 ms (1.01x), p90 2001 vs
  2011 ms. The 1 s steps are the kubelet's relist period.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from gingham.k8s.images import sleeper_pod
from gingham.k8s.localcluster import LocalCluster

PTP_SUBNET = IPv4Network("10.245.2.0/24")
POOL = IPv4Network("10.244.0.0/16")
PTP_CONFLIST = "05-ptp-reference.conflist"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def pod_body(name: str, node: str) -> dict[str, Any]:
    return sleeper_pod(name, node, {"bench": "k8s-pods"})


class PodWatch:
    """Every pod event of the bench's pods, as the API server reports them."""

    def __init__(self, api: Any) -> None:
        from kubernetes import watch

        self.api = api
        self.events: dict[str, dict[str, float | str]] = {}
        self.lock = threading.Condition()
        self._watch = watch.Watch()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            try:
                self._stream()
            except Exception:
                if self._stopped:
                    return  # stop() closed the stream under it
                raise

    def _stream(self) -> None:
        for event in self._watch.stream(
            self.api.list_namespaced_pod, "default", label_selector="bench=k8s-pods"
        ):
            pod = event["object"]
            now = time.monotonic()
            with self.lock:
                seen = self.events.setdefault(pod.metadata.name, {})
                if pod.status.pod_ip and "ip" not in seen:
                    seen["ip"], seen["ip_at"] = pod.status.pod_ip, now
                ready = any(
                    c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
                )
                if ready and "ready_at" not in seen:
                    seen["ready_at"] = now
                self.lock.notify_all()

    def wait(self, name: str, key: str, timeout: float) -> dict[str, float | str]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while key not in self.events.get(name, {}):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"pod {name}: no {key} in {timeout:.0f} s")
                self.lock.wait(left)
            return dict(self.events[name])

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def first_reply(pinger_pid: int, address: str, since: float) -> float | None:
    """Monotonic time of the first echo reply from `address` (pinged from the pinger's netns)."""
    proc = subprocess.run(
        ["nsenter", f"--net=/proc/{pinger_pid}/ns/net", "ping", "-D", "-n", "-c", "1",
         "-i", "0.05", "-W", "1", "-w", "60", address],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    match = re.search(r"^\[(\d+\.\d+)\] \d+ bytes from", proc.stdout, re.M)
    if not match:
        return None
    # ping -D prints wall-clock time: convert to this process's monotonic clock.
    return float(match.group(1)) - (time.time() - time.monotonic())


def measure(api: Any, watch: PodWatch, name: str, node: str, pinger_pid: int) -> dict[str, Any]:
    created = time.monotonic()
    api.create_namespaced_pod("default", pod_body(name, node))
    seen = watch.wait(name, "ip", 120)
    reply = first_reply(pinger_pid, str(seen["ip"]), created)
    seen = watch.wait(name, "ready_at", 120)
    return {
        "name": name,
        "ip": seen["ip"],
        "ready_ms": (float(seen["ready_at"]) - created) * 1000,
        "ping_ms": None if reply is None else (reply - created) * 1000,
    }


def ptp_conflist() -> str:
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "ptp-reference",
            "plugins": [
                {
                    "type": "ptp",
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "subnet": str(PTP_SUBNET),
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
    )


def pinger_pid(cluster: LocalCluster, node_index: int, pod: str) -> int:
    node = cluster.nodes[node_index]
    tasks = node.ctr("tasks", "ls")
    out = cluster.kubectl("get", "pod", pod, "-o", "json").stdout
    container = json.loads(out)["status"]["containerStatuses"][0]["containerID"].split("//")[-1]
    for line in tasks.splitlines():
        words = line.split()
        if words and words[0] == container:
            return int(words[1])
    raise RuntimeError(f"no task for pinger container {container}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10, help="pods per plugin per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from kubernetes import client, config

    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="gkbench-", dir="/var/lib/gingham"))
    cluster = LocalCluster("bench", directory, nodes=2, tag="gkb")
    try:
        cluster.up(
            lambda line: print(f"  [{time.monotonic() - started:6.1f} s] {line}", flush=True), 900
        )
        up_seconds = time.monotonic() - started
        node1, node2 = cluster.node_names()
        api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
        watch = PodWatch(api)
        api.create_namespaced_pod("default", pod_body("pinger", node1))
        watch.wait("pinger", "ready_at", 180)
        pid = pinger_pid(cluster, 0, "pinger")
        conf_dir = cluster.nodes[1].dir / "host" / "etc-cni" / "net.d"
        # node1 routes the reference subnet to node2, as a plain ptp cluster would.
        subprocess.run(
            ["ip", "-n", cluster.nodes[0].spec.netns, "route", "replace", str(PTP_SUBNET),
             "via", str(cluster.nodes[1].spec.address.ip)],
            check=True,
        )  # fmt: skip
        results: dict[str, list[dict[str, Any]]] = {"gingham": [], "ptp+host-local": []}
        serial = 0
        for round_ in range(args.rounds):
            for plugin in ("gingham", "ptp+host-local"):
                reference = plugin != "gingham"
                if reference:
                    (conf_dir / PTP_CONFLIST).write_text(ptp_conflist())
                else:
                    (conf_dir / PTP_CONFLIST).unlink(missing_ok=True)
                time.sleep(2)  # containerd reloads its CNI configuration on a file change
                names = []
                for _ in range(args.pods):
                    serial += 1
                    name = f"bench-{serial}"
                    names.append(name)
                    row = measure(api, watch, name, node2, pid)
                    served = "ptp+host-local" if IPv4Address(row["ip"]) in PTP_SUBNET else "gingham"
                    if served == plugin:
                        results[plugin].append(row)
                print(
                    f"  round {round_ + 1} {plugin}: {len(results[plugin])} pods so far", flush=True
                )
                for name in names:
                    api.delete_namespaced_pod(name, "default", grace_period_seconds=0)
        watch.stop()
        report(results, up_seconds)
    finally:
        cluster.destroy()
    return 0


def report(results: dict[str, list[dict[str, Any]]], up_seconds: float) -> None:
    print(f"\ncluster up (images cached or built, control plane, 2 nodes, DaemonSet): "
          f"{up_seconds:.0f} s")  # fmt: skip
    print(f"{'plugin':<16} {'pods':>4} {'Ready p50':>10} {'p90':>8} {'ping p50':>10} {'p90':>8}")
    medians: dict[str, tuple[float, float]] = {}
    for plugin, rows in results.items():
        ready = [r["ready_ms"] for r in rows]
        ping = [r["ping_ms"] for r in rows if r["ping_ms"] is not None]
        lost = len(rows) - len(ping)
        if not ready:
            print(f"{plugin:<16} no pods measured")
            continue
        medians[plugin] = (statistics.median(ready), statistics.median(ping) if ping else 0.0)
        print(
            f"{plugin:<16} {len(rows):>4} {percentile(ready, 0.5):>8.0f}ms "
            f"{percentile(ready, 0.9):>6.0f}ms {percentile(ping, 0.5) if ping else 0:>8.0f}ms "
            f"{percentile(ping, 0.9) if ping else 0:>6.0f}ms"
            + (f"  ({lost} never answered)" if lost else "")
        )
    if len(medians) == 2:
        ours, ref = medians["gingham"], medians["ptp+host-local"]
        print(f"gingham / ptp+host-local, median: Ready {ours[0] / ref[0]:.2f}x, "
              f"first ping {ours[1] / ref[1]:.2f}x" if ref[1] else "")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
