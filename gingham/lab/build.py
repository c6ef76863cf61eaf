"""The namespace lab's `lab up`: apply a `LabPlan` to this machine's namespaces.

`up` records each namespace and process in the lab's `LabState` before
making it, then: fabric bridge and veths, addresses, the datastore seeded with
the plan's resources (``gingham apply``), the ToRs' daemons (FRR zebra + bgpd,
or BIRD) for racks, ``gingham cni install`` per node,
``gingham node run`` in each node namespace, pods through the real CNI plugin
(the conflist's chain, executed with CNI_* env and the config on stdin, as
libcni does), and finally waits for convergence (`wait_converged`).

A failed `up` removes what it made with `gingham.lab.teardown.down`, which
is also `lab down`.
"""

from __future__ import annotations

import grp
import json
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gingham.lab.backend import LabError, Progress
from gingham.lab.observe import (
    felix_serving,
    node_run_dir,
    ping_matrix,
    pool_routes,
    speaker_status,
    tor_dir,
)
from gingham.lab.state import (
    LabState,
    PodRecord,
    ProcessRecord,
    lab_dir,
    process_start_time,
)
from gingham.lab.teardown import down
from gingham.lab.topology import LabOptions, LabPlan, NodePlan, TorPlan, plan_lab
from gingham.lab.tor import FRR_DIR, FRR_VTY_GROUP, tor_commands, tor_files

BIN = Path(sys.executable).parent
CNI_TRY_AGAIN_LATER = 11


def _run(cmd: list[str], stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {detail}")
    return proc.stdout.decode()


def _ip(netns: str, *args: str) -> None:
    _run(["ip", "-n", netns, *args])


def _tool(name: str) -> str:
    beside = BIN / name
    return str(beside) if beside.is_file() else (shutil.which(name) or name)


def up(options: LabOptions, progress: Progress, wait: float = 30.0) -> LabState:
    plan = plan_lab(options)
    directory = lab_dir(options.name)
    if directory.exists():
        raise LabError(
            f'lab "{options.name}" already exists ({directory}): '
            f"gingham lab down --name {options.name}"
        )
    if options.topology == "racks":
        _check_tor_daemon(options.tor)
    if options.encap == "ipip" and not _kernel_has_ipip():
        raise LabError("--encap ipip: this kernel has no ipip module; use vxlan or none")
    if options.datastore == "etcd" and shutil.which("etcd") is None:
        raise LabError("--datastore etcd: no etcd binary (Debian package etcd-server)")
    directory.mkdir(parents=True)
    try:
        return _build(plan, directory, progress, wait)
    except LabError as exc:
        # Half a lab is worse than none: remove what this `up` made, then report.
        down(options.name, lambda _line: None)
        raise LabError(f"{exc} (everything this lab had made was removed)") from None
    except BaseException:
        down(options.name, lambda _line: None)
        raise


def _build(plan: LabPlan, directory: Path, progress: Progress, wait: float) -> LabState:
    options = plan.options
    if options.datastore == "etcd":
        url = f"etcd://{plan.fabric_address.ip}:2379"
    else:
        url = f"sqlite:///{directory / 'datastore.db'}"
    state = LabState(options.name, asdict(options), url)
    state.save()
    _build_network(plan, state, progress)
    for tor in plan.tors:
        _start_tor(plan, state, tor)
    if options.datastore == "etcd":
        _start_etcd(plan, state)
    _seed_datastore(plan, state, deadline=time.monotonic() + 20)
    _each_node(plan.nodes, lambda node: _install_cni(state, node.name))
    for node in plan.nodes:
        _start_node(state, node.name, node.netns)
    progress(f"started gingham node run in {len(plan.nodes)} node namespaces")
    _create_pods(plan, state, progress, deadline=time.monotonic() + max(wait, 30.0))
    return state


def _kernel_has_ipip() -> bool:
    return Path("/sys/module/ipip").exists()


def _build_network(plan: LabPlan, state: LabState, progress: Progress) -> None:
    for netns in [plan.fabric_netns, *(t.netns for t in plan.tors), *(n.netns for n in plan.nodes)]:
        state.namespaces.append(netns)
        state.save()
        _run(["ip", "netns", "add", netns])
        _ip(netns, "link", "set", "lo", "up")
    for bridge_netns in [plan.fabric_netns, *(t.netns for t in plan.tors)]:
        _ip(bridge_netns, "link", "add", "br0", "type", "bridge")
        _ip(bridge_netns, "link", "set", "br0", "up")
    _ip(plan.fabric_netns, "addr", "add", str(plan.fabric_address), "dev", "br0")
    for tor in plan.tors:
        # The ToR's uplink `up0` sits on the spine bridge; br0 is its rack's segment.
        _ip(plan.fabric_netns, "link", "add", tor.spine_link, "type", "veth",
            "peer", "name", "up0", "netns", tor.netns)  # fmt: skip
        _ip(plan.fabric_netns, "link", "set", tor.spine_link, "master", "br0", "up")
        _ip(tor.netns, "addr", "add", str(tor.spine_address), "dev", "up0")
        _ip(tor.netns, "link", "set", "up0", "up")
        _ip(tor.netns, "addr", "add", str(tor.rack_address), "dev", "br0")
        _run(["ip", "netns", "exec", tor.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        _ip(plan.fabric_netns, "route", "add", str(tor.rack_address.network),
            "via", str(tor.spine_address.ip))  # fmt: skip
    for node in plan.nodes:
        state.nodes[node.name] = node.netns
        _ip(node.bridge_netns, "link", "add", node.fabric_link, "type", "veth",
            "peer", "name", "eth0", "netns", node.netns)  # fmt: skip
        _ip(node.bridge_netns, "link", "set", node.fabric_link, "master", "br0", "up")
        _ip(node.netns, "addr", "add", str(node.address), "dev", "eth0")
        _ip(node.netns, "link", "set", "eth0", "up")
        if node.gateway is not None:
            _ip(node.netns, "route", "add", "default", "via", str(node.gateway))
    state.save()
    daemon = "FRR" if plan.options.tor == "frr" else "BIRD"
    where = (
        f"{len(plan.tors)} racks behind {daemon} ToRs" if plan.tors else f"{plan.fabric_netns}/br0"
    )
    progress(f"{len(plan.nodes)} nodes on {where} ({plan.options.topology})")


def _check_tor_daemon(tor: str) -> None:
    if tor == "frr":
        if not Path(FRR_DIR, "bgpd").is_file() or not Path(FRR_DIR, "zebra").is_file():
            raise LabError(f"--tor frr: no {FRR_DIR}/bgpd and zebra (Debian package frr); "
                           "or use --tor bird")  # fmt: skip
        try:
            grp.getgrnam(FRR_VTY_GROUP)
        except KeyError:
            raise LabError(
                f"--tor frr: no group {FRR_VTY_GROUP} (the frr package makes it)"
            ) from None
    elif shutil.which("bird") is None:
        raise LabError("--tor bird: no bird binary (Debian package bird2); or use --tor frr")


def _start_tor(plan: LabPlan, state: LabState, tor: TorPlan) -> None:
    directory = tor_dir(state, tor.name)
    directory.mkdir(parents=True, exist_ok=True)
    for filename, text in tor_files(plan, tor).items():
        (directory / filename).write_text(text)
    for daemon, argv in tor_commands(plan, directory):
        if daemon == "bgpd":
            # bgpd retries a missing zebra only every few seconds: start it once zebra listens.
            deadline = time.monotonic() + 10
            while not (directory / "zserv.api").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        with (directory / f"{daemon}.out").open("ab") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", tor.netns, *argv], stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        state.processes.append(ProcessRecord(f"{daemon} {tor.name}", proc.pid,
                                             process_start_time(proc.pid) or 0))  # fmt: skip
        state.save()


def _start_etcd(plan: LabPlan, state: LabState) -> None:
    directory = state.directory / "etcd"
    directory.mkdir(parents=True, exist_ok=True)
    client = f"http://{plan.fabric_address.ip}:2379"
    peer = "http://127.0.0.1:2380"  # one member: the peer URL never leaves the fabric netns
    cmd = ["ip", "netns", "exec", plan.fabric_netns, "etcd", "--name", "lab",
           "--data-dir", str(directory / "data"), "--listen-client-urls", client,
           "--advertise-client-urls", client, "--listen-peer-urls", peer,
           "--initial-advertise-peer-urls", peer, "--initial-cluster", f"lab={peer}"]  # fmt: skip
    with (directory / "etcd.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    state.processes.append(ProcessRecord("etcd", proc.pid, process_start_time(proc.pid) or 0))
    state.save()


def _seed_datastore(plan: LabPlan, state: LabState, deadline: float) -> None:
    """Apply the plan's resources, from the fabric netns (where a lab etcd is reachable)."""
    path = state.directory / "resources.json"
    path.write_text("\n---\n".join(json.dumps(doc) for doc in plan.resources) + "\n")
    cmd = ["ip", "netns", "exec", plan.fabric_netns, _tool("gingham"),
           "--datastore", state.datastore, "apply", "-f", str(path)]  # fmt: skip
    while True:
        try:
            _run(cmd)
            return
        except LabError:
            if plan.options.datastore != "etcd" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # etcd still starting


def _install_cni(state: LabState, node: str) -> None:
    run_dir = node_run_dir(state, node)
    _run([_tool("gingham"), "cni", "install", "--bin-dir", str(state.directory / "cni-bin"),
          "--conf-dir", str(run_dir / "net.d"), "--run-dir", str(run_dir),
          # The Debian reference plugins chained after ours stop at CNI 1.0.0.
          "--cni-version", "1.0.0"])  # fmt: skip


def _start_node(state: LabState, node: str, netns: str) -> None:
    run_dir = node_run_dir(state, node)
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["ip", "netns", "exec", netns, _tool("gingham"), "--datastore", state.datastore,
           "node", "run", "--node", node, "--run-dir", str(run_dir)]  # fmt: skip
    with (run_dir / "node-run.log").open("ab") as log:
        # A session of its own: a ^C at `lab up` must not reach the nodes.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    start = process_start_time(proc.pid)
    state.processes.append(ProcessRecord(f"node run {node}", proc.pid, start or 0))
    state.save()


def cni_chain(state: LabState, pod: PodRecord, command: str) -> dict[str, Any]:
    """Run the node's conflist for `pod` exactly as libcni does; the last plugin's result."""
    run_dir = node_run_dir(state, pod.node)
    (conflist,) = (run_dir / "net.d").glob("*.conflist")
    network = json.loads(conflist.read_text())
    bin_dir = state.directory / "cni-bin"
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": pod.container_id,
        "CNI_NETNS": f"/run/netns/{pod.netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(bin_dir),
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod.name}",
    }
    result: dict[str, Any] = {}
    plugins = network["plugins"] if command == "ADD" else list(reversed(network["plugins"]))
    for plugin in plugins:
        conf = {"cniVersion": network["cniVersion"], "name": network["name"], **plugin}
        if result and command == "ADD":
            conf["prevResult"] = result
        out = subprocess.run(
            ["ip", "netns", "exec", state.nodes[pod.node], str(bin_dir / plugin["type"])],
            input=json.dumps(conf).encode(),
            capture_output=True,
            env=env,
            check=False,
        )
        reply = json.loads(out.stdout or b"{}")
        if out.returncode != 0:
            raise _CNIFailure(plugin["type"], reply, out.stderr.decode(errors="replace"))
        result = reply or result
    return result


class _CNIFailure(Exception):
    def __init__(self, plugin: str, reply: dict[str, Any], stderr: str) -> None:
        self.plugin = plugin
        self.code = reply.get("code")
        text = reply.get("msg") or stderr.strip()
        details = reply.get("details")
        super().__init__(f"{plugin}: {text}{f' ({details})' if details else ''}")


def _create_pods(plan: LabPlan, state: LabState, progress: Progress, deadline: float) -> None:
    """ADD every pod through its node's CNI chain: nodes in parallel, one pod at a time per node
    (as one kubelet per node would), so a 20-node lab does not wait for 40 ADDs in a row."""
    for node in plan.nodes:
        for pod in node.pods:
            state.namespaces.append(pod.netns)
            state.save()
            _run(["ip", "netns", "add", pod.netns])
    lock = threading.Lock()

    def add_pods(node: NodePlan) -> None:
        for pod in node.pods:
            record = PodRecord(pod.name, pod.node, pod.netns, pod.container_id)
            while True:
                try:
                    result = cni_chain(state, record, "ADD")
                    break
                except _CNIFailure as exc:
                    # felix not up yet (socket missing) or busy: a runtime retries too.
                    if exc.plugin != "gingham" or time.monotonic() > deadline:
                        raise LabError(f"pod {pod.name} on {pod.node}: CNI ADD: {exc}") from None
                    time.sleep(0.2)
            ips = result.get("ips") or [{}]
            record.address = str(ips[0].get("address", "")).split("/")[0] or None
            with lock:
                state.pods.append(record)
                state.save()
                progress(f"pod {pod.name} on {pod.node}: {record.address}")

    _each_node(plan.nodes, add_pods)
    order = {pod.name: i for i, pod in enumerate(p for n in plan.nodes for p in n.pods)}
    state.pods.sort(key=lambda record: order[record.name])
    state.save()


def _each_node(nodes: Sequence[NodePlan], work: Callable[[NodePlan], None]) -> None:
    """`work` for every node, a few at a time; the first failure is raised once all finished."""
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(nodes)))) as pool:
        futures = [pool.submit(work, node) for node in nodes]
    for future in futures:
        future.result()


def wait_converged(state: LabState, progress: Progress, wait: float) -> bool:
    """Poll felix, speakers, routes and pings until every pair answers or `wait` passes."""
    start = time.monotonic()
    while True:
        felix = sum(felix_serving(node_run_dir(state, n)) for n in state.nodes)
        speakers = [speaker_status(node_run_dir(state, n)) for n in state.nodes]
        up = [s for s in speakers if s is not None]
        peers = [p for s in up for p in s.get("peers", [])]
        sessions = [p for p in peers if str(p.get("state", "")).lower() == "established"]
        kinds = Counter(str(p.get("peer_type") or "other") for p in sessions)
        by_kind = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        remote = sum(
            1 for netns in state.nodes.values() for r in pool_routes(netns) if " via " in r
        )
        matrix = ping_matrix(state, timeout=1.0)
        elapsed = time.monotonic() - start
        progress(
            f"[{elapsed:5.1f}s] felix {felix}/{len(state.nodes)} serving · "
            f"speakers {len(up)}/{len(state.nodes)} · BGP sessions {len(sessions)}/{len(peers)}"
            f"{f' ({by_kind})' if by_kind else ''}"
            f" · remote block routes {remote} · pings {matrix.ok}/{matrix.pairs}"
        )
        if matrix.pairs and matrix.ok == matrix.pairs:
            return True
        if elapsed > wait:
            return False
        time.sleep(0.5)
