"""`gingham-rr` over its real unix socket: three simulated peers (two clients,
one non-client) drive it as the speaker would, and the right per-peer diffs
come back; Status, socket mode, probes and metrics."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gingham.v1 import reflector_pb2 as pb
from gingham.v1 import reflector_pb2_grpc as pb_grpc
from tests.integration.rr.conftest import RunningReflector, Stream
from tests.support.poll import async_wait_for

pytestmark = pytest.mark.slow

CLUSTER, RR_ID = "224.0.0.1", "192.0.2.100"
C1, C2, N1 = "192.0.2.1", "192.0.2.2", "192.0.2.51"


def diffs(
    answer: list[pb.ReflectorOutput],
) -> dict[str, tuple[dict[str, pb.PathAttributes], set[str]]]:
    """Peer → (prefix → attributes announced, prefixes withdrawn), over a whole answer."""
    result: dict[str, tuple[dict[str, pb.PathAttributes], set[str]]] = {}
    for output in answer:
        assert not output.error, output.error
        for diff in output.diffs:
            for peer in diff.peers or [diff.peer]:
                announced, withdrawn = result.setdefault(peer, ({}, set()))
                for group in diff.announce:
                    for prefix in group.prefixes:
                        announced[prefix] = group.attributes
                withdrawn.update(diff.withdraw)
    return result


def announce(peer: str, *prefixes: str, **attributes: object) -> pb.ReflectorInput:
    return pb.ReflectorInput(
        type=pb.ANNOUNCE,
        peer=peer,
        prefixes=prefixes,
        attributes=pb.PathAttributes(next_hop=peer, **attributes),  # type: ignore[arg-type]
    )


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


async def test_three_peers_get_the_right_diffs(
    reflector: pb_grpc.ReflectorStub, reflector_process: RunningReflector
) -> None:
    assert stat.S_IMODE(reflector_process.socket.stat().st_mode) == 0o600
    assert http_get(reflector_process.http_port, "/readiness")[0] == 503
    stream = Stream(reflector.Reflect())
    await stream.send(
        pb.ReflectorInput(type=pb.INPUT_SNAPSHOT_BEGIN, cluster_id=CLUSTER, router_id=RR_ID)
    )
    for address, client in ((C1, True), (C2, True), (N1, False)):
        await stream.send(
            pb.ReflectorInput(type=pb.PEER_UP, peer=address, router_id=address, client=client)
        )
    # Already known at snapshot time: C1's block.
    await stream.send(announce(C1, "10.65.1.0/26"))
    answer = await stream.send(pb.ReflectorInput(type=pb.INPUT_SNAPSHOT_END))
    assert answer[0].type == pb.OUTPUT_SNAPSHOT_BEGIN and answer[-1].type == pb.OUTPUT_SNAPSHOT_END
    snapshot = diffs(answer)
    assert set(snapshot) == {C2, N1}
    sent = snapshot[C2][0]["10.65.1.0/26"]
    assert (sent.next_hop, sent.originator_id, list(sent.cluster_list)) == (C1, C1, [CLUSTER])
    assert http_get(reflector_process.http_port, "/readiness")[0] == 200

    # Client → the other client and the non-client.
    got = diffs(await stream.send(announce(C2, "10.65.2.0/26", med=5)))
    assert set(got) == {C1, N1}
    assert got[N1][0]["10.65.2.0/26"].med == 5
    # Non-client → clients only.
    got = diffs(await stream.send(announce(N1, "10.70.0.0/24", cluster_list=["224.0.0.9"])))
    assert set(got) == {C1, C2}
    assert list(got[C1][0]["10.70.0.0/24"].cluster_list) == [CLUSTER, "224.0.0.9"]
    # A route carrying our cluster ID comes back: dropped, nothing sent.
    assert diffs(await stream.send(announce(N1, "10.71.0.0/24", cluster_list=[CLUSTER]))) == {}
    # Withdrawal propagates.
    got = diffs(
        await stream.send(pb.ReflectorInput(type=pb.WITHDRAW, peer=C2, prefixes=["10.65.2.0/26"]))
    )
    assert {p: w for p, (_, w) in got.items()} == {C1: {"10.65.2.0/26"}, N1: {"10.65.2.0/26"}}
    # Session loss: C1's block is withdrawn from the others.
    got = diffs(await stream.send(pb.ReflectorInput(type=pb.PEER_DOWN, peer=C1)))
    assert {p: w for p, (_, w) in got.items()} == {C2: {"10.65.1.0/26"}, N1: {"10.65.1.0/26"}}
    # A refused input is answered with an error and the stream goes on.
    (bad,) = await stream.send(announce(C1, "10.65.9.0/26"))
    assert "not up" in bad.error

    status = await reflector.Status(pb.ReflectorStatusRequest(best_paths=True))
    assert (status.node, status.cluster_id, status.in_sync) == ("rr1", CLUSTER, True)
    assert (status.clients, status.non_clients, status.prefixes) == (1, 1, 1)
    assert {p.address: p.peer_type for p in status.peers} == {
        C2: "route reflector client",
        N1: "route reflector",
    }
    (best,) = status.best_paths
    assert (best.prefix, best.peer, list(best.advertised_to)) == ("10.70.0.0/24", N1, [C2])
    assert status.loops_dropped == 1

    code, metrics = http_get(reflector_process.http_port, "/metrics")
    assert code == 200
    # 2 (snapshot) + 2 + 2 announcements; 2 + 2 withdrawals.
    assert 'gingham_rr_reflected_updates_total{kind="announce"} 6.0' in metrics
    assert 'gingham_rr_reflected_updates_total{kind="withdraw"} 4.0' in metrics
    await stream.call.done_writing()


async def test_stream_end_leaves_an_unsynced_reflector(reflector: pb_grpc.ReflectorStub) -> None:
    stream = Stream(reflector.Reflect())
    await stream.send(
        pb.ReflectorInput(type=pb.INPUT_SNAPSHOT_BEGIN, cluster_id=CLUSTER, router_id=RR_ID)
    )
    await stream.send(pb.ReflectorInput(type=pb.INPUT_SNAPSHOT_END))
    assert (await reflector.Status(pb.ReflectorStatusRequest())).in_sync
    stream.call.cancel()

    async def unsynced() -> bool:
        return not (await reflector.Status(pb.ReflectorStatusRequest())).in_sync

    await async_wait_for(unsynced, timeout=10, what="status after the stream ended")


async def test_sigterm_stops_cleanly(
    reflector: pb_grpc.ReflectorStub, reflector_process: RunningReflector
) -> None:
    reflector_process.process.send_signal(signal.SIGTERM)
    assert reflector_process.process.wait(10) == 0
    assert not reflector_process.socket.exists()


@pytest.mark.parametrize("http", ["nope", "busy"])
def test_bad_http_address_is_one_clear_line(tmp_path: Path, http: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        if http == "busy":
            http = f"127.0.0.1:{busy.getsockname()[1]}"
        command = [sys.executable, "-m", "route_reflector", "--node", "rr1"]
        command += ["--run-dir", str(tmp_path), "--http", http]
        result = subprocess.run(
            command,
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.startswith(f"gingham-rr: --http {http}") or "is not HOST:PORT" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "rr.sock").exists()


async def test_large_answers_arrive_in_parts(reflector: pb_grpc.ReflectorStub) -> None:
    many = [f"10.{64 + i // 256}.{i % 256}.0/24" for i in range(6000)]
    stream = Stream(reflector.Reflect())
    await stream.send(
        pb.ReflectorInput(type=pb.INPUT_SNAPSHOT_BEGIN, cluster_id=CLUSTER, router_id=RR_ID)
    )
    for address, client in ((C1, True), (C2, True), (N1, False)):
        await stream.send(
            pb.ReflectorInput(type=pb.PEER_UP, peer=address, router_id=address, client=client)
        )
    await stream.send(announce(C1, *many))
    answer = await stream.send(pb.ReflectorInput(type=pb.INPUT_SNAPSHOT_END))
    assert len(answer) > 3  # begin, several parts, end
    snapshot = diffs(answer)
    assert {p: len(a) for p, (a, _) in snapshot.items()} == {C2: 6000, N1: 6000}
    answer = await stream.send(pb.ReflectorInput(type=pb.WITHDRAW, peer=C1, prefixes=many[:3000]))
    assert [o.received for o in answer][-1] == stream.sent
    assert {p: len(w) for p, (_, w) in diffs(answer).items()} == {C2: 3000, N1: 3000}
    await stream.call.done_writing()
