"""What every `gingham` command shares: running a handler, the datastore, errors.

A command handler takes the parsed `argparse.Namespace` and returns an exit code
(or None for 0), either directly or as a coroutine; `run_command` runs it and
turns failures into what a person should read.

Invariants:
- A user error (bad document, unknown kind, missing object, unreachable
  datastore, unreadable file, bad datastore URL) is printed as one line per
  problem on stderr, prefixed ``gingham: error: ``, and exits 1. No traceback.
- Anything else is a bug: one summary line, exit 2; the traceback goes to the
  log at debug level (``--log-level debug`` shows it).
- A datastore opened with `open_store` is closed before the handler returns,
  on the event loop that used it (the etcd client is bound to its loop).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from gingham.datastore import Datastore

log = logging.getLogger("gingham.cli")

PROG = "gingham"
ENV_DATASTORE = "GINGHAM_DATASTORE"
# Kept in step with gingham.datastore.url.DEFAULT_URL (a test checks they agree);
# written out here so `gingham --help` does not import the datastore package.
DEFAULT_DATASTORE = "sqlite:///var/lib/gingham/gingham.db"

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 2
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int | Awaitable[int | None] | None]


class CLIError(Exception):
    """A user error with its message lines ready to print."""

    def __init__(self, *lines: str) -> None:
        self.lines = [line for line in lines if line]
        super().__init__("\n".join(self.lines))


def print_error(line: str, stream: TextIO | None = None) -> None:
    print(f"{PROG}: error: {line}", file=stream or sys.stderr)


def datastore_url(args: argparse.Namespace) -> str:
    url: str | None = getattr(args, "datastore", None)
    return url or os.environ.get(ENV_DATASTORE) or DEFAULT_DATASTORE


@asynccontextmanager
async def open_store(args: argparse.Namespace) -> AsyncIterator[Datastore]:
    """The datastore named by ``--datastore`` / $GINGHAM_DATASTORE, closed on exit."""
    from gingham.datastore import open_datastore

    url = datastore_url(args)
    try:
        store = open_datastore(url)
    except ValueError as exc:  # the URL; the message lists the accepted forms
        raise CLIError(str(exc)) from None
    try:
        yield store
    finally:
        await store.close()


def read_input(path: str) -> tuple[str, str]:
    """(text, source name) of a ``-f`` argument; ``-`` is standard input."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(path, encoding="utf-8") as file:
            return file.read(), path
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CLIError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CLIError(f"{path}: cannot read: {exc.strerror or exc}") from None


def user_error_lines(exc: BaseException, url: str) -> list[str] | None:
    """The lines to print for a user error, or None when `exc` is a bug."""
    if isinstance(exc, CLIError):
        return exc.lines
    # Imported here: only a failing command pays for the model and datastore.
    from gingham.datastore.base import DatastoreError, Unavailable
    from gingham.datastore.kubernetes_wire import Forbidden
    from gingham.model.base import InvalidResource, UnknownKind

    if isinstance(exc, InvalidResource):
        return [str(error) for error in exc.errors] or [str(exc)]
    if isinstance(exc, UnknownKind):
        return [str(exc)]
    if isinstance(exc, Forbidden):  # the API server said no: waiting will not help
        return [str(exc)]
    if isinstance(exc, Unavailable):
        return [f"datastore unavailable at {url}: {exc} (try again later)"]
    if isinstance(exc, DatastoreError):
        return [str(exc)]
    return None


def run_command(func: Handler, args: argparse.Namespace) -> int:
    """Run a handler (sync or async) and map its outcome to an exit code."""
    url = datastore_url(args)
    try:
        result = func(args)
        if isinstance(result, Awaitable):
            import asyncio  # ~30 ms: only commands that need it pay

            result = asyncio.run(_await(result))
        return EXIT_OK if result is None else int(result)
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `gingham get ... | head`: the reader left; not an error worth a line.
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:
        lines = user_error_lines(exc, url)
        if lines is not None:
            log.debug("user error", exc_info=True)
            for line in lines:
                print_error(line)
            return EXIT_USER_ERROR
        log.debug("unexpected error", exc_info=True)
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
        print_error(f"unexpected {summary} (run with --log-level debug for the traceback)")
        return EXIT_INTERNAL_ERROR


async def _await(result: Awaitable[int | None]) -> int | None:
    return await result


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def print_errors(lines: Iterable[str]) -> None:
    for line in lines:
        print_error(line)
