"""The embedded SQLite backend: one file, safe for several processes on one host.

Schema (created on first open, idempotently)::

    meta(key PRIMARY KEY, value)     -- 'revision': the global counter,
                                     -- 'compacted': history at or below is gone
    objects(kind, name, value, revision)          -- current state, PK (kind, name)
    changelog(revision PK, kind, name, type, value, at)  -- one row per write

Invariants:
- Every write is one ``BEGIN IMMEDIATE`` transaction that checks the CAS
  condition, bumps the counter, writes `objects` and appends one changelog row.
  So revisions are dense: revision r has exactly one changelog row until it is
  compacted, and a reader that sees counter value h also sees every row ≤ h.
- Multi-process safety comes from SQLite itself: WAL mode (readers never block
  the writer), ``busy_timeout`` for writers queueing on the write lock. A write
  still locked out after the timeout, an I/O error or an unreadable file is
  `Unavailable`.
- Compaction runs inside a write every `compact_every` revisions: a changelog
  row is dropped once it is neither among the last `changelog_keep_rows` nor
  younger than `changelog_keep_seconds`. A watch resuming below
  ``meta.compacted`` gets `RevisionCompacted`.
- `watch` polls every `poll_interval` (≤ 50 ms): the idle check is one
  single-row read of the counter on the event loop's thread (no thread hop, no
  busy wait); only when it moved does the worker thread read, in one snapshot,
  the compaction mark and the changelog rows of the kind in (cursor, counter].
  A write through this store wakes its napping watches at once, so in-process
  delivery does not wait for the next poll; other processes' writes do.
- The store remembers the kind and name of its own recent writes
  (`_own_writes`). A watch whose cursor the counter passed only by those, none
  of its kind and prefix, moves its cursor without reading the changelog: the
  read would return no row. Only a watch that has read once (so a resume below
  the compaction mark was checked), and never across a write that compacted.
- sqlite3 calls block, so each store owns one worker thread and one connection;
  the event loop only awaits futures. Any event loop may use the store.

DELETED events carry the object as last stored with its resource_version set to
the deletion's revision (as Kubernetes does); `delete()` returns the object with
the revision it had.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from gingham.datastore.base import (
    AlreadyExists,
    Conflict,
    EventType,
    Listing,
    NotFound,
    RevisionCompacted,
    Unavailable,
    WatchEvent,
)
from gingham.datastore.codec import canonical_kind, decode, encode
from gingham.model.base import Resource

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,
    revision INTEGER NOT NULL, PRIMARY KEY (kind, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changelog (
    revision INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    type TEXT NOT NULL, value BLOB NOT NULL, at REAL NOT NULL);
"""

_WATCH_BATCH = 1000
# How many of its own writes a store remembers for its watches (a watch further
# behind reads the changelog as usual).
_OWN_WRITES_KEPT = 1024


def _revision_number(revision: str) -> int:
    try:
        return int(revision)
    except ValueError:
        raise ValueError(f'revision "{revision}" is not a sqlite revision (a decimal)') from None


class SqliteDatastore:
    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 5.0,
        poll_interval: float = 0.025,
        changelog_keep_rows: int = 10_000,
        changelog_keep_seconds: float = 300.0,
        compact_every: int = 100,
        reconnect_timeout: float = 30.0,
    ) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._poll_interval = poll_interval
        self._keep_rows = changelog_keep_rows
        self._keep_seconds = changelog_keep_seconds
        self._compact_every = compact_every
        self._reconnect_timeout = reconnect_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gingham-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._poll_conn: sqlite3.Connection | None = None
        self._closed = False
        # The poll tick per event loop: every watch of this store napping on that
        # loop waits for the same one (one timer and one counter read per tick,
        # not one per watch); our own writes end it early.
        self._ticks: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        # The counter as last read on the loop: (loop time, value).
        self._head: tuple[float, int] | None = None
        # Revision → (kind, name) of this store's own recent writes, None for one
        # that compacted. Written only on the worker thread, right after the
        # commit; read on event loops (a revision not yet noted is simply read).
        self._own_writes: dict[int, tuple[str, str] | None] = {}

    # --- plumbing: everything touching sqlite3 runs on the store's thread ----

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise Unavailable(f"sqlite datastore {self.path} is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, fn)
        except RuntimeError as exc:  # executor shut down by a concurrent close()
            raise Unavailable(f"sqlite datastore {self.path} is closed") from exc

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._connection()
            try:
                return fn(conn)
            finally:
                if conn.in_transaction:
                    conn.rollback()
        except sqlite3.Error as exc:
            raise Unavailable(f"sqlite datastore {self.path}: {exc}") from exc
        except OSError as exc:
            raise Unavailable(f"sqlite datastore {self.path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            # WAL is a property of the file: the first opener switches it, later
            # ones just read it back. FULL sync: a committed CAS survives power loss.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            with _transaction(conn):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._poll_conn is not None:
            self._poll_conn.close()
            self._poll_conn = None

    # --- reads ---------------------------------------------------------------

    async def get(self, kind: str, name: str) -> Resource:
        kind = canonical_kind(kind)

        def op(conn: sqlite3.Connection) -> tuple[bytes, int] | None:
            row = conn.execute(
                "SELECT value, revision FROM objects WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
            return None if row is None else (row[0], row[1])

        found = await self._run(op)
        if found is None:
            raise NotFound(f'{kind} "{name}" not found')
        return decode(kind, name, found[0], str(found[1]))

    async def list(self, kind: str, prefix: str = "") -> Listing:
        kind = canonical_kind(kind)

        def op(conn: sqlite3.Connection) -> tuple[list[tuple[str, bytes, int]], int]:
            with _transaction(conn, "BEGIN"):  # one snapshot: rows and counter agree
                head = _meta(conn, "revision")
                rows = conn.execute(
                    "SELECT name, value, revision FROM objects WHERE kind = ? AND name >= ?"
                    " AND substr(name, 1, ?) = ? ORDER BY name",
                    (kind, prefix, len(prefix), prefix),
                ).fetchall()
            return rows, head

        rows, head = await self._run(op)
        items = [decode(kind, name, value, str(rev)) for name, value, rev in rows]
        return Listing(items=items, revision=str(head))

    # --- writes --------------------------------------------------------------

    async def create(self, obj: Resource) -> Resource:
        kind, name, value = obj.kind, obj.name, encode(obj)

        def op(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                if _current(conn, kind, name) is not None:
                    raise AlreadyExists(f'{kind} "{name}" already exists')
                revision = self._append(conn, kind, name, EventType.ADDED, value)
                conn.execute(
                    "INSERT INTO objects (kind, name, value, revision) VALUES (?, ?, ?, ?)",
                    (kind, name, value, revision),
                )
            self._note_own_write(revision, kind, name)
            return revision

        revision = await self._run(op)
        self._wake_watches()
        return obj.with_revision(str(revision))

    async def update(self, obj: Resource) -> Resource:
        kind, name, value = obj.kind, obj.name, encode(obj)
        expected = obj.resource_version

        def op(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                _check(_current(conn, kind, name), kind, name, expected)
                revision = self._append(conn, kind, name, EventType.MODIFIED, value)
                conn.execute(
                    "UPDATE objects SET value = ?, revision = ? WHERE kind = ? AND name = ?",
                    (value, revision, kind, name),
                )
            self._note_own_write(revision, kind, name)
            return revision

        revision = await self._run(op)
        self._wake_watches()
        return obj.with_revision(str(revision))

    async def delete(self, kind: str, name: str, revision: str | None = None) -> Resource:
        kind = canonical_kind(kind)

        def op(conn: sqlite3.Connection) -> tuple[bytes, int]:
            with _transaction(conn):
                current = _check(_current(conn, kind, name), kind, name, revision)
                deleted = self._append(conn, kind, name, EventType.DELETED, current[0])
                conn.execute("DELETE FROM objects WHERE kind = ? AND name = ?", (kind, name))
            self._note_own_write(deleted, kind, name)
            return current

        value, old_revision = await self._run(op)
        self._wake_watches()
        return decode(kind, name, value, str(old_revision))

    def _append(
        self, conn: sqlite3.Connection, kind: str, name: str, type_: EventType, value: bytes
    ) -> int:
        """Bump the counter and log the change (inside the caller's transaction)."""
        row = conn.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value"
        ).fetchone()
        revision = int(row[0])
        conn.execute(
            "INSERT INTO changelog (revision, kind, name, type, value, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (revision, kind, name, type_.value, value, time.time()),
        )
        if revision % self._compact_every == 0:
            _compact(conn, revision, self._keep_rows, self._keep_seconds)
        return revision

    def _note_own_write(self, revision: int, kind: str, name: str) -> None:
        """Remember a committed write (worker thread) for the watches' skip."""
        compacted = revision % self._compact_every == 0
        self._own_writes[revision] = None if compacted else (kind, name)
        if len(self._own_writes) > _OWN_WRITES_KEPT:
            del self._own_writes[next(iter(self._own_writes))]

    def _only_own_writes_elsewhere(self, cursor: int, head: int, kind: str, prefix: str) -> bool:
        """Did the counter move from `cursor` to `head` only by this store's own
        writes, none of them to `kind` under `prefix` (and none compacting)?"""
        if head - cursor > _OWN_WRITES_KEPT:
            return False
        own = self._own_writes
        for revision in range(cursor + 1, head + 1):
            written = own.get(revision)
            if written is None or (written[0] == kind and written[1].startswith(prefix)):
                return False
        return True

    async def compact(self, keep_rows: int | None = None, keep_seconds: float | None = None) -> int:
        """Drop changelog history now (defaults: the store's retention); returns
        the new compacted revision. Operators and tests use it; writes also
        compact on their own."""
        rows = self._keep_rows if keep_rows is None else keep_rows
        seconds = self._keep_seconds if keep_seconds is None else keep_seconds

        def op(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                _compact(conn, _meta(conn, "revision"), rows, seconds)
                compacted = _meta(conn, "compacted")
            # Watches must see the new mark the usual way.
            self._own_writes.clear()
            return compacted

        return await self._run(op)

    def _wake_watches(self) -> None:
        running = asyncio.get_running_loop()
        self._head = None  # the counter moved: no watch may use the old reading
        for loop, tick in list(self._ticks.items()):
            if loop is running:
                self._end_tick(loop, tick)
            elif loop.is_closed():
                self._ticks.pop(loop, None)
            else:
                loop.call_soon_threadsafe(self._end_tick, loop, tick)

    def _end_tick(self, loop: asyncio.AbstractEventLoop, tick: asyncio.Event) -> None:
        if self._ticks.get(loop) is tick:
            del self._ticks[loop]
        tick.set()

    async def _nap(self) -> None:
        """Sleep until the next poll tick (at most one poll interval), or less if
        this store writes meanwhile (other processes' writes are seen at the tick).

        The watches of one loop share the tick, so an idle process with several
        watches wakes once per interval, not once per watch."""
        loop = asyncio.get_running_loop()
        tick = self._ticks.get(loop)
        if tick is None:
            tick = self._ticks[loop] = asyncio.Event()
            loop.call_later(self._poll_interval, self._end_tick, loop, tick)
        await tick.wait()

    def _quick_head(self) -> int | None:
        """The counter read on the event loop's thread, or None when that is not
        possible without waiting (then the caller takes the worker-thread path).

        Idle watches poll this: a hop to the worker thread costs more than the
        query itself. It cannot block the loop: the connection has no busy
        timeout (a busy database answers SQLITE_BUSY at once) and a WAL reader
        takes no lock a writer holds. It is opened only after the worker made
        the schema."""
        if self._closed or self._conn is None:
            return None
        now = asyncio.get_running_loop().time()
        if self._head is not None and now - self._head[0] < self._poll_interval / 2:
            return self._head[1]  # another watch read it this tick
        try:
            if self._poll_conn is None:
                self._poll_conn = sqlite3.connect(
                    self.path, timeout=0, isolation_level=None, check_same_thread=False
                )
            head = _meta(self._poll_conn, "revision")
        except sqlite3.Error:
            return None
        self._head = (now, head)
        return head

    # --- watch ---------------------------------------------------------------

    async def watch(
        self, kind: str, from_revision: str | None = None, prefix: str = ""
    ) -> AsyncIterator[WatchEvent]:
        kind = canonical_kind(kind)
        if from_revision is None:
            cursor = await self._run(lambda conn: _meta(conn, "revision"))
        else:
            cursor = _revision_number(from_revision)
        failing_since: float | None = None
        has_read = False
        while True:
            quick = self._quick_head()
            if quick is not None and quick <= cursor:
                await self._nap()
                continue
            if (
                quick is not None
                and has_read
                and self._only_own_writes_elsewhere(cursor, quick, kind, prefix)
            ):
                cursor = quick
                continue
            try:
                rows, head = await self._run(
                    functools.partial(_changes, kind=kind, prefix=prefix, cursor=cursor)
                )
                failing_since = None
                has_read = True
            except Unavailable:
                # A transient failure (lock storm, I/O hiccup): retry from the same
                # cursor, so nothing is lost or repeated, until it lasts too long.
                now = time.monotonic()
                failing_since = failing_since or now
                if self._closed or now - failing_since > self._reconnect_timeout:
                    raise
                await asyncio.sleep(min(1.0, self._poll_interval * 4))
                continue
            for revision, name, type_, value in rows:
                obj = decode(kind, name, value, str(revision))
                yield WatchEvent(type=EventType(type_), obj=obj, revision=str(revision))
                cursor = revision
            cursor = head
            if not rows and quick is None:
                await self._nap()  # else the quick check above decides whether to nap


@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    conn.execute(begin)
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _meta(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0])


def _current(conn: sqlite3.Connection, kind: str, name: str) -> tuple[bytes, int] | None:
    row = conn.execute(
        "SELECT value, revision FROM objects WHERE kind = ? AND name = ?", (kind, name)
    ).fetchone()
    return None if row is None else (row[0], int(row[1]))


def _check(
    current: tuple[bytes, int] | None, kind: str, name: str, expected: str | None
) -> tuple[bytes, int]:
    if current is None:
        raise NotFound(f'{kind} "{name}" not found')
    if expected is not None and expected != str(current[1]):
        raise Conflict(
            f'{kind} "{name}" changed: written at revision {expected}, now at {current[1]}'
        )
    return current


def _compact(conn: sqlite3.Connection, head: int, keep_rows: int, keep_seconds: float) -> None:
    # Revisions are dense, so "the last N rows" is "revision > head - N".
    limit = head - keep_rows
    compacted = _meta(conn, "compacted")
    if limit <= compacted:
        return
    row = conn.execute(
        "SELECT max(revision) FROM changelog WHERE revision <= ? AND at <= ?",
        (limit, time.time() - keep_seconds),
    ).fetchone()
    upto = row[0]
    if upto is None or upto <= compacted:
        return
    conn.execute("DELETE FROM changelog WHERE revision <= ?", (upto,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'compacted'", (upto,))


def _changes(
    conn: sqlite3.Connection, *, kind: str, prefix: str, cursor: int
) -> tuple[list[tuple[int, str, str, bytes]], int]:
    """Changes of `kind` after `cursor`, and the revision they are complete up to."""
    if _meta(conn, "revision") <= cursor:  # the idle case: one statement, no transaction
        return [], cursor
    with _transaction(conn, "BEGIN"):  # counter, compaction mark and rows: one snapshot
        head = _meta(conn, "revision")
        if cursor < _meta(conn, "compacted"):
            raise RevisionCompacted(
                f"{kind}: history after revision {cursor} was compacted; re-list"
            )
        rows = conn.execute(
            "SELECT revision, name, type, value FROM changelog WHERE revision > ?"
            " AND revision <= ? AND kind = ? AND substr(name, 1, ?) = ?"
            " ORDER BY revision LIMIT ?",
            (cursor, head, kind, len(prefix), prefix, _WATCH_BATCH),
        ).fetchall()
    if len(rows) == _WATCH_BATCH:
        head = rows[-1][0]  # truncated: complete only up to the last row read
    return rows, head
