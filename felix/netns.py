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


def socket_in_netns(netns: str | None, family: int, type_: int, proto: int = 0) -> socket.socket:
    """A socket created inside `netns` (a name or a path); None: this namespace."""
    if netns is None:
        return socket.socket(family, type_, proto)
    path = netns_path(netns)
    fd = os.open(path, os.O_RDONLY)  # fails here, clearly, when the netns is gone
    box: list[socket.socket | BaseException] = []

    def worker() -> None:
        try:
            setns(fd)
            box.append(socket.socket(family, type_, proto))
        except BaseException as exc:  # handed to the caller below
            box.append(exc)

    try:
        thread = threading.Thread(target=worker, name=f"setns:{path}", daemon=True)
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result
