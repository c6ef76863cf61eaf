"""Concurrent assigns for one node, served as a group: one block write for many.

A node's pods are started in bursts (a runtime starts many sandboxes at once),
and every assign on a node wants the same thing: the next free addresses of its
affine block. Served one after another, each pays the whole protocol (reads,
handle write, block compare-and-swap) while the others queue; served at once
without a queue, all but one lose the block's CAS race. So an assign first
joins the node's waiting list (per pool), and whoever holds the node's turn
takes every waiting assign with a distinct handle into one group, which the
allocator serves together: one set of reads, the handles written side by
side, one block write for the lot (gingham.ipam.allocator).

Invariants:
- A group is served by a task of its own, so a caller that gives up (a
  cancelled gRPC call) never interrupts the others' assigns half-way; a
  caller that gives up after its assign was taken into a group gets its
  addresses released when the group is done (all or nothing, as before).
- Each assign in a group succeeds or fails on its own: a failure of the
  group's step fails only the assigns it left unserved, each with the error,
  and gives back what they had got so far.
- Two assigns for one handle never share a group (their handle writes would
  race each other); the later one waits for the next.
- At most one group per node is being served at a time in this process
  (the node's turn, as Calico's per-host IPAM lock); other processes and
  nodes still race, and the block CAS keeps that safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence

from gingham.ipam.blocks import IPAddress

# At most this many assigns in one group (bounds one group's handle writes).
GROUP_MAX = 64


class PendingAssign:
    """One assign call: what it wants, what it got, or why it failed."""

    __slots__ = ("count", "error", "got", "group", "handle", "secondary")

    def __init__(self, handle: str, secondary: Mapping[str, str], count: int) -> None:
        self.handle = handle
        self.secondary = secondary
        self.count = count
        self.got: list[IPAddress] = []
        self.error: BaseException | None = None
        # The task serving the group this assign was taken into; None while waiting.
        self.group: asyncio.Task[None] | None = None

    @property
    def missing(self) -> int:
        return self.count - len(self.got)


ServeGroup = Callable[[list[PendingAssign]], Awaitable[None]]
Release = Callable[[Sequence[IPAddress]], Awaitable[None]]


class AssignGroups:
    """The waiting assigns of each (node, pool) and each node's turn."""

    def __init__(self) -> None:
        self._turns: dict[str, asyncio.Lock] = {}
        self._waiting: dict[tuple[str, str | None], list[PendingAssign]] = {}
        self._releasing: set[asyncio.Future[None]] = set()

    async def assign(
        self,
        node: str,
        pool: str | None,
        pending: PendingAssign,
        serve: ServeGroup,
        release: Release,
    ) -> list[IPAddress]:
        """Wait for `pending` to be served (by its own group or an earlier one)."""
        key = (node, pool)
        self._waiting.setdefault(key, []).append(pending)
        try:
            async with self._turn(node):
                if pending.group is None:
                    group = self._take(key)
                    task = asyncio.ensure_future(serve(group))
                    for member in group:
                        member.group = task
                assert pending.group is not None
                await asyncio.shield(pending.group)
        except BaseException:
            self._give_up(key, pending, release)
            raise
        if pending.error is not None:
            raise _again(pending.error)
        return pending.got

    def _turn(self, node: str) -> asyncio.Lock:
        lock = self._turns.get(node)
        if lock is None:
            lock = self._turns[node] = asyncio.Lock()
        return lock

    def _take(self, key: tuple[str, str | None]) -> list[PendingAssign]:
        group: list[PendingAssign] = []
        handles: set[str] = set()
        left: list[PendingAssign] = []
        for member in self._waiting[key]:
            if member.handle in handles or len(group) >= GROUP_MAX:
                left.append(member)
            else:
                handles.add(member.handle)
                group.append(member)
        if left:
            self._waiting[key] = left
        else:
            del self._waiting[key]
        return group

    def _give_up(
        self, key: tuple[str, str | None], pending: PendingAssign, release: Release
    ) -> None:
        """The caller of `pending` is gone: it must not keep addresses."""
        if pending.group is None:
            current = self._waiting.get(key)
            if current is not None and pending in current:
                current.remove(pending)
                if not current:
                    del self._waiting[key]
            return

        def give_back(_: asyncio.Task[None]) -> None:
            if pending.got:
                got, pending.got = list(pending.got), []
                task = asyncio.ensure_future(release(got))
                self._releasing.add(task)  # a strong reference until it is done
                task.add_done_callback(self._releasing.discard)

        pending.group.add_done_callback(give_back)


def fail_unserved(group: Sequence[PendingAssign], error: BaseException) -> list[IPAddress]:
    """Mark every assign of `group` still missing addresses as failed with
    `error`; returns the addresses they had got, for the caller to give back."""
    partial: list[IPAddress] = []
    for member in group:
        if member.missing:
            partial += member.got
            member.got = []
            member.error = error
    return partial


def _again(error: BaseException) -> BaseException:
    """`error` to raise in one more task: a fresh instance when it can be made
    (one exception object raised in several tasks would share a traceback)."""
    with contextlib.suppress(Exception):
        return type(error)(*error.args)
    return error
