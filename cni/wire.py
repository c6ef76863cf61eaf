"""Protobuf wire encoding of the Dataplane messages the plugin sends and reads.

Why not the generated `dataplane_pb2`: importing protobuf and building the
descriptor pool costs ~50-70 ms per plugin exec. The plugin exchanges a handful
of flat messages (strings, bools, uint32s, nested messages, repeated fields), so
a table-driven proto3 codec of ~100 lines does the job.

`SCHEMAS` mirrors `proto/gingham/v1/dataplane.proto` (field numbers, kinds,
repetition). tests/unit/cni/test_wire.py checks every schema against the
generated descriptors and round-trips through the real protobuf library, so a
contract change fails a test rather than corrupting a call.

Messages are plain dicts keyed by field name; decoding fills proto3 defaults
("" / 0 / False / [] / {}) and skips unknown fields, as protobuf does.
"""

from __future__ import annotations

STR, BOOL, UINT, MSG = "string", "bool", "uint", "message"

# name -> {field number: (field name, kind, repeated, message type for MSG)}
Schema = dict[int, tuple[str, str, bool, str]]
_ID: Schema = {1: ("container_id", STR, False, ""), 2: ("interface_name", STR, False, "")}
_ATTACHMENT: Schema = {
    1: ("container_id", STR, False, ""),
    2: ("netns", STR, False, ""),
    3: ("interface_name", STR, False, ""),
}
SCHEMAS: dict[str, Schema] = {
    "ErrorDetail": {
        1: ("code", UINT, False, ""),
        2: ("message", STR, False, ""),
        3: ("field", STR, False, ""),
    },
    "WorkloadId": _ID,
    "AddWorkloadRequest": {
        **_ATTACHMENT,
        4: ("pod_namespace", STR, False, ""),
        5: ("pod_name", STR, False, ""),
        6: ("pod_uid", STR, False, ""),
        7: ("requested_ips", STR, True, ""),
        8: ("pools", STR, True, ""),
        9: ("mtu", UINT, False, ""),
        10: ("mac", STR, False, ""),
    },
    "Interface": {
        1: ("name", STR, False, ""),
        2: ("mac", STR, False, ""),
        3: ("sandbox", STR, False, ""),
    },
    "IPConfig": {
        1: ("address", STR, False, ""),
        2: ("gateway", STR, False, ""),
        3: ("interface", UINT, False, ""),
    },
    "RouteConfig": {1: ("dst", STR, False, ""), 2: ("gw", STR, False, "")},
    "AddWorkloadReply": {
        1: ("interfaces", MSG, True, "Interface"),
        2: ("ips", MSG, True, "IPConfig"),
        3: ("routes", MSG, True, "RouteConfig"),
        4: ("mac", STR, False, ""),
        5: ("host_interface", STR, False, ""),
        6: ("mtu", UINT, False, ""),
    },
    "DeleteWorkloadRequest": _ATTACHMENT,
    "DeleteWorkloadReply": {1: ("existed", BOOL, False, "")},
    "CheckWorkloadRequest": _ATTACHMENT,
    "CheckWorkloadReply": {
        1: ("ok", BOOL, False, ""),
        2: ("problems", STR, True, ""),
        3: ("workload", MSG, False, "Workload"),
    },
    "ListWorkloadsRequest": {},
    "Workload": {
        1: ("id", MSG, False, "WorkloadId"),
        2: ("netns", STR, False, ""),
        3: ("pod_namespace", STR, False, ""),
        4: ("pod_name", STR, False, ""),
        5: ("pod_uid", STR, False, ""),
        6: ("host_interface", STR, False, ""),
        7: ("ips", STR, True, ""),
        8: ("mac", STR, False, ""),
    },
    "ListWorkloadsReply": {1: ("workloads", MSG, True, "Workload")},
    "GarbageCollectRequest": {1: ("valid", MSG, True, "WorkloadId")},
    "GarbageCollectReply": {1: ("removed", MSG, True, "WorkloadId")},
    "StatusRequest": {},
    "StatusReply": {
        1: ("node", STR, False, ""),
        2: ("datastore_synced", BOOL, False, ""),
        3: ("routes_synced", BOOL, False, ""),
        4: ("routes_programmed", UINT, False, ""),
        5: ("workloads", UINT, False, ""),
        6: ("problems", STR, True, ""),
    },
}


class WireError(Exception):
    """Bytes that are not a valid encoding of the expected message."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode(message: str, values: dict[str, object]) -> bytes:
    out = bytearray()
    for number, (name, kind, repeated, sub) in sorted(SCHEMAS[message].items()):
        value = values.get(name)
        items = list(value) if repeated and isinstance(value, list | tuple) else [value]
        for item in items:
            if item is None or (not repeated and item in ("", 0, False) and kind != MSG):
                continue
            if kind == STR:
                raw = str(item).encode()
                out += _varint(number << 3 | 2) + _varint(len(raw)) + raw
            elif kind in (UINT, BOOL):
                out += _varint(number << 3) + _varint(int(item) if isinstance(item, int) else 0)
            elif isinstance(item, dict):
                raw = encode(sub, item)
                out += _varint(number << 3 | 2) + _varint(len(raw)) + raw
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def decode(message: str, data: bytes) -> dict[str, object]:
    schema = SCHEMAS[message]
    out: dict[str, object] = {}
    for name, kind, repeated, _sub in schema.values():
        out[name] = [] if repeated else {STR: "", BOOL: False, UINT: 0, MSG: None}[kind]
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            raw_int, pos = _read_varint(data, pos)
            raw: bytes | int = raw_int
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise WireError(f"{message}: field {number} runs past the end")
            raw, pos = data[pos : pos + length], pos + length
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
            continue
        else:
            raise WireError(f"{message}: unsupported wire type {wire_type}")
        if number not in schema:
            continue
        name, kind, repeated, sub = schema[number]
        if kind == STR and isinstance(raw, bytes):
            value: object = raw.decode("utf-8", "replace")
        elif kind == MSG and isinstance(raw, bytes):
            value = decode(sub, raw)
        elif kind == BOOL and isinstance(raw, int):
            value = bool(raw)
        elif kind == UINT and isinstance(raw, int):
            value = raw
        else:
            raise WireError(f"{message}.{name}: wrong wire type {wire_type}")
        if repeated:
            out[name].append(value)  # type: ignore[attr-defined]
        else:
            out[name] = value
    for name, kind, repeated, sub in schema.values():
        if kind == MSG and not repeated and out[name] is None:
            out[name] = decode(sub, b"")
    return out


# Typed accessors for decoded messages (decode fills every field, so keys exist).
Message = dict[str, object]


def text(message: Message, name: str) -> str:
    return str(message[name])


def number(message: Message, name: str) -> int:
    value = message[name]
    return int(value) if isinstance(value, int) else 0


def texts(message: Message, name: str) -> list[str]:
    value = message[name]
    return [str(v) for v in value] if isinstance(value, list) else []


def messages(message: Message, name: str) -> list[Message]:
    value = message[name]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def submessage(message: Message, name: str) -> Message:
    value = message[name]
    return value if isinstance(value, dict) else {}
