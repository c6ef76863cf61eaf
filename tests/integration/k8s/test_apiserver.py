"""The kubernetes backend and the CLI against a real API server (the session's
control plane, tests/support/kube.py): CRDs as the server takes them, objects
its schema refuses, and a watcher that lost its history re-listing.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gingham.datastore.kubernetes import KubernetesDatastore
from gingham.k8s.crds import all_crds
from gingham.model import parse_resource
from tests.support.kube import KubeCluster

pytestmark = pytest.mark.kubernetes

ROOT = Path(__file__).resolve().parents[3]


def pool_document(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gingham.io/v1",
        "kind": "IPPool",
        "metadata": {"name": name},
        "spec": {"cidr": "10.80.0.0/16", **spec},
    }


@pytest.fixture
def pools(kube_cluster: KubeCluster) -> Iterator[KubeCluster]:
    try:
        yield kube_cluster
    finally:
        kube_cluster.kubectl("delete", "ippools,bgpconfigurations", "--all", "--wait=true")


def gingham(*argv: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("GINGHAM_DATASTORE", None)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.run(
        [sys.executable, "-m", "gingham.cli.main", "--datastore", "kubernetes", *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_every_crd_is_established_with_the_models_schema(kube_cluster: KubeCluster) -> None:
    served = json.loads(kube_cluster.kubectl("get", "crd", "-o", "json").stdout)["items"]
    by_name = {crd["metadata"]["name"]: crd for crd in served}
    for generated in all_crds():
        crd = by_name[generated["metadata"]["name"]]
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", conditions
        assert conditions.get("NonStructuralSchema") is None, conditions
        [version] = crd["spec"]["versions"]
        assert version["schema"] == generated["spec"]["versions"][0]["schema"]


def test_the_api_server_refuses_an_invalid_pool_naming_the_field(pools: KubeCluster) -> None:
    # Written past the gingham CLI (which checks the model first): the CRD's
    # schema is the last line of defence.
    result = pools.kubectl(
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump(pool_document("bad", blockSize=200, cidr="10.80.0.0/33")),
        check=False,
    )

    assert result.returncode != 0
    assert "spec.blockSize" in result.stderr and "less than or equal to" in result.stderr
    assert "spec.cidr" in result.stderr


def test_the_cli_reports_a_refusal_by_the_api_server_naming_the_field(
    pools: KubeCluster, tmp_path: Path
) -> None:
    # Annotations past Kubernetes' 256 KiB total: valid for our model, refused
    # by the API server itself.
    document = pool_document("big")
    document["metadata"]["annotations"] = {"note": "x" * 300_000}
    manifest = tmp_path / "big.yaml"
    manifest.write_text(yaml.safe_dump(document))

    result = gingham("apply", "-f", str(manifest), kubeconfig=pools.admin_kubeconfig)

    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert 'IPPool "big"' in result.stderr
    assert "metadata.annotations" in result.stderr and "Too long" in result.stderr
    assert pools.kubectl("get", "ippools", "-o", "name").stdout.strip() == ""


def _lines_until(
    process: subprocess.Popen[str], done: Callable[[Any], bool], timeout: float
) -> Any:
    """Read the follower's JSON lines until one satisfies `done`; return it."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.5):
            continue
        line = process.stdout.readline()
        if not line:
            break
        seen.append(json.loads(line))
        if done(seen[-1]):
            return seen[-1]
    raise AssertionError(f"follower never showed the expected state; it showed {seen}")


def test_a_follower_that_lost_its_history_relists_and_misses_nothing(
    pools: KubeCluster,
) -> None:
    plane = pools.plane
    for name in ("p0", "p1", "p2"):
        pools.apply(yaml.safe_dump(pool_document(name)))
    follower = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.k8s.follower", str(pools.admin_kubeconfig)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _lines_until(follower, lambda names: names == ["p0", "p1", "p2"], timeout=60)

        # The follower sleeps through everything below, holding the revision
        # of its last event; the restarts cut its watch, so on waking it
        # reconnects from that revision.
        follower.send_signal(signal.SIGSTOP)
        plane.restart("kube-apiserver")
        pools.kubectl("delete", "ippool", "p1")
        pools.apply(yaml.safe_dump(pool_document("p3")))
        pools.compact_etcd()
        # The API server's watch cache still holds the last events (whatever
        # etcd has); a restart empties it, as an upgrade or failover does.
        plane.restart("kube-apiserver")
        follower.send_signal(signal.SIGCONT)

        _lines_until(follower, lambda names: names == ["p0", "p2", "p3"], timeout=90)
    finally:
        follower.send_signal(signal.SIGCONT)
        follower.terminate()
        _, stderr = follower.communicate(timeout=30)

    # It found the history gone (410) and re-listed, rather than carrying on
    # from the revision it had.
    assert "410" in stderr or "too old resource version" in stderr, stderr
    assert "re-listing" in stderr, stderr


async def test_a_watch_across_many_short_streams_misses_and_repeats_nothing(
    pools: KubeCluster,
) -> None:
    # The API server ends each stream after 2 s (timeoutSeconds; it sends a
    # bookmark only about once a minute, none in streams this short), while
    # another kind's writes move the global revision on. Every reopened
    # stream must go on exactly after the last event read.
    kubeconfig = str(pools.admin_kubeconfig)
    watcher = KubernetesDatastore(kubeconfig, watch_seconds=2)
    writer = KubernetesDatastore(kubeconfig)
    other = parse_resource(
        {"apiVersion": "gingham.io/v1", "kind": "BGPConfiguration",
         "metadata": {"name": "default"}, "spec": {"asNumber": 64512}}
    )  # fmt: skip
    written: list[tuple[str, str]] = []
    try:
        start = await writer.list("IPPool")
        events = watcher.watch("IPPool", start.revision)
        other = await writer.create(other)
        began = time.monotonic()
        for i in range(12):
            pool = await writer.create(parse_resource(pool_document(f"s{i}")))
            written.append((pool.name, str(pool.resource_version)))
            bumped = other.spec.model_copy(update={"as_number": 64600 + i})
            other = await writer.update(other.model_copy(update={"spec": bumped}))
            await asyncio.sleep(0.5)  # spread the writes over several 2 s streams
        seen = [await asyncio.wait_for(anext(events), 30) for _ in written]
        assert time.monotonic() - began > 4  # the writes spanned at least two streams
        try:
            extra = await asyncio.wait_for(anext(events), 3)
        except TimeoutError:
            extra = None
        assert extra is None, f"an event nobody wrote: {extra}"
    finally:
        await watcher.close()
        await writer.close()

    assert [(e.obj.name, e.revision) for e in seen] == written
