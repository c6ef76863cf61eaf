"""Install the plugin on a node: the `gingham` executable and the network conflist.

What a runtime needs to find us: an executable named `gingham` in its CNI bin
dir and a conflist in its conf dir. Both are written atomically (a temp file in
the same directory, fsync, rename), so a runtime scanning the directories sees
the old file or the new one, never half of one. Rewriting identical content is
skipped, which makes `install` idempotent and keeps runtimes that watch the conf
dir from reloading for nothing.

The executable is a three-line script with the absolute interpreter path (the
runtime passes its own PATH) run with `-SE`: skipping `site` saves ~30-40 ms per
call on this machine (the editable-install finder alone costs ~20 ms); the
directories `site` would have added are written into the script instead, and
it ends with `os._exit` after flushing its output (cni.plugin.exit_now): the
interpreter's teardown is CPU a one-shot process does not need. `-E`
makes the runtime's environment irrelevant to Python itself: a `PYTHONPATH`
cannot shadow our modules and `PYTHONDONTWRITEBYTECODE` cannot make every call
recompile them (~5-10 ms per module). Install also byte-compiles the plugin's
package, so the first pod does not pay for it either.

The conflist follows Calico's default: the plugin first, then `portmap`
(capability portMappings) and `bandwidth` (capability bandwidth). The
reference plugins those entries and containerd need (`portmap`, `bandwidth`,
`loopback`) are copied from `/usr/lib/cni` into the bin dir when missing there.

`cniVersion`: a runtime runs a list only if every plugin in it speaks the list's
version, so by default install asks each chained plugin it installed (VERSION)
and writes the highest version that the plugin and all of them support (the
Debian reference plugins 1.1.1 stop at 1.0.0, as do libcni 1.1's runtimes,
containerd 1.6 and podman 4.3: there it is 1.0.0), and the report says which
and why in one line. A chained plugin that cannot be asked (missing, not
runnable) is left out of the choice with a warning. An explicit `cni_version`
is written as given, with a warning for each plugin that cannot run it.
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cni.request import SUPPORTED_VERSIONS

PLUGIN_TYPE = "gingham"
DEFAULT_RUN_DIR = "/var/run/gingham"
REFERENCE_PLUGINS_DIR = "/usr/lib/cni"
CHAINED_REFERENCE_PLUGINS = ("portmap", "bandwidth", "loopback")


CHAINED_PLUGINS = ("portmap", "bandwidth")  # after ours in the conflist, in this order


class NoCommonVersion(Exception):
    """The chained plugins and this plugin share no CNI version: no list would run."""


@dataclass
class InstallReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # One line: the conflist's cniVersion and why it was chosen.
    version_choice: str = ""


def import_roots() -> list[str]:
    """Directories the plugin needs on sys.path: our packages, then site-packages."""
    ours = str(Path(__file__).resolve().parent.parent)
    paths = sysconfig.get_paths()
    roots = [ours]
    for key in ("purelib", "platlib"):
        if paths[key] not in roots:
            roots.append(paths[key])
    return roots


def plugin_script(python: str | None = None, roots: list[str] | None = None) -> str:
    python = python or sys.executable
    roots = roots or import_roots()
    return (
        f"#!{python} -SE\n"
        "# The gingham CNI plugin, installed by `gingham cni install`.\n"
        f"import sys; sys.path[:0] = {roots!r}\n"
        "from cni.plugin import exit_now, main; exit_now(main())\n"
    )


def conflist(
    name: str, run_dir: str, mtu: int = 0, log_level: str = "info", cni_version: str = "1.1.0"
) -> dict[str, object]:
    plugin: dict[str, object] = {
        "type": PLUGIN_TYPE,
        "felix_socket": os.path.join(run_dir, "felix.sock"),
        "log_level": log_level,
        "log_file": os.path.join(run_dir, "cni.log"),
        "capabilities": {"ips": True},
    }
    if mtu:
        plugin["mtu"] = mtu
    return {
        "cniVersion": cni_version,
        "name": name,
        "plugins": [
            plugin,
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
        ],
    }


def plugin_versions(executable: Path) -> list[str] | None:
    """What a CNI plugin says it supports (VERSION), or None if it cannot be asked."""
    if not executable.is_file():
        return None
    try:
        proc = subprocess.run(
            [str(executable)],
            input=b'{"cniVersion":"0.4.0"}',
            env={"CNI_COMMAND": "VERSION", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            capture_output=True,
            timeout=10,
            check=False,
        )
        versions = json.loads(proc.stdout)["supportedVersions"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None
    return [str(v) for v in versions]


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (-1,)  # not a version number: sorts below every real one


def choose_cni_version(bin_dir: Path, ours: tuple[str, ...]) -> tuple[str, str, list[str]]:
    """(version, the one-line reason, warnings): the highest of `ours` that every
    chained plugin in `bin_dir` says it supports; raises NoCommonVersion if none."""
    common = set(ours)
    asked: list[str] = []
    warnings: list[str] = []
    for plugin in CHAINED_PLUGINS:
        supported = plugin_versions(bin_dir / plugin)
        if supported is None:
            warnings.append(
                f"{bin_dir / plugin} cannot be asked for its CNI versions (missing or not "
                "runnable): runtimes will fail the chain until it is installed"
            )
            continue
        asked.append(plugin)
        if not common & set(supported):
            raise NoCommonVersion(
                f"{bin_dir / plugin} supports CNI versions {supported}, none of which "
                f"gingham supports ({list(ours)}): install a newer {plugin}"
            )
        common &= set(supported)
    version = max(common, key=_version_key)
    if not asked:
        reason = f"cniVersion {version}: gingham's newest (no chained plugin could be asked)"
    else:
        names = ["gingham", *asked]
        reason = (
            f"cniVersion {version}: the newest that {', '.join(names[:-1])} and {names[-1]} "
            f"(in {bin_dir}) all support"
        )
    return version, reason, warnings


def write_atomically(path: Path, content: bytes, mode: int, report: InstallReport) -> None:
    try:
        if path.read_bytes() == content and (path.stat().st_mode & 0o777) == mode:
            report.unchanged.append(str(path))
            return
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    report.written.append(str(path))


def install(  # noqa: PLR0917 - mirrors the CLI flags one to one
    bin_dir: Path,
    conf_dir: Path,
    run_dir: str = DEFAULT_RUN_DIR,
    name: str = "gingham",
    mtu: int = 0,
    log_level: str = "info",
    reference_dir: Path = Path(REFERENCE_PLUGINS_DIR),
    cni_version: str | None = None,
) -> InstallReport:
    """Write the plugin and the conflist; `cni_version` None: the newest version
    every chained plugin runs (raises NoCommonVersion when there is none)."""
    report = InstallReport()
    bin_dir.mkdir(parents=True, exist_ok=True)
    conf_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(bin_dir / PLUGIN_TYPE, plugin_script().encode(), 0o755, report)
    # Best effort: a read-only install tree just compiles on every call, as before.
    compileall.compile_dir(Path(__file__).resolve().parent, quiet=2, workers=1)
    for plugin in CHAINED_REFERENCE_PLUGINS:
        target, source = bin_dir / plugin, reference_dir / plugin
        if not target.exists() and source.is_file():
            write_atomically(target, source.read_bytes(), 0o755, report)
            report.copied.append(plugin)
    if cni_version is None:
        cni_version, report.version_choice, warnings = choose_cni_version(
            bin_dir, SUPPORTED_VERSIONS
        )
        report.warnings += warnings
    else:
        report.version_choice = f"cniVersion {cni_version}: as asked"
        for plugin in CHAINED_PLUGINS:
            supported = plugin_versions(bin_dir / plugin)
            if supported is not None and cni_version not in supported:
                report.warnings.append(
                    f"{bin_dir / plugin} supports CNI versions {supported}, not {cni_version}: "
                    f"runtimes will fail this chain; leave --cni-version out to get the "
                    "newest version every chained plugin supports"
                )
    document = json.dumps(conflist(name, run_dir, mtu, log_level, cni_version), indent=2)
    document += "\n"
    write_atomically(conf_dir / f"10-{name}.conflist", document.encode(), 0o644, report)
    return report


def remove(bin_dir: Path, conf_dir: Path, name: str = "gingham") -> None:
    """Undo `install` for our own files (the copied reference plugins stay)."""
    for path in (bin_dir / PLUGIN_TYPE, conf_dir / f"10-{name}.conflist"):
        path.unlink(missing_ok=True)
