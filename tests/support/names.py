"""Unique, short names for namespaces and links a test creates (15-char IFNAMSIZ).

Inside a test run every prefix handed out is also recorded (in the file named by
`$GINGHAM_TEST_NAMES`, which `tests/support/leaks.py` sets), so the run can tell
its own leftover namespaces and links from another run's at the end.
"""

from __future__ import annotations

import os
import secrets

NAMES_VARIABLE = "GINGHAM_TEST_NAMES"


def record_prefix(prefix: str) -> None:
    """Claim every namespace/link name starting with `prefix` for this test run."""
    path = os.environ.get(NAMES_VARIABLE)
    if not path:
        return  # not under pytest (a benchmark): nothing checks
    # One short O_APPEND write per name: atomic across worker processes.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{prefix}\n".encode())
    finally:
        os.close(fd)


def unique_prefix(tag: str) -> str:
    """`gt<tag><6 hex>`: per-test prefix; tag should be ≤ 3 chars to leave room."""
    prefix = f"gt{tag}{secrets.token_hex(3)}"
    record_prefix(prefix)
    return prefix


def short_pid_tag() -> str:
    return format(os.getpid() % 0xFFFF, "04x")
