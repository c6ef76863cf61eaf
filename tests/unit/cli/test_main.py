"""Argument parsing, the datastore URL default, and how failures reach the user."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from gingham.cli import common
from gingham.cli.common import CLIError, datastore_url, run_command
from gingham.cli.main import COMMAND_MODULES, build_parser, main
from gingham.datastore import DEFAULT_URL, Conflict, NotFound, Unavailable
from gingham.model import load_documents
from gingham.model.base import InvalidResource, UnknownKind


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_get_takes_kind_names_and_output() -> None:
    args = parse("get", "IPPools", "a", "b", "-o", "wide")
    assert (args.kind, args.names, args.output) == ("IPPools", ["a", "b"], "wide")
    assert parse("get", "nodes").output == "table"


def test_apply_takes_repeated_files_and_stdin() -> None:
    assert parse("apply", "-f", "a.yaml", "-f", "-").filename == ["a.yaml", "-"]


def test_apply_without_a_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("apply")
    assert exit_info.value.code == 2
    assert "-f/--filename" in capsys.readouterr().err


def test_delete_by_name_or_by_file() -> None:
    by_name = parse("delete", "bgppeer", "p1", "p2")
    assert (by_name.kind, by_name.names, by_name.filename) == ("bgppeer", ["p1", "p2"], None)
    by_file = parse("delete", "-f", "fabric.yaml")
    assert (by_file.kind, by_file.filename) == (None, ["fabric.yaml"])


def test_bad_output_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("get", "pools", "-o", "xml")
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_every_command_module_registers_a_handler() -> None:
    parser = build_parser()
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))
    for argv in (["apply", "-f", "x"], ["get", "pools"], ["delete", "-f", "x"]):
        assert callable(parser.parse_args(argv).func)


def test_datastore_comes_from_flag_then_env_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(common.ENV_DATASTORE, raising=False)
    assert datastore_url(parse("get", "pools")) == DEFAULT_URL
    assert common.DEFAULT_DATASTORE == DEFAULT_URL
    monkeypatch.setenv(common.ENV_DATASTORE, "etcd://127.0.0.1:2379")
    assert datastore_url(parse("get", "pools")) == "etcd://127.0.0.1:2379"
    flagged = parse("--datastore", "sqlite:///tmp/x.db", "get", "pools")
    assert datastore_url(flagged) == "sqlite:///tmp/x.db"


def test_global_log_level_survives_a_subcommand_with_its_own() -> None:
    args = parse("--log-level", "debug", "cni", "install", "--log-level", "error")
    assert args.cli_log_level == "debug"
    assert args.log_level == "error"


# --- errors -------------------------------------------------------------------


def failing(exc: BaseException) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        raise exc

    return handler


def invalid_documents() -> InvalidResource:
    text = (
        "apiVersion: gingham.io/v1\nkind: IPPool\nmetadata: {name: p1}\n"
        "spec: {cidr: 10.0.0.0/16, blockSize: 33}\n---\n"
        "apiVersion: gingham.io/v1\nkind: BGPPeer\nmetadata: {name: x}\n"
        "spec: {peerIP: 10.0.0.1}\n"
    )
    with pytest.raises(InvalidResource) as exc_info:
        load_documents(text, "f.yaml")
    return exc_info.value


@pytest.mark.parametrize(
    ("exc", "lines"),
    [
        (
            invalid_documents(),
            [
                'f.yaml: document 1: IPPool "p1": spec.blockSize: 33 is outside 20..32',
                'f.yaml: document 2: BGPPeer "x": spec: asNumber is required when peerIP is set',
            ],
        ),
        (UnknownKind('unknown resource kind "foo"'), ['unknown resource kind "foo"']),
        (NotFound('IPPool "x" not found'), ['IPPool "x" not found']),
        (Conflict('IPPool "x" changed'), ['IPPool "x" changed']),
        (
            Unavailable("connection refused"),
            ["datastore unavailable at sqlite:///tmp/d.db: connection refused (try again later)"],
        ),
        (CLIError("x.yaml: no such file"), ["x.yaml: no such file"]),
    ],
)
def test_user_errors_are_lines_on_stderr_and_exit_1(
    exc: BaseException, lines: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(datastore="sqlite:///tmp/d.db")
    assert run_command(failing(exc), args) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"gingham: error: {line}" for line in lines]
    assert captured.out == ""


def test_a_bug_is_one_line_and_exit_2_with_the_traceback_only_at_debug(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = argparse.Namespace(datastore="sqlite:///tmp/d.db")
    assert run_command(failing(KeyError("boom")), args) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "gingham: error: unexpected KeyError: 'boom' (run with --log-level debug for the traceback)"
    ]
    logger = logging.getLogger("gingham")
    try:
        store = f"sqlite://{tmp_path}/d.db"
        main(["--datastore", store, "--log-level", "debug", "get", "pools", "-o", "json"])
        capsys.readouterr()
        assert run_command(failing(KeyError("boom")), args) == 2
        assert "Traceback (most recent call last)" in capsys.readouterr().err
    finally:
        logger.setLevel(logging.WARNING)


def test_async_handlers_are_awaited() -> None:
    async def handler(_: argparse.Namespace) -> int:
        return 7

    assert run_command(handler, argparse.Namespace()) == 7
