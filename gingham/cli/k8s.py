"""`gingham k8s crds [-o FILE]`: the CustomResourceDefinitions of every kind.

Thin: the schemas come from `gingham.k8s.crds` (generated from the model);
manifests/crds.yaml is this command's output and a test keeps it so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def run_crds(args: argparse.Namespace) -> int:
    from gingham.k8s.crds import crds_yaml

    text = crds_yaml()
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text)
    except OSError as exc:
        print(f"gingham k8s crds: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


def register(subparsers: Any) -> None:
    k8s = subparsers.add_parser("k8s", help="Kubernetes manifests")
    commands = k8s.add_subparsers(dest="k8s_command", required=True)
    p = commands.add_parser("crds", help="print the CustomResourceDefinitions (from the model)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=run_crds)
