"""Systemd units as commands: what `systemctl start` would run, for guests without systemd.

`gingham lab up --vm` follows the README's "A BGP lab on three VMs" by running
the very units in `manifests/systemd/` inside each guest (the guests boot
busybox, not systemd). This module turns a unit into the commands systemd
would execute — `render_unit(text, env_files, hostname)` is pure — and, as
``python -m gingham.lab.vm.units UNIT``, runs them: each `ExecStartPre` in
order (a ``-`` prefix means its failure is ignored), then `ExecStart` by
`exec` (same PID, so the caller's PID is the service's).

The subset of systemd.service(5) understood, which is all our units use:
`Environment=` (with ``%H`` → host name, ``%%`` → ``%``), `EnvironmentFile=`
(``-`` prefix: optional; later assignments win, files over `Environment=`),
``${VAR}`` (one word), ``$VAR`` (split on white space) and ``$$`` (a ``$``),
command prefixes ``-@:+!`` (only ``-`` has a meaning here). Anything else in a
unit is ignored; a unit without `ExecStart` or with an unset variable is an
error naming the unit and the variable.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

UNIT_DIR = Path(__file__).resolve().parents[3] / "manifests" / "systemd"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$(\$)")


class UnitError(ValueError):
    """A unit this module cannot turn into commands; the message names unit and reason."""


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    ignore_failure: bool = False


@dataclass(frozen=True)
class Service:
    name: str
    env: dict[str, str]
    pre: tuple[Command, ...] = ()
    start: Command = field(default_factory=lambda: Command(()))


def service_lines(text: str) -> list[tuple[str, str]]:
    """(key, value) pairs of the [Service] section, in order (continuations joined)."""
    pairs: list[tuple[str, str]] = []
    section, pending = "", ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line:
            key, value = line.split("=", 1)
            pairs.append((key.strip(), value.strip()))
    return pairs


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines (quotes removed, comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        words = shlex.split(value) if value.strip() else [""]
        env[key.strip()] = " ".join(words)
    return env


def _specifiers(value: str, hostname: str) -> str:
    return value.replace("%%", "\0").replace("%H", hostname).replace("\0", "%")


def _command(unit: str, line: str, env: dict[str, str], hostname: str) -> Command:
    prefix = re.match(r"^[-@:+!]*", line)
    flags = prefix.group(0) if prefix else ""
    argv: list[str] = []
    for word in shlex.split(_specifiers(line[len(flags) :], hostname)):

        def value(m: re.Match[str]) -> str:
            if m.group(3):  # "$$" is a literal "$"
                return "$"
            name = m.group(1) or m.group(2)
            if name not in env:
                raise UnitError(
                    f"{unit}: ${{{name}}} is not set (Environment= or EnvironmentFile=)"
                )
            return env[name]

        whole = _VAR.fullmatch(word)
        if whole and whole.group(2):  # bare $VAR: split into words, as systemd does
            argv += value(whole).split()
        else:
            argv.append(_VAR.sub(value, word))
    if not argv:
        raise UnitError(f"{unit}: empty command line {line!r}")
    return Command(tuple(argv), ignore_failure="-" in flags)


def render_unit(
    name: str, text: str, read_env_file: Callable[[str], str | None], hostname: str
) -> Service:
    """The commands `systemctl start name` runs; `read_env_file(path)` is None when missing."""
    env: dict[str, str] = {}
    pre: list[str] = []
    start: str | None = None
    for key, value in service_lines(text):
        if key == "Environment":
            for assignment in shlex.split(_specifiers(value, hostname)):
                k, _, v = assignment.partition("=")
                env[k] = v
        elif key == "EnvironmentFile":
            optional = value.startswith("-")
            path = value.lstrip("-")
            content = read_env_file(path)
            if content is None:
                if not optional:
                    raise UnitError(f"{name}: EnvironmentFile {path} does not exist")
                continue
            env.update(parse_env_file(content))
        elif key == "ExecStartPre":
            pre.append(value)
        elif key == "ExecStart":
            start = value
    if start is None:
        raise UnitError(f"{name}: no ExecStart")
    return Service(
        name,
        env,
        tuple(_command(name, line, env, hostname) for line in pre),
        _command(name, start, env, hostname),
    )


def load_unit(path: Path, hostname: str | None = None) -> Service:
    """Render an installed unit, reading its environment files from this machine."""

    def read(env_path: str) -> str | None:
        try:
            return Path(env_path).read_text()
        except FileNotFoundError:
            return None

    return render_unit(path.name, path.read_text(), read, hostname or socket.gethostname())


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gingham.lab.vm.units /etc/systemd/system/UNIT", file=sys.stderr)
        return 2
    try:
        service = load_unit(Path(argv[0]))
    except (UnitError, OSError) as exc:
        print(f"{argv[0]}: {exc}", file=sys.stderr)
        return 1
    env = {**os.environ, **service.env}
    for command in service.pre:
        done = subprocess.run(command.argv, env=env, check=False)
        if done.returncode != 0 and not command.ignore_failure:
            print(f"{service.name}: {command.argv[0]} exited {done.returncode}", file=sys.stderr)
            return 1
    os.execvpe(service.start.argv[0], list(service.start.argv), env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
