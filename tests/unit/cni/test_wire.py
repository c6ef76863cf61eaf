"""cni.wire mirrors the Dataplane contract: checked against the generated descriptors."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from cni import wire
from gingham.v1 import dataplane_pb2 as pb

_KINDS = {
    FieldDescriptor.TYPE_STRING: wire.STR,
    FieldDescriptor.TYPE_BOOL: wire.BOOL,
    FieldDescriptor.TYPE_UINT32: wire.UINT,
    FieldDescriptor.TYPE_UINT64: wire.UINT,
    FieldDescriptor.TYPE_ENUM: wire.UINT,
    FieldDescriptor.TYPE_MESSAGE: wire.MSG,
}


@pytest.mark.parametrize("name", sorted(wire.SCHEMAS))
def test_schema_matches_generated_descriptor(name: str) -> None:
    descriptor = pb.DESCRIPTOR.message_types_by_name[name]
    expected = {
        f.number: (
            f.name,
            _KINDS[f.type],
            f.is_repeated if hasattr(f, "is_repeated") else f.label == f.LABEL_REPEATED,
            f.message_type.name if f.message_type else "",
        )
        for f in descriptor.fields
    }
    assert wire.SCHEMAS[name] == expected


def test_round_trip_through_protobuf() -> None:
    reply = pb.AddWorkloadReply(
        interfaces=[
            pb.Interface(name="gh0", mac="ee:ee:ee:ee:ee:ee"),
            pb.Interface(name="eth0", mac="0a:00:00:00:00:01", sandbox="/run/netns/x"),
        ],
        ips=[pb.IPConfig(address="10.65.0.7/32", gateway="169.254.1.1", interface=1)],
        routes=[pb.RouteConfig(dst="0.0.0.0/0", gw="169.254.1.1")],
        mac="0a:00:00:00:00:01",
        host_interface="gh0",
        mtu=1450,
    )
    decoded = wire.decode("AddWorkloadReply", reply.SerializeToString())
    assert wire.messages(decoded, "interfaces")[1]["sandbox"] == "/run/netns/x"
    assert wire.messages(decoded, "ips")[0] == {
        "address": "10.65.0.7/32",
        "gateway": "169.254.1.1",
        "interface": 1,
    }
    assert decoded["mtu"] == 1450
    assert pb.AddWorkloadReply.FromString(wire.encode("AddWorkloadReply", decoded)) == reply

    request = {
        "container_id": "c1",
        "netns": "/n",
        "interface_name": "eth0",
        "requested_ips": ["10.0.0.1", "10.0.0.2"],
        "pools": ["a"],
        "mtu": 9000,
    }
    parsed = pb.AddWorkloadRequest.FromString(wire.encode("AddWorkloadRequest", request))
    assert list(parsed.requested_ips) == ["10.0.0.1", "10.0.0.2"] and parsed.mtu == 9000
    gc = pb.GarbageCollectRequest.FromString(
        wire.encode(
            "GarbageCollectRequest", {"valid": [{"container_id": "a", "interface_name": "eth0"}]}
        )
    )
    assert gc.valid[0].container_id == "a"


def test_unknown_fields_are_skipped_and_garbage_is_refused() -> None:
    extra = pb.StatusReply(node="n", workloads=3).SerializeToString() + bytes([0x78, 0x05])
    assert wire.decode("StatusReply", extra)["workloads"] == 3
    with pytest.raises(wire.WireError):
        wire.decode("StatusReply", b"\x0a\x10short")
