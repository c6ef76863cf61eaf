"""`gingham cni install`: put the CNI plugin and its conflist where a runtime finds them.

Thin: argument parsing and printing; the work is `cni.install.install`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cni.install import DEFAULT_RUN_DIR, NoCommonVersion, install
from cni.request import SUPPORTED_VERSIONS


def _name(value: str) -> str:
    if not value or any(c in "/\\:" or c.isspace() for c in value):
        raise argparse.ArgumentTypeError(
            f"network name {value!r} must be non-empty, no '/', ':', spaces"
        )
    return value


def _mtu(value: str) -> int:
    try:
        mtu = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mtu {value!r} is not an integer") from None
    if not 68 <= mtu <= 65535:
        raise argparse.ArgumentTypeError(f"--mtu {mtu} is outside 68-65535")
    return mtu


def run_install(args: argparse.Namespace) -> int:
    try:
        report = install(
            bin_dir=Path(args.bin_dir),
            conf_dir=Path(args.conf_dir),
            run_dir=args.run_dir,
            name=args.name,
            mtu=args.mtu,
            log_level=args.log_level,
            cni_version=args.cni_version,
        )
    except OSError as exc:
        print(f"gingham cni install: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except NoCommonVersion as exc:
        print(f"gingham cni install: no conflist written: {exc}", file=sys.stderr)
        return 1
    for path in report.written:
        print(f"wrote {path}")
    for path in report.unchanged:
        print(f"unchanged {path}")
    print(report.version_choice)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    cni = subparsers.add_parser("cni", help="the CNI plugin")
    commands = cni.add_subparsers(dest="cni_command", required=True)
    p = commands.add_parser(
        "install", help="install the plugin executable and write the network conflist"
    )
    p.add_argument("--bin-dir", default="/opt/cni/bin", help="runtime's CNI bin dir")
    p.add_argument("--conf-dir", default="/etc/cni/net.d", help="runtime's CNI conf dir")
    p.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="felix's run dir (holds felix.sock)")
    p.add_argument("--name", type=_name, default="gingham", help="network name")
    p.add_argument("--mtu", type=_mtu, default=0, help="pod MTU (default: computed by felix)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    p.add_argument(
        "--cni-version",
        choices=SUPPORTED_VERSIONS,
        default=None,
        help="conflist cniVersion (default: the newest that the chained portmap and "
        "bandwidth plugins support, found by asking them)",
    )
    p.set_defaults(func=run_install)
