"""A minimal gRPC unary client over HTTP/2 on a unix socket, for the plugin's fast path.

Why: `import grpc` plus protobuf and the generated stubs costs 150-250 ms per
plugin exec on the 2-core dev machine, three times the issue's 80 ms budget for
a whole ADD. One unary call on a unix socket needs only a small slice of HTTP/2:
this module speaks it over `_socket` alone (`socket`, `struct` and `binascii`
are each a measurable share of a CNI exec: an IntEnum set-up, shared objects).

Scope, deliberately narrow (anything outside it raises `H2Unsupported` and the
caller falls back to grpcio, which is always correct):
- h2c with prior knowledge, one stream (id 1), request fits the peer's initial
  flow-control window (our requests are < 1 KiB; the window is >= 64 KiB); we
  open our receive windows to the maximum up front, so replies of any size flow.
  A request must fit one default-size DATA frame (16 KiB; a GC of ~300+
  attachments does not): larger ones go over grpcio.
- HPACK: requests use "literal without indexing" only; replies are decoded
  with the static and dynamic tables. Huffman-coded strings are not decoded:
  grpc-core's encoder never Huffman-codes header values (it sends binary
  metadata raw when the client advertises GRPC_ALLOW_TRUE_BINARY_METADATA, which
  we do), so meeting one means an unknown server: fall back.
- The reply is the gRPC length-prefixed message from DATA frames plus
  `grpc-status`, `grpc-message` and binary trailers from the trailing HEADERS
  (or a trailers-only reply). A header block may continue in CONTINUATION
  frames (RFC 9113 6.10): it ends at END_HEADERS, and whether the stream ends
  with it is the END_STREAM flag of its HEADERS frame, not of the last frame.
- Anything malformed (a truncated HPACK block, a grpc-status that is not a
  number, bad padding, a frame inside a header block) is `H2Unsupported`, never
  an IndexError or ValueError: the caller then asks grpcio, which either reads
  the reply or reports the peer as broken.

Errors: `GrpcStatus` is the server's answer (as final as grpcio's RpcError);
`Unreachable` means nothing was sent; `DeadlineExceeded` and `Interrupted`
mean the outcome is unknown; `H2Unsupported` means the answer could not be
read (outcome unknown too: only idempotent calls may be retried over grpcio,
and every Dataplane call is idempotent by contract).
"""

from __future__ import annotations

import _socket  # not `socket`: its IntEnum set-up costs ~5 ms per exec
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0,
    1,
    3,
    4,
    6,
    7,
    8,
    9,
)
PRIORITY_FRAME = 2
# Read (and answered where HTTP/2 says so) above, or safe to ignore (PRIORITY is advisory).
_CONNECTION_FRAMES = (SETTINGS, PING, WINDOW_UPDATE, GOAWAY, PRIORITY_FRAME)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
# SETTINGS: ENABLE_PUSH=0, the largest stream window, and grpc-core's "send -bin
# metadata raw" extension. With the connection window raised too (WINDOW_UPDATE
# on stream 0 below), a reply of any size arrives without us ever granting more.
_MAX_WINDOW = 0x7FFFFFFF


def _setting(identifier: int, value: int) -> bytes:
    return identifier.to_bytes(2, "big") + value.to_bytes(4, "big")


_SETTINGS = (
    _setting(0x2, 0)  # ENABLE_PUSH
    + _setting(0x4, _MAX_WINDOW)  # INITIAL_WINDOW_SIZE
    + _setting(0xFE03, 1)  # GRPC_ALLOW_TRUE_BINARY_METADATA
)
_CONNECTION_WINDOW = (_MAX_WINDOW - 65535).to_bytes(4, "big")
_MAX_DATA_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE's default

# RFC 7541 Appendix A.
STATIC_TABLE: tuple[tuple[str, str], ...] = (
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
)


class H2Unsupported(Exception):
    """The peer used HTTP/2 or HPACK features outside this client's scope."""


class Unreachable(Exception):
    """Could not connect: nothing was sent."""


class DeadlineExceeded(Exception):
    """Sent, but no complete answer before the deadline: the outcome is unknown."""


class Interrupted(Exception):
    """Sent, but the connection broke before the answer: the outcome is unknown."""


class GrpcStatus(Exception):
    """A non-OK gRPC status from the server, with its trailers."""

    def __init__(self, code: int, message: str, trailers: dict[str, bytes]) -> None:
        super().__init__(f"gRPC status {code}: {message}")
        self.code, self.message, self.trailers = code, message, trailers


def _encode_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """HPACK: every field as "literal without indexing, new name", no Huffman."""
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        out += b"\x00" + _encode_int(len(raw_name), 7, 0) + raw_name
        out += _encode_int(len(raw_value), 7, 0) + raw_value
    return bytes(out)


_HEADER_TABLE_SIZE = 4096  # SETTINGS_HEADER_TABLE_SIZE: the default, which we never change


class HpackDecoder:
    def __init__(self) -> None:
        self.dynamic: list[tuple[str, bytes]] = []  # newest first
        self.max_size = _HEADER_TABLE_SIZE

    def _size(self) -> int:
        return sum(len(n) + len(v) + 32 for n, v in self.dynamic)

    def _add(self, name: str, value: bytes) -> None:
        self.dynamic.insert(0, (name, value))
        while self.dynamic and self._size() > self.max_size:
            self.dynamic.pop()

    def _lookup(self, index: int) -> tuple[str, bytes]:
        if 0 < index <= len(STATIC_TABLE):
            name, value = STATIC_TABLE[index - 1]
            return name, value.encode()
        dyn = index - len(STATIC_TABLE) - 1
        if 0 <= dyn < len(self.dynamic):
            return self.dynamic[dyn]
        raise H2Unsupported(f"HPACK index {index} out of range")

    @staticmethod
    def _int(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
        if pos >= len(block):
            raise H2Unsupported("HPACK block ends inside an integer")
        limit = (1 << prefix_bits) - 1
        value = block[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            if pos >= len(block):
                raise H2Unsupported("HPACK block ends inside an integer")
            if shift > 28:  # > 2**35: no header, index or table size is that large
                raise H2Unsupported("HPACK integer too large")
            byte = block[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    def _string(self, block: bytes, pos: int) -> tuple[bytes, int]:
        huffman = pos < len(block) and block[pos] & 0x80
        length, pos = self._int(block, pos, 7)
        if huffman:
            raise H2Unsupported("Huffman-coded HPACK string")
        if pos + length > len(block):
            raise H2Unsupported(f"HPACK string of {length} bytes runs past the block's end")
        return block[pos : pos + length], pos + length

    def decode(self, block: bytes) -> list[tuple[str, bytes]]:
        headers: list[tuple[str, bytes]] = []
        pos = 0
        while pos < len(block):
            byte = block[pos]
            if byte & 0x80:  # indexed field
                index, pos = self._int(block, pos, 7)
                headers.append(self._lookup(index))
                continue
            if byte & 0xE0 == 0x20:  # dynamic table size update
                self.max_size, pos = self._int(block, pos, 5)
                if self.max_size > _HEADER_TABLE_SIZE:
                    raise H2Unsupported(f"HPACK table size {self.max_size} above our setting")
                while self.dynamic and self._size() > self.max_size:
                    self.dynamic.pop()
                continue
            incremental = byte & 0xC0 == 0x40
            index, pos = self._int(block, pos, 6 if incremental else 4)
            if index:
                name = self._lookup(index)[0]
            else:
                raw, pos = self._string(block, pos)
                name = raw.decode("latin-1")
            value, pos = self._string(block, pos)
            if incremental:
                self._add(name, value)
            headers.append((name, value))
        return headers


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload
    )


def _strip(kind: int, flags: int, payload: bytes) -> bytes:
    """Remove padding (DATA, HEADERS) and priority fields (HEADERS)."""
    start, end = 0, len(payload)
    if flags & PADDED:
        if not payload:
            raise H2Unsupported("bad padding")
        end -= payload[0]
        start = 1
    if kind == HEADERS and flags & PRIORITY:
        start += 5
    if end < start:
        raise H2Unsupported("bad padding")
    return payload[start:end]


def _bin_value(name: str, value: bytes) -> bytes:
    if not name.endswith("-bin"):
        return value
    if value[:1] == b"\x00":  # true binary (we advertised 0xFE03)
        return value[1:]
    import binascii  # only servers that base64 their binary trailers

    try:
        return binascii.a2b_base64(value + b"=" * (-len(value) % 4), strict_mode=True)
    except binascii.Error:
        raise H2Unsupported(f"binary header {name} is neither raw nor base64") from None


def unary_call(socket_path: str, method: str, request: bytes, timeout: float) -> bytes:
    """Call `method` ("/pkg.Service/Method") with serialized `request`; return the reply bytes."""
    body = b"\x00" + len(request).to_bytes(4, "big") + request
    if len(body) > _MAX_DATA_FRAME:
        # One DATA frame of at most the default frame size, inside the default window.
        raise H2Unsupported(f"request of {len(body)} bytes needs frame splitting")
    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(socket_path)
        except OSError as exc:
            raise Unreachable(f"cannot connect to {socket_path}: {exc.strerror or exc}") from None
        headers = encode_headers(
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", method),
                (":authority", "localhost"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("grpc-timeout", f"{max(1, int(timeout * 1000))}m"),
            ]
        )
        sock.sendall(
            PREFACE
            + _frame(SETTINGS, 0, 0, _SETTINGS)
            + _frame(WINDOW_UPDATE, 0, 0, _CONNECTION_WINDOW)
            + _frame(HEADERS, END_HEADERS, 1, headers)
            + _frame(DATA, END_STREAM, 1, body)
        )
        return _read_reply(sock, deadline)
    except (ValueError, IndexError) as exc:
        # The reader's own checks name what was wrong; this is the net under them.
        raise H2Unsupported(f"unreadable reply: {exc!r}") from None
    except TimeoutError:
        raise DeadlineExceeded(f"no answer within {timeout:g}s") from None
    except OSError as exc:
        raise Interrupted(f"connection to {socket_path} broke: {exc}") from None
    finally:
        sock.close()


def _read_reply(sock: _socket.socket, deadline: float) -> bytes:
    buffer = bytearray()
    decoder = HpackDecoder()
    data = bytearray()
    fields: dict[str, bytes] = {}
    block = bytearray()
    # While a header block is open (a HEADERS frame without END_HEADERS): whether
    # that HEADERS frame ended the stream. None when no block is open.
    block_ends_stream: bool | None = None

    def take(n: int) -> bytes:
        while len(buffer) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                raise Interrupted("felix closed the connection mid-reply")
            buffer.extend(chunk)
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    while True:
        header = take(9)
        length = int.from_bytes(header[:3], "big")
        kind, flags = header[3], header[4]
        stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
        payload = take(length)
        if block_ends_stream is not None and (kind != CONTINUATION or stream != 1):
            raise H2Unsupported(f"frame type {kind} inside a header block (RFC 9113 6.10)")
        if kind == SETTINGS and not flags & ACK:
            sock.sendall(_frame(SETTINGS, ACK, 0, b""))
        elif kind == PING and not flags & ACK:
            sock.sendall(_frame(PING, ACK, 0, payload))
        elif kind == GOAWAY and stream == 0:
            last_stream = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if last_stream < 1:
                raise Interrupted("felix refused the stream (GOAWAY)")
        elif kind == RST_STREAM and stream == 1:
            raise Interrupted(f"felix reset the stream (code {payload.hex()})")
        elif stream == 1 and kind in (HEADERS, CONTINUATION):
            if kind == HEADERS:
                block += _strip(kind, flags, payload)
                block_ends_stream = bool(flags & END_STREAM)
            elif block_ends_stream is None:
                raise H2Unsupported("CONTINUATION without a HEADERS frame before it")
            else:
                block += payload  # (CONTINUATION has no END_STREAM flag of its own)
            if flags & END_HEADERS:
                for name, value in decoder.decode(bytes(block)):
                    fields[name] = _bin_value(name, value)
                block.clear()
                ends, block_ends_stream = block_ends_stream, None
                if ends:
                    return _finish(fields, bytes(data))
        elif stream == 1 and kind == DATA:
            data += _strip(kind, flags, payload)
            if flags & END_STREAM:
                return _finish(fields, bytes(data))
        elif kind not in _CONNECTION_FRAMES and stream in (0, 1):
            raise H2Unsupported(f"unexpected frame type {kind} on stream {stream}")


def _finish(fields: dict[str, bytes], data: bytes) -> bytes:
    if fields.get(":status", b"200") != b"200":
        raise H2Unsupported(f"HTTP status {fields[':status'].decode('latin-1')}")
    if "grpc-status" not in fields:
        raise H2Unsupported("reply without grpc-status")
    status = fields["grpc-status"]
    if not (status.isdigit() and len(status) <= 3):
        raise H2Unsupported(f"malformed grpc-status {status[:20]!r}")
    code = int(status)
    if code != 0:
        message = fields.get("grpc-message", b"").decode("utf-8", "replace")
        raise GrpcStatus(code, _percent_decode(message), fields)
    if len(data) < 5 or data[0] != 0:
        raise H2Unsupported("reply message missing or compressed")
    size = int.from_bytes(data[1:5], "big")
    if len(data) < 5 + size:
        raise H2Unsupported(f"reply message of {size} bytes cut short at {len(data) - 5}")
    return data[5 : 5 + size]


def _percent_decode(text: str) -> str:
    if "%" not in text:
        return text
    out, i = bytearray(), 0
    raw = text.encode()
    while i < len(raw):
        # gRPC's percent-encoding; a '%' not followed by two hex digits stays as it is.
        if raw[i] == 0x25 and i + 2 < len(raw) and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(pair: bytes) -> bool:
    return all(c in b"0123456789abcdefABCDEF" for c in pair)
