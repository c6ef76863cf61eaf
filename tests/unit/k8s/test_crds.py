"""CRDs generated from the model: the committed file matches the generator,
every CRD is a valid apiextensions/v1 object, and the schemas accept what the
model accepts and refuse what the model refuses field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gingham.k8s.crds import all_crds, crds_yaml
from gingham.model import parse_resource
from gingham.model.base import KINDS

ROOT = Path(__file__).resolve().parents[3]
CRDS = ROOT / "manifests" / "crds.yaml"


def test_committed_crds_match_the_generator() -> None:
    assert CRDS.read_text() == crds_yaml(), (
        "manifests/crds.yaml drifted from the model: run `gingham k8s crds -o manifests/crds.yaml`"
    )


def test_one_cluster_scoped_crd_per_kind_with_the_backends_plural() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in all_crds()}
    model_kinds = {k for k, cls in KINDS.items() if cls.__module__.startswith("gingham.")}
    assert set(crds) == model_kinds
    for kind, crd in crds.items():
        plural = KINDS[kind].plural.lower()
        assert crd["metadata"]["name"] == f"{plural}.gingham.io"
        assert crd["spec"]["scope"] == "Cluster"
        assert crd["spec"]["names"]["plural"] == plural
        [version] = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_schemas_are_structural_and_preserve_nothing_unknown() -> None:
    for crd in all_crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        nodes = [schema]
        for node in _walk(schema):
            nodes += list(node.get("properties", {}).values())
            if isinstance(node.get("items"), dict):
                nodes.append(node["items"])
            if isinstance(node.get("additionalProperties"), dict):
                nodes.append(node["additionalProperties"])
        for node in nodes:
            assert "type" in node or node.get("x-kubernetes-int-or-string"), (crd, node)
            assert "x-kubernetes-preserve-unknown-fields" not in node


def _as_jsonschema(node: Any) -> Any:
    """Kubernetes' OpenAPI dialect → plain JSON schema (nullable, int-or-string)."""
    if isinstance(node, list):
        return [_as_jsonschema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if out.pop("nullable", False):
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    return out


def _validator(kind: str) -> jsonschema.Draft4Validator:
    [crd] = [c for c in all_crds() if c["spec"]["names"]["kind"] == kind]
    schema = _as_jsonschema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def test_every_example_document_the_model_accepts_passes_its_crd() -> None:
    documents = list(yaml.safe_load_all((ROOT / "examples" / "fabric.yaml").read_text()))
    documents += list(yaml.safe_load_all((ROOT / "manifests" / "default-pool.yaml").read_text()))
    for document in documents:
        stored = parse_resource(document).to_document()  # what the backend writes
        errors = list(_validator(document["kind"]).iter_errors(stored))
        assert not errors, (document["metadata"]["name"], [e.message for e in errors])


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("IPPool", {"cidr": "10.0.0.0/16", "blockSize": 8}, "blockSize"),
        ("IPPool", {"cidr": "10.0.0.0/16", "ipipMode": "Sometimes"}, "ipipMode"),
        ("IPPool", {"blockSize": 26}, "cidr"),
        ("BGPConfiguration", {"asNumber": 0}, "asNumber"),
        ("BGPConfiguration", {"listenPort": 70000}, "listenPort"),
        ("BGPConfiguration", {"logSeverity": "Loud"}, "logSeverity"),
        ("BGPPeer", {"node": "Not_A_Name"}, "node"),
        ("Node", {"vxlan": {"tunnelMAC": "zz:00:00:00:00:01"}}, "tunnelMAC"),
        ("BlockAffinity", {"node": "n1", "cidr": "10.0.0.0/26", "state": "gone"}, "state"),
        ("IPAMConfiguration", {"maxBlocksPerHost": -1}, "maxBlocksPerHost"),
    ],
)
def test_schema_refuses_what_the_model_refuses(kind: str, spec: dict[str, Any], field: str) -> None:
    document = {
        "apiVersion": "gingham.io/v1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    }
    with pytest.raises(ValueError):
        parse_resource(document)
    errors = list(_validator(kind).iter_errors(document))
    assert errors, f"the CRD accepted {spec}"
    assert any(field in "/".join(map(str, e.absolute_path)) + e.message for e in errors), [
        e.message for e in errors
    ]
