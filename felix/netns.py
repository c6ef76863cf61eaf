"""Open sockets inside another network namespace without moving the process.

A socket stays bound to the namespace it was created in, so felix (and the
tests) can talk rtnetlink to a pod or node namespace by creating the socket
on a short-lived thread that `setns(2)`s first. The switch is per thread:
the thread dies right after, so no other code ever runs in the wrong
namespace, even if switching back would fail.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def netns_path(name_or_path: str) -> str:
    """`foo` → /run/netns/foo; a path is returned as given."""
    return name_or_path if "/" in name_or_path else f"/run/netns/{name_or_path}"


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at `fd`."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def run_in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Run `fn` on a throwaway thread inside `netns` (a name or path); None: here.

    Sockets it creates stay in that namespace; `/proc/sys/net` files it opens
    are that namespace's sysctls.
    """
    if netns is None:
        return fn()
    path = netns_path(netns)
    fd = os.open(path, os.O_RDONLY)  # fails here, clearly, when the netns is gone
    box: list[tuple[bool, object]] = []

    def worker() -> None:
        try:
            setns(fd)
            box.append((True, fn()))
        except BaseException as exc:  # handed to the caller below
            box.append((False, exc))

    try:
        thread = threading.Thread(target=worker, name=f"setns:{path}", daemon=True)
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    ok, value = box[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


def socket_in_netns(netns: str | None, family: int, type_: int, proto: int = 0) -> socket.socket:
    """A socket created inside `netns` (a name or a path); None: this namespace."""
    return run_in_netns(netns, lambda: socket.socket(family, type_, proto))


def write_sysctls(netns: str | None, values: dict[str, str]) -> None:
    """Write `net/ipv4/...`-style keys (relative to /proc/sys) inside `netns`."""

    def write() -> None:
        for key, value in values.items():
            with open(f"/proc/sys/{key}", "w") as f:
                f.write(value)

    run_in_netns(netns, write)


def read_sysctl(netns: str | None, key: str) -> str:
    def read() -> str:
        with open(f"/proc/sys/{key}") as f:
            return f.read().strip()

    return run_in_netns(netns, read)
