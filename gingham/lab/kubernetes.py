"""``gingham lab up --kubernetes``: a real Kubernetes cluster as a lab.

The lab is a `gingham.k8s.localcluster.LocalCluster` in the lab's directory
(``<lab dir>/cluster``): the control plane, N kubelet nodes in namespaces of
their own, Gingham's DaemonSet as shipped. ``--pods-per-node`` test pods
(busybox, made with kubectl, pinned to their node) are the lab's pods.

The lab's `LabState` names the nodes (node → its network namespace) and the
pods (name, node, address); the cluster's own record (``cluster.json``) holds
everything else, and `gingham.lab.teardown.down` calls `destroy_cluster`
before removing the lab directory.

Pods are reached through the API server (``kubectl exec``), nodes through
their namespaces: `exec` on a node enters its network and mount namespaces,
so ``ip route`` shows the node's routes and ``gingham node status`` finds its
agents.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gingham.lab.backend import LabError, Matrix, Progress
from gingham.lab.state import LabState, PodRecord, lab_dir
from gingham.lab.topology import LabOptions

CLUSTER_DIR = "cluster"


def cluster_dir(name: str) -> Path:
    return lab_dir(name) / CLUSTER_DIR


def cluster_tag(name: str) -> str:
    """The prefix of the lab's namespaces and host links (``gk`` + 4 hex, from its name)."""
    return f"gk{zlib.crc32(name.encode()) % 0xFFFF:04x}"


def destroy_cluster(name: str) -> None:
    """Remove the lab's cluster if it has one (safe twice, safe when there is none)."""
    directory = cluster_dir(name)
    if directory.exists():
        from gingham.k8s.localcluster import destroy

        destroy(directory)


class KubernetesBackend:
    name = "kubernetes"
    default_nodes = 2
    default_encap = "none"
    default_wait = 600.0  # image build on a first run, then about a minute
    datastore: str | None = "kubernetes"

    def up(self, options: LabOptions, progress: Progress, wait: float) -> LabState:
        from gingham.k8s.localcluster import ClusterError, LocalCluster

        if options.encap != "none" or options.topology != "mesh":
            raise LabError(
                "--kubernetes runs manifests/default-pool.yaml as shipped (one L2 segment, "
                "node-to-node mesh): leave --topology and --encap at their defaults"
            )
        state = LabState(name=options.name, options=_options(options), datastore="kubernetes")
        if LabState.load(options.name) is not None:
            raise LabError(f'lab "{options.name}" exists: gingham lab down --name {options.name}')
        state.directory.mkdir(parents=True, exist_ok=True)
        state.save()
        tag = cluster_tag(options.name)
        cluster = LocalCluster(options.name, cluster_dir(options.name), options.nodes, tag=tag)
        try:
            cluster.up(progress, timeout=wait)
        except ClusterError as exc:
            raise LabError(str(exc)) from None
        state.nodes = {n.spec.name: n.spec.netns for n in cluster.nodes}
        state.save()
        for node in cluster.node_names():
            for i in range(1, options.pods_per_node + 1):
                name = f"{node}-pod{i}"
                cluster.kubectl("apply", "-f", "-", stdin=pod_manifest(name, node))
                state.pods.append(PodRecord(name=name, node=node, netns="", container_id=""))
        state.save()
        progress(f"{len(state.pods)} pods created with kubectl; waiting for them to be Ready")
        return state

    def wait_converged(self, state: LabState, progress: Progress, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self._refresh_addresses(state)
            if all(p.address for p in state.pods):
                break
            time.sleep(1)
        ready = sum(1 for p in state.pods if p.address)
        progress(f"pods Ready with an address: {ready}/{len(state.pods)}")
        while time.monotonic() < deadline:
            matrix = self.ping_matrix(state, timeout=1.0)
            progress(f"pings: {matrix.ok}/{matrix.pairs} pairs answer")
            if matrix.pairs and matrix.ok == matrix.pairs:
                return True
            time.sleep(1)
        return False

    def _refresh_addresses(self, state: LabState) -> None:
        out = _kubectl(state, "get", "pods", "-l", "gingham.io/lab-pod", "-o", "json")
        found = {}
        for item in json.loads(out.stdout or '{"items": []}')["items"]:
            status = item.get("status", {})
            ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            )
            if ready and status.get("podIP"):
                found[item["metadata"]["name"]] = status["podIP"]
        for pod in state.pods:
            pod.address = found.get(pod.name)
        state.save()

    def status(self, state: LabState) -> dict[str, Any]:
        from gingham.lab.observe import felix_serving, pool_routes, speaker_status

        self._refresh_addresses(state)

        def node_status(node: str, netns: str) -> dict[str, Any]:
            run_dir = cluster_dir(state.name) / "nodes" / node / "host" / "run-gingham"
            return {
                "name": node,
                "netns": netns,
                "felix_serving": felix_serving(run_dir),
                "speaker": speaker_status(run_dir),
                "routes": pool_routes(netns),
            }

        with ThreadPoolExecutor(max_workers=8) as pool:
            nodes = list(pool.map(lambda item: node_status(*item), state.nodes.items()))
        return {
            "name": state.name,
            "options": state.options,
            "datastore": state.datastore,
            "kubeconfig": str(kubeconfig(state)),
            "nodes": nodes,
            "tors": [],
            "pods": [{"name": p.name, "node": p.node, "address": p.address} for p in state.pods],
        }

    def ping_matrix(self, state: LabState, timeout: float) -> Matrix:
        if not any(p.address for p in state.pods):
            self._refresh_addresses(state)
        pods = [p for p in state.pods if p.address]
        matrix = Matrix(pods=[p.name for p in state.pods])

        def ping(source: str, address: str) -> bool:
            wait = str(max(1, round(timeout)))
            result = _kubectl(state, "exec", source, "--", "ping", "-c1", "-W", wait, address)
            return result.returncode == 0

        pairs = [(a, b) for a in pods for b in pods if a is not b]
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda pair: ping(pair[0].name, str(pair[1].address)), pairs))
        for pod in state.pods:
            matrix.results[pod.name] = {p.name: False for p in state.pods if p is not pod}
        for (a, b), ok in zip(pairs, answers, strict=True):
            matrix.results[a.name][b.name] = ok
        return matrix

    def exec(self, state: LabState, target: str, command: list[str]) -> int:
        if not command:
            raise LabError("lab exec: give a command after --, e.g. lab exec node1 -- ip route")
        if target in state.nodes:
            ns = cluster_dir(state.name) / "nodes" / target / "ns" / "mnt"
            argv = ["nsenter", f"--mount={ns}", f"--net=/run/netns/{state.nodes[target]}"]
            os.execvp("nsenter", [*argv, "--", *command])
        if any(p.name == target for p in state.pods):
            return _kubectl(state, "exec", target, "--", *command, capture=False).returncode
        raise LabError(f'lab "{state.name}" has no node or pod "{target}" '
                       f"(nodes: {', '.join(state.nodes)})")  # fmt: skip


def kubeconfig(state: LabState) -> Path:
    return cluster_dir(state.name) / "control-plane" / "admin.kubeconfig"


def pod_manifest(name: str, node: str) -> str:
    from gingham.k8s.images import sleeper_pod

    return json.dumps(sleeper_pod(name, node, {"gingham.io/lab-pod": "true"}))


def _options(options: LabOptions) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(options)


def _kubectl(state: LabState, *args: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
    from gingham.k8s.localcluster import kubectl

    if not capture:
        from gingham.k8s.cluster import kubernetes_bin_dir

        return subprocess.run(
            [str(kubernetes_bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig(state)}", *args],
            check=False,
            text=True,
        )
    return kubectl(kubeconfig(state), *args, check=False, timeout=60)
