"""The real `gingham` CLI with `--datastore kubernetes` against the session's
API server, the kubeconfig found where users keep it ($KUBECONFIG)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gingham.k8s.cluster import free_port
from tests.support.kube import KubeCluster

ROOT = Path(__file__).resolve().parents[3]


def gingham(*argv: str, kubeconfig: Path | str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("GINGHAM_DATASTORE", None)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.run(
        [sys.executable, "-m", "gingham.cli.main", *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture
def cluster(kube_cluster: KubeCluster) -> Iterator[KubeCluster]:
    try:
        yield kube_cluster
    finally:
        kube_cluster.kubectl("delete", "ippools,bgpconfigurations", "--all", "--wait=true")


@pytest.mark.kubernetes
def test_apply_and_get_through_the_kubernetes_datastore(cluster: KubeCluster) -> None:
    kubeconfig = cluster.admin_kubeconfig
    applied = gingham(
        "--datastore", "kubernetes", "apply", "-f", "manifests/default-pool.yaml",
        kubeconfig=kubeconfig,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr

    shown = gingham("--datastore", "kubernetes", "get", "ippools", "-o", "yaml",
                    kubeconfig=kubeconfig)  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    [pool] = [d for d in yaml.safe_load_all(shown.stdout) if d]
    assert pool["spec"]["cidr"] == "10.244.0.0/16"
    # What kubectl sees is the same object, as a gingham.io/v1 custom resource.
    stored = yaml.safe_load(
        cluster.kubectl("get", "ippool", "default-ipv4-pool", "-o", "yaml").stdout
    )
    assert (stored["apiVersion"], stored["kind"]) == ("gingham.io/v1", "IPPool")
    assert stored["spec"]["cidr"] == "10.244.0.0/16"
    cluster.kubectl("get", "bgpconfiguration", "default")  # the manifest's second document


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    result = gingham("--datastore", "kubernetes", "get", "ippools", kubeconfig=missing)

    assert result.returncode == 1
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.kubernetes
def test_api_server_down_is_unavailable_not_a_traceback(
    kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    # The session's credentials, but a port nothing listens on: a server that is down.
    config = yaml.safe_load(kube_cluster.admin_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port('127.0.0.1')}"
    down = tmp_path / "down.kubeconfig"
    down.write_text(yaml.safe_dump(config))

    result = gingham(
        "--datastore", f"kubernetes://?kubeconfig={down}", "get", "ippools",
        kubeconfig="/nonexistent",
    )  # fmt: skip

    assert result.returncode == 1
    assert "unavailable" in result.stderr and "Traceback" not in result.stderr
