"""Unique, short names for namespaces and links a test creates (15-char IFNAMSIZ)."""

from __future__ import annotations

import os
import secrets


def unique_prefix(tag: str) -> str:
    """`gt<tag><6 hex>`: per-test prefix; tag should be ≤ 3 chars to leave room."""
    return f"gt{tag}{secrets.token_hex(3)}"


def short_pid_tag() -> str:
    return format(os.getpid() % 0xFFFF, "04x")
