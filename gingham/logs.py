"""Where the `gingham` command and `gingham node run`'s supervisor log: stderr.

Only the ``gingham`` logger is configured, never the root logger, so a
caller that runs `gingham.cli.main.main` in-process keeps its own logging.
"""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(level: str) -> None:
    """Log records of the `gingham` loggers (and libraries' warnings) to stderr.

    Only the ``gingham`` logger is configured, not the root logger, so calling
    `main` in-process (the demo, tests) leaves the caller's logging alone.
    """
    logger = logging.getLogger("gingham")
    logger.setLevel(level.upper())
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("gingham: %(levelname)s: %(name)s: %(message)s"))
        logger.addHandler(handler)
