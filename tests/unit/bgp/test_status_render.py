"""`gingham node status` text and JSON from a SpeakerStatusReply (pure)."""

from __future__ import annotations

import time

from gingham.cli.bgp_status import as_json, render
from gingham.v1 import speaker_pb2 as pb


def reply() -> pb.SpeakerStatusReply:
    now = time.time()
    msg = pb.SpeakerStatusReply(
        node="n1", address="10.0.0.1", ready=True, felix_in_sync=True,
        announced_count=1, learned_count=2,
        peers=[
            pb.BgpPeerStatus(address="10.0.0.2", peer_type="node-to-node mesh",
                             state="established", since=now - 60, received=1, accepted=1),
            pb.BgpPeerStatus(address="192.0.2.1", peer_type="global", state="connected",
                             info="Connect"),
        ],
    )  # fmt: skip
    msg.rejected_by_reason["default-route"] = 2
    return msg


def test_calico_style_table() -> None:
    text = render(reply(), time.time())
    lines = text.splitlines()
    header = next(line for line in lines if "PEER ADDRESS" in line)
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO",
    ]  # fmt: skip
    mesh = next(line for line in lines if "10.0.0.2" in line)
    assert [c.strip() for c in mesh.strip("|").split("|")][1:3] == ["node-to-node mesh", "up"]
    assert "Established" in mesh
    tor = next(line for line in lines if "192.0.2.1" in line)
    assert "connected" in tor and "Connect" in tor
    assert "rejected 2 (default-route 2)" in text
    assert "felix has not taken" not in text


def test_json_keeps_proto_names_and_unset_since_is_null() -> None:
    doc = as_json(reply())
    assert [p["state"] for p in doc["peers"]] == ["established", "connected"]
    assert doc["peers"][1]["since"] is None
    assert doc["rejected_by_reason"] == {"default-route": 2}
