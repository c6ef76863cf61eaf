"""Fixtures for real-runtime tests: a node netns, reference and gingham CNI setups."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cni.install import install
from tests.support.runtimes.felix_node import FelixNode, felix_unavailable, running_felix
from tests.support.runtimes.netns import node_netns

REFERENCE_BIN = Path("/usr/lib/cni")


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/install-system-deps)")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temp root: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="gtrt", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def image_cache() -> Iterator[Path]:
    """Built once per session; short path because podman caps runroot at 50 chars."""
    path = Path(tempfile.mkdtemp(prefix="gtimg", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def node() -> Iterator[str]:
    with node_netns("nd") as path:
        yield path


def reference_conflist(
    conf_dir: Path,
    name: str,
    subnet: str,
    ipam_dir: Path,
    chain: list[dict[str, object]] | None = None,
) -> Path:
    """ptp + host-local (Go reference plugins), IPAM state kept under ipam_dir."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            },
            *(chain or []),
        ],
    }
    path = conf_dir / f"10-{name}.conflist"
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.fixture
def gingham_felix(short_tmp: Path, node: str) -> Iterator[FelixNode]:
    """The real felix in the node netns; skipped while the daemon does not exist."""
    reason = felix_unavailable()
    if reason:
        pytest.skip(reason)
    with running_felix(short_tmp / "felix", node) as felix:
        yield felix


def install_gingham(short_tmp: Path, felix: FelixNode) -> tuple[Path, Path]:
    """Our plugin + conflist as `gingham cni install` writes them by default."""
    bin_dir, conf_dir = short_tmp / "bin", short_tmp / "net.d"
    install(bin_dir, conf_dir, run_dir=str(felix.run_dir))
    return bin_dir, conf_dir
