"""The nftables adapter: apply felix's NAT table with `nft -f -` in a namespace."""

from __future__ import annotations

import subprocess

from felix.nat import NAT_TABLE, replace_script
from felix.netns import netns_path


class NftError(RuntimeError):
    pass


def _prefix(netns: str | None) -> list[str]:
    return [] if netns is None else ["nsenter", f"--net={netns_path(netns)}"]


def apply_nat(netns: str | None, ruleset: str | None) -> None:
    """Replace felix's table atomically (None: remove it)."""
    proc = subprocess.run(
        [*_prefix(netns), "nft", "-f", "-"],
        input=replace_script(ruleset),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise NftError(f"nft: {proc.stderr.strip()}")


def nat_table_present(netns: str | None) -> bool:
    proc = subprocess.run(
        [*_prefix(netns), "nft", "list", "table", "ip", NAT_TABLE],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0
