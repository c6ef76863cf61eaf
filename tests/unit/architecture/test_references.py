"""Every file, document and module a docstring, comment or doc names is in the repository.

A reader who follows a reference must find it: a path in a docstring or
comment (``felix/rtnl.py``, ``docs/architecture.md``), a Markdown file
(``README.md``), a dotted name of ours (``gingham.lab.backends.backend_for``),
and every relative link or backticked path in README.md and docs/.
"""

from __future__ import annotations

import ast
import io
import re
import sysconfig
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("gingham", "felix", "bird_agent", "route_reflector", "cni")
SOURCES = (*PACKAGES, "tests", "bench", "scripts")
GENERATED = ("gingham/v1",)
# Where a relative path may be rooted besides the repository and the naming
# file's directory: proto imports are rooted at proto/ ("gingham/v1/speaker.proto"),
# and a comment may name a file of an installed dependency ("exabgp/rib/cache.py").
SEARCH_ROOTS = (ROOT, ROOT / "proto", Path(sysconfig.get_paths()["purelib"]))

EXTENSIONS = "py|md|proto|yaml|yml|toml|json|conf|service|sh|default|env|ini|cfg|txt"
PATH = re.compile(rf"(?<![\w/.$<{{~:-])((?:[\w.-]+/)+[\w.-]+\.(?:{EXTENSIONS}))\b(?!/)")
MARKDOWN = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")
DOTTED = re.compile(rf"(?<![\w./-])((?:{'|'.join(PACKAGES)})(?:\.\w+)+)(?![\w/-])")
# Dotted words that are not module paths: file names (felix.sock, cni.log)
# and the API group (gingham.io).
NOT_MODULES = {"sock", "log", "io", "py", "env", "dev", "ip", "gw", "name", "db", "conflist"}


def _python_files() -> Iterator[Path]:
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(GENERATED) and "__pycache__" not in relative:
                yield path


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every docstring and comment in a Python file."""
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                yield (node.body[0].lineno, docstring)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield (token.start[0], token.string)


def _path_exists(reference: str, beside: Path) -> bool:
    return any((root / reference).exists() for root in (*SEARCH_ROOTS, beside))


@cache
def _names_in(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)  # self.x = ...: an attribute named in prose
    return names


def _module_resolves(dotted: str) -> bool:
    """The longest prefix that is a module of ours, then (if more follows) a name in it."""
    parts = dotted.split(".")
    if parts[-1] in NOT_MODULES:
        return True
    depth = 0
    for i in range(1, len(parts) + 1):
        base = ROOT.joinpath(*parts[:i])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            depth = i
        else:
            break
    if depth == len(parts):
        return True
    if depth == 0:
        return False
    base = ROOT.joinpath(*parts[:depth])
    module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    return parts[depth] in _names_in(module)


def _dangling_in_python() -> list[str]:
    problems = []
    for path in _python_files():
        relative = path.relative_to(ROOT).as_posix()
        for line, text in _prose(path):
            for match in PATH.finditer(text):
                reference = match.group(1)
                first = reference.split("/")[0]
                if first.isupper():
                    continue  # a placeholder (GUEST_SHARE/boot.sh)
                if not _path_exists(reference, path.parent):
                    problems.append(f"{relative}:{line}: no file {reference}")
            for match in MARKDOWN.finditer(text):
                if not _path_exists(match.group(1), path.parent):
                    problems.append(f"{relative}:{line}: no document {match.group(1)}")
            for match in DOTTED.finditer(text):
                if not _module_resolves(match.group(1)):
                    problems.append(f"{relative}:{line}: nothing is called {match.group(1)}")
    return problems


def test_docstrings_and_comments_name_only_what_exists() -> None:
    assert _dangling_in_python() == []


DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
BACKTICKED_PATH = re.compile(rf"`((?:[\w.-]+/)+(?:[\w.-]*\.(?:{EXTENSIONS}))?)`")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_documents_link_and_name_only_what_exists(document: Path) -> None:
    text = document.read_text()
    problems = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (document.parent / target).exists():
            problems.append(f"link to {target}")
    for match in BACKTICKED_PATH.finditer(text):
        reference = match.group(1)
        if reference.startswith(("/", "~")) or "<" in reference or reference[0].isdigit():
            continue  # a path on a machine, not in the repository; or a prefix (10.0.0.0/8)
        if "." in reference.split("/")[0].lstrip("."):
            continue  # a module or URL path (k8s.io/kubernetes), not a file here
        if not _path_exists(reference, document.parent):
            problems.append(f"path {reference}")
    assert problems == []


def test_the_checker_catches_what_it_is_for(tmp_path: Path) -> None:
    """The patterns find the references this test exists to catch."""
    text = "see DESIGN.md and NOTES.md; felix/nosuch.py; gingham.lab.nosuch; `felix.sock`"
    assert [m.group(1) for m in MARKDOWN.finditer(text)] == ["DESIGN.md", "NOTES.md"]
    assert [m.group(1) for m in PATH.finditer(text)] == ["felix/nosuch.py"]
    assert not _module_resolves("gingham.lab.nosuch")
    assert _module_resolves("gingham.lab.backends.backend_for")
    assert _module_resolves("felix.sock")  # a socket's file name, not a module
    assert not _module_resolves("route_reflector.client")  # moved to route_reflector.api
    prose = "see `docs/nosuch.md`, `gingham/lab/vm/`, the `k8s.io/kubernetes` module"
    found = [m.group(1) for m in BACKTICKED_PATH.finditer(prose)]
    assert found == ["docs/nosuch.md", "gingham/lab/vm/"]
