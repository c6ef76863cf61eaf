"""User errors from the real CLI: one clear line each, exit 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cli.conftest import REPO, Gingham
from tests.support.etcd import free_port


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["apply", "-f", "missing.yaml"], "missing.yaml: no such file"),
        (["apply", "-f", "."], ".: is a directory, not a file"),
        (["apply", "-f", "empty.yaml"], "no objects passed to apply"),
        (
            ["apply", "-f", "broken.yaml"],
            "broken.yaml: line 3, column 1: invalid YAML: did not find expected node content",
        ),
        (["delete", "ippool"], "delete needs KIND NAME [NAME...] or -f FILE"),
        (
            ["--datastore", "sqlite://relative/x.db", "get", "pools"],
            'invalid datastore URL "sqlite://relative/x.db": the path must be absolute',
        ),
        (["get", "widgets"], 'unknown resource kind "widgets"'),
    ],
)
def test_user_error_is_one_line_and_exit_1(
    sqlite_gingham: Gingham, argv: list[str], message: str
) -> None:
    (sqlite_gingham.cwd / "empty.yaml").write_text("# nothing here\n---\n")
    (sqlite_gingham.cwd / "broken.yaml").write_text("kind: IPPool\nspec: {cidr: [\n")
    result = sqlite_gingham.run(*argv)
    assert result.returncode == 1, result
    assert result.stderr.startswith(f"gingham: error: {message}")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.etcd
def test_an_unreachable_etcd_is_reported_as_unavailable(tmp_path: Path) -> None:
    url = f"etcd://127.0.0.1:{free_port()}"
    result = Gingham(url, tmp_path).run("get", "ippools")
    assert result.returncode == 1
    assert result.stderr.startswith(f"gingham: error: datastore unavailable at {url}: ")
    assert result.stderr.rstrip().endswith("(try again later)")


def test_usage_errors_exit_2_with_usage(sqlite_gingham: Gingham) -> None:
    result = sqlite_gingham.run("get")
    assert result.returncode == 2
    assert "usage: gingham get" in result.stderr


def test_the_console_script_runs_the_same_cli(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "gingham"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e .)")
    result = subprocess.run(
        [str(script), "--datastore", f"sqlite://{tmp_path}/g.db", "get", "ippool", "x"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (1, 'gingham: error: IPPool "x" not found\n')


def test_the_same_object_in_two_files_is_refused_and_nothing_stored(
    sqlite_gingham: Gingham,
) -> None:
    pool = "apiVersion: gingham.io/v1\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: %s}\n"
    (sqlite_gingham.cwd / "one.yaml").write_text(pool % "10.1.0.0/16")
    (sqlite_gingham.cwd / "two.yaml").write_text(pool % "10.2.0.0/16")
    result = sqlite_gingham.run("apply", "-f", "one.yaml", "-f", "two.yaml")
    assert result.returncode == 1
    assert result.stderr == (
        'gingham: error: two.yaml: IPPool "a": metadata.name: also defined in one.yaml\n'
    )
    assert sqlite_gingham.stored("IPPool") == []
    empty = sqlite_gingham.run("get", "ippools")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "No IPPool resources found.\n")
