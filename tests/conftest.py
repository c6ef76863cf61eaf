"""Suite-wide: the run checks that nothing it started survives it (tests/support/leaks.py)."""

from tests.support.leaks import pytest_configure, pytest_runtest_setup, pytest_sessionfinish

__all__ = ["pytest_configure", "pytest_runtest_setup", "pytest_sessionfinish"]
