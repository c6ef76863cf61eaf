"""`gingham`: the command line entry point.

``gingham [--datastore URL] [--log-level LEVEL] <command> ...``

Commands live in the modules of `COMMAND_MODULES`; each exposes
``register(subparsers) -> None`` and sets ``func`` (a sync or async handler
taking the parsed arguments, see `gingham.cli.common`) on each parser it adds.
Adding a command family is one entry in that tuple.

Invariants:
- Command modules keep heavy imports (pydantic models, datastore drivers,
  PyYAML) inside their handlers, so building the parser and ``--help`` stay
  cheap.
- `main` returns the exit code (0 ok, 1 user error, 2 bug, 130 interrupted;
  argparse's own usage errors exit 2); the console script exits with it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gingham.cli.common import DEFAULT_DATASTORE, ENV_DATASTORE, PROG, run_command
from gingham.logs import configure_logging

COMMAND_MODULES: tuple[str, ...] = (
    "gingham.cli.resources",
    "gingham.cli.cni",
    "gingham.cli.ipam",
    "gingham.cli.k8s",
    "gingham.cli.node",
    "gingham.cli.lab",
)

LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Gingham: a Calico-style BGP routing fabric for containers.",
    )
    parser.add_argument(
        "--datastore",
        metavar="URL",
        help=(
            "sqlite:///abs/path.db, etcd://host:port[,host:port...] or kubernetes[://?kubeconfig=PATH]"
            f" (default: ${ENV_DATASTORE}, else {DEFAULT_DATASTORE})"
        ),
    )
    # dest differs from "log_level": a subcommand may have its own --log-level
    # (cni install writes one into the plugin config), and argparse lets the
    # subparser's default overwrite a same-named global.
    parser.add_argument(
        "--log-level",
        dest="cli_log_level",
        choices=LOG_LEVELS,
        default="warning",
        help="what the CLI itself logs on stderr (default: warning)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.cli_log_level)
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
