"""Functions run in `spawn`ed processes by the contract suite.

Each opens its own store from the URL (as a separate Gingham process would),
does its part and reports through a multiprocessing queue. Blocking barrier
waits are fine here: the child's event loop runs nothing else.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gingham.datastore import Conflict, NotFound, open_datastore
from tests.integration.datastore.kinds import WIDGET, widget, with_value

BARRIER_TIMEOUT = 60.0


def race_rounds(  # noqa: PLR0917  (multiprocessing passes args positionally)
    url: str, name: str, rounds: int, worker: int, barrier: Any, results: Any
) -> None:
    """Each round: everyone reads the same revision, then everyone tries to write."""

    async def run() -> None:
        store = open_datastore(url)
        try:
            for round_ in range(rounds):
                barrier.wait(BARRIER_TIMEOUT)
                current = await store.get(WIDGET, name)
                barrier.wait(BARRIER_TIMEOUT)  # all have read before anyone writes
                attempt = with_value(current, current.spec.value + 1, owner=f"w{worker}")
                try:
                    written = await store.update(attempt)
                except Conflict:
                    results.put((round_, worker, None))
                else:
                    results.put((round_, worker, written.resource_version))
        finally:
            await store.close()

    asyncio.run(run())


def increment(url: str, name: str, times: int, barrier: Any, results: Any) -> None:
    """Read-modify-write `times` increments, retrying on Conflict."""

    async def run() -> None:
        store = open_datastore(url)
        conflicts = 0
        try:
            barrier.wait(BARRIER_TIMEOUT)
            for _ in range(times):
                while True:
                    current = await store.get(WIDGET, name)
                    try:
                        await store.update(with_value(current, current.spec.value + 1))
                        break
                    except Conflict:
                        conflicts += 1
        finally:
            await store.close()
        results.put(conflicts)

    asyncio.run(run())


def write_batch(url: str, names: list[str], start_value: int, results: Any) -> None:
    """Create the names that are missing, update those that exist; report
    (revision, name, kind of change) for each write."""

    async def run() -> None:
        store = open_datastore(url)
        try:
            for offset, name in enumerate(names):
                value = start_value + offset
                try:
                    current = await store.get(WIDGET, name)
                except NotFound:
                    written = await store.create(widget(name, value))
                    results.put((written.resource_version, name, "ADDED", value))
                else:
                    written = await store.update(with_value(current, value))
                    results.put((written.resource_version, name, "MODIFIED", value))
        finally:
            await store.close()

    asyncio.run(run())
