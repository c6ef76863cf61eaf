"""The real `gingham` CLI against the fake API server with `--datastore kubernetes`,
the kubeconfig found where users keep it ($KUBECONFIG)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.fake_apiserver import FakeApiServer

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


def test_apply_and_get_through_the_kubernetes_datastore(fake: FakeApiServer) -> None:
    applied = gingham(
        "--datastore",
        "kubernetes",
        "apply",
        "-f",
        "manifests/default-pool.yaml",
        kubeconfig=fake.kubeconfig,
    )
    assert applied.returncode == 0, applied.stderr

    shown = gingham(
        "--datastore", "kubernetes", "get", "ippools", "-o", "yaml", kubeconfig=fake.kubeconfig
    )

    assert shown.returncode == 0, shown.stderr
    [pool] = [d for d in yaml.safe_load_all(shown.stdout) if d]
    assert pool["spec"]["cidr"] == "10.244.0.0/16"
    stored = fake.state.objects[("ippools", "default-ipv4-pool")]
    assert stored["apiVersion"] == "gingham.io/v1" and stored["kind"] == "IPPool"
    assert ("bgpconfigurations", "default") in fake.state.objects


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    result = gingham("--datastore", "kubernetes", "get", "ippools", kubeconfig=missing)

    assert result.returncode == 1
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_api_server_down_is_unavailable_not_a_traceback(fake: FakeApiServer) -> None:
    fake.stop()
    result = gingham(
        "--datastore",
        f"kubernetes://?kubeconfig={fake.kubeconfig}",
        "get",
        "ippools",
        kubeconfig="/nonexistent",
    )

    assert result.returncode == 1
    assert "unavailable" in result.stderr and "Traceback" not in result.stderr
