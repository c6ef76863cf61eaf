"""Real BGP daemons for tests: BIRD 2, FRR bgpd and GoBGP in a network namespace.

Each daemon class takes a `DaemonPeering` (who it is, whom it peers with,
what it originates), writes its configuration into a temporary directory,
starts the Debian binary inside the namespace, and offers the same small
interface: `start()`, `stop()` (by PID: SIGTERM, then SIGKILL), `established()`,
`routes()` (its BGP RIB as {prefix: next hop}), `originate(prefix)` and
`withdraw(prefix)`.

Also the namespace plumbing every BGP test needs: `create_netns`,
`delete_netns`, `veth_between`. Names come from `tests.support.names` so
tests never collide; nothing here touches the host namespace beyond creating
and deleting namespaces and moving veth ends into them.

Timers are short on purpose (connect retry 1 s, hold 9 s) so sessions come up
within a second or two of both sides existing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

FRR_BGPD = "/usr/lib/frr/bgpd"


def run(*argv: str, netns: str | None = None, check: bool = True) -> str:
    cmd = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# -- namespaces ---------------------------------------------------------------


def create_netns(name: str) -> None:
    run("ip", "netns", "add", name)
    run("ip", "-n", name, "link", "set", "lo", "up")


def delete_netns(name: str) -> None:
    run("ip", "netns", "del", name, check=False)


@dataclass(frozen=True)
class VethEnd:
    netns: str
    ifname: str
    address: IPv4Interface


def veth_between(a: VethEnd, b: VethEnd) -> None:
    """A veth pair with one end in each namespace, addressed and up."""
    run("ip", "link", "add", a.ifname, "netns", a.netns, "type", "veth",
        "peer", "name", b.ifname, "netns", b.netns)  # fmt: skip
    for end in (a, b):
        run("ip", "-n", end.netns, "addr", "add", str(end.address), "dev", end.ifname)
        run("ip", "-n", end.netns, "link", "set", end.ifname, "up")


def shared_segment(switch_ns: str, members: list[VethEnd]) -> None:
    """One L2 segment: a bridge in `switch_ns`, a veth from it to each member."""
    run("ip", "-n", switch_ns, "link", "add", "br0", "type", "bridge")
    run("ip", "-n", switch_ns, "link", "set", "br0", "up")
    for index, member in enumerate(members):
        port = f"p{index}"
        run("ip", "link", "add", port, "netns", switch_ns, "type", "veth",
            "peer", "name", member.ifname, "netns", member.netns)  # fmt: skip
        run("ip", "-n", switch_ns, "link", "set", port, "master", "br0", "up")
        run("ip", "-n", member.netns, "addr", "add", str(member.address), "dev", member.ifname)
        run("ip", "-n", member.netns, "link", "set", member.ifname, "up")


def tcp_ext_counter(netns: str, counter: str) -> int:
    """A TcpExt counter (e.g. TCPMD5Failure) as the kernel of `netns` counts it."""
    lines = run("cat", "/proc/net/netstat", netns=netns).splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            table = dict(zip(header.split()[1:], values.split()[1:], strict=True))
            return int(table.get(counter, 0))
    return 0


def md5_failures(netns: str) -> int:
    """TcpExtTCPMD5Failure: segments the kernel of `netns` dropped for a bad MD5 signature."""
    return tcp_ext_counter(netns, "TCPMD5Failure")


# -- daemons ----------------------------------------------------------------------


@dataclass
class DaemonPeering:
    netns: str
    address: IPv4Address
    asn: int
    neighbor: IPv4Address
    neighbor_asn: int
    password: str | None = None
    hold_time: int = 9
    originate: list[IPv4Network] = field(default_factory=list)
    # Start with the session administratively down (BIRD: `disabled;`), to time
    # a transfer from `enable()`.
    enabled: bool = True

    @property
    def ibgp(self) -> bool:
        return self.asn == self.neighbor_asn


class BgpDaemon:
    """Shared lifecycle: temp dir, start in the namespace, stop by PID."""

    name = "daemon"

    def __init__(self, peering: DaemonPeering) -> None:
        self.peering = peering
        self.dir = Path(tempfile.mkdtemp(prefix=f"gt-{self.name}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "daemon.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The daemon's environment (None: inherit ours)."""
        return None

    def start(self) -> None:
        self.write_config()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.peering.netns, *self.command()],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while not self.ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready: {self.log.read_text()[-2000:]}")
            time.sleep(0.02)

    def ready(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """Die without a NOTIFICATION (SIGKILL): the peer only sees the TCP reset."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def established(self) -> bool:
        raise NotImplementedError

    def routes(self) -> dict[IPv4Network, IPv4Address]:
        raise NotImplementedError

    def originate(self, prefix: IPv4Network) -> None:
        raise NotImplementedError

    def withdraw(self, prefix: IPv4Network) -> None:
        raise NotImplementedError


class Bird(BgpDaemon):
    """BIRD 2: static blackhole routes are what it originates; birdc reads its RIB."""

    name = "bird"

    @property
    def socket(self) -> Path:
        return self.dir / "bird.ctl"

    def command(self) -> list[str]:
        return ["bird", "-f", "-c", str(self.dir / "bird.conf"), "-s", str(self.socket)]

    def write_config(self) -> None:
        p = self.peering
        statics = "".join(f"  route {prefix} blackhole;\n" for prefix in p.originate)
        password = f'  password "{p.password}";\n' if p.password else ""
        direct = "  direct;\n" if p.ibgp else ""
        disabled = "" if p.enabled else "  disabled;\n"
        (self.dir / "bird.conf").write_text(
            f"router id {p.address};\n"
            "protocol device {}\n"
            f"protocol static originated {{\n  ipv4;\n{statics}}}\n"
            "protocol bgp peer {\n"
            f"  local {p.address} as {p.asn};\n"
            f"  neighbor {p.neighbor} as {p.neighbor_asn};\n"
            f"{direct}{password}"
            f"  hold time {p.hold_time};\n"
            "  connect delay time 1;\n  connect retry time 1;\n  error wait time 1, 2;\n"
            "  graceful restart on;\n"
            f"{disabled}"
            "  ipv4 { import all; export all; };\n"
            "}\n"
        )

    def birdc(self, *words: str) -> str:
        return run("birdc", "-s", str(self.socket), *words)

    def ready(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return "ready" in self.birdc("show", "status")
        except RuntimeError:
            return False

    def established(self) -> bool:
        return "Established" in self.birdc("show", "protocols", "peer")

    def enable(self) -> None:
        self.peering.enabled = True
        self.birdc("enable", "peer")

    def session_since(self) -> str:
        """When the BGP protocol last changed state (ms precision): unchanged = not reset."""
        for line in self.birdc("show", "protocols", "peer").splitlines():
            words = line.split()
            if words and words[0] == "peer":
                return words[4]
        raise RuntimeError("no protocol named peer")

    def routes(self) -> dict[IPv4Network, IPv4Address]:
        out = self.birdc("show", "route", "protocol", "peer")
        found: dict[IPv4Network, IPv4Address] = {}
        prefix: IPv4Network | None = None
        for line in out.splitlines():
            head = re.match(r"^(\d+\.\d+\.\d+\.\d+/\d+)\s", line)
            if head:
                prefix = IPv4Network(head.group(1))
            via = re.match(r"^\s+via (\d+\.\d+\.\d+\.\d+)", line)
            if via and prefix is not None and prefix not in found:
                found[prefix] = IPv4Address(via.group(1))
        return found

    def originate(self, prefix: IPv4Network) -> None:
        self.peering.originate.append(prefix)
        self.write_config()
        self.birdc("configure")

    def withdraw(self, prefix: IPv4Network) -> None:
        self.peering.originate.remove(prefix)
        self.write_config()
        self.birdc("configure")


class Frr(BgpDaemon):
    """FRR bgpd alone (no zebra), queried through vtysh's per-daemon socket."""

    name = "frr"

    def command(self) -> list[str]:
        return [
            FRR_BGPD,
            "-f", str(self.dir / "bgpd.conf"),
            "-i", str(self.dir / "bgpd.pid"),
            "--vty_socket", str(self.dir),
            "-Z", "-S", "-n",
            "-P", "0",
            "--log", "stdout",
        ]  # fmt: skip

    def write_config(self) -> None:
        p = self.peering
        password = f" neighbor {p.neighbor} password {p.password}\n" if p.password else ""
        networks = "".join(f"  network {prefix}\n" for prefix in p.originate)
        (self.dir / "bgpd.conf").write_text(
            f"router bgp {p.asn}\n"
            f" bgp router-id {p.address}\n"
            " no bgp ebgp-requires-policy\n"
            " no bgp network import-check\n"
            " bgp graceful-restart\n"
            f" neighbor {p.neighbor} remote-as {p.neighbor_asn}\n"
            f" neighbor {p.neighbor} update-source {p.address}\n"
            f" neighbor {p.neighbor} timers {max(1, p.hold_time // 3)} {p.hold_time}\n"
            f" neighbor {p.neighbor} timers connect 1\n"
            f"{password}"
            " address-family ipv4 unicast\n"
            f"{networks}"
            " exit-address-family\n"
        )

    def vtysh(self, *commands: str) -> str:
        argv = ["vtysh", "--vty_socket", str(self.dir), "-d", "bgpd"]
        for command in commands:
            argv += ["-c", command]
        return run(*argv, netns=self.peering.netns)

    def ready(self) -> bool:
        if not (self.dir / "bgpd.vty").exists():
            return False
        try:
            return "BGP" in self.vtysh("show bgp summary")
        except RuntimeError:
            return False

    def received_count(self) -> int:
        """Prefixes accepted from the neighbor (pfxRcd), cheaper than the RIB."""
        data = json.loads(self.vtysh("show bgp ipv4 unicast summary json"))
        peer = (data.get("peers") or {}).get(str(self.peering.neighbor)) or {}
        return int(peer.get("pfxRcd", 0))

    def established(self) -> bool:
        data = json.loads(self.vtysh(f"show bgp neighbors {self.peering.neighbor} json"))
        info = data.get(str(self.peering.neighbor), {})
        return bool(info.get("bgpState") == "Established")

    def routes(self) -> dict[IPv4Network, IPv4Address]:
        data = json.loads(self.vtysh("show bgp ipv4 unicast json"))
        found: dict[IPv4Network, IPv4Address] = {}
        for prefix, paths in (data.get("routes") or {}).items():
            for path in paths:
                if path.get("peerId") == str(self.peering.neighbor):
                    hop = path.get("nexthops", [{}])[0].get("ip")
                    if hop:
                        found[IPv4Network(prefix)] = IPv4Address(hop)
        return found

    def _network(self, prefix: IPv4Network, negate: bool) -> None:
        self.vtysh(
            "configure terminal",
            f"router bgp {self.peering.asn}",
            "address-family ipv4 unicast",
            f"{'no ' if negate else ''}network {prefix}",
        )

    def originate(self, prefix: IPv4Network) -> None:
        self.peering.originate.append(prefix)
        self._network(prefix, negate=False)

    def withdraw(self, prefix: IPv4Network) -> None:
        self.peering.originate.remove(prefix)
        self._network(prefix, negate=True)


class GoBgp(BgpDaemon):
    """gobgpd with its gRPC API on the namespace's own loopback; `gobgp` CLI reads it."""

    name = "gobgp"
    api = "127.0.0.1:50051"

    def command(self) -> list[str]:
        return ["gobgpd", "-f", str(self.dir / "gobgpd.toml"), "--api-hosts", self.api, "-p"]

    def write_config(self) -> None:
        p = self.peering
        password = f'    auth-password = "{p.password}"\n' if p.password else ""
        (self.dir / "gobgpd.toml").write_text(
            "[global.config]\n"
            f"  as = {p.asn}\n"
            f'  router-id = "{p.address}"\n'
            "  port = 179\n"
            f'  local-address-list = ["{p.address}"]\n'
            "[[neighbors]]\n"
            "  [neighbors.config]\n"
            f'    neighbor-address = "{p.neighbor}"\n'
            f"    peer-as = {p.neighbor_asn}\n"
            f"{password}"
            "  [neighbors.timers.config]\n"
            "    connect-retry = 1\n"
            f"    hold-time = {p.hold_time}\n"
            f"    keepalive-interval = {max(1, p.hold_time // 3)}\n"
            "  [neighbors.transport.config]\n"
            f'    local-address = "{p.address}"\n'
            "  [neighbors.graceful-restart.config]\n"
            "    enabled = true\n"
            "  [[neighbors.afi-safis]]\n"
            "    [neighbors.afi-safis.config]\n"
            '      afi-safi-name = "ipv4-unicast"\n'
        )

    def gobgp(self, *words: str) -> str:
        return run("gobgp", "-u", "127.0.0.1", "-p", "50051", *words, netns=self.peering.netns)

    def start(self) -> None:
        super().start()
        for prefix in list(self.peering.originate):
            self.gobgp("global", "rib", "add", str(prefix), "-a", "ipv4")

    def ready(self) -> bool:
        try:
            self.gobgp("global")
            return True
        except RuntimeError:
            return False

    def established(self) -> bool:
        data = json.loads(self.gobgp("neighbor", str(self.peering.neighbor), "-j"))
        state = data.get("state", {}).get("session_state")
        return state in (6, "ESTABLISHED", "established")

    def routes(self) -> dict[IPv4Network, IPv4Address]:
        data = json.loads(self.gobgp("global", "rib", "-a", "ipv4", "-j"))
        found: dict[IPv4Network, IPv4Address] = {}
        for prefix, paths in data.items():
            for path in paths:
                if path.get("source-id") == str(self.peering.neighbor) or path.get(
                    "neighbor-ip"
                ) == str(self.peering.neighbor):
                    for attr in path.get("attrs", []):
                        if "nexthop" in attr:
                            found[IPv4Network(prefix)] = IPv4Address(attr["nexthop"])
        return found

    def originate(self, prefix: IPv4Network) -> None:
        self.peering.originate.append(prefix)
        self.gobgp("global", "rib", "add", str(prefix), "-a", "ipv4")

    def withdraw(self, prefix: IPv4Network) -> None:
        self.peering.originate.remove(prefix)
        self.gobgp("global", "rib", "del", str(prefix), "-a", "ipv4")


DAEMONS: dict[str, type[BgpDaemon]] = {"bird": Bird, "frr": Frr, "gobgp": GoBgp}


def stop_quietly(daemon: BgpDaemon) -> None:
    with contextlib.suppress(Exception):
        daemon.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
