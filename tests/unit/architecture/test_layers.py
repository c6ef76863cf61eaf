"""The import rules of .importlinter hold, break when broken, and the graph has no circles.

`make lint` runs `lint-imports` on the repository. These tests show that the
contracts bite: each case copies our packages to a temporary directory, adds
one forbidden import, and runs the same `lint-imports` on the copy.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / ".importlinter"
PACKAGES = ("gingham", "felix", "bird_agent", "route_reflector", "cni")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _config() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    return parser


def _layered_modules() -> set[str]:
    layers = _config()["importlinter:contract:layers"]["layers"]
    return {name for name in re.split(r"[\s|:]+", layers) if name}


def test_every_part_of_every_package_has_a_layer() -> None:
    """A new package or top-level module must be placed in a layer, or it is unchecked."""
    layered = _layered_modules()
    parts = {"felix", "bird_agent", "cni", "route_reflector"}
    for child in (ROOT / "gingham").iterdir():
        if child.name.startswith(("_", ".")):
            continue
        if (child / "__init__.py").is_file() or child.suffix == ".py":
            parts.add(f"gingham.{child.name.removesuffix('.py')}")
    assert parts - layered == set(), "add these to a layer in .importlinter"


def _strongly_connected(
    nodes: Iterable[str], edges: Callable[[str], Iterable[str]]
) -> list[set[str]]:
    """Tarjan's algorithm: the node sets that reach each other (size > 1 only)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges(node):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # grimp reads every import statement, including those inside functions:
    # a circle held together by a lazy import is still a circle here.
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _package(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def _package_edges(graph: grimp.ImportGraph, depth: int) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        source = _package(module, depth)
        edges.setdefault(source, set())
        for imported in graph.find_modules_directly_imported_by(module):
            target = _package(imported, depth)
            if target != source:
                edges[source].add(target)
    return edges


def test_modules_import_without_circles(graph: grimp.ImportGraph) -> None:
    circles = _strongly_connected(graph.modules, graph.find_modules_directly_imported_by)
    assert circles == []


def test_packages_import_without_circles(graph: grimp.ImportGraph) -> None:
    top = _package_edges(graph, 1)
    assert _strongly_connected(top, top.__getitem__) == []
    # One level down: gingham's parts, route_reflector.api and the engine.
    second = _package_edges(graph, 2)
    assert _strongly_connected(second, second.__getitem__) == []


def _copy_packages(destination: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, destination / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    shutil.copy(CONFIG, destination / ".importlinter")


def _lint(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(directory / ".importlinter")],
        cwd=directory,
        # The copy comes first on the path, ahead of the installed packages.
        env={**os.environ, "PYTHONPATH": str(directory)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pristine")
    _copy_packages(directory)
    return directory


def test_the_copy_keeps_every_contract(pristine: Path) -> None:
    """The cases below break one contract each, not something about the copy."""
    done = _lint(pristine)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


VIOLATIONS = [
    # (module file, the line added, the contract that must break)
    ("gingham/model/base.py", "import felix.links", "the core imports neither"),
    ("gingham/datastore/base.py", "import bird_agent.peers", "the core imports neither"),
    ("gingham/model/fields.py", "import gingham.datastore.base", "the core imports neither"),
    ("gingham/ipam/errors.py", "import gingham.k8s.node", "the core imports neither"),
    ("cni/plugin.py", "import felix.rtnl", "the core imports neither"),
    ("felix/agent.py", "import bird_agent.peers", "the core imports neither"),
    ("bird_agent/peers.py", "import felix.links", "the core imports neither"),
    ("bird_agent/speaker.py", "import route_reflector.reflect", "the core imports neither"),
    ("route_reflector/api/messages.py", "import route_reflector.rib", "of the reflector's engine"),
    ("gingham/cli/node.py", "import bird_agent.main", "never by import"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "line", "contract"), VIOLATIONS,
                         ids=[f"{p}:{line}" for p, line, _c in VIOLATIONS])  # fmt: skip
def test_a_forbidden_import_fails_the_lint(
    pristine: Path, tmp_path: Path, path: str, line: str, contract: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(pristine, copy)
    module = copy / path
    module.write_text(module.read_text() + f"\n{line}  # a deliberate violation\n")
    done = _lint(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [
        block
        for block in done.stdout.split("\n\n")
        if "BROKEN" in block and contract in " ".join(block.split())
    ]
    assert broken, done.stdout
    imported = line.removeprefix("import ")
    assert imported in done.stdout, done.stdout
