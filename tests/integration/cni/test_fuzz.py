"""Hostile CNI invocations against the installed plugin and the real felix.

Hundreds of malformed calls, made from a fixed seed: a broken or missing
environment (CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS, CNI_ARGS),
stdin that is not JSON or not an object, fields of the wrong type, huge and odd
values, unknown and mis-cased commands, commands too new for the config's
version, bad prevResults and GC lists. Mixed in are odd calls that are valid
(they must work and are undone by a DEL).

Every call must answer as the CNI spec (1.1.0) says: no traceback on stdout or
stderr; on failure one JSON object on stdout with `code` and a non-empty `msg`,
the code being the spec's for that fault (1 incompatible version, 4 invalid
environment variables, 6 failed to decode, 7 invalid network config, 11 try
again later) — never 104, the plugin's "internal error". Afterwards nothing has
leaked: IPAM holds exactly the addresses of the pods alive throughout (three
residents), felix lists exactly their workloads, the node has exactly their
host veths and /32 routes, and the residents still answer pings.

Reproduce or widen a run: GINGHAM_FUZZ_SEED=<n> GINGHAM_FUZZ_RUNS=<n>
.venv/bin/pytest tests/integration/cni/test_fuzz.py. A failure prints each bad
case with its environment and stdin.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cni.install import install
from cni.request import MAX_CONTAINER_ID_LENGTH
from tests.support.runtimes.felix_node import POOL_CIDR, FelixNode, felix_unavailable, running_felix
from tests.support.runtimes.netns import in_netns, links, node_netns, ping

pytestmark = [pytest.mark.root, pytest.mark.slow]

SEED = int(os.environ.get("GINGHAM_FUZZ_SEED", "20261208"))
RUNS = int(os.environ.get("GINGHAM_FUZZ_RUNS", "500"))
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SPEC_CODES = {1, 2, 3, 4, 5, 6, 7, 11, 50}
OK = 0  # in Case.expect: the call may succeed


@dataclass
class Case:
    what: str
    env: dict[str, str]
    stdin: bytes
    expect: frozenset[int]  # acceptable error codes; OK in it: success acceptable too
    undo: bool = False  # a successful ADD: DEL it with the same environment

    def show(self) -> str:
        stdin = self.stdin if len(self.stdin) <= 300 else self.stdin[:300] + b"..."
        env = {k: (v if len(v) <= 120 else v[:120] + "...") for k, v in self.env.items()}
        return f"{self.what}: env={env} stdin={stdin!r}"


@dataclass
class Node:
    netns: str
    felix: FelixNode
    plugin: Path
    spare_netns: list[str]  # where the fuzzed ADDs go (each success is DELeted at once)
    resident_netns: list[str]  # pods alive through the whole run
    residents: dict[str, str] = field(default_factory=dict)  # container ID -> netns

    def config(self, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "cniVersion": "1.1.0",
            "name": "gingham",
            "type": "gingham",
            "felix_socket": str(self.felix.socket),
            "timeout_seconds": 10,
        }
        conf.update(extra)
        return conf

    def env(self, command: str, cid: str, netns: str, **extra: str) -> dict[str, str]:
        env = {
            "PATH": PATH,
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": cid,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(self.plugin.parent),
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=fuzz;K8S_POD_NAME={cid}",
        }
        env.update(extra)
        return env


@dataclass
class Answer:
    returncode: int
    stdout: str
    stderr: str


def execute(node: Node, env: dict[str, str], stdin: bytes) -> Answer:
    proc = subprocess.run(
        [str(node.plugin)], input=stdin, env=env, capture_output=True, timeout=60, check=False
    )
    return Answer(
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


def problem(case: Case, answer: Answer) -> str | None:
    """What is wrong with `answer` to `case`, or None."""
    if "Traceback" in answer.stdout + answer.stderr:
        return "a traceback"
    if answer.returncode == 0:
        if OK not in case.expect:
            return "succeeded, expected an error"
        if answer.stdout.strip():
            try:
                json.loads(answer.stdout)
            except ValueError:
                return "success output is not JSON"
        return None
    try:
        error = json.loads(answer.stdout)
    except ValueError:
        return "error output is not one JSON object"
    if not isinstance(error, dict) or not set(error) <= {"cniVersion", "code", "msg", "details"}:
        return "error is not the spec's {cniVersion, code, msg, details}"
    code = error.get("code")
    if not isinstance(code, int) or not (code in SPEC_CODES or code >= 100):
        return f"code {code!r} is not a spec code"
    if not isinstance(error.get("msg"), str) or not error["msg"].strip():
        return "error without a message"
    if code not in case.expect:
        return f"code {code} ({error['msg']}), expected one of {sorted(case.expect)}"
    return None


# --- the cases -------------------------------------------------------------------------


class Maker:
    """Turns the seeded random stream into cases; each mutation names its expected codes."""

    def __init__(self, node: Node, rng: random.Random) -> None:
        self.node, self.rng, self.serial = node, rng, 0

    def cid(self) -> str:
        # Unique even lower-cased with '_' as '-' (issue 16 item 2 is another test's).
        self.serial += 1
        return f"fz{self.serial:04d}{self.rng.choice(['', '.a', '-b', '_c', 'D'])}"

    def text(self, size: int) -> str:
        alphabet = "abcXYZ019-_./:;= \t\u00e9\u2603"
        return "".join(self.rng.choice(alphabet) for _ in range(size))

    def netns(self) -> str:
        return self.rng.choice(self.node.spare_netns)

    def add(self, what: str, expect: set[int], stdin: bytes | None = None, **env: str) -> Case:
        base = self.node.env("ADD", self.cid(), self.netns())
        base.update(env)
        data = stdin if stdin is not None else json.dumps(self.node.config()).encode()
        return Case(what, base, data, frozenset(expect), undo=OK in expect)

    def config(
        self, what: str, expect: set[int], fields: dict[str, Any], command: str = "ADD"
    ) -> Case:
        env = self.node.env(command, self.cid(), self.netns())
        stdin = json.dumps(self.node.config(**fields)).encode()
        return Case(what, env, stdin, frozenset(expect), undo=command == "ADD" and OK in expect)

    # Each family returns one case; `make` picks families uniformly.

    def bad_command(self) -> Case:
        command = self.rng.choice(
            ["add", "Add", "ADD ", " DEL", "FROB", "CHECKS", "VERSIONS", "\u00c4DD", self.text(8)]
        )
        return self.add(f"CNI_COMMAND {command!r}", {4}, CNI_COMMAND=command)

    def missing_env(self) -> Case:
        command = self.rng.choice(["ADD", "DEL", "CHECK"])
        needed = {
            "ADD": ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            "DEL": ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME"],
            "CHECK": ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
        }[command]
        gone = self.rng.choice(needed)
        env = self.node.env(command, self.cid(), self.netns())
        if self.rng.random() < 0.5:
            del env[gone]
        else:
            env[gone] = ""
        stdin = json.dumps(self.node.config(prevResult={})).encode()
        return Case(f"{command} without {gone}", env, stdin, frozenset({4}))

    def bad_container_id(self) -> Case:
        cid = self.rng.choice(
            ["-x", ".hidden", "a/b", "../../etc", "a b", "caf\u00e9", "a;b", "x\ty", "_", "*"]
        )
        return self.add(f"CNI_CONTAINERID {cid!r}", {4}, CNI_CONTAINERID=cid)

    def long_container_id(self) -> Case:
        size = self.rng.choice([64, MAX_CONTAINER_ID_LENGTH, MAX_CONTAINER_ID_LENGTH + 1, 60000])
        cid = f"fz{self.serial:04d}"
        cid += "a" * (size - len(cid))
        self.serial += 1
        expect = {OK} if size <= MAX_CONTAINER_ID_LENGTH else {4}
        return self.add(f"CNI_CONTAINERID of {size} chars", expect, CNI_CONTAINERID=cid)

    def bad_ifname(self) -> Case:
        ifname = self.rng.choice(
            ["a" * 16, "a/b", "a:b", "a b", ".", "..", "\t", "e" * 200, "eth0\n", "\u00e9" * 8]
        )
        return self.add(f"CNI_IFNAME {ifname!r}", {4}, CNI_IFNAME=ifname)

    def bad_netns(self) -> Case:
        netns = self.rng.choice(
            ["/var/run/netns/gt-none", "relative/netns", "/nonexistent/" + "x" * 3000]
        )
        return self.add(f"CNI_NETNS {netns[:40]!r}", {4}, CNI_NETNS=netns)

    def not_a_netns(self) -> Case:
        netns = self.rng.choice(["/etc/hostname", "/", "/var/run/netns", "/dev/null"])
        return self.add(f"CNI_NETNS {netns!r} (not a netns)", {4}, CNI_NETNS=netns)

    def bad_cni_args(self) -> Case:
        args = self.rng.choice(
            ["FOO", "FOO=1", "IP=nope", "IP=10.251.0.1/33", "K8S_POD_NAME", "=;=", "IP=::zz"]
        )
        return self.add(f"CNI_ARGS {args!r}", {4}, CNI_ARGS=args)

    def odd_cni_args(self) -> Case:
        args = self.rng.choice(
            [
                ";;;",
                "IgnoreUnknown=1;" + "X=" + "y" * 50000,
                "IgnoreUnknown=true;K8S_POD_NAME=" + self.text(300).replace(";", ""),
                "IgnoreUnknown=1;A=1;B=2;C=3;=4",
                "K8S_POD_NAMESPACE=;K8S_POD_NAME=;K8S_POD_UID=",
            ]
        )
        return self.add(f"CNI_ARGS {args[:40]!r}", {OK, 4}, CNI_ARGS=args)

    def requested_ip(self) -> Case:
        # Free in the pool: it works; the pool's network address is never handed out
        # (101, "taken"); outside the pool: the environment's fault (4).
        ip, expect = self.rng.choice(
            [("10.251.255.250", OK), ("10.251.0.0", 101), ("192.0.2.1", 4), ("255.255.255.255", 4)]
        )
        args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE=fuzz;IP={ip}"
        return self.add(f"CNI_ARGS IP={ip}", {expect}, CNI_ARGS=args)

    def not_json(self) -> Case:
        good = json.dumps(self.node.config()).encode()
        stdin = self.rng.choice(
            [
                b"",
                b"   \n",
                good[: self.rng.randrange(1, len(good))],
                good + b"}",
                good + b" []",
                b"\xff\xfe\x00garbage",
                self.rng.randbytes(self.rng.randrange(1, 2000)),
                b'{"cniVersion": "1.1.0", "name": "\xc3\x28"}',
                b"[" * 100_000,
                b'{"a":' * 100_000,
                b"{" + b'"k": 1, ' * 20000,
                b'{"cniVersion": "1.1.0"',
                b"\x00" * 10,
            ]
        )
        return self.add(f"stdin {stdin[:30]!r} ({len(stdin)} bytes)", {6}, stdin=stdin)

    def not_an_object(self) -> Case:
        stdin = self.rng.choice([b"[]", b'"x"', b"1e999", b"null", b"true", b"[1, {}]", b"-0"])
        return self.add(f"stdin {stdin!r}", {6}, stdin=stdin)

    def odd_json(self) -> Case:
        conf = self.node.config()
        text = json.dumps(conf)
        stdin = self.rng.choice(
            [
                text.encode("utf-16"),
                b"\xef\xbb\xbf" + text.encode(),
                (text[:-1] + ', "name": "gingham"}').encode(),  # a duplicate key
                (text[:-1] + ', "unknown": {"deep": [1, 2, {"x": null}]}}').encode(),
                (text[:-1] + ', "pad": "' + "p" * 500_000 + '"}').encode(),
                b"\n\t " + text.encode() + b" \n",
            ]
        )
        return self.add(f"valid but odd stdin {stdin[:30]!r}", {OK, 6}, stdin=stdin)

    def bad_version(self) -> Case:
        version: Any = self.rng.choice(
            [None, "", "9.9.9", "0.2.0", "1.1", "1.1.0 ", "v1.0.0", 1.1, 110, [], {}, True]
        )
        case = self.config(f"cniVersion {version!r}", {1}, {"cniVersion": version})
        if version is None:
            conf = json.loads(case.stdin)
            del conf["cniVersion"]
            case.stdin = json.dumps(conf).encode()
        return case

    def too_new(self) -> Case:
        command, version = self.rng.choice(
            [("CHECK", "0.3.1"), ("CHECK", "0.3.0"), ("GC", "1.0.0"), ("STATUS", "0.4.0")]
        )
        return self.config(f"{command} with {version}", {1}, {"cniVersion": version}, command)

    def wrong_type(self) -> Case:
        key, value = self.rng.choice(
            [
                ("name", 5),
                ("name", ""),
                ("name", "a/b"),
                ("name", None),
                ("felix_socket", 5),
                ("felix_socket", ""),
                ("felix_socket", "relative.sock"),
                ("mtu", "1500"),
                ("mtu", True),
                ("mtu", -1),
                ("mtu", 67),
                ("mtu", 65536),
                ("mtu", 1.5),
                ("mtu", 10**30),
                ("log_level", 5),
                ("log_level", "chatty"),
                ("log_file", ["x"]),
                ("timeout_seconds", 0),
                ("timeout_seconds", -1),
                ("timeout_seconds", "5"),
                ("timeout_seconds", None),
                ("timeout_seconds", False),
                ("timeout_seconds", 86401),
                ("timeout_seconds", 10**400),
                ("ipam", "x"),
                ("ipam", []),
                ("ipam", {"ipv4_pools": "test-pool"}),
                ("ipam", {"ipv4_pools": [1]}),
                ("ipam", {"ipv4_pools": [""]}),
                ("ipam", {"ipv4_pools": ["no-such-pool"]}),
                ("prevResult", "x"),
                ("prevResult", [1]),
                ("runtimeConfig", "x"),
                ("runtimeConfig", {"ips": "10.251.0.9"}),
                ("runtimeConfig", {"ips": ["nope"]}),
                ("runtimeConfig", {"ips": [5]}),
                ("runtimeConfig", {"mac": "zz:00"}),
                ("runtimeConfig", {"mac": 5}),
                ("runtimeConfig", {"portMappings": "x"}),
                ("runtimeConfig", {"portMappings": [5]}),
                ("runtimeConfig", {"portMappings": [{"hostPort": 0, "containerPort": 80}]}),
                ("runtimeConfig", {"portMappings": [{"hostPort": "80", "containerPort": 80}]}),
                ("runtimeConfig", {"portMappings": [{"hostPort": 80, "containerPort": 70000}]}),
                (
                    "runtimeConfig",
                    {"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]},
                ),
                (
                    "runtimeConfig",
                    {"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "x"}]},
                ),
            ]
        )
        return self.config(f"{key}: {json.dumps(value)[:40]}", {7}, {key: value})

    def nonnumeric(self) -> Case:
        # Python's json reads these (a strict parser would not): the field's fault, 7.
        key, literal = self.rng.choice(
            [("mtu", "NaN"), ("mtu", "Infinity"), ("timeout_seconds", "Infinity"),
             ("timeout_seconds", "NaN"), ("timeout_seconds", "1e999"), ("mtu", "-Infinity")]
        )  # fmt: skip
        text = json.dumps(self.node.config())[:-1] + f', "{key}": {literal}}}'
        return self.add(f"{key}: {literal}", {7}, stdin=text.encode())

    def odd_valid_config(self) -> Case:
        key, value = self.rng.choice(
            [
                ("mtu", 1400),
                ("mtu", 0),
                ("log_level", "DEBUG"),
                ("log_file", "/nonexistent/dir/cni.log"),
                ("timeout_seconds", 86400),
                ("timeout_seconds", 7.5),
                ("ipam", {}),
                ("ipam", {"ipv4_pools": ["test-pool", POOL_CIDR]}),
                ("runtimeConfig", {}),
                ("runtimeConfig", {"portMappings": []}),
                ("capabilities", {"ips": True, "zz": [1]}),
                ("args", {"cni": {"x": self.text(50)}}),
            ]
        )
        return self.config(f"valid {key}: {json.dumps(value)[:40]}", {OK}, {key: value})

    def felix_socket_gone(self) -> Case:
        sock = self.rng.choice(["/nonexistent/felix.sock", "/dev/null", "/tmp"])
        return self.config(f"felix_socket {sock}", {11}, {"felix_socket": sock})

    def bad_prev_result(self) -> Case:
        prev = self.rng.choice(
            [
                {},
                {"ips": "x"},
                {"interfaces": [5]},
                {"ips": [{"address": "bad"}]},
                {"ips": [{"address": "10.251.0.9/32", "interface": 99}]},
                {"interfaces": [{"name": "eth0", "sandbox": "/elsewhere"}], "ips": []},
                {"cniVersion": "1.1.0", "ips": [{"address": 5}]},
            ]
        )
        # No such attachment in felix, or a prevResult that does not parse: 3, 7 or 102.
        return self.config(f"CHECK prevResult {prev}", {3, 7, 102}, {"prevResult": prev}, "CHECK")

    def delete_unknown(self) -> Case:
        env = self.node.env("DEL", self.cid(), self.rng.choice(["", "/nonexistent", self.netns()]))
        stdin = json.dumps(self.node.config()).encode()
        return Case("DEL of an attachment never added", env, stdin, frozenset({OK}))

    def bad_gc(self) -> Case:
        valid: Any = self.rng.choice(
            [None, "x", [5], [{}], [{"containerID": 5, "ifname": "eth0"}], [{"containerID": "a"}]]
        )
        fields: dict[str, Any] = {} if valid is None else {"cni.dev/valid-attachments": valid}
        return self.config(f"GC valid-attachments {valid}", {7}, fields, "GC")

    def gc_keeping_residents(self) -> Case:
        keep = [{"containerID": c, "ifname": "eth0"} for c in self.node.residents]
        keep += [{"containerID": self.text(10), "ifname": "eth0"} for _ in range(3)]
        self.rng.shuffle(keep)
        fields = {"cni.dev/valid-attachments": keep}
        return self.config("GC keeping the residents", {OK}, fields, "GC")

    def version_query(self) -> Case:
        stdin = self.rng.choice([b"", b'{"cniVersion": "9.9.9"}', b'{"cniVersion": 5}', b"{}"])
        env = {"PATH": PATH, "CNI_COMMAND": "VERSION"}
        return Case(f"VERSION {stdin!r}", env, stdin, frozenset({OK}))

    def make(self) -> Case:
        families: list[Callable[[], Case]] = [
            self.bad_command,
            self.missing_env,
            self.bad_container_id,
            self.long_container_id,
            self.bad_ifname,
            self.bad_netns,
            self.not_a_netns,
            self.bad_cni_args,
            self.odd_cni_args,
            self.requested_ip,
            self.not_json,
            self.not_an_object,
            self.odd_json,
            self.bad_version,
            self.too_new,
            self.wrong_type,
            self.wrong_type,
            self.nonnumeric,
            self.odd_valid_config,
            self.felix_socket_gone,
            self.bad_prev_result,
            self.delete_unknown,
            self.bad_gc,
            self.gc_keeping_residents,
            self.version_query,
        ]
        return self.rng.choice(families)()


# --- the node and the run --------------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    reason = felix_unavailable()
    if reason:
        pytest.skip(reason)
    with ExitStack() as stack:
        netns = stack.enter_context(node_netns("fz"))
        felix = stack.enter_context(running_felix(tmp_path / "felix", netns))
        install(tmp_path / "bin", tmp_path / "conf", run_dir=str(felix.run_dir))
        spare = [stack.enter_context(node_netns("fp")) for _ in range(3)]
        residents = [stack.enter_context(node_netns("fr")) for _ in range(3)]
        made = Node(netns, felix, tmp_path / "bin" / "gingham", spare, residents)
        try:
            yield made
        finally:
            for cid, pod in made.residents.items():
                execute(made, made.env("DEL", cid, pod), json.dumps(made.config()).encode())


def held_handles(node: Node) -> list[str]:
    from gingham.datastore import open_datastore
    from gingham.ipam.query import allocations

    async def read() -> list[str]:
        store = open_datastore(node.felix.datastore)
        try:
            return sorted(str(h.allocation.handle_id) for h in await allocations(store))
        finally:
            await store.close()

    return asyncio.run(read())


def felix_workloads(node: Node) -> list[str]:
    """The container IDs felix has a workload for (its ListWorkloads)."""
    from cni import h2grpc, wire

    raw = h2grpc.unary_call(
        str(node.felix.socket),
        "/gingham.v1.Dataplane/ListWorkloads",
        wire.encode("ListWorkloadsRequest", {}),
        timeout=30,
    )
    reply = wire.decode("ListWorkloadsReply", raw)
    ids = [wire.submessage(w, "id") for w in wire.messages(reply, "workloads")]
    return sorted(wire.text(i, "container_id") for i in ids)


def pool_routes(node: Node) -> list[str]:
    out = in_netns(node.netns, "ip", "-4", "-j", "route", "show", "root", POOL_CIDR)
    return sorted(r["dst"] for r in json.loads(out or "[]") if "/" not in r["dst"])


def add_residents(node: Node) -> dict[str, str]:
    """The pods alive throughout; their addresses."""
    addresses = {}
    for i, pod in enumerate(node.resident_netns):
        cid = f"resident{i}"
        answer = execute(node, node.env("ADD", cid, pod), json.dumps(node.config()).encode())
        assert answer.returncode == 0, answer.stdout
        node.residents[cid] = pod
        addresses[cid] = json.loads(answer.stdout)["ips"][0]["address"].split("/")[0]
    return addresses


def _code(answer: Answer) -> str:
    try:
        return str(json.loads(answer.stdout).get("code"))
    except (ValueError, AttributeError):
        return "unreadable"


def test_hundreds_of_hostile_invocations_answer_by_the_spec_and_leak_nothing(
    node: Node,
) -> None:
    addresses = add_residents(node)
    links_before, routes_before = sorted(links(node.netns)), pool_routes(node)
    maker = Maker(node, random.Random(SEED))
    problems: list[str] = []
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    for _ in range(RUNS):
        case = maker.make()
        answer = execute(node, case.env, case.stdin)
        wrong = problem(case, answer)
        outcome = "ok" if answer.returncode == 0 else _code(answer)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if os.environ.get("GINGHAM_FUZZ_VERBOSE"):
            print(f"{outcome:>4} {case.what[:100]}")
        if wrong:
            problems.append(f"{wrong}\n    {case.show()}\n    -> {answer.stdout[:300]!r}")
        if case.undo and answer.returncode == 0:
            undone = execute(node, {**case.env, "CNI_COMMAND": "DEL"}, case.stdin)
            if undone.returncode != 0:
                problems.append(f"DEL after ADD failed\n    {case.show()}\n    -> {undone.stdout}")
    took = time.monotonic() - started
    print(f"fuzz: {RUNS} calls, seed {SEED}, {took:.1f}s; outcomes {sorted(outcomes.items())}")
    assert not problems, f"{len(problems)} of {RUNS} calls wrong:\n" + "\n".join(problems[:30])

    # Nothing leaked: IPAM, felix's workloads, host veths and routes are the residents'.
    assert held_handles(node) == sorted(f"{cid}.eth0" for cid in node.residents)
    assert felix_workloads(node) == sorted(node.residents)
    assert sorted(links(node.netns)) == links_before
    assert pool_routes(node) == routes_before == sorted(f"{a}" for a in addresses.values())
    for address in addresses.values():
        assert ping(node.netns, address), f"resident {address} no longer answers"
