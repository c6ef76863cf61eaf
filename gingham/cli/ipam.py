"""`gingham ipam ...`: look at and operate IPAM (show, allocate, release, check).

- ``show [-o table|json] [--show-blocks]``: per pool size/allocated/free; with
  ``--show-blocks`` one row per block (node affinity, allocated, free,
  borrowed).
- ``allocate --node N --handle H [--pool CIDR|NAME] [--ip IP]``: prints the
  address (operators use it for static and tunnel addresses).
- ``release --handle H | --ip IP``.
- ``check [--repair]``: leaked addresses and stale claims (exit 1 when any
  remain unrepaired).
- ``release-block --node N --cidr CIDR``: give an empty block back.

Every IPAM error becomes one ``gingham: error:`` line and exit 1.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from gingham.cli.common import EXIT_OK, EXIT_USER_ERROR, CLIError, open_store

if TYPE_CHECKING:
    from gingham.ipam.allocator import IPAM
    from gingham.ipam.query import PoolUsage


@asynccontextmanager
async def _ipam(args: argparse.Namespace) -> AsyncIterator[IPAM]:
    from gingham.ipam.allocator import IPAM
    from gingham.ipam.errors import IPAMError

    async with open_store(args) as store:
        try:
            yield IPAM(store)
        except IPAMError as exc:
            raise CLIError(str(exc)) from None


def _address(text: str, flag: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise CLIError(f'{flag}: "{text}" is not an IP address') from None


def _network(text: str, flag: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        raise CLIError(f'{flag}: "{text}" is not a network CIDR (e.g. 10.0.0.0/26)') from None


async def run_show(args: argparse.Namespace) -> int:
    from gingham.ipam.query import list_blocks, list_pools, pool_usage

    async with open_store(args) as store:
        usage = pool_usage(await list_pools(store), await list_blocks(store))
    if args.output == "json":
        print(json.dumps([_usage_document(u, args.show_blocks) for u in usage], indent=2))
        return EXIT_OK
    rows = [["POOL", "CIDR", "SIZE", "ALLOCATED", "FREE"]]
    rows += [
        [u.name, str(u.cidr), str(u.size), str(u.allocated), str(u.free)]
        + (["(disabled)"] if u.disabled else [])
        for u in usage
    ]
    print(_table(rows))
    if args.show_blocks:
        block_rows = [["BLOCK", "POOL", "AFFINITY", "ALLOCATED", "FREE", "BORROWED"]]
        for u in usage:
            for b in u.blocks:
                block_rows.append(
                    [
                        str(b.cidr),
                        u.name,
                        f"host:{b.node}" if b.node else "",
                        str(b.allocated),
                        str(b.free),
                        str(b.borrowed),
                    ]
                )
        print()
        print(_table(block_rows))
    return EXIT_OK


def _usage_document(usage: PoolUsage, with_blocks: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "pool": usage.name,
        "cidr": str(usage.cidr),
        "size": usage.size,
        "allocated": usage.allocated,
        "free": usage.free,
        "disabled": usage.disabled,
    }
    if with_blocks:
        doc["blocks"] = [
            {
                "cidr": str(b.cidr),
                "affinity": f"host:{b.node}" if b.node else None,
                "allocated": b.allocated,
                "free": b.free,
                "borrowed": b.borrowed,
            }
            for b in usage.blocks
        ]
    return doc


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    return "\n".join(
        "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


async def run_allocate(args: argparse.Namespace) -> int:
    ip = _address(args.ip, "--ip") if args.ip else None
    async with _ipam(args) as ipam:
        got = await ipam.assign(args.handle, args.node, pool=args.pool, ip=ip)
    for address in got:
        print(address)
    return EXIT_OK


async def run_release(args: argparse.Namespace) -> int:
    if bool(args.handle) == bool(args.ip):
        raise CLIError("release: give exactly one of --handle H or --ip IP")
    async with _ipam(args) as ipam:
        if args.handle:
            released = await ipam.release(args.handle)
            for address in released:
                print(f"released {address}")
            if not released:
                print(f'handle "{args.handle}" holds no addresses')
        else:
            ip = _address(args.ip, "--ip")
            if await ipam.release_ip(ip):
                print(f"released {ip}")
            else:
                print(f"{ip} was not allocated")
    return EXIT_OK


async def run_check(args: argparse.Namespace) -> int:
    from gingham.ipam.check import check, repair

    async with _ipam(args) as ipam:
        report = await check(ipam.store)
        for line in report.lines():
            print(line)
        if report.clean:
            print("IPAM is consistent: no leaked addresses, no stale blocks or claims")
            return EXIT_OK
        if not args.repair:
            print("run `gingham ipam check --repair` to release these")
            return EXIT_USER_ERROR
        for line in await repair(ipam, report):
            print(line)
        after = await check(ipam.store)
    if after.clean:
        print("repaired: IPAM is consistent")
        return EXIT_OK
    print("still inconsistent after repair (something changed meanwhile); run check again:")
    for line in after.lines():
        print(line)
    return EXIT_USER_ERROR


async def run_release_block(args: argparse.Namespace) -> int:
    cidr = _network(args.cidr, "--cidr")
    async with _ipam(args) as ipam:
        await ipam.release_block(args.node, cidr)
    print(f"released block {cidr} of node {args.node}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    ipam = subparsers.add_parser("ipam", help="IP address management: show, allocate, check")
    commands = ipam.add_subparsers(dest="ipam_command", metavar="<ipam command>", required=True)

    show = commands.add_parser("show", help="pool usage (and blocks with --show-blocks)")
    show.add_argument("-o", "--output", choices=("table", "json"), default="table")
    show.add_argument("--show-blocks", action="store_true", help="one row per block")
    show.set_defaults(func=run_show)

    allocate = commands.add_parser("allocate", help="allocate an address and print it")
    allocate.add_argument("--node", required=True)
    allocate.add_argument("--handle", required=True, help="who holds the address")
    allocate.add_argument("--pool", help="only this pool (CIDR or name)")
    allocate.add_argument("--ip", help="this exact address (static IP)")
    allocate.set_defaults(func=run_allocate)

    release = commands.add_parser("release", help="release by handle or by address")
    release.add_argument("--handle")
    release.add_argument("--ip")
    release.set_defaults(func=run_release)

    check = commands.add_parser("check", help="find leaked addresses and stale claims")
    check.add_argument("--repair", action="store_true", help="release what is found")
    check.set_defaults(func=run_check)

    release_block = commands.add_parser("release-block", help="give an empty block back")
    release_block.add_argument("--node", required=True)
    release_block.add_argument("--cidr", required=True)
    release_block.set_defaults(func=run_release_block)
