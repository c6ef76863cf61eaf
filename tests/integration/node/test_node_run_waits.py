"""`gingham node run` waits for a datastore that is not up yet (a node booting
before its etcd), saying why, instead of exiting — then goes on as usual; with
``--datastore-wait`` it gives up after that long with the CLI's one-line error.

Both cases stop before any child is started (the Node is missing or the
datastore never answers), so nothing here touches the host's network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.etcd import EtcdServer, etcd_binary
from tests.support.poll import wait_for

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed")
GINGHAM = str(Path(sys.executable).parent / "gingham")


def node_run(url: str, run_dir: Path, *extra: str) -> list[str]:
    return [GINGHAM, "node", "run", "--node", "n1", "--datastore", url,
            "--run-dir", str(run_dir), *extra]  # fmt: skip


def test_gives_up_after_datastore_wait_with_a_clear_error(tmp_path: Path) -> None:
    etcd = EtcdServer()  # never started: its port refuses connections
    try:
        done = subprocess.run(node_run(etcd.url, tmp_path / "run", "--datastore-wait", "2"),
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    finally:
        etcd.close()
    assert done.returncode != 0
    assert "unavailable" in done.stderr and "retrying in" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"gingham: error: datastore unavailable at {etcd.url}: ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "felix.sock").exists()


def test_waits_for_the_datastore_then_reads_the_node(tmp_path: Path) -> None:
    etcd = EtcdServer()
    log = tmp_path / "node.log"
    with log.open("w") as out:
        proc = subprocess.Popen(node_run(etcd.url, tmp_path / "run"), stdout=out,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for(lambda: "retrying in" in log.read_text(), timeout=120,
                 what="node run reports the unavailable datastore")  # fmt: skip
        assert proc.poll() is None, "node run exited instead of waiting"
        etcd.start(timeout=60)
        # The datastore answers now: no Node "n1" in it, so node run says so and stops.
        assert proc.wait(timeout=120) == 1
        assert 'Node "n1" does not exist' in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        etcd.close()
