"""The Reflect stream protocol (pure): snapshot then deltas, `received`, errors,
and the protobuf translation both ways."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from gingham.v1 import reflector_pb2 as pb
from route_reflector import feed as f
from route_reflector.api import messages as m
from route_reflector.api.convert import (
    OutputDecoder,
    decode_attributes,
    decode_input,
    decode_output,
    encode_attributes,
    encode_input,
    encode_output,
)
from route_reflector.api.messages import GroupChange, Origin, PathAttributes, per_peer
from tests.unit.rr.helpers import attrs, ip, net, peer

CLUSTER, RR_ID = ip("224.0.0.1"), ip("192.0.2.100")
C1, C2, N1 = "192.0.2.1", "192.0.2.2", "192.0.2.51"
BEGIN = m.SnapshotBegin(CLUSTER, RR_ID)


def started(*peers: m.PeerUp) -> f.ReflectFeed:
    feed = f.ReflectFeed()
    feed.handle(BEGIN)
    for up in peers:
        feed.handle(up)
    return feed


UP = (m.PeerUp(peer(C1)), m.PeerUp(peer(C2)), m.PeerUp(peer(N1, client=False)))


def test_inputs_before_snapshot_end_are_only_acknowledged() -> None:
    feed = started(*UP)
    outputs = feed.handle(m.Announce(ip(C1), (net("10.65.0.0/26"),), attrs(C1)))
    assert outputs == [m.FeedOutput(m.OutputType.DELTA, 5)]


def test_snapshot_end_answers_with_the_full_adj_rib_out_framed() -> None:
    feed = started(*UP)
    feed.handle(m.Announce(ip(C1), (net("10.65.0.0/26"),), attrs(C1)))
    outputs = feed.handle(m.SnapshotEnd())
    assert [o.type for o in outputs] == [
        m.OutputType.SNAPSHOT_BEGIN,
        m.OutputType.DELTA,
        m.OutputType.SNAPSHOT_END,
    ]
    assert [o.received for o in outputs] == [5, 5, 6]
    state: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = {}
    assert m.apply_outputs(state, outputs) is None
    assert {str(p) for p in state} == {C2, N1}
    assert feed.in_sync


def test_after_sync_each_input_gets_its_deltas() -> None:
    feed = started(*UP)
    feed.handle(m.SnapshotEnd())
    outputs = feed.handle(m.Announce(ip(N1), (net("10.65.0.0/26"),), attrs(N1)))
    assert len(outputs) == 1 and outputs[0].received == 6
    assert {str(c.peer) for c in per_peer(outputs[0].changes)} == {C1, C2}
    (change,) = outputs[0].changes  # one change for both: they hear the same
    assert change.peers == {ip(C1), ip(C2)}
    assert feed.reflected_updates == 2
    # An input that changes nothing is still answered.
    assert feed.handle(m.Withdraw(ip(C1), (net("10.99.0.0/24"),))) == [
        m.FeedOutput(m.OutputType.DELTA, 7)
    ]


def test_large_answers_are_chunked_and_only_the_last_part_counts() -> None:
    feed = started(*UP)
    feed.handle(m.SnapshotEnd())
    many = tuple(IPv4Network((0x0A000000 + (i << 8), 24)) for i in range(3000))
    outputs = feed.handle(m.Announce(ip(C1), many, attrs(C1)))
    assert all(len(o.changes) <= f.MAX_CHANGES_PER_OUTPUT for o in outputs)
    assert sum(len(o.changes) for o in outputs) == 3000  # C2 and N1 together
    assert sum(len(per_peer(o.changes)) for o in outputs) == 6000
    assert [o.received for o in outputs] == [5] * (len(outputs) - 1) + [6]


def test_refused_inputs_say_why_and_change_nothing() -> None:
    feed = f.ReflectFeed()
    (out,) = feed.handle(m.PeerUp(peer(C1)))
    assert out.received == 1 and "must start with INPUT_SNAPSHOT_BEGIN" in out.error
    feed.handle(BEGIN)
    (out,) = feed.handle(m.Announce(ip(C1), (net("10.65.0.0/26"),), attrs(C1)))
    assert "not up" in out.error and out.received == 3
    (out,) = feed.refuse("ReflectorInput.peer: 'x' is not an IPv4 address")
    assert out.received == 4 and out.error.startswith("ReflectorInput.peer")
    assert feed.reflector is not None and len(feed.reflector.rib) == 0


def test_a_second_snapshot_starts_over() -> None:
    feed = started(*UP)
    feed.handle(m.Announce(ip(C1), (net("10.65.0.0/26"),), attrs(C1)))
    feed.handle(m.SnapshotEnd())
    feed.handle(BEGIN)
    assert not feed.in_sync
    feed.handle(m.PeerUp(peer(C2)))
    outputs = feed.handle(m.SnapshotEnd())
    state: dict[IPv4Address, dict[IPv4Network, PathAttributes]] = {ip(C2): {}}
    m.apply_outputs(state, outputs)
    assert state == {}  # nothing to tell anyone: the old state is replaced, not merged


# -- protobuf ------------------------------------------------------------------


def test_attributes_round_trip_through_protobuf() -> None:
    full = PathAttributes(
        next_hop=ip("198.51.100.1"),
        as_path=(65001, 65002),
        origin=Origin.INCOMPLETE,
        med=0,
        local_pref=250,
        originator_id=ip("1.1.1.1"),
        cluster_list=(ip("224.0.0.1"), ip("224.0.0.2")),
        communities=("65000:1",),
        large_communities=("65000:1:2",),
        extended_communities=("target:65000:1",),
    )
    assert decode_attributes(encode_attributes(full)) == full
    bare = attrs("198.51.100.1")
    message = encode_attributes(bare)
    assert not message.HasField("med")  # absent MED stays absent, distinct from 0
    assert decode_attributes(message) == bare


@pytest.mark.parametrize(
    "event",
    [
        BEGIN,
        m.SnapshotEnd(),
        m.PeerUp(peer(C1, "9.9.9.9", client=False)),
        m.PeerDown(ip(C1)),
        m.Announce(ip(C1), (net("10.65.0.0/26"), net("10.65.1.0/26")), attrs(C1, med=3)),
        m.Withdraw(ip(C1), (net("10.65.0.0/26"),)),
    ],
)
def test_inputs_round_trip_through_protobuf(event: m.FeedInput) -> None:
    assert decode_input(pb.ReflectorInput.FromString(encode_input(event).SerializeToString())) == (
        event
    )


def test_outputs_round_trip_grouped_by_peers_and_attributes() -> None:
    a, b = attrs(C1), attrs(C2)
    c2, both = frozenset({ip(C2)}), frozenset({ip(C2), ip(N1)})
    changes = (
        GroupChange(both, net("10.65.0.0/26"), a),
        GroupChange(frozenset({ip(N1), ip(C2)}), net("10.65.1.0/26"), a),  # equal, not same
        GroupChange(c2, net("10.65.2.0/26"), None),
        GroupChange(frozenset({ip(C1)}), net("10.65.3.0/26"), b),
    )
    message = encode_output(m.FeedOutput(m.OutputType.DELTA, 7, changes))
    assert [list(d.peers) for d in message.diffs] == [[C1], [C2], [C2, N1]]
    assert len(message.diffs[2].announce) == 1  # one group for two prefixes
    back = decode_output(message)
    assert set(back.changes) == set(changes) and back.received == 7
    # A diff naming one `peer` (no `peers`) is that peer's alone.
    single = pb.ReflectorOutput(
        type=pb.DELTA, diffs=[pb.PeerDiff(peer=C1, withdraw=["10.65.0.0/26"])]
    )
    (alone,) = decode_output(single).changes
    assert alone == GroupChange(frozenset({ip(C1)}), net("10.65.0.0/26"), None)


def test_the_speakers_decoder_shares_what_repeats_across_peers_and_messages() -> None:
    a = attrs(C1)
    prefixes = [net(f"10.65.{i}.0/26") for i in range(3)]
    changes = [GroupChange(frozenset({ip(p)}), x, a) for p in (C2, N1) for x in prefixes]
    decoder = OutputDecoder()
    first = decoder.decode(encode_output(m.FeedOutput(m.OutputType.DELTA, 1, tuple(changes))))
    gone = GroupChange(frozenset({ip(C2)}), prefixes[0], None)
    later = decoder.decode(encode_output(m.FeedOutput(m.OutputType.DELTA, 2, (gone,))))
    (to_c2, to_n1) = first.diffs
    assert (to_c2.peers, to_n1.peers) == ({ip(C2)}, {ip(N1)})
    assert later.diffs[0].peers is to_c2.peers  # one object per group of peers
    (attributes_c2, sent_c2), (attributes_n1, sent_n1) = to_c2.announce[0], to_n1.announce[0]
    assert attributes_c2 == a and attributes_c2 is attributes_n1  # one object: diffs use `is`
    assert sent_c2 == tuple(prefixes) and all(x is y for x, y in zip(sent_c2, sent_n1, strict=True))
    assert later.diffs[0].withdraw[0] is sent_c2[0] and later.received == 2


def test_the_speakers_decoder_names_a_bad_prefix_and_forgets_past_its_limit() -> None:
    decoder = OutputDecoder(limit=2)
    diff = pb.PeerDiff(peer=C1, withdraw=["10.65.0.0/26", "10.1.1.1/8"])
    with pytest.raises(ValueError, match=r"diffs\[0\]\.withdraw\[1\]: '10\.1\.1\.1/8'"):
        decoder.decode(pb.ReflectorOutput(type=pb.DELTA, diffs=[diff]))
    texts = [f"10.65.{i}.0/26" for i in range(5)]
    for text in texts:
        decoder.decode(
            pb.ReflectorOutput(type=pb.DELTA, diffs=[pb.PeerDiff(peer=C1, withdraw=[text])])
        )
    assert len(decoder._prefixes) <= 3


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (pb.ReflectorInput(type=pb.PEER_UP, peer="nope"), r"ReflectorInput\.peer: 'nope'"),
        (
            pb.ReflectorInput(type=pb.PEER_UP, peer=C1, router_id=""),
            r"ReflectorInput\.router_id",
        ),
        (
            pb.ReflectorInput(type=pb.WITHDRAW, peer=C1, prefixes=["10.65.0.0/26", "10.1.1.1/8"]),
            r"ReflectorInput\.prefixes\[1\]: '10\.1\.1\.1/8'",
        ),
        (pb.ReflectorInput(type=pb.ANNOUNCE, peer=C1, prefixes=["10.0.0.0/8"]), "required"),
        (
            pb.ReflectorInput(
                type=pb.ANNOUNCE,
                peer=C1,
                prefixes=["10.0.0.0/8"],
                attributes=pb.PathAttributes(next_hop=C1, cluster_list=["x"]),
            ),
            r"ReflectorInput\.attributes\.cluster_list\[0\]",
        ),
        (pb.ReflectorInput(peer=C1), r"ReflectorInput\.type"),
        (pb.ReflectorInput(type=pb.INPUT_SNAPSHOT_BEGIN), r"ReflectorInput\.cluster_id"),
    ],
)
def test_bad_inputs_name_the_field(message: pb.ReflectorInput, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        decode_input(message)
