"""A pytest run of its own, in a test's directory, for tests of the suite's own machinery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_pytest(directory: Path) -> subprocess.CompletedProcess[str]:
    """`pytest -q` on `directory` (which holds its own pytest.ini), importing this
    repository's `tests` package; its output, whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
