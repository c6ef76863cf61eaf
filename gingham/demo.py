"""What ``make lab`` runs until the lab issue brings real nodes: a datastore tour.

Creates a scratch SQLite datastore in a new temporary directory, applies
``examples/fabric.yaml`` to it and prints every kind as a table — all through
`gingham.cli.main.main`, the same code path as typing the commands, so the demo
cannot drift from the CLI. The scratch directory is kept (and named) so the
reader can go on with ``gingham --datastore ... get ...``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gingham.cli.main import main as gingham

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fabric.yaml"
KINDS_SHOWN = ("bgpconfigurations", "ippools", "nodes", "bgppeers")


def _run(datastore: str, *argv: str) -> int:
    shown = " ".join(shlex.quote(a) for a in ("gingham", *argv))
    print(f"\n$ {shown}", flush=True)
    code = gingham(["--datastore", datastore, *argv])
    sys.stdout.flush()
    return code


def demo(example: Path, scratch: Path) -> int:
    datastore = f"sqlite://{scratch.resolve() / 'gingham.db'}"
    print(f"Scratch datastore: {datastore}")
    code = _run(datastore, "apply", "-f", str(example))
    if code != 0:
        return code
    for kind in KINDS_SHOWN:
        code = _run(datastore, "get", kind, "-o", "wide")
        if code != 0:
            return code
    print(
        f"\nThe datastore is kept in {scratch}. Try:\n"
        f"  export GINGHAM_DATASTORE={datastore}\n"
        "  .venv/bin/gingham get ippool default-pool -o yaml\n"
        f"Remove it with: rm -r {scratch}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gingham.demo", description=__doc__)
    parser.add_argument("-f", "--filename", type=Path, default=EXAMPLE, help="resources to apply")
    parser.add_argument(
        "--dir", type=Path, help="scratch directory (default: a new one under $TMPDIR)"
    )
    args = parser.parse_args(argv)
    scratch = args.dir or Path(tempfile.mkdtemp(prefix="gingham-demo-"))
    scratch.mkdir(parents=True, exist_ok=True)
    return demo(args.filename, scratch)


if __name__ == "__main__":
    sys.exit(main())
