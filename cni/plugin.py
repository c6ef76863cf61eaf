"""The `gingham` CNI plugin executable: one CNI command per process (spec 1.1.0).

The runtime execs us with CNI_* in the environment and the network config on
stdin. `main` parses (cni/request.py), makes at most one call to felix per
command (cni/felix_client.py, CHECK makes two), prints the result or the spec's
error JSON on stdout and returns the exit status.

Invariants:
- Never a traceback on stdout or stderr: every failure becomes `CniError`
  JSON and a non-zero exit; unexpected exceptions are logged, with their
  traceback, to the log file (`log_file`, default `cni.log` beside the felix
  socket) and reported as code 104.
- Start-up cost: this module imports only `os`, `sys`, `time`, `_json` (via
  cni/jsonio.py: `json` itself pulls in `re` and `enum`) and the small pure
  modules of this package; the felix client (`_socket`) is imported only by
  commands that call felix. grpcio and protobuf are never imported on the
  normal path (cni/h2grpc.py, cni/wire.py say why and how); grpcio is the
  fallback transport only. tests/unit/cni/test_startup.py keeps it so.
- DEL always succeeds when felix says there was nothing to delete, and with
  `CNI_NETNS` empty or already gone (containerd sends DEL twice).
"""

from __future__ import annotations

import os
import sys
import time

from cni import errors, jsonio
from cni.errors import CniError
from cni.request import (
    LATEST_VERSION,
    SUPPORTED_VERSIONS,
    config_version,
    decode_config,
    parse_netconf,
    read_command,
    read_invocation,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections.abc cost start-up time; mypy only needs them
    from collections.abc import Mapping
    from typing import BinaryIO, NoReturn

    from cni.request import Invocation, NetConf

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class PluginLog:
    """Appends one line per event to a file; cheap when nothing is logged."""

    def __init__(self) -> None:
        self.path = ""
        self.level = _LEVELS["info"]
        self.context = ""

    def configure(self, conf: NetConf, inv: Invocation | None) -> None:
        run_dir = os.path.dirname(conf.felix_socket)
        self.path = conf.log_file or (
            os.path.join(run_dir, "cni.log") if os.path.isdir(run_dir) else ""
        )
        self.level = _LEVELS[conf.log_level]
        if inv is not None:
            self.context = f"{inv.command} {inv.container_id[:12]}/{inv.ifname}"

    def write(self, level: str, message: str) -> None:
        if _LEVELS[level] < self.level:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        line = f"{stamp} {level.upper()} [{os.getpid()}] {self.context}: {message}\n"
        if self.level <= _LEVELS["debug"]:
            sys.stderr.write(line)
        if self.path:
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(line)
            except OSError:
                pass  # logging must never turn a good result into a failure


def _print(value: Mapping[str, object]) -> None:
    sys.stdout.write(jsonio.dumps(value) + "\n")
    sys.stdout.flush()


def version_info(stdin: bytes) -> dict[str, object]:
    """VERSION: echo the caller's cniVersion when it is one we speak."""
    version = LATEST_VERSION
    if stdin.strip():
        requested = decode_config(stdin).get("cniVersion")
        if isinstance(requested, str) and requested in SUPPORTED_VERSIONS:
            version = requested
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


_NS_GET_NSTYPE = 0xB703  # ioctl: _IO(0xb7, 0x3)
_CLONE_NEWNET = 0x40000000


def _check_netns(inv: Invocation) -> None:
    """CNI_NETNS names a network namespace (else felix fails deep in setns, code 100)."""
    try:
        found = os.stat(inv.netns)
    except FileNotFoundError:
        raise CniError(
            errors.INVALID_ENVIRONMENT,
            f"CNI_NETNS {inv.netns[:200]!r} does not exist (the pod's network namespace is gone?)",
        ) from None
    except OSError as exc:
        raise CniError(
            errors.INVALID_ENVIRONMENT, f"CNI_NETNS {inv.netns[:200]!r}: {exc.strerror}"
        ) from None
    if _network_namespace(inv.netns, found):
        return
    raise CniError(
        errors.INVALID_ENVIRONMENT,
        f"CNI_NETNS {inv.netns[:200]!r} is not a network namespace "
        "(expected a path like /var/run/netns/<name> or /proc/<pid>/ns/net)",
    )


def _network_namespace(path: str, found: os.stat_result) -> bool:
    # Namespace files are empty regular files on nsfs. Checking the filesystem
    # first means nothing else is ever opened (a FIFO would block, a device
    # could act on open).
    if found.st_mode & 0o170000 != 0o100000 or found.st_dev != os.stat("/proc/self/ns/net").st_dev:
        return False
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, _NS_GET_NSTYPE) == _CLONE_NEWNET
    except OSError:
        return False
    finally:
        os.close(fd)


def run_command(inv: Invocation, conf: NetConf, log: PluginLog) -> dict[str, object] | None:
    """Execute one felix-backed command; returns the result to print, if any."""
    if inv.command == "GC" and conf.valid_attachments is None:
        raise CniError(
            errors.INVALID_NETWORK_CONFIG,
            "GC: network config field cni.dev/valid-attachments is missing "
            "(refusing to treat every attachment as garbage)",
        )
    if inv.command in ("ADD", "CHECK"):
        _check_netns(inv)
    if inv.command == "CHECK":
        from cni.result import expected_from_prev_result

        # Validate prevResult before dialing felix: a bad one is the runtime's fault.
        expected = expected_from_prev_result(conf.prev_result, inv.ifname, inv.netns)

    from cni.felix_client import FelixClient  # only commands that need felix pay for it

    client = FelixClient(conf)
    try:
        if inv.command == "ADD":
            from cni.result import render_result

            attachment = client.add(inv, conf)
            log.write("info", f"added {[ip.address for ip in attachment.ips]}")
            return render_result(attachment, conf.cni_version)
        if inv.command == "DEL":
            netns_gone = bool(inv.netns) and not os.path.exists(inv.netns)
            existed = client.delete(inv.with_netns("") if netns_gone else inv)
            log.write("info", "deleted" if existed else "nothing to delete")
            return None
        if inv.command == "CHECK":
            from cni.result import check_problems

            kernel_problems, recorded = client.check(inv)
            problems = check_problems(expected, recorded, kernel_problems)
            if problems:
                raise CniError(
                    errors.CHECK_MISMATCH,
                    f"CHECK {inv.container_id}/{inv.ifname}: {problems[0]}",
                    "; ".join(problems),
                )
            return None
        if inv.command == "GC":
            removed = client.garbage_collect(conf.valid_attachments or ())
            log.write("info", f"garbage collected {removed}")
            return None
        # STATUS
        try:
            status = client.status()
        except CniError as exc:
            raise CniError(errors.PLUGIN_NOT_AVAILABLE, exc.msg, exc.details) from None
        if not status.ready:
            raise CniError(
                errors.PLUGIN_NOT_AVAILABLE,
                f"felix on node {status.node!r} has not synced with the datastore yet",
                "; ".join(status.problems),
            )
        return None
    finally:
        client.close()


def _run(env: Mapping[str, str], stdin_reader: BinaryIO, log: PluginLog) -> tuple[int, str]:
    version = LATEST_VERSION
    try:
        command = read_command(env)
        try:
            stdin = stdin_reader.read()
        except OSError as exc:
            raise CniError(
                errors.IO_FAILURE, "cannot read the network config from stdin", str(exc)
            ) from None
        if command == "VERSION":
            _print(version_info(stdin))
            return 0, version
        config = decode_config(stdin)
        version = config_version(config, command)
        conf = parse_netconf(config, version)
        log.configure(conf, None)
        inv = read_invocation(env, command)
        log.configure(conf, inv)
        result = run_command(inv, conf, log)
        if result is not None:
            _print(result)
        return 0, version
    except CniError as exc:
        log.write("error", f"code {exc.code}: {exc.msg} {exc.details}".rstrip())
        _print(exc.to_json_dict(version))
        return 1, version


def main() -> int:
    log = PluginLog()
    try:
        return _run(os.environ, sys.stdin.buffer, log)[0]
    except Exception as exc:  # the runtime must get JSON, never a traceback
        import traceback

        log.write("error", "internal error\n" + traceback.format_exc())
        error = CniError(errors.PLUGIN_INTERNAL, f"internal error in the gingham plugin: {exc!r}")
        _print(error.to_json_dict(LATEST_VERSION))
        return 1


def exit_now(code: int) -> NoReturn:
    """End the process with `code`, skipping the interpreter's teardown.

    A one-shot process has nothing to clean up that the kernel does not: the
    log file is closed after each line and the felix connection by the
    command, so only stdout and stderr need flushing. Tearing down the
    modules and objects would cost each CNI call 1-2 ms of CPU for nothing."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib costs start-up time
            stream.flush()
        except (OSError, ValueError):
            pass  # the runtime closed the pipe: there is no one left to tell
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
