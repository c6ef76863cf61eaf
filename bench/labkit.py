"""What bench/converge.py and bench/scale.py share: measuring a running `gingham lab`.

- `node_memory`: RSS / PSS / USS of every process of each node (the `node run`
  supervisor and its descendants), from ``/proc/PID/smaps_rollup``.
- `RouteWatch`: one ``ip -n NODE monitor route`` per node, every line stamped
  with `time.monotonic()` on arrival, so "when did this prefix appear/vanish
  on every node" is answered from events, not from polling.
- `Pinger`: a raw-socket ICMP pinger living in a pod's namespace (started
  once, so its start-up is never timed): send it an address, it pings every
  2 ms and reports the monotonic time of the first reply.
- `add_node`: one more node in a running lab (namespace, fabric link, Node
  resource, ToR config for racks, CNI install, `gingham node run`), recorded
  in the lab's state so `lab down` removes it. It uses `gingham.lab.build`'s
  private steps: the lab has no public "add a node" yet.
- `BirdFabric`: the reference — N BIRD speakers (full mesh, or clients of one
  BIRD reflector) on a bridge, one of which originates a /26 on demand.

Everything runs in namespaces this process (or the lab) made; nothing leaves them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gingham.lab import build  # noqa: E402
from gingham.lab.observe import felix_serving, node_run_dir, speaker_status  # noqa: E402
from gingham.lab.state import LabState, PodRecord  # noqa: E402
from gingham.lab.topology import LabOptions, NodePlan, plan_lab  # noqa: E402
from gingham.lab.tor import bird_config  # noqa: E402

BLOCK_PREFIX = 26


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def block_of(address: str) -> str:
    return str(ip_network(f"{address}/{BLOCK_PREFIX}", strict=False))


# --- memory ---------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def role(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    text = " ".join(a.decode(errors="replace") for a in argv)
    for needle, name in (
        ("gingham-felix", "felix"),
        ("gingham-bgp", "gingham-bgp"),
        ("gingham-rr", "gingham-rr"),
        ("exabgp_bridge", "exabgp-bridge"),
        ("-m exabgp", "exabgp"),
        ("-m bird_agent.exabgp_main", "exabgp"),
        ("-m bird_agent.exabgp_cease", "exabgp"),
        ("gingham.node.launch", "supervisor"),
        ("node run", "supervisor"),
    ):
        if needle in text:
            return name
    return Path(argv[0].decode(errors="replace")).name or "other"


def smaps(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, USS) in kB; zeros for a process that is gone."""
    fields: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[key] = int(rest.split()[0])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields.get("Rss", 0), fields.get("Pss", 0), uss


def node_memory(state: LabState) -> dict[str, dict[str, tuple[int, int, int]]]:
    """Per node, per role: summed (RSS, PSS, USS) kB of the `node run` process tree."""
    result: dict[str, dict[str, tuple[int, int, int]]] = {}
    for record in state.processes:
        if not record.what.startswith("node run "):
            continue
        node = record.what.removeprefix("node run ")
        roles: dict[str, tuple[int, int, int]] = {}
        for pid in descendants(record.pid):
            name = role(pid)
            if name == "gone":  # exited between the walk and the read (a short-lived helper)
                continue
            rss, pss, uss = smaps(pid)
            old = roles.get(name, (0, 0, 0))
            roles[name] = (old[0] + rss, old[1] + pss, old[2] + uss)
        result[node] = roles
    return result


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def node_cpu(state: LabState, seconds: float = 5.0) -> dict[str, dict[str, float]]:
    """Per node, per role: CPU used over `seconds` of idling, as a fraction of one core."""
    pids: dict[str, list[tuple[str, int]]] = {}
    for record in state.processes:
        if record.what.startswith("node run "):
            node = record.what.removeprefix("node run ")
            pids[node] = [(role(pid), pid) for pid in descendants(record.pid)]
    before = {pid: _cpu_ticks(pid) for entries in pids.values() for _, pid in entries}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    after = {pid: _cpu_ticks(pid) for pid in before}
    hz = os.sysconf("SC_CLK_TCK")
    result: dict[str, dict[str, float]] = {}
    for node, entries in pids.items():
        roles: dict[str, float] = {}
        for name, pid in entries:
            used = max(0, after[pid] - before[pid]) / hz / elapsed
            roles[name] = roles.get(name, 0.0) + used
        result[node] = roles
    return result


def cpu_table(cpu: dict[str, dict[str, float]]) -> list[str]:
    roles = sorted({r for v in cpu.values() for r in v})
    total = sum(sum(v.values()) for v in cpu.values())
    parts = [f"{r} {100 * sum(v.get(r, 0.0) for v in cpu.values()) / len(cpu):.1f}%" for r in roles]
    return [
        f"  idle CPU per node (% of one core): {', '.join(parts)}; whole fabric {total:.2f} cores"
    ]


def memory_table(memory: dict[str, dict[str, tuple[int, int, int]]]) -> list[str]:
    """Mean per node by role, and the per-node total (MB), RR nodes apart from clients."""
    lines = []
    groups = {
        "rr nodes": [n for n, r in memory.items() if "gingham-rr" in r],
        "other nodes": [n for n, r in memory.items() if "gingham-rr" not in r],
    }
    for label, nodes in groups.items():
        if not nodes:
            continue
        roles = sorted({r for n in nodes for r in memory[n]})
        lines.append(f"  {label} ({len(nodes)}): mean MB per node      RSS     PSS     USS")
        for name in [*roles, "TOTAL"]:
            triples = [
                memory[n].get(name, (0, 0, 0))
                if name != "TOTAL"
                else tuple(sum(v[i] for v in memory[n].values()) for i in range(3))
                for n in nodes
            ]
            means = [sum(t[i] for t in triples) / len(triples) / 1024 for i in range(3)]
            lines.append(f"    {name:<32} {means[0]:7.1f} {means[1]:7.1f} {means[2]:7.1f}")
    return lines


# --- route events ---------------------------------------------------------------


@dataclass
class RouteWatch:
    """`ip monitor route` in each namespace; `events[netns]` = [(monotonic, line)]."""

    namespaces: dict[str, str]  # node name → netns
    events: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    _procs: list[subprocess.Popen[str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> RouteWatch:
        for node, netns in self.namespaces.items():
            self.add(node, netns)
        return self

    def add(self, node: str, netns: str) -> None:
        self.namespaces[node] = netns
        self.events[node] = []
        proc = subprocess.Popen(
            ["ip", "-n", netns, "monitor", "route"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._procs.append(proc)
        threading.Thread(target=self._read, args=(node, proc), daemon=True).start()

    def _read(self, node: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.monotonic()
            with self._lock:
                self.events[node].append((now, line.strip()))

    def first(self, node: str, prefix: str, since: float, deleted: bool) -> float | None:
        with self._lock:
            for when, line in self.events.get(node, []):
                if when < since:
                    continue
                gone = line.startswith("Deleted ")
                dst = line.removeprefix("Deleted ").split()
                if gone == deleted and dst and dst[0] == prefix and " via " in line:
                    return when
        return None

    def wait_all(
        self, nodes: list[str], prefix: str, since: float, deleted: bool, timeout: float
    ) -> dict[str, float | None]:
        deadline = time.monotonic() + timeout
        while True:
            seen = {n: self.first(n, prefix, since, deleted) for n in nodes}
            if all(v is not None for v in seen.values()) or time.monotonic() > deadline:
                return seen
            time.sleep(0.005)

    def stop(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        self._procs.clear()


# --- ping from inside a pod -----------------------------------------------------

PINGER = r"""
import os, select, socket, struct, sys, time
def checksum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack(f"!{len(data)//2}H", data)); s = (s >> 16) + (s & 0xFFFF); s += s >> 16
    return ~s & 0xFFFF
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xFFFF
seq = 0
print("ready", flush=True)
for line in sys.stdin:
    target, timeout = line.split()
    deadline = time.monotonic() + float(timeout)
    got = None
    while got is None and time.monotonic() < deadline:
        seq = (seq + 1) & 0xFFFF
        head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        body = b"gingham-bench"
        packet = struct.pack("!BBHHH", 8, 0, checksum(head + body), ident, seq) + body
        try:
            sock.sendto(packet, (target, 0))
        except OSError:
            pass  # no route yet: try again next tick
        tick = time.monotonic() + 0.002
        while got is None and time.monotonic() < tick:
            ready, _, _ = select.select([sock], [], [], max(0.0, tick - time.monotonic()))
            if not ready:
                break
            data, (source, _) = sock.recvfrom(2048)
            hl = (data[0] & 0x0F) * 4
            kind, _, _, rid, _ = struct.unpack("!BBHHH", data[hl:hl + 8])
            if kind == 0 and rid == ident and source == target:
                got = time.monotonic()
    print(f"ok {got:.6f}" if got is not None else "timeout", flush=True)
"""


class Pinger:
    def __init__(self, netns: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-I", "-c", PINGER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"pinger in {netns} did not start")

    def first_reply(self, address: str, timeout: float) -> float | None:
        """Monotonic time of the first echo reply from `address` (None: none in `timeout`)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{address} {timeout}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split()
        return float(answer[1]) if answer and answer[0] == "ok" else None

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()


# --- growing a running lab ------------------------------------------------------


def add_pod(state: LabState, node: str, index: int) -> tuple[PodRecord, float, float]:
    """A new pod on `node` through the CNI chain: (record, ADD duration, monotonic at return)."""
    netns = f"{state.name}-{node}-x{index}"
    record = PodRecord(f"{node}-x{index}", node, netns, f"{state.name}-{node}-x{index}")
    state.namespaces.append(netns)
    state.save()
    subprocess.run(["ip", "netns", "add", netns], check=True)
    started = time.monotonic()
    result = build.cni_chain(state, record, "ADD")
    returned = time.monotonic()
    ips = result.get("ips") or [{}]
    record.address = str(ips[0].get("address", "")).split("/")[0] or None
    state.pods.append(record)
    state.save()
    return record, returned - started, returned


def add_node(state: LabState, watch: RouteWatch | None = None) -> tuple[NodePlan, float]:
    """Node N+1 in lab `state`, its `node run` started; (its plan, monotonic at start)."""
    options = LabOptions(**{**state.options, "nodes": len(state.nodes) + 1, "pods_per_node": 0})
    plan = plan_lab(options)
    node = plan.nodes[-1]
    state.namespaces.append(node.netns)
    state.save()
    build._run(["ip", "netns", "add", node.netns])
    build._ip(node.netns, "link", "set", "lo", "up")
    build._ip(node.bridge_netns, "link", "add", node.fabric_link, "type", "veth",
              "peer", "name", "eth0", "netns", node.netns)  # fmt: skip
    build._ip(node.bridge_netns, "link", "set", node.fabric_link, "master", "br0", "up")
    build._ip(node.netns, "addr", "add", str(node.address), "dev", "eth0")
    build._ip(node.netns, "link", "set", "eth0", "up")
    if node.gateway is not None:
        build._ip(node.netns, "route", "add", "default", "via", str(node.gateway))
    state.nodes[node.name] = node.netns
    state.save()
    mine = [
        d
        for d in plan.resources
        if (d["kind"] == "Node" and d["metadata"]["name"] == node.name)
        or (d["kind"] == "BGPPeer" and d["spec"].get("node") == node.name)
    ]
    path = state.directory / f"add-{node.name}.json"
    path.write_text("\n---\n".join(json.dumps(d) for d in mine) + "\n")
    build._run([build._tool("gingham"), "--datastore", state.datastore, "apply", "-f", str(path)])
    if plan.tors and options.tor != "bird":
        raise build.LabError("add_node: racks with --tor bird only (BIRD reconfigures in place)")
    for tor in plan.tors:  # racks: the ToR learns its new neighbour
        directory = state.directory / "tors" / tor.name
        (directory / "bird.conf").write_text(bird_config(plan, tor))
        build._run(["birdc", "-s", str(directory / "bird.ctl"), "configure"])
    if watch is not None:
        watch.add(node.name, node.netns)
    build._install_cni(state, node.name)
    started = time.monotonic()
    build._start_node(state, node.name, node.netns)
    return node, started


def sessions_established(state: LabState, node: str) -> bool:
    status = speaker_status(node_run_dir(state, node))
    if status is None or not status.get("peers"):
        return False
    return all(str(p.get("state", "")).lower() == "established" for p in status["peers"])


def felix_up(state: LabState, node: str) -> bool:
    return felix_serving(node_run_dir(state, node))


def kill_node(state: LabState, node: str) -> float:
    """kill -9 the node's `node run` (its children die by PDEATHSIG); monotonic at the kill."""
    [record] = [p for p in state.processes if p.what == f"node run {node}"]
    when = time.monotonic()
    os.kill(record.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(record.pid, 0)
    return when


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def remote_block_routes(state: LabState) -> int:
    """Routes to other nodes' blocks, summed over every node (full: N*(N-1) with one block each)."""
    total = 0
    for netns in state.nodes.values():
        proc = subprocess.run(
            ["ip", "-n", netns, "-j", "route", "show", "proto", "all"],
            capture_output=True,
            text=True,
            check=False,
        )
        for route in json.loads(proc.stdout or "[]"):
            dst = str(route.get("dst", ""))
            if dst.endswith(f"/{BLOCK_PREFIX}") and "gateway" in route:
                total += 1
    return total


# --- the BIRD reference ---------------------------------------------------------


class BirdFabric:
    """N BIRD speakers on a bridge: iBGP full mesh, or clients of one BIRD reflector.

    Speaker 1 originates ``PREFIX`` when `announce` is called (a disabled static
    protocol, enabled through birdc); the others program what they learn.
    """

    PREFIX = "10.250.0.0/26"
    TIMERS = "connect delay time 1; connect retry time 1; error wait time 1, 5;"

    def __init__(self, tag: str, speakers: int, reflector: bool) -> None:
        self.tag = tag
        self.count = speakers
        self.reflector = reflector
        self.dir = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
        self.fabric = f"{tag}-f"
        self.names = {f"s{i}": f"{tag}-s{i}" for i in range(1, speakers + 1)}
        if reflector:
            self.names["rr"] = f"{tag}-rr"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def address(self, name: str) -> str:
        return "10.201.0.254" if name == "rr" else f"10.201.0.{name[1:]}"

    def config(self, name: str) -> str:
        me = self.address(name)
        lines = [
            f"router id {me};",
            "protocol device { scan time 5; }",
            "protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }",
        ]
        if name == "s1":
            lines.append(
                f"protocol static origin {{ disabled; ipv4; route {self.PREFIX} blackhole; }}"
            )
        if self.reflector:
            peers = [n for n in self.names if n != name] if name == "rr" else ["rr"]
        else:
            peers = [n for n in self.names if n != name]
        for peer in peers:
            client = "rr client; rr cluster id 1.1.1.1;" if name == "rr" else ""
            lines.append(
                f"protocol bgp p_{peer} {{ local {me} as 64512; neighbor {self.address(peer)} "
                f"as 64512; direct; {client} {self.TIMERS} ipv4 {{ import all; export all; }}; }}"
            )
        return "\n".join(lines) + "\n"

    def up(self) -> None:
        batch = [f"netns add {self.fabric}", *(f"netns add {ns}" for ns in self.names.values())]
        subprocess.run(["ip", "-batch", "-"], input="\n".join(batch).encode(), check=True)
        subprocess.run(
            ["ip", "-n", self.fabric, "link", "add", "br0", "type", "bridge"], check=True
        )
        subprocess.run(["ip", "-n", self.fabric, "link", "set", "br0", "up"], check=True)
        for i, (name, netns) in enumerate(self.names.items()):
            link = f"b{i}"
            ip = ["ip", "-n", self.fabric]
            subprocess.run([*ip, "link", "add", link, "type", "veth", "peer", "name", "eth0",
                            "netns", netns], check=True)  # fmt: skip
            subprocess.run([*ip, "link", "set", link, "master", "br0", "up"], check=True)
            subprocess.run(["ip", "-n", netns, "addr", "add", f"{self.address(name)}/24",
                            "dev", "eth0"], check=True)  # fmt: skip
            subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "up"], check=True)
            subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
            conf = self.dir / f"{name}.conf"
            conf.write_text(self.config(name))
            self.procs[name] = subprocess.Popen(
                ["ip", "netns", "exec", netns, "bird", "-f", "-c", str(conf),
                 "-s", str(self.dir / f"{name}.ctl")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def established(self) -> bool:
        for name in self.names:
            out = subprocess.run(
                ["birdc", "-s", str(self.dir / f"{name}.ctl"), "show", "protocols"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            rows = [r for r in out.stdout.splitlines() if r.startswith("p_")]
            if not rows or any("Established" not in r for r in rows):
                return False
        return True

    def announce(self) -> float:
        when = time.monotonic()
        subprocess.run(
            ["birdc", "-s", str(self.dir / "s1.ctl"), "enable", "origin"],
            capture_output=True,
            check=True,
        )
        return when

    def kill_origin(self) -> float:
        when = time.monotonic()
        self.procs["s1"].kill()
        self.procs["s1"].wait()
        return when

    def receivers(self) -> dict[str, str]:
        return {n: ns for n, ns in self.names.items() if n not in ("s1", "rr")}

    def down(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        for netns in [*self.names.values(), self.fabric]:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def spread(times: dict[str, float | None], since: float) -> tuple[float | None, float | None, int]:
    """(median, max) seconds after `since` over the nodes that saw it, and how many missed it."""
    seen = [t - since for t in times.values() if t is not None]
    missed = sum(1 for t in times.values() if t is None)
    if not seen:
        return None, None, missed
    return percentile(seen, 0.5), max(seen), missed


def ms(value: float | None) -> str:
    return "   n/a" if value is None else f"{value * 1000:6.0f}"
