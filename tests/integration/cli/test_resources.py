"""`gingham apply / get / delete` end to end, on sqlite and on etcd."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gingham.model import load_documents
from tests.integration.cli.conftest import EXAMPLES, Gingham

KINDS = ("ippools", "bgppeers", "nodes", "bgpconfigurations")

BAD = """\
apiVersion: gingham.io/v1
kind: Node
metadata: {name: good-node}
spec: {bgp: {ipv4Address: 10.0.0.5/24}}
---
apiVersion: gingham.io/v1
kind: IPPool
metadata: {name: p1}
spec: {cidr: 10.2.0.0/16, blockSize: 33}
---
apiVersion: gingham.io/v1
kind: IPPool
metadata: {name: p2}
spec: {cidr: 10.3.0.1/16}
---
apiVersion: gingham.io/v1
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 192.0.2.1, asNumber: 4294967296}
---
apiVersion: gingham.io/v1
kind: BGPPeer
metadata: {name: rr}
spec: {peerSelector: "has(rr", nodeSelector: all()}
"""


def without_revision(doc: dict[str, Any]) -> dict[str, Any]:
    metadata = {k: v for k, v in doc["metadata"].items() if k != "resourceVersion"}
    return {**doc, "metadata": metadata}


def test_apply_get_delete_round_trip(gingham: Gingham) -> None:
    fabric = EXAMPLES / "fabric.yaml"
    expected = load_documents(fabric.read_text(), "fabric.yaml")
    out = gingham.ok("apply", "-f", str(fabric))
    assert out.splitlines() == [f'{r.kind.lower()} "{r.name}" created' for r in expected]

    stored = [item for kind in KINDS for item in gingham.items(kind)]
    assert all(item["metadata"]["resourceVersion"] for item in stored)
    by_key = {(d["kind"], d["metadata"]["name"]): without_revision(d) for d in stored}
    assert by_key == {(r.kind, r.name): r.to_document() for r in expected}

    again = gingham.ok("apply", "-f", str(fabric))
    assert again.splitlines() == [f'{r.kind.lower()} "{r.name}" unchanged' for r in expected]

    out = gingham.ok("delete", "-f", str(fabric))
    assert out.splitlines() == [f'{r.kind.lower()} "{r.name}" deleted' for r in expected]
    assert gingham.stored(*KINDS) == []


def test_invalid_documents_are_refused_with_every_reason_and_nothing_is_stored(
    gingham: Gingham, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = gingham.run("apply", "-f", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    f = str(path)
    assert result.stderr.splitlines() == [
        f'gingham: error: {f}: document 2: IPPool "p1": spec.blockSize: 33 is outside 20..32',
        f'gingham: error: {f}: document 3: IPPool "p2": spec.cidr: 10.3.0.1/16 is not a network'
        " address (it has host bits set): did you mean 10.3.0.0/16?",
        f'gingham: error: {f}: document 4: BGPPeer "tor": spec.asNumber: 4294967296 is outside'
        " 1..4294967295",
        f'gingham: error: {f}: document 5: BGPPeer "rr": spec.peerSelector: invalid selector'
        ' "has(rr": at column 7: expected ")" after the label key, found the end of the selector',
    ]
    # The valid Node in the same file was not written either.
    assert gingham.stored(*KINDS) == []


def test_a_pool_overlapping_a_stored_one_refuses_the_whole_file(
    gingham: Gingham, tmp_path: Path
) -> None:
    gingham.ok("apply", "-f", str(EXAMPLES / "fabric.yaml"))
    before = gingham.stored(*KINDS)
    path = tmp_path / "more.yaml"
    path.write_text(
        "apiVersion: gingham.io/v1\nkind: Node\nmetadata: {name: node-9}\n"
        "spec: {bgp: {ipv4Address: 192.168.10.19/24}}\n---\n"
        "apiVersion: gingham.io/v1\nkind: IPPool\nmetadata: {name: inside}\n"
        "spec: {cidr: 10.244.64.0/18}\n"
    )
    result = gingham.run("apply", "-f", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'gingham: error: {path}: IPPool "inside": spec.cidr: 10.244.64.0/18 overlaps IPPool'
        ' "default-pool" (10.244.0.0/16) (already stored)'
    ]
    assert gingham.stored(*KINDS) == before


def test_get_of_a_missing_object_exits_1(gingham: Gingham) -> None:
    result = gingham.run("get", "ippool", "nope")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == 'gingham: error: IPPool "nope" not found\n'


def test_get_several_names_shows_the_found_and_fails_for_the_missing(
    sqlite_gingham: Gingham,
) -> None:
    gingham = sqlite_gingham
    gingham.ok("apply", "-f", str(EXAMPLES / "fabric.yaml"))
    result = gingham.run("get", "nodes", "node-1", "ghost", "node-3", "-o", "json")
    assert result.returncode == 1
    assert result.stderr == 'gingham: error: Node "ghost" not found\n'
    names = [item["metadata"]["name"] for item in json.loads(result.stdout)["items"]]
    assert names == ["node-1", "node-3"]


def test_get_one_name_prints_the_object_itself(sqlite_gingham: Gingham) -> None:
    gingham = sqlite_gingham
    gingham.ok("apply", "-f", str(EXAMPLES / "fabric.yaml"))
    body = json.loads(gingham.ok("get", "bgppeer", "tor-rack1", "-o", "json"))
    assert body["kind"] == "BGPPeer"
    assert body["spec"]["peerIP"] == "192.168.10.1"
    yaml_text = gingham.ok("get", "bgppeer", "tor-rack1", "-o", "yaml")
    assert load_documents(yaml_text, "out")[0].to_document() == body


def test_kind_is_case_insensitive_singular_or_plural(sqlite_gingham: Gingham) -> None:
    gingham = sqlite_gingham
    gingham.ok("apply", "-f", str(EXAMPLES / "fabric.yaml"))
    tables = {word: gingham.ok("get", word) for word in ("IPPools", "pool", "ippool")}
    assert len(set(tables.values())) == 1
    assert "default-pool" in tables["pool"]
    assert gingham.ok("get", "BGPCONFIG").startswith("NAME      LOGSEVERITY")
    result = gingham.run("get", "ippol")
    assert result.returncode == 1
    assert result.stderr.startswith('gingham: error: unknown resource kind "ippol" (did you mean')


def test_apply_json_from_stdin_then_change_it(gingham: Gingham) -> None:
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "gingham.io/v1",
            "kind": "IPPool",
            "metadata": {"name": f"pool-{i}"},
            "spec": {"cidr": f"10.{i}.0.0/16"},
        }
        for i in (1, 2)
    ]
    pools = {"kind": "List", "items": items}
    out = gingham.ok("apply", "-f", "-", stdin=json.dumps(pools))
    assert out.splitlines() == ['ippool "pool-1" created', 'ippool "pool-2" created']
    items[1]["spec"]["disabled"] = True
    out = gingham.ok("apply", "-f", "-", stdin=json.dumps(pools))
    assert out.splitlines() == ['ippool "pool-1" unchanged', 'ippool "pool-2" configured']
    assert [p["spec"]["disabled"] for p in gingham.stored("IPPool")] == [False, True]


def test_applying_a_stale_resource_version_is_a_conflict(gingham: Gingham) -> None:
    gingham.ok("apply", "-f", str(EXAMPLES / "fabric.yaml"))
    read = gingham.ok("get", "ippool", "default-pool", "-o", "yaml")
    edited = read.replace("natOutgoing: true", "natOutgoing: false")
    assert gingham.ok("apply", "-f", "-", stdin=edited) == 'ippool "default-pool" configured\n'
    # The same edit again carries the revision read before the first write: stale.
    result = gingham.run("apply", "-f", "-", stdin=edited.replace("false", "true"))
    assert result.returncode == 1
    assert result.stderr.startswith('gingham: error: IPPool "default-pool" changed')
    (pool,) = [p for p in gingham.stored("IPPool") if p["metadata"]["name"] == "default-pool"]
    assert pool["spec"]["natOutgoing"] is False


def test_delete_goes_on_past_a_missing_name_and_exits_1(gingham: Gingham) -> None:
    gingham.ok("apply", "-f", str(EXAMPLES / "fabric.yaml"))
    result = gingham.run("delete", "Node", "node-1", "ghost", "node-2")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ['node "node-1" deleted', 'node "node-2" deleted']
    assert result.stderr == 'gingham: error: Node "ghost" not found\n'
    assert [node["metadata"]["name"] for node in gingham.stored("Node")] == ["node-3"]
