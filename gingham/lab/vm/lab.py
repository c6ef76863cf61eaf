"""`gingham lab up --vm`: the lab's nodes as QEMU guests, built by the README's steps.

The namespace lab's plan (`gingham.lab.topology.plan_lab`: node names,
addresses 10.200.0.<i>/24, pool, BGP configuration, Nodes, BGPPeers) is
reused as is; only where the nodes run changes. Each node is a guest
(`machine.VmLab`) on a bridge in the lab's namespace ``<lab>-vms``, whose own
address (10.200.0.254, the plan's fabric address) serves etcd. Then, exactly
as README "A BGP lab on three VMs" tells a person with three Debian VMs:

1. etcd with Debian's variables from `manifests/systemd/etcd.default`;
2. ``gingham apply`` of the plan's resources (IPIP pool: ``ipipMode: Always``);
3. in each guest: `gingham` on the PATH, `/etc/gingham/gingham.env`, the units
   of `manifests/systemd/` in /etc/systemd/system, then what `systemctl start`
   runs for `gingham-cni-install.service` and `gingham-node.service`
   (`units.py` renders their Exec lines; the guests have no systemd);
4. pods: ``ip netns add`` and `cnitool add gingham /run/netns/<pod>`
   (`cnitool.py`, which runs the conflist that step 3 installed).

`lab status`, `lab ping`, `lab exec` and the convergence progress ask the
guests (through the agent, `probe.py`, a ping script) what the namespace lab
reads from its namespaces; `lab down` is every lab's `gingham.lab.teardown.down`: the
LabState records qemu and etcd as processes and ``<lab>-vms`` as the lab's
only namespace, and the guests' disks are tmpfs, so nothing else remains.

Invariants: every guest NIC is on the lab's bridge inside ``<lab>-vms``;
nothing is made outside the lab directory and that namespace; a failed `up`
removes what it made (`teardown.down`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from gingham.lab.backend import LabError, Matrix, Progress
from gingham.lab.observe import lab_plan
from gingham.lab.state import LabState, PodRecord, ProcessRecord, lab_dir, process_start_time
from gingham.lab.teardown import down
from gingham.lab.topology import POOL_CIDR, LabOptions, LabPlan, plan_lab
from gingham.lab.vm.cnitool import container_id
from gingham.lab.vm.initramfs import BUSYBOX, GUEST_SHARE
from gingham.lab.vm.kernel import KernelUnavailable, prepare_kernel
from gingham.lab.vm.machine import GuestError, Vm, VmLab, qemu_available
from gingham.lab.vm.probe import route_lines
from gingham.lab.vm.units import UNIT_DIR, parse_env_file

BIN = Path(sys.executable).parent
PYTHON = sys.executable
SUBNET = IPv4Network("10.200.0.0/24")  # the plan's node segment; .254 is the lab namespace
GUEST_RUN_DIR = "/run/gingham"
UNITS = ("gingham-cni-install.service", "gingham-node.service")
README_DATASTORE_IP = "10.0.0.11"  # the address the manifests' examples use for etcd
BOOT_TIMEOUT = 900.0  # TCG guests on a loaded 2-core machine get a few % of a core
PROBE_TIMEOUT = 300.0  # a status read from a live guest
POD_TIMEOUT = 900.0  # any one step in a guest (even `cp` waited 70 s at load 100)


def vm_lab_name(lab: str) -> str:
    """The guests' short name (≤ 8 letters/digits; it ends up in qemu's -name)."""
    return lab if len(lab) <= 8 else "v" + hashlib.sha1(lab.encode()).hexdigest()[:7]


def vm_netns(lab: str) -> str:
    return f"{lab}-vms"


def vm_workdir(state: LabState) -> Path:
    return state.directory / "vm"


def check(options: LabOptions) -> None:
    """Raise LabError when a VM lab with these options cannot be built here."""
    if options.topology not in ("mesh", "rr"):
        raise LabError(f"--vm --topology {options.topology}: VM labs build mesh or rr")
    if options.encap == "vxlan":
        raise LabError("--vm --encap vxlan: VM labs are for IPIP; vxlan runs in namespaces")
    problem = qemu_available()
    if problem is not None:
        raise LabError(f"--vm: {problem}")
    if not BUSYBOX.exists():
        raise LabError(f"--vm: {BUSYBOX} is missing (Debian package busybox-static)")
    if not (Path("/usr/bin/etcd").exists() or (BIN / "etcd").exists()):
        raise LabError("--vm: no etcd binary (Debian package etcd-server)")


def up(options: LabOptions, progress: Progress, wait: float = 300.0) -> LabState:
    """Build the lab (guests booted, nodes started, pods added); `wait_converged` follows."""
    plan = plan_lab(options)
    check(options)
    directory = lab_dir(options.name)
    if directory.exists():
        raise LabError(
            f'lab "{options.name}" already exists ({directory}): '
            f"gingham lab down --name {options.name}"
        )
    try:
        kernel = prepare_kernel()
    except KernelUnavailable as exc:
        raise LabError(f"--vm: no guest kernel: {exc}") from None
    directory.mkdir(parents=True)
    try:
        vms = VmLab(vm_lab_name(options.name), len(plan.nodes), subnet=SUBNET, kernel=kernel,
                    names=[n.name for n in plan.nodes], netns=vm_netns(options.name),
                    workdir=directory / "vm", record=False, boot_timeout=BOOT_TIMEOUT)  # fmt: skip
        return _build(plan, vms, progress)
    except (LabError, GuestError) as exc:
        kept = _keep_guest_logs(options.name, vms)
        down(options.name, lambda _line: None)
        raise LabError(f"{exc} (everything this lab had made was removed; the guests' "
                       f"consoles and logs are in {kept})") from None  # fmt: skip
    except BaseException:
        down(options.name, lambda _line: None)
        raise


def _keep_guest_logs(name: str, vms: VmLab) -> Path:
    """The guests' consoles and service logs, saved beside the lab directory (`down` removes it)."""
    path = lab_dir(name).with_name(f"{name}-vm-failure.log")
    path.write_text("\n".join(vm.report() for vm in vms.vms))
    return path


def _record(state: LabState, what: str, pid: int) -> None:
    state.processes.append(ProcessRecord(what, pid, process_start_time(pid) or 0))
    state.save()


def _build(plan: LabPlan, vms: VmLab, progress: Progress) -> LabState:
    options = plan.options
    assert [vm.address for vm in vms.vms] == [n.address for n in plan.nodes]
    state = LabState(options.name, asdict(options), f"etcd://{vms.gateway.ip}:2379")
    state.namespaces.append(vms.netns)  # intent first: `down` removes it even half-made
    state.nodes = {node.name: vms.netns for node in plan.nodes}
    state.save()
    started = time.monotonic()
    vms.launch()
    for vm in vms.vms:
        assert vm.proc is not None
        _record(state, f"qemu {vm.name}", vm.proc.pid)
    progress(f"{len(vms.vms)} QEMU guests booting on {vms.netns}/{vms.bridge} "
             f"({options.topology}, pool {POOL_CIDR} ipipMode Always)")  # fmt: skip
    _start_etcd(state, vms)
    _apply_resources(plan, state, vms, deadline=time.monotonic() + 60)
    progress(f"etcd on {vms.gateway.ip}:2379 seeded with {len(plan.resources)} resources")
    vms.wait_booted()
    progress(f"guests booted ({time.monotonic() - started:.0f}s)")
    lock = threading.Lock()
    with ThreadPoolExecutor(len(vms.vms)) as pool:  # one vCPU per guest: in parallel
        list(pool.map(lambda vm: _provision(plan, state, vm, lock, progress), vms.vms))
    return state


def _start_etcd(state: LabState, vms: VmLab) -> None:
    """etcd as Debian's unit runs it, with the variables of manifests/systemd/etcd.default."""
    text = (UNIT_DIR / "etcd.default").read_text().replace(README_DATASTORE_IP, str(vms.gateway.ip))
    env = {**os.environ, **parse_env_file(text), "ETCD_DATA_DIR": str(state.directory / "etcd")}
    etcd = str(BIN / "etcd") if (BIN / "etcd").exists() else "etcd"
    with (state.directory / "etcd.log").open("ab") as log:
        proc = subprocess.Popen(["ip", "netns", "exec", vms.netns, etcd], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    _record(state, "etcd", proc.pid)


def _apply_resources(plan: LabPlan, state: LabState, vms: VmLab, deadline: float) -> None:
    path = state.directory / "resources.json"
    path.write_text("\n---\n".join(json.dumps(doc) for doc in plan.resources) + "\n")
    cmd = ["ip", "netns", "exec", vms.netns, str(BIN / "gingham"), "--datastore",
           state.datastore, "apply", "-f", str(path)]  # fmt: skip
    while True:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LabError(f"gingham apply into {state.datastore}: {done.stderr.strip()}")
        time.sleep(0.5)  # etcd still starting


def stdlib_script(name: str) -> list[str]:
    """Run one of this package's stdlib-only modules by path, with -S -E.

    The same program as ``python -m gingham.lab.vm.<name>``, without importing
    the package (qemu and kernel helpers) or `site` in a TCG guest.
    """
    return [PYTHON, "-S", "-E", str(Path(__file__).with_name(name))]


def install_script(share: str) -> str:
    """README step 3 as the guest runs it: the program on PATH, env file, units."""
    return (
        "set -e\n"
        f"ln -sf {BIN / 'gingham'} /usr/local/bin/gingham\n"
        "mkdir -p /etc/gingham /etc/systemd/system\n"
        f"cp {share}/gingham.env /etc/gingham/gingham.env\n"
        + "".join(f"cp {share}/{unit} /etc/systemd/system/{unit}\n" for unit in UNITS)
    )


def _provision(
    plan: LabPlan, state: LabState, vm: Vm, lock: threading.Lock, progress: Progress
) -> None:
    """Install and start the node's units in `vm`, then add its pods."""
    env_text = (UNIT_DIR / "gingham.env").read_text()
    datastore_ip = state.datastore.split("//")[1].split(":")[0]
    (vm.share / "gingham.env").write_text(env_text.replace(README_DATASTORE_IP, datastore_ip))
    for unit in UNITS:
        (vm.share / unit).write_text((UNIT_DIR / unit).read_text())
    vm.run(["sh", "-c", install_script(GUEST_SHARE)], timeout=POD_TIMEOUT)
    start = [*stdlib_script("units.py")]
    vm.run([*start, f"/etc/systemd/system/{UNITS[0]}"], timeout=POD_TIMEOUT)
    node_run = vm.spawn([*start, f"/etc/systemd/system/{UNITS[1]}"])
    (vm.share / "node-run.pid").write_text(f"{node_run.pid}\n")
    progress(f"{vm.name}: gingham-cni-install done, gingham-node started (pid {node_run.pid})")
    # The plugin needs felix's socket; wait for it in the guest (one request, no polling here).
    wait_felix = f"until test -S {GUEST_RUN_DIR}/felix.sock; do sleep 0.5; done"
    vm.run(["sh", "-c", wait_felix], timeout=POD_TIMEOUT)
    node = next(n for n in plan.nodes if n.name == vm.name)
    for pod in node.pods:
        netns_path = f"/run/netns/{pod.netns}"
        vm.run(["ip", "netns", "add", pod.netns], timeout=POD_TIMEOUT)
        record = PodRecord(pod.name, pod.node, pod.netns, container_id(netns_path))
        record.address = _cni_add(vm, pod.name, netns_path, time.monotonic() + POD_TIMEOUT)
        with lock:
            state.pods.append(record)
            state.save()
        progress(f"pod {pod.name} on {pod.node}: {record.address}")


def cnitool_env(pod: str) -> dict[str, str]:
    args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"
    return {"NETCONFPATH": "/etc/cni/net.d", "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": args}


def _cni_add(vm: Vm, pod: str, netns_path: str, deadline: float) -> str | None:
    argv = [*stdlib_script("cnitool.py"), "add", "gingham", netns_path]
    while True:
        done = vm.run(argv, env=cnitool_env(pod), timeout=POD_TIMEOUT, check=False)
        if done.rc == 0:
            ips = json.loads(done.stdout).get("ips") or [{}]
            return str(ips[0].get("address", "")).split("/")[0] or None
        # felix not serving yet or busy: a runtime retries too.
        if time.monotonic() > deadline:
            raise LabError(f"pod {pod} on {vm.name}: CNI ADD: {done.stderr.strip()}")
        time.sleep(1.0)


def guests(state: LabState) -> dict[str, Vm]:
    """Handles on the lab's running guests (by their files), node name → Vm."""
    pids = {
        p.what.removeprefix("qemu "): p.pid for p in state.processes if p.what.startswith("qemu ")
    }
    plan = lab_plan(state)
    return {
        n.name: Vm.attach(n.name, n.address, vm_workdir(state), pids[n.name])
        for n in plan.nodes
        if n.name in pids
    }


def _supervisor_pid(vm: Vm) -> str:
    try:
        return (vm.share / "node-run.pid").read_text().strip()
    except OSError:
        return ""


def probe(vm: Vm) -> dict[str, Any]:
    """The node's view (felix, speaker, pool routes, tunl0) from inside its guest."""
    empty: dict[str, Any] = {"supervisor_running": False, "felix_serving": False,
                             "speaker": None, "routes": [], "tunl0": None}  # fmt: skip
    if not vm.alive():
        return empty
    argv = [PYTHON, "-m", "gingham.lab.vm.probe", GUEST_RUN_DIR, POOL_CIDR]
    argv += [p for p in [_supervisor_pid(vm)] if p]
    try:
        done = vm.run(argv, timeout=PROBE_TIMEOUT, check=False)
        reply: dict[str, Any] = json.loads(done.stdout)
    except (GuestError, ValueError):
        return empty
    return reply


def probe_all(state: LabState) -> dict[str, dict[str, Any]]:
    vms = guests(state)
    with ThreadPoolExecutor(max(1, len(vms))) as pool:
        return dict(zip(vms, pool.map(probe, vms.values()), strict=True))


def ping_script(sources: list[PodRecord], targets: list[PodRecord], timeout: float) -> str:
    """One guest's share of the matrix: every local pod pings every other pod, in parallel."""
    wait = max(1, round(timeout))
    lines = []
    for a in sources:
        for b in targets:
            if a is b or b.address is None:
                continue
            lines.append(f"(ip netns exec {a.netns} ping -c1 -n -q -W {wait} {b.address} "
                         f">/dev/null 2>&1; echo {a.name} {b.name} $?) &")  # fmt: skip
    return "\n".join([*lines, "wait"]) + "\n"


def vm_ping_matrix(state: LabState, timeout: float = 1.0) -> Matrix:
    pods = [p for p in state.pods if p.address]
    vms = guests(state)
    matrix = Matrix([p.name for p in pods])
    for a in pods:
        matrix.results[a.name] = {b.name: False for b in pods if b is not a}

    def run(node: str) -> str:
        local = [p for p in pods if p.node == node]
        vm = vms.get(node)
        if not local or vm is None or not vm.alive():
            return ""
        script = ping_script(local, pods, timeout)
        try:
            return vm.run(["sh", "-c", script], timeout=timeout + PROBE_TIMEOUT, check=False).stdout
        except GuestError:
            return ""

    with ThreadPoolExecutor(max(1, len(vms))) as pool:
        outputs = list(pool.map(run, vms))
    for line in "\n".join(outputs).splitlines():
        words = line.split()
        if len(words) == 3 and words[0] in matrix.results and words[1] in matrix.results[words[0]]:
            matrix.results[words[0]][words[1]] = words[2] == "0"
    return matrix


def vm_status(state: LabState) -> dict[str, Any]:
    """`observe.lab_status`'s shape for a VM lab, plus each guest's address and tunl0."""
    probes = probe_all(state)
    plan = lab_plan(state)
    nodes = []
    for node in plan.nodes:
        seen = probes.get(node.name, {})
        where = f"guest {node.address.ip} on {vm_netns(state.name)}"
        nodes.append({"name": node.name, "netns": where,
                      "supervisor_running": bool(seen.get("supervisor_running")),
                      "felix_serving": bool(seen.get("felix_serving")),
                      "speaker": seen.get("speaker"), "routes": seen.get("routes", []),
                      "tunl0": seen.get("tunl0")})  # fmt: skip
    return {"name": state.name, "options": state.options, "datastore": state.datastore,
            "nodes": nodes, "tors": [], "pods": [asdict(p) for p in state.pods]}  # fmt: skip


FULL_PROBE_EVERY = 5  # ticks; the Python probe costs the guest's only vCPU seconds under TCG


def light_probe(vm: Vm) -> dict[str, Any]:
    """Sockets present and pool routes, from one shell in the guest (no Python start)."""
    script = (
        f"test -S {GUEST_RUN_DIR}/felix.sock && echo felix; "
        f"test -S {GUEST_RUN_DIR}/speaker.sock && echo speaker; ip -j route show"
    )
    try:
        out = (
            vm.run(["sh", "-c", script], timeout=PROBE_TIMEOUT, check=False).stdout
            if vm.alive()
            else ""
        )
    except GuestError:
        out = ""
    lines = out.splitlines()
    try:
        routes = json.loads(lines[-1]) if lines and lines[-1].startswith("[") else []
    except ValueError:
        routes = []
    return {"felix_serving": "felix" in lines, "speaker_socket": "speaker" in lines,
            "routes": route_lines(routes, IPv4Network(POOL_CIDR))}  # fmt: skip


def wait_converged(state: LabState, progress: Progress, wait: float) -> bool:
    """The namespace lab's progress line, read from the guests, until every pair pings.

    Every tick reads sockets and routes with a shell; the speakers' sessions need
    the Python probe (gRPC), run every `FULL_PROBE_EVERY` ticks so the probing
    does not slow the very convergence it watches.
    """
    start = time.monotonic()
    sessions, peers, tick = 0, 0, 0
    while True:
        vms = guests(state)
        with ThreadPoolExecutor(max(1, len(vms))) as pool:
            light = list(pool.map(light_probe, vms.values()))
        felix = sum(p["felix_serving"] for p in light)
        speakers = sum(p["speaker_socket"] for p in light)
        remote = sum(" via " in r for p in light for r in p["routes"])
        if tick % FULL_PROBE_EVERY == 0 and speakers:
            full = [p["speaker"] for p in probe_all(state).values() if p.get("speaker")]
            found = [peer for s in full for peer in s.get("peers", [])]
            peers = len(found)
            sessions = sum(str(p.get("state", "")).lower() == "established" for p in found)
        tick += 1
        matrix = vm_ping_matrix(state, timeout=1.0)
        elapsed = time.monotonic() - start
        progress(
            f"[{elapsed:5.1f}s] felix {felix}/{len(state.nodes)} serving · "
            f"speakers {speakers}/{len(state.nodes)} · BGP sessions {sessions}/{peers}"
            f" · remote block routes {remote} · pings {matrix.ok}/{matrix.pairs}"
        )
        if matrix.pairs and matrix.ok == matrix.pairs:
            return True
        if elapsed > wait:
            return False
        time.sleep(2.0)


def vm_exec(state: LabState, target: str, command: list[str]) -> int:
    """`lab exec NODE|POD -- CMD` in the guest (output relayed; not interactive)."""
    vms = guests(state)
    pods = {p.name: p for p in state.pods}
    if target in vms:
        vm, argv = vms[target], command
    elif target in pods:
        vm, argv = vms[pods[target].node], ["ip", "netns", "exec", pods[target].netns, *command]
    else:
        raise LabError(f'lab "{state.name}" has no node or pod "{target}" '
                       f"(nodes: {', '.join(vms)})")  # fmt: skip
    done = vm.run(argv, timeout=120, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.rc
