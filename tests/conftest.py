"""Suite-wide: the run checks that nothing it started survives it (tests/support/leaks.py);
`kube_cluster`, a real Kubernetes control plane started once per session on demand
(tests/support/kube.py); each test's tier marker from its directory (tests/support/tiers.py)."""

from tests.support.kube import kube_cluster
from tests.support.leaks import pytest_configure, pytest_runtest_setup, pytest_sessionfinish
from tests.support.tiers import pytest_collection_modifyitems

__all__ = [
    "kube_cluster",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
]
