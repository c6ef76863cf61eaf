"""Every test carries the marker of its tier, taken from its directory.

- ``unit``        tests/unit: pure code, fakes named as fakes, no root, no
                  daemons, no sleeping (`make test-fast` runs these, in parallel);
- ``integration`` tests/integration: real kernel state in namespaces of their
                  own, real daemons (ExaBGP, BIRD, FRR, GoBGP, etcd); most need root;
- ``e2e``         tests/e2e: whole labs, container runtimes, Kubernetes, VMs;
- ``vm``          tests/e2e/vm: QEMU guests (minutes each under TCG).

Markers a test sets itself say more: ``root``, ``slow``, ``etcd``,
``kubernetes``. Select with ``-m``, e.g. ``pytest -m "not e2e"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "e2e")
VM_DIRECTORIES = (("e2e", "vm"),)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            parts = item.path.resolve().relative_to(TESTS).parts
        except ValueError:  # a test outside tests/ (a pytest run of the suite's own machinery)
            continue
        if parts and parts[0] in TIERS:
            item.add_marker(parts[0])
        if any(parts[: len(d)] == d for d in VM_DIRECTORIES):
            item.add_marker("vm")
