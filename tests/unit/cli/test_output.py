"""`gingham get` output: tables per kind, and YAML/JSON that apply reads back."""

from __future__ import annotations

import json

import pytest

from gingham.cli.output import TableContext, render, render_table
from gingham.model import load_documents
from gingham.model.base import Resource

FABRIC = """
apiVersion: gingham.io/v1
kind: IPPool
metadata: {name: default-pool}
spec: {cidr: 10.244.0.0/16, natOutgoing: true}
---
apiVersion: gingham.io/v1
kind: IPPool
metadata: {name: vx}
spec: {cidr: 10.250.0.0/20, blockSize: 28, vxlanMode: CrossSubnet, nodeSelector: "rack == 'r1'"}
---
apiVersion: gingham.io/v1
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 192.168.10.1, asNumber: 65001, password: secret}
---
apiVersion: gingham.io/v1
kind: BGPPeer
metadata: {name: to-rr}
spec: {nodeSelector: "!has(rr)", peerSelector: has(rr)}
---
apiVersion: gingham.io/v1
kind: BGPPeer
metadata: {name: n1-only}
spec: {node: node-1, peerIP: 192.168.10.2, asNumber: 65002}
---
apiVersion: gingham.io/v1
kind: Node
metadata: {name: node-1, labels: {rr: "true", rack: r1}}
spec: {bgp: {ipv4Address: 192.168.10.11/24, routeReflectorClusterID: 224.0.0.1}}
---
apiVersion: gingham.io/v1
kind: Node
metadata: {name: node-2}
spec: {bgp: {ipv4Address: 192.168.10.12/24, asNumber: 64513}}
---
apiVersion: gingham.io/v1
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
"""


def of_kind(kind: str) -> list[Resource]:
    return [r for r in load_documents(FABRIC, "fabric.yaml") if r.kind == kind]


def rows(table: str) -> list[list[str]]:
    """Table text → cells, split on the column starts the header gives."""
    lines = table.rstrip("\n").split("\n")
    header = lines[0]
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    bounds = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, bounds, strict=True)] for line in lines]


def as_dicts(table: str) -> dict[str, dict[str, str]]:
    header, *body = rows(table)
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}


def test_ippool_table_has_calicoctl_columns() -> None:
    table = render_table("IPPool", of_kind("IPPool"))
    assert rows(table)[0] == ["NAME", "CIDR", "SELECTOR"]
    cells = as_dicts(table)
    assert cells["default-pool"] == {
        "NAME": "default-pool",
        "CIDR": "10.244.0.0/16",
        "SELECTOR": "all()",
    }
    assert cells["vx"]["SELECTOR"] == "rack == 'r1'"


def test_wide_ippool_table_adds_block_size_encapsulation_nat_disabled() -> None:
    cells = as_dicts(render_table("IPPool", of_kind("IPPool"), wide=True))
    assert cells["vx"] == {
        "NAME": "vx",
        "CIDR": "10.250.0.0/20",
        "SELECTOR": "rack == 'r1'",
        "BLOCKSIZE": "28",
        "IPIPMODE": "Never",
        "VXLANMODE": "CrossSubnet",
        "NAT": "false",
        "DISABLED": "false",
    }
    assert cells["default-pool"]["NAT"] == "true"


def test_bgppeer_table_shows_global_node_and_selector_peers() -> None:
    table = render_table("BGPPeer", of_kind("BGPPeer"))
    assert rows(table)[0] == ["NAME", "PEERIP", "NODE", "ASN"]
    cells = as_dicts(table)
    assert cells["tor"] == {
        "NAME": "tor",
        "PEERIP": "192.168.10.1",
        "NODE": "(global)",
        "ASN": "65001",
    }
    assert cells["n1-only"]["NODE"] == "node-1"
    assert cells["to-rr"]["NODE"] == "!has(rr)"
    assert cells["to-rr"]["PEERIP"] == ""


def test_wide_bgppeer_table_never_shows_the_password() -> None:
    table = render_table("BGPPeer", of_kind("BGPPeer"), wide=True)
    assert "secret" not in table
    assert as_dicts(table)["tor"]["PASSWORD"] == "set"
    assert as_dicts(table)["to-rr"]["PEERSELECTOR"] == "has(rr)"


def test_node_table_marks_an_inherited_as_number() -> None:
    table = render_table("Node", of_kind("Node"), context=TableContext(default_as_number=64512))
    cells = as_dicts(table)
    assert rows(table)[0] == ["NAME", "ASN", "IPV4", "IPV6"]
    assert cells["node-1"]["ASN"] == "(64512)"
    assert cells["node-2"]["ASN"] == "64513"
    assert cells["node-1"]["IPV4"] == "192.168.10.11/24"
    wide = as_dicts(render_table("Node", of_kind("Node"), wide=True))
    assert wide["node-1"]["RRCLUSTERID"] == "224.0.0.1"
    assert wide["node-1"]["LABELS"] == "rack=r1,rr=true"


def test_bgpconfiguration_table_shows_defaults_filled_in() -> None:
    cells = as_dicts(render_table("BGPConfiguration", of_kind("BGPConfiguration")))
    assert cells["default"] == {
        "NAME": "default",
        "LOGSEVERITY": "Info",
        "MESHENABLED": "false",
        "ASNUMBER": "64512",
    }


def test_a_kind_without_columns_gets_name_and_labels() -> None:
    nodes = of_kind("Node")
    assert rows(render_table("SomethingNew", nodes)) == [["NAME"], ["node-1"], ["node-2"]]
    assert rows(render_table("SomethingNew", nodes, wide=True))[1] == ["node-1", "rack=r1,rr=true"]


def test_an_empty_table_is_just_the_header() -> None:
    assert render_table("IPPool", []) == "NAME   CIDR   SELECTOR\n"


def test_yaml_of_several_objects_is_a_stream_apply_reads_back() -> None:
    pools = of_kind("IPPool")
    text = render("IPPool", pools, "yaml")
    assert text.count("\n---\n") == 1
    assert text.startswith("apiVersion: gingham.io/v1\nkind: IPPool\n")
    assert load_documents(text, "out.yaml") == pools


def test_json_of_several_objects_is_a_list_apply_reads_back() -> None:
    peers = of_kind("BGPPeer")
    body = json.loads(render("BGPPeer", peers, "json"))
    assert body["kind"] == "List"
    assert [item["metadata"]["name"] for item in body["items"]] == ["tor", "to-rr", "n1-only"]
    assert load_documents(json.dumps(body), "out.json") == peers


def test_json_of_one_named_object_is_the_object() -> None:
    pool = of_kind("IPPool")[0]
    body = json.loads(render("IPPool", [pool], "json", single=True))
    assert body == pool.to_document()
    assert body["spec"]["cidr"] == "10.244.0.0/16"


def test_json_of_nothing_is_an_empty_list() -> None:
    assert json.loads(render("IPPool", [], "json"))["items"] == []


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown output format"):
        render("IPPool", [], "xml")


IPAM = """
apiVersion: gingham.io/v1
kind: IPAMBlock
metadata: {name: 10-0-0-0-30}
spec:
  cidr: 10.0.0.0/30
  affinity: host:node-1
  allocations: [0, null, 0, null]
  unallocated: [1, 3]
  attributes: [{handleId: c1.eth0}]
---
apiVersion: gingham.io/v1
kind: BlockAffinity
metadata: {name: node-1-10-0-0-0-30}
spec: {node: node-1, cidr: 10.0.0.0/30, state: confirmed}
---
apiVersion: gingham.io/v1
kind: IPAMConfiguration
metadata: {name: default}
spec: {strictAffinity: true, maxBlocksPerHost: 4}
---
apiVersion: gingham.io/v1
kind: WorkloadEndpoint
metadata: {name: node-1-k8s-default-web-eth0}
spec:
  node: node-1
  namespace: default
  pod: web
  containerId: c1
  interfaceName: gh0123456789a
  ipNetworks: [10.0.0.0/32, 10.0.0.2/32]
"""


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "IPAMBlock",
            {
                "NAME": "10-0-0-0-30",
                "CIDR": "10.0.0.0/30",
                "AFFINITY": "host:node-1",
                "INUSE": "2/4",
            },
        ),
        (
            "BlockAffinity",
            {
                "NAME": "node-1-10-0-0-0-30",
                "NODE": "node-1",
                "CIDR": "10.0.0.0/30",
                "STATE": "confirmed",
            },
        ),
        (
            "IPAMConfiguration",
            {"NAME": "default", "STRICTAFFINITY": "true", "MAXBLOCKSPERHOST": "4"},
        ),
        (
            "WorkloadEndpoint",
            {
                "NAME": "node-1-k8s-default-web-eth0",
                "NODE": "node-1",
                "NAMESPACE": "default",
                "POD": "web",
                "NETWORKS": "10.0.0.0/32,10.0.0.2/32",
            },
        ),
    ],
)
def test_ipam_and_workload_tables(kind: str, expected: dict[str, str]) -> None:
    objs = [r for r in load_documents(IPAM, "ipam.yaml") if r.kind == kind]
    (row,) = as_dicts(render_table(kind, objs)).values()
    assert row == expected
