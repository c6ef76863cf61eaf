"""The datastore contract every backend (sqlite, etcd, kubernetes) implements.

Objects are `Resource`s keyed by (kind, name). Every stored object carries an
opaque revision in `metadata.resource_version`; writes are compare-and-swap on
it. Revisions of one backend are totally ordered (a global counter), so a
`list` reports the revision it saw and `watch(kind, from_revision)` yields
exactly the changes after it, in order.

Invariants every backend keeps (the contract suite in
tests/integration/datastore/test_contract.py checks them):
- `create` fails with `AlreadyExists` if the key exists; `update`/`delete`
  with a revision fail with `Conflict` when it is stale, `NotFound` when the
  key is gone. Exactly one of several racing CAS writers wins.
- `watch` yields events with revision > from_revision, in revision order,
  each once. If the backend connection drops, the iterator reconnects and
  resumes after the last revision it yielded; if that history is gone
  (compacted), it raises `RevisionCompacted` so the caller re-lists.
- Backend failures surface as `Unavailable`, never as a driver exception.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from gingham.model.base import Resource


class DatastoreError(Exception):
    """Base of every error a datastore raises."""


class NotFound(DatastoreError):
    pass


class AlreadyExists(DatastoreError):
    pass


class Conflict(DatastoreError):
    """The object changed since the revision the writer read (stale CAS)."""


class Unavailable(DatastoreError):
    """The backend cannot be reached or failed; try again later."""


T = TypeVar("T")


async def when_available(
    call: Callable[[], Awaitable[T]],
    url: str,
    log: logging.Logger,
    wait: float | None = None,
) -> T:
    """`call()`, retried while the datastore is `Unavailable`: backoff 0.5 s
    doubling to 10 s, a warning naming `url` and the reason each time.

    What a node agent does at start-up (calico-node's way): its host often
    boots before the datastore answers. `wait` seconds (None: forever), then
    the last `Unavailable` is raised. Any other error passes through at once.
    """
    loop = asyncio.get_running_loop()
    deadline = None if wait is None else loop.time() + wait
    backoff = 0.5
    while True:
        try:
            return await call()
        except Unavailable as exc:
            if deadline is not None and loop.time() + backoff > deadline:
                raise
            log.warning("datastore %s unavailable (%s): retrying in %.1f s", url, exc, backoff)
            await asyncio.sleep(backoff)  # retry backoff, not synchronisation
            backoff = min(backoff * 2, 10.0)


class RevisionCompacted(DatastoreError):
    """A watch asked for history the backend no longer keeps: re-list."""


class EventType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    # For DELETED: the object as it was last stored, its resource_version set to
    # the deletion's revision (as Kubernetes does); `revision` is always the
    # revision of this change.
    obj: Resource
    revision: str


@dataclass(frozen=True)
class Listing:
    items: list[Resource]
    # The store revision the listing reflects; pass it to `watch` to follow on.
    revision: str


class Datastore(Protocol):
    async def get(self, kind: str, name: str) -> Resource: ...

    async def list(self, kind: str, prefix: str = "") -> Listing:
        """Every object of `kind` whose name starts with `prefix`, name order."""
        ...

    async def create(self, obj: Resource) -> Resource:
        """Store a new object; returns it with its revision set."""
        ...

    async def update(self, obj: Resource) -> Resource:
        """Replace; CAS on obj.metadata.resource_version when it is set."""
        ...

    async def delete(self, kind: str, name: str, revision: str | None = None) -> Resource:
        """Remove (CAS when `revision` is given); returns the removed object."""
        ...

    def watch(
        self, kind: str, from_revision: str | None = None, prefix: str = ""
    ) -> AsyncIterator[WatchEvent]:
        """Ordered events after `from_revision` (None: from now on)."""
        ...

    async def close(self) -> None: ...
