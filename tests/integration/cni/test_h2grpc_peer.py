"""The plugin's HTTP/2 client (cni/h2grpc.py) against a peer that splits and misbehaves.

The peer is a unix-socket server in a thread that reads the client's request
and answers with frames this test writes byte by byte (its own framing and
HPACK literals, not the client's). It keeps the connection open after its
answer, as felix does, so a client that misreads the end of a reply waits for
its deadline instead of failing fast. Cases: header blocks split across
HEADERS + CONTINUATION (trailers, response headers, a trailers-only error),
frames cut into 1-byte writes; then malformed input — a grpc-status that is not
a number, truncated HPACK, bad padding, a frame inside a header block, a
CONTINUATION with no HEADERS, a message cut short — each `H2Unsupported`, and
through `FelixClient`, a fallback to grpcio that reads the same peer's proper
answer on the next connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cni import wire
from cni.felix_client import FelixClient
from cni.h2grpc import GrpcStatus, H2Unsupported, unary_call
from cni.request import parse_netconf

DATA, HEADERS, PRIORITY, SETTINGS, PING, CONTINUATION = 0, 1, 2, 4, 6, 9
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
METHOD = "/gingham.v1.Dataplane/Status"
REPLY = wire.encode("StatusReply", {"node": "n1", "datastore_synced": True})
TIMEOUT = 10.0  # a client that misses the end of a reply fails with DeadlineExceeded

Script = Callable[[socket.socket], None]


def frame(kind: int, flags: int, payload: bytes, stream: int = 1) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


def literal(name: str, value: str | bytes) -> bytes:
    """HPACK "literal without indexing, new name", lengths < 127."""
    raw = value.encode() if isinstance(value, str) else value
    assert len(name) < 127 and len(raw) < 127
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(raw)]) + raw


STATUS_200 = b"\x88"  # indexed: static table entry 8, ":status: 200"
RESPONSE_HEADERS = STATUS_200 + literal("content-type", "application/grpc")
TRAILERS_OK = literal("grpc-status", "0")
MESSAGE = b"\x00" + len(REPLY).to_bytes(4, "big") + REPLY


def read_frames(conn: socket.socket, preface: bool) -> Iterator[tuple[int, int, int, bytes]]:
    buffer = bytearray()

    def take(n: int) -> bytes | None:
        while len(buffer) < n:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buffer.extend(chunk)
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    if preface and take(24) is None:
        return
    while (header := take(9)) is not None:
        payload = take(int.from_bytes(header[:3], "big"))
        if payload is None:
            return
        yield header[3], header[4], int.from_bytes(header[5:9], "big") & 0x7FFFFFFF, payload


def read_request(conn: socket.socket) -> None:
    """Up to the request's last DATA frame."""
    for kind, flags, stream, _ in read_frames(conn, preface=True):
        if kind == DATA and flags & END_STREAM and stream == 1:
            return
    raise AssertionError("the client's request never ended")


def hold_open(conn: socket.socket) -> None:
    """Keep the connection until the client closes it, as felix would."""
    with contextlib.suppress(OSError):
        while conn.recv(65536):
            pass


def answer(*frames: bytes, chunk: int = 0) -> Script:
    def script(conn: socket.socket) -> None:
        read_request(conn)
        out = frame(SETTINGS, 0, b"", stream=0) + b"".join(frames)
        if chunk:
            for i in range(0, len(out), chunk):
                conn.sendall(out[i : i + chunk])
        else:
            conn.sendall(out)
        hold_open(conn)

    return script


def grpc_server(conn: socket.socket) -> None:
    """Enough HTTP/2 server for grpcio's client: one proper answer per stream."""
    conn.sendall(frame(SETTINGS, 0, b"", stream=0))
    for kind, flags, stream, payload in read_frames(conn, preface=True):
        if kind == SETTINGS and not flags & ACK:
            conn.sendall(frame(SETTINGS, ACK, b"", stream=0))
        elif kind == PING and not flags & ACK:
            conn.sendall(frame(PING, ACK, payload, stream=0))
        elif kind == DATA and flags & END_STREAM:
            conn.sendall(
                frame(HEADERS, END_HEADERS, RESPONSE_HEADERS, stream)
                + frame(DATA, 0, MESSAGE, stream)
                + frame(HEADERS, END_STREAM | END_HEADERS, TRAILERS_OK, stream)
            )


class Peer:
    """Runs script i on the i-th connection (the last one for any after it)."""

    def __init__(self, path: Path, scripts: list[Script]) -> None:
        self.path, self.scripts, self.connections = str(path), scripts, 0
        self.errors: list[BaseException] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            script = self.scripts[min(self.connections, len(self.scripts) - 1)]
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn, script), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, script: Script) -> None:
        with conn:
            try:
                script(conn)
            except OSError:
                pass  # the client hung up first: its side is what the test checks
            except BaseException as exc:
                self.errors.append(exc)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for thread in self.threads:
            thread.join(10)
        assert not [t for t in self.threads if t.is_alive()], "peer threads still running"
        assert not self.errors, self.errors


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Callable[..., str]]:
    made: list[Peer] = []

    def start(*scripts: Script) -> str:
        made.append(Peer(tmp_path / f"peer{len(made)}.sock", list(scripts)))
        return made[-1].path

    yield start
    for p in made:
        p.close()


def call(path: str) -> bytes:
    return unary_call(path, METHOD, b"", TIMEOUT)


# --- split header blocks ----------------------------------------------------------


def test_trailers_split_across_headers_and_continuation_end_the_call(
    peer: Callable[..., str],
) -> None:
    # END_STREAM is on the HEADERS frame; END_HEADERS on the CONTINUATION (RFC 9113 8.1).
    trailers = TRAILERS_OK + literal("x-extra", "1")
    path = peer(
        answer(
            frame(HEADERS, END_HEADERS, RESPONSE_HEADERS),
            frame(DATA, 0, MESSAGE),
            frame(HEADERS, END_STREAM, trailers[:2]),
            frame(CONTINUATION, 0, trailers[2:5]),
            frame(CONTINUATION, END_HEADERS, trailers[5:]),
        )
    )
    assert call(path) == REPLY


def test_response_headers_split_and_every_byte_written_alone(peer: Callable[..., str]) -> None:
    path = peer(
        answer(
            frame(HEADERS, 0, RESPONSE_HEADERS[:1]),
            frame(CONTINUATION, END_HEADERS, RESPONSE_HEADERS[1:]),
            frame(PRIORITY, 0, bytes(5)),
            frame(DATA, PADDED, b"\x03" + MESSAGE + b"\x00\x00\x00"),
            frame(HEADERS, END_STREAM | END_HEADERS, TRAILERS_OK),
            chunk=1,
        )
    )
    assert call(path) == REPLY


def test_a_trailers_only_error_split_across_continuation(peer: Callable[..., str]) -> None:
    block = STATUS_200 + literal("grpc-status", "14") + literal("grpc-message", "felix%20busy%zz")
    path = peer(
        answer(
            frame(HEADERS, END_STREAM, block[:10]),
            frame(CONTINUATION, END_HEADERS, block[10:]),
        )
    )
    with pytest.raises(GrpcStatus) as caught:
        call(path)
    assert (caught.value.code, caught.value.message) == (14, "felix busy%zz")


# --- malformed answers: H2Unsupported, never ValueError / IndexError ---------------------


MALFORMED = {
    "grpc-status not a number": (
        frame(HEADERS, END_STREAM | END_HEADERS, STATUS_200 + literal("grpc-status", "OK")),
    ),
    "grpc-status empty": (
        frame(HEADERS, END_STREAM | END_HEADERS, STATUS_200 + literal("grpc-status", "")),
    ),
    "HPACK string past the block's end": (
        frame(HEADERS, END_STREAM | END_HEADERS, STATUS_200 + literal("grpc-status", "0")[:-1]),
    ),
    "HPACK integer cut in its continuation bytes": (
        frame(HEADERS, END_STREAM | END_HEADERS, STATUS_200 + b"\xff\x80"),
    ),
    "HPACK literal with its value missing": (
        frame(HEADERS, END_STREAM | END_HEADERS, STATUS_200 + b"\x00\x03abc"),
    ),
    "padding longer than the frame": (frame(DATA, PADDED | END_STREAM, b"\x09abc"),),
    "padded frame with no pad length": (frame(DATA, PADDED | END_STREAM, b""),),
    "DATA inside a header block": (
        frame(HEADERS, 0, STATUS_200),
        frame(DATA, END_STREAM, MESSAGE),
    ),
    "CONTINUATION with no HEADERS before it": (frame(CONTINUATION, END_HEADERS, TRAILERS_OK),),
    "message cut short": (
        frame(HEADERS, END_HEADERS, RESPONSE_HEADERS),
        frame(DATA, 0, MESSAGE[:-2]),
        frame(HEADERS, END_STREAM | END_HEADERS, TRAILERS_OK),
    ),
    "binary trailer neither raw nor base64": (
        frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            STATUS_200 + literal("grpc-status", "3") + literal("gingham-error-bin", "***"),
        ),
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_answers_are_unsupported_not_crashes(peer: Callable[..., str], case: str) -> None:
    path = peer(answer(*MALFORMED[case]))
    with pytest.raises(H2Unsupported):
        call(path)


@pytest.mark.parametrize("case", ["grpc-status not a number", "HPACK string past the block's end"])
def test_the_plugin_falls_back_to_grpcio_on_a_malformed_answer(
    peer: Callable[..., str], case: str
) -> None:
    path = peer(answer(*MALFORMED[case]), grpc_server)
    conf = parse_netconf({"name": "t", "felix_socket": path, "timeout_seconds": TIMEOUT}, "1.1.0")
    client = FelixClient(conf)
    status = client.status()
    assert (status.node, status.ready, client.used_fallback) == ("n1", True, True)
