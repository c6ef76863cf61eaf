"""Every manifest validates offline against the Kubernetes OpenAPI schemas
(kubernetes-validate, two Kubernetes versions, strict: unknown fields are
errors); our own kinds against the model and the generated CRDs; the kind
configs against kind's documented v1alpha4 fields; and the DaemonSet says what
the rest of Gingham expects (paths, flags, ports, service account)."""

from __future__ import annotations

import ipaddress
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from felix.main import parse_args as felix_args
from gingham.cli.main import build_parser
from gingham.model import parse_resource

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"
KIND_CONFIGS = ROOT / "kind-configs"
K8S_VERSIONS = ["1.30.0", "1.37.0"]


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kubernetes_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in documents(path):
            if not doc["apiVersion"].startswith("gingham.io/"):
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


def gingham_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted([*MANIFESTS.glob("*.yaml"), *KIND_CONFIGS.glob("*.yaml")]):
        for doc in documents(path):
            if doc["apiVersion"].startswith("gingham.io/"):
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("where", "doc"), kubernetes_documents(), ids=lambda v: str(v)[:60])
def test_manifest_validates_against_kubernetes_openapi(
    where: str, doc: dict[str, Any], version: str
) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{where} is invalid for Kubernetes {version}: {exc}")


def test_the_validator_is_not_vacuous() -> None:
    [daemonset] = [
        d for d in documents(MANIFESTS / "gingham-node.yaml") if d["kind"] == "DaemonSet"
    ]
    broken = yaml.safe_load(yaml.safe_dump(daemonset))
    broken["spec"]["template"]["spec"]["hostNetwrok"] = True  # a typo strict mode must catch
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


def test_manifests_cover_every_kind_of_object_the_issue_needs() -> None:
    kinds = {doc["kind"] for _, doc in kubernetes_documents()} | {
        doc["kind"] for _, doc in gingham_documents()
    }
    assert {
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "IPPool",
        "BGPConfiguration",
    } <= kinds


@pytest.mark.parametrize(("where", "doc"), gingham_documents(), ids=lambda v: str(v)[:60])
def test_gingham_documents_are_valid_resources(where: str, doc: dict[str, Any]) -> None:
    parse_resource(doc)  # raises InvalidResource naming the field


# --- the DaemonSet ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    [daemonset] = [
        d for d in documents(MANIFESTS / "gingham-node.yaml") if d["kind"] == "DaemonSet"
    ]
    assert daemonset["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1},
    }
    spec: dict[str, Any] = daemonset["spec"]["template"]["spec"]
    return spec


def host_path_of(pod: dict[str, Any], container: dict[str, Any], mount_path: str) -> str:
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == mount_path]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return str(volume["hostPath"]["path"])


def test_host_network_and_only_the_node_container_privileged(pod: dict[str, Any]) -> None:
    assert pod["hostNetwork"] is True
    privileged = [
        c["name"]
        for c in [*pod["initContainers"], *pod["containers"]]
        if c.get("securityContext", {}).get("privileged")
    ]
    assert privileged == ["node"]
    [init] = pod["initContainers"]
    assert init["securityContext"]["allowPrivilegeEscalation"] is False
    assert init["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_init_container_installs_the_cni_plugin_into_the_hosts_dirs(pod: dict[str, Any]) -> None:
    [init] = pod["initContainers"]
    script = init["command"][-1]
    words = script.split("cni install", 1)[1].split()
    args = build_parser().parse_args(["cni", "install", *words])  # the real CLI accepts them
    assert host_path_of(pod, init, args.bin_dir) == "/opt/cni/bin"
    assert host_path_of(pod, init, args.conf_dir) == "/etc/cni/net.d"
    # felix.sock lives where the plugin (on the host) is told to look for it.
    [node] = pod["containers"]
    assert host_path_of(pod, node, args.run_dir) == "/var/run/gingham"
    # The plugin runs on the host: the interpreter it names must be on the host too.
    assert re.search(r"exec (/opt/gingham)/bin/python3 ", script)
    assert host_path_of(pod, init, "/opt/gingham") == "/opt/gingham"


def test_node_container_runs_gingham_node_on_the_kubernetes_datastore(pod: dict[str, Any]) -> None:
    [node] = pod["containers"]
    command = node["command"]
    assert command[:3] == ["gingham", "node", "run"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options == {
        "--node": "$(NODE_NAME)",
        "--datastore": "kubernetes",
        "--run-dir": "/var/run/gingham",
    }
    env = {e["name"]: e for e in node["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_pre_stop_drains_a_leaving_node_and_restarts_otherwise(pod: dict[str, Any]) -> None:
    [node] = pod["containers"]
    command = node["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    words = shlex.split(command[2])
    assert words[:4] == ["exec", "gingham", "node", "stop"]
    args = build_parser().parse_args(words[2:])  # the real CLI accepts them
    assert args.drain_if_cordoned and not args.drain
    assert (args.node, args.datastore) == ("$NODE_NAME", "kubernetes")
    # The hook stops the `node run` of the same run dir, and within the grace period.
    run = dict(zip(node["command"][3::2], node["command"][4::2], strict=True))
    assert args.run_dir == run["--run-dir"]
    assert args.timeout < pod["terminationGracePeriodSeconds"]


def test_probes_check_felixs_and_the_speakers_health_endpoints(pod: dict[str, Any]) -> None:
    from bird_agent.main import parse_args as speaker_args
    from gingham.k8s import probe

    [node] = pod["containers"]
    felix = felix_args(["--node", "n", "--datastore", "kubernetes", "--run-dir", "/r"])
    speaker = speaker_args(["--node", "n", "--datastore", "kubernetes", "--run-dir", "/r"])
    # The probe's defaults are where the agents listen by default (the DaemonSet passes no --http).
    assert (felix.http, speaker.http) == (probe.FELIX, probe.SPEAKER)
    for name, kind in (("livenessProbe", "liveness"), ("readinessProbe", "readiness")):
        command = node[name]["exec"]["command"]
        assert command[:3] == ["python3", "-m", "gingham.k8s.probe"]
        args = command[3:]
        assert args[0] == kind
        timeout = float(args[args.index("--timeout") + 1])
        # Two endpoints, each bounded by --timeout, inside the kubelet's timeout.
        assert 2 * timeout <= node[name]["timeoutSeconds"]


def test_runs_on_control_plane_nodes_with_the_rbac_service_account(pod: dict[str, Any]) -> None:
    assert {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in pod["tolerations"]
    accounts = [d for d in documents(MANIFESTS / "rbac.yaml") if d["kind"] == "ServiceAccount"]
    assert pod["serviceAccountName"] == accounts[0]["metadata"]["name"]
    assert pod["terminationGracePeriodSeconds"] >= 10


def test_dockerfile_copies_what_exists_and_defaults_to_non_root() -> None:
    text = (MANIFESTS / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:\S+-slim", text, re.M)
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"
    [user] = re.findall(r"^USER (\S+)$", text, re.M)
    assert user not in ("root", "0")
    assert "exabgp" in (ROOT / "pyproject.toml").read_text()  # installed with the project


# --- kind configs ----------------------------------------------------------------

# kind's documented v1alpha4 Cluster fields (https://kind.sigs.k8s.io/docs/user/configuration/).
_PATCHES = {"type": "array", "items": {"type": "string"}}
KIND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "apiVersion"],
    "properties": {
        "kind": {"enum": ["Cluster"]},
        "apiVersion": {"enum": ["kind.x-k8s.io/v1alpha4"]},
        "name": {"type": "string"},
        "featureGates": {"type": "object"},
        "runtimeConfig": {"type": "object"},
        "kubeadmConfigPatches": _PATCHES,
        "kubeadmConfigPatchesJSON6902": {"type": "array"},
        "containerdConfigPatches": _PATCHES,
        "containerdConfigPatchesJSON6902": _PATCHES,
        "networking": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "ipFamily": {"enum": ["ipv4", "ipv6", "dual"]},
                "apiServerAddress": {"type": "string"},
                "apiServerPort": {"type": "integer"},
                "podSubnet": {"type": "string"},
                "serviceSubnet": {"type": "string"},
                "disableDefaultCNI": {"type": "boolean"},
                "kubeProxyMode": {"enum": ["iptables", "ipvs", "nftables", "none"]},
                "dnsSearch": {"type": "array", "items": {"type": "string"}},
            },
        },
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["role"],
                "properties": {
                    "role": {"enum": ["control-plane", "worker"]},
                    "image": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "extraMounts": {"type": "array"},
                    "extraPortMappings": {"type": "array"},
                    "kubeadmConfigPatches": _PATCHES,
                    "kubeadmConfigPatchesJSON6902": {"type": "array"},
                },
            },
        },
    },
}

KIND_FILES = {
    "single-node.yaml": (1, MANIFESTS / "default-pool.yaml"),
    "three-node.yaml": (3, MANIFESTS / "default-pool.yaml"),
    "three-node-crosssubnet.yaml": (3, KIND_CONFIGS / "crosssubnet-pool.yaml"),
}


def test_every_kind_config_is_checked() -> None:
    configs = {p.name for p in KIND_CONFIGS.glob("*.yaml")}
    assert configs - {"crosssubnet-pool.yaml"} == set(KIND_FILES)


@pytest.mark.parametrize("name", sorted(KIND_FILES))
def test_kind_config_disables_the_default_cni_and_matches_the_pool(name: str) -> None:
    nodes, pool_file = KIND_FILES[name]
    [config] = documents(KIND_CONFIGS / name)
    jsonschema.validate(config, KIND_SCHEMA)
    assert len(config["nodes"]) == nodes
    assert [n["role"] for n in config["nodes"]].count("control-plane") == 1
    assert config["networking"]["disableDefaultCNI"] is True
    [pool] = [d for d in documents(pool_file) if d["kind"] == "IPPool"]
    assert ipaddress.ip_network(config["networking"]["podSubnet"]) == ipaddress.ip_network(
        pool["spec"]["cidr"]
    )


def test_crosssubnet_config_uses_a_pod_subnet_of_its_own() -> None:
    [plain] = documents(KIND_CONFIGS / "three-node.yaml")
    [cross] = documents(KIND_CONFIGS / "three-node-crosssubnet.yaml")
    mine = ipaddress.ip_network(cross["networking"]["podSubnet"])
    assert not mine.overlaps(ipaddress.ip_network(plain["networking"]["podSubnet"]))
    [pool] = [d for d in documents(KIND_CONFIGS / "crosssubnet-pool.yaml") if d["kind"] == "IPPool"]
    assert pool["spec"]["vxlanMode"] == "CrossSubnet"
    assert {n.get("labels", {}).get("rack") for n in cross["nodes"]} == {"rack1", "rack2"}
