"""A stand-in for the CNI project's `cnitool`: run a network's plugin chain for one netns.

    NETCONFPATH=/etc/cni/net.d CNI_PATH=/opt/cni/bin \\
        python -m gingham.lab.vm.cnitool add|check|del NETWORK /run/netns/NAME

Same command line, environment (`NETCONFPATH`, `CNI_PATH`, `CNI_IFNAME`,
`CNI_ARGS`) and container ID (``cnitool-`` + the first 10 bytes of the SHA-512
of the netns path, in hex) as cnitool, which Debian does not package. It runs
the conflist the way libcni does: ADD through every plugin in order, each
given the previous one's result as `prevResult`; DEL in reverse order. It
prints the last plugin's result (ADD) and exits 1 with the plugin's error
JSON on stderr when a plugin fails. Unlike libcni it keeps no result cache
(our plugin needs no prevResult on DEL) and passes no capability arguments.

`gingham lab up --vm` creates its pods with it inside each guest, and the
README's VM section uses it, so the README's pod step is the tested one.
Only the standard library is imported (it runs under TCG in the lab).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DEFAULT_NET_DIR = "/etc/cni/net.d"
COMMANDS = ("add", "check", "del")


class CNIError(Exception):
    """A plugin failed or the network is missing; `reply` is the CNI error object."""

    def __init__(self, message: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reply = reply or {"code": 999, "msg": message}


def container_id(netns: str) -> str:
    return "cnitool-" + hashlib.sha512(netns.encode()).digest()[:10].hex()


def find_network(net_dir: Path, name: str) -> dict[str, Any]:
    """The conflist (or single .conf, wrapped) named `name`, first by file name like libcni."""
    for path in sorted(net_dir.glob("*")):
        if path.suffix not in (".conflist", ".conf", ".json"):
            continue
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("name") != name:
            continue
        if "plugins" not in doc:  # a single-plugin .conf
            doc = {"cniVersion": doc.get("cniVersion"), "name": name, "plugins": [doc]}
        return doc
    raise CNIError(f"no network named {name!r} in {net_dir} (NETCONFPATH)")


def run_chain(command: str, network: dict[str, Any], netns: str, env: dict[str, str]) -> Any:
    """Run every plugin of `network` for `command` (ADD, CHECK, DEL); the last ADD result."""
    cni_path = env.get("CNI_PATH", "/opt/cni/bin").split(":")
    base = {
        **env,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id(netns),
        "CNI_NETNS": netns,
        "CNI_IFNAME": env.get("CNI_IFNAME", "eth0"),
        "CNI_PATH": ":".join(cni_path),
        "CNI_ARGS": env.get("CNI_ARGS", ""),
    }
    plugins = list(network["plugins"])
    if command == "DEL":
        plugins.reverse()
    result: Any = None
    for plugin in plugins:
        conf = {"cniVersion": network["cniVersion"], "name": network["name"], **plugin}
        if result is not None and command == "ADD":
            conf["prevResult"] = result
        found = [Path(d) / plugin["type"] for d in cni_path]
        exe = next((f for f in found if f.is_file()), None)
        if exe is None:
            raise CNIError(f"plugin {plugin['type']!r} not found in CNI_PATH {base['CNI_PATH']}")
        out = subprocess.run([str(exe)], input=json.dumps(conf).encode(), capture_output=True,
                             env=base, check=False)  # fmt: skip
        try:
            reply = json.loads(out.stdout or b"null")
        except ValueError:
            reply = None
        if out.returncode != 0:
            error = reply if isinstance(reply, dict) else {"code": 999, "msg": out.stderr.decode()}
            raise CNIError(
                f"{plugin['type']}: {error.get('msg')}", {**error, "plugin": plugin["type"]}
            )
        if command == "ADD" and reply is not None:
            result = reply
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in COMMANDS:
        print("usage: cnitool add|check|del NETWORK NETNS-PATH", file=sys.stderr)
        return 2
    command, name, netns = argv[0].upper(), argv[1], os.path.abspath(argv[2])
    env = dict(os.environ)
    try:
        network = find_network(Path(env.get("NETCONFPATH", DEFAULT_NET_DIR)), name)
        result = run_chain(command, network, netns, env)
    except CNIError as exc:
        print(json.dumps(exc.reply), file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
