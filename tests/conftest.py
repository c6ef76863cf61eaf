"""Suite-wide: the run checks that nothing it started survives it (tests/support/leaks.py);
`kube_cluster`, a real Kubernetes control plane started once per session on demand
(tests/support/kube.py)."""

from tests.support.kube import kube_cluster
from tests.support.leaks import pytest_configure, pytest_runtest_setup, pytest_sessionfinish

__all__ = ["kube_cluster", "pytest_configure", "pytest_runtest_setup", "pytest_sessionfinish"]
