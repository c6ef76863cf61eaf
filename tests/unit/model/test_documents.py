"""Reading documents: envelopes, YAML and JSON files, cross-object checks."""

from __future__ import annotations

import ipaddress
import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gingham.model import (
    API_VERSION,
    KINDS,
    BGPConfiguration,
    BGPPeer,
    InvalidResource,
    IPPool,
    Node,
    UnknownKind,
    check_pool_overlaps,
    check_set,
    load_documents,
    parse_resource,
    resolve_kind,
)
from tests.unit.model.helpers import document, errors_of

# Filled in when the test runs: other test modules may register kinds of their own.
KNOWN = "{known}"


def _pool(name: str, cidr: str, block_size: int = 26) -> IPPool:
    pool = parse_resource(document("IPPool", name, {"cidr": cidr, "blockSize": block_size}))
    assert isinstance(pool, IPPool)
    return pool


def _load_errors(text: str, source: str = "pools.yaml") -> list[str]:
    with pytest.raises(InvalidResource) as caught:
        load_documents(text, source)
    return str(caught.value).splitlines()


# --- the envelope -----------------------------------------------------------------


def test_kind_is_looked_up_like_calicoctl() -> None:
    for kind in ("IPPool", "ippools", "pool"):
        assert isinstance(parse_resource(document(kind, "p", {"cidr": "10.0.0.0/16"})), IPPool)


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("IPPol", 'unknown resource kind "IPPol" (did you mean IPPool? known kinds: {known})'),
        ("frobnitz", 'unknown resource kind "frobnitz" (known kinds: {known})'),
    ],
)
def test_unknown_kind_suggests_the_closest(word: str, message: str) -> None:
    with pytest.raises(UnknownKind) as caught:
        resolve_kind(word)
    assert str(caught.value) == message.replace("{known}", ", ".join(sorted(KINDS)))


def test_calico_api_version_is_accepted_and_rewritten() -> None:
    doc = {
        **document("BGPPeer", "p", {"peerSelector": "all()"}),
        "apiVersion": "projectcalico.org/v3",
    }
    peer = parse_resource(doc)
    assert isinstance(peer, BGPPeer)
    assert peer.api_version == API_VERSION
    assert peer.to_document()["apiVersion"] == "gingham.io/v1"


@pytest.mark.parametrize(
    ("doc", "errors"),
    [
        (
            {**document("Node", "n"), "kind": "Nod"},
            [f'"n": kind: unknown resource kind "Nod" (did you mean Node? known kinds: {KNOWN})'],
        ),
        (
            {"apiVersion": "v1", "metadata": {"name": "n"}},
            [f'"n": kind: required (one of {KNOWN})'],
        ),
        (
            {**document("Node", "n"), "apiVersion": "crd.projectcalico.org/v1"},
            [
                'Node "n": apiVersion: "crd.projectcalico.org/v1" is not supported:'
                " use gingham.io/v1"
            ],
        ),
        (
            {"kind": "Node", "metadata": {"name": "n"}},
            ['Node "n": apiVersion: required (gingham.io/v1)'],
        ),
        ({"apiVersion": API_VERSION, "kind": "Node"}, ["Node: metadata: required"]),
        (
            {"apiVersion": API_VERSION, "kind": "Node", "metadata": {}},
            ["Node: metadata.name: required"],
        ),
        (
            document("Node", "Worker_1"),
            [
                'Node "Worker_1": metadata.name: "Worker_1" must be a DNS-1123 subdomain: at most'
                " 253 characters of lower-case letters, digits, '-' and '.', starting and ending"
                " with a letter or digit"
            ],
        ),
        (
            document("Node", "n", labels={"rack": 7, "bad key": "x"}),
            ['Node "n": metadata.labels.rack: expected a string, got 7'],
        ),
        (
            document("Node", "n", labels={"example.com/rack": "r 1"}),
            [
                'Node "n": metadata.labels: label "example.com/rack": value "r 1" must be empty'
                ' or 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter'
                " or digit"
            ],
        ),
        (
            {**document("Node", "n"), "status": {}},
            ['Node "n": status: unknown field'],
        ),
        (
            ["not", "a", "mapping"],
            ["expected a resource (a mapping with apiVersion, kind, metadata, spec), got a list"],
        ),
    ],
)
def test_bad_envelopes(doc: object, errors: list[str]) -> None:
    known = ", ".join(sorted(KINDS))
    assert errors_of(doc) == [e.replace("{known}", known) for e in errors]


# --- loading files ----------------------------------------------------------------

SAMPLE = textwrap.dedent(
    """\
    # a comment before the first document
    apiVersion: gingham.io/v1
    kind: IPPool
    metadata:
      name: pool-a
    spec:
      cidr: 10.244.0.0/16
      ipipMode: CrossSubnet
    ---
    ---
    apiVersion: gingham.io/v1
    kind: BGPConfiguration
    metadata: {name: default}
    spec: {nodeToNodeMeshEnabled: false}
    ---
    apiVersion: gingham.io/v1
    kind: Node
    metadata:
      name: rr-1
      labels: {route-reflector: "true"}
    spec:
      bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 224.0.0.1}
    ---
    apiVersion: gingham.io/v1
    kind: BGPPeer
    metadata: {name: to-rr}
    spec: {nodeSelector: "!has(route-reflector)", peerSelector: has(route-reflector)}
    """
)


def test_multi_document_yaml_skips_empty_documents() -> None:
    resources = load_documents(SAMPLE, "lab.yaml")
    assert [(type(r), r.name) for r in resources] == [
        (IPPool, "pool-a"),
        (BGPConfiguration, "default"),
        (Node, "rr-1"),
        (BGPPeer, "to-rr"),
    ]


def test_json_object_list_and_list_wrapper_give_the_same_resources() -> None:
    resources = load_documents(SAMPLE)
    docs = [r.to_document() for r in resources]
    as_list = load_documents(json.dumps(docs))
    as_wrapper = load_documents(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    as_calico_list = load_documents(json.dumps({"kind": "IPPoolList", "items": docs[:1]}))
    assert as_list == as_wrapper == resources
    assert as_calico_list == resources[:1]
    assert load_documents(json.dumps(docs[0])) == resources[:1]


def test_empty_input_is_no_resources() -> None:
    assert load_documents("") == []
    assert load_documents("---\n# nothing\n---\n") == []


def test_every_error_of_every_document_is_reported_with_its_place() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: gingham.io/v1
        kind: IPPool
        metadata: {name: p1}
        spec: {cidr: 10.0.0.0/16}
        ---
        apiVersion: gingham.io/v1
        kind: IPPool
        metadata: {name: p2}
        spec: {cidr: 10.1.0.0/16, blockSize: 33, ipipMode: Sometimes}
        ---
        apiVersion: gingham.io/v1
        kind: BGPPeer
        metadata: {name: tor}
        spec: {peerIP: 192.0.2.1, asNumber: 0}
        """
    )
    assert _load_errors(text) == [
        'pools.yaml: document 2: IPPool "p2": spec.blockSize: 33 is outside 20..32',
        'pools.yaml: document 2: IPPool "p2": spec.ipipMode: "Sometimes" is not one of Never,'
        " Always, CrossSubnet",
        'pools.yaml: document 3: BGPPeer "tor": spec.asNumber: 0 is outside 1..4294967295',
    ]


def test_list_items_are_located_by_index() -> None:
    docs = [document("IPPool", "a", {"cidr": "10.0.0.0/16"}), document("IPPool", "b", {})]
    assert _load_errors(json.dumps(docs), "pools.json") == [
        'pools.json: document 1, item 2: IPPool "b": spec.cidr: required'
    ]


def test_overlapping_pools_in_one_file() -> None:
    text = "\n---\n".join(
        json.dumps(document("IPPool", name, {"cidr": cidr}))
        for name, cidr in [("a", "10.0.0.0/16"), ("b", "10.1.0.0/16"), ("c", "10.0.128.0/17")]
    )
    assert _load_errors(text) == [
        'pools.yaml: document 3: IPPool "c": spec.cidr: 10.0.128.0/17 overlaps IPPool "a"'
        " (10.0.0.0/16) (document 1)"
    ]


def test_duplicate_objects_in_one_file() -> None:
    pool = json.dumps(document("IPPool", "a", {"cidr": "10.0.0.0/16"}))
    node = json.dumps(document("Node", "a"))
    assert _load_errors(f"{pool}\n---\n{node}\n---\n{pool}\n") == [
        'pools.yaml: document 3: IPPool "a": metadata.name: defined twice in this file'
        " (first in document 1)"
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "kind: IPPool\nmetadata: {name: [a\n",
            "pools.yaml: line 3, column 1: invalid YAML: did not find expected ',' or ']'",
        ),
        (
            "kind: IPPool\n  spec: x\n",
            "pools.yaml: line 2, column 7: invalid YAML: mapping values are not allowed"
            " in this context",
        ),
        (
            "kind: IPPool\nmetadata: {name: a}\nkind: Node\n",
            'pools.yaml: line 3, column 1: invalid YAML: key "kind" appears twice in one mapping',
        ),
        (
            '{"kind": "IPPool",\n "metadata": }',
            "pools.yaml: line 2, column 14: invalid JSON: Expecting value",
        ),
    ],
)
def test_syntax_errors_name_the_line(text: str, error: str) -> None:
    assert _load_errors(text) == [error]


# --- cross-object checks ----------------------------------------------------------


def test_check_pool_overlaps_names_both_pools() -> None:
    pools = [_pool("a", "10.0.0.0/16"), _pool("b", "10.0.5.0/24"), _pool("c", "10.2.0.0/16")]
    assert [str(e) for e in check_pool_overlaps(pools)] == [
        'IPPool "b": spec.cidr: 10.0.5.0/24 overlaps IPPool "a" (10.0.0.0/16)'
    ]
    assert check_pool_overlaps([_pool("v4", "10.0.0.0/8"), _pool("v6", "fd00::/64", 122)]) == []


def test_check_set_against_stored_pools() -> None:
    stored = [_pool("a", "10.0.0.0/16"), _pool("b", "10.1.0.0/16")]
    # rewriting "a" in place is fine; a new pool inside "b" is not
    assert check_set([_pool("a", "10.0.0.0/16")], stored) == []
    assert [str(e) for e in check_set([_pool("c", "10.1.2.0/24")], stored)] == [
        'IPPool "c": spec.cidr: 10.1.2.0/24 overlaps IPPool "b" (10.1.0.0/16) (already stored)'
    ]


def test_check_set_refuses_changing_a_stored_pools_cidr_or_block_size() -> None:
    stored = [_pool("a", "10.0.0.0/16")]
    assert [str(e) for e in check_set([_pool("a", "10.0.0.0/15", 24)], stored)] == [
        'IPPool "a": spec.cidr: cannot change from 10.0.0.0/16 to 10.0.0.0/15: addresses were'
        " allocated from it; create a new pool, disable this one and delete it once it is empty",
        'IPPool "a": spec.blockSize: cannot change from 26 to 24: addresses were allocated from'
        " it; create a new pool, disable this one and delete it once it is empty",
    ]


def test_check_set_ignores_other_kinds() -> None:
    node = parse_resource(document("Node", "n1"))
    assert check_set([node], [node, _pool("a", "10.0.0.0/16")]) == []


# --- round trips ------------------------------------------------------------------


def test_every_sample_round_trips_through_its_document() -> None:
    for resource in load_documents(SAMPLE):
        assert parse_resource(resource.to_document()) == resource
        assert parse_resource(json.loads(json.dumps(resource.to_document()))) == resource


def test_revision_is_kept_in_the_document() -> None:
    pool = _pool("a", "10.0.0.0/16").with_revision("42")
    assert pool.to_document()["metadata"] == {"name": "a", "resourceVersion": "42"}
    assert parse_resource(pool.to_document()) == pool


# --- round trips, generated ------------------------------------------------------

MODES = st.sampled_from(["Never", "Always", "CrossSubnet"])


@st.composite
def pool_documents(draw: st.DrawFn) -> dict[str, object]:
    prefix = draw(st.integers(8, 32))
    address = draw(st.integers(0, 2**32 - 1))
    network = ipaddress.ip_network((address, prefix), strict=False)
    spec: dict[str, object] = {"cidr": str(network)}
    if prefix > 26 or draw(st.booleans()):  # the default /26 must fit
        spec["blockSize"] = draw(st.integers(max(prefix, 20), 32))
    encapsulation = draw(st.sampled_from(["ipipMode", "vxlanMode", None]))
    if encapsulation:
        spec[encapsulation] = draw(MODES)
    spec["natOutgoing"] = draw(st.booleans())
    spec["nodeSelector"] = draw(st.sampled_from(["", "all()", "zone in {'a','b'} && !has(x)"]))
    return document("IPPool", "p-" + format(address, "x"), spec)


@settings(deadline=None)
@given(pool_documents())
def test_generated_pools_round_trip(doc: dict[str, object]) -> None:
    pool = parse_resource(doc)
    assert parse_resource(pool.to_document()) == pool
    assert load_documents(json.dumps([pool.to_document()])) == [pool]


@settings(deadline=None)
@given(
    st.one_of(st.none(), st.integers(1, 2**32 - 1)),
    st.sampled_from(["192.0.2.1", "192.0.2.1:1179", "2001:db8::1", "[2001:db8::1]:179"]),
    st.sampled_from([None, "n1"]),
    st.booleans(),
)
def test_generated_peers_round_trip(
    asn: int | None, peer_ip: str, node: str | None, by_selector: bool
) -> None:
    spec: dict[str, object] = {"asNumber": asn or 65000}
    if by_selector:
        spec = {"peerSelector": "has(route-reflector)"} | ({"asNumber": asn} if asn else {})
    else:
        spec["peerIP"] = peer_ip
    if node:
        spec["node"] = node
    peer = parse_resource(document("BGPPeer", "p", spec))
    assert parse_resource(peer.to_document()) == peer


def test_model_validate_accepts_its_own_document_and_refuses_another_kind() -> None:
    pool = _pool("a", "10.0.0.0/16")
    assert IPPool.model_validate(pool.to_document()) == pool
    with pytest.raises(ValidationError, match='expected kind Node, got "IPPool"'):
        Node.model_validate(pool.to_document())


def test_python_mode_dump_keeps_python_values_and_validates_back() -> None:
    for resource in load_documents(SAMPLE):
        dumped = resource.model_dump()
        assert type(resource).model_validate(dumped) == resource
    pool = load_documents(SAMPLE)[0]
    assert isinstance(pool, IPPool)
    assert pool.model_dump()["spec"]["cidr"] == ipaddress.ip_network("10.244.0.0/16")
