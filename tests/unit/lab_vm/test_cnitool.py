"""The cnitool stand-in runs a conflist as libcni does (plugins here are small shell scripts)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gingham.lab.vm.cnitool import CNIError, container_id, find_network, main, run_chain

# Each plugin appends "<its name> <command> <prevResult's first IP or ->" to LOG and prints
# a result naming itself; FAIL=<name> makes that plugin fail with a CNI error.
PLUGIN = """#!/bin/sh
conf=$(cat)
prev=$(printf '%s' "$conf" | python3 -c 'import json,sys; c=json.load(sys.stdin); \
print(c.get("prevResult", {}).get("ips", [{"address": "-"}])[0]["address"])')
echo "$(basename $0) $CNI_COMMAND $prev $CNI_CONTAINERID $CNI_IFNAME" >> "$LOG"
if [ "$FAIL" = "$(basename $0)" ]; then
    echo '{"cniVersion": "1.0.0", "code": 11, "msg": "try again later"}'; exit 1
fi
echo '{"cniVersion": "1.0.0", "ips": [{"address": "10.9.9.'$(basename $0 | tr -dc 0-9)'/32"}]}'
"""


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, conf_dir = tmp_path / "bin", tmp_path / "net.d"
    bin_dir.mkdir()
    conf_dir.mkdir()
    for name in ("p1", "p2"):
        (bin_dir / name).write_text(PLUGIN)
        (bin_dir / name).chmod(0o755)
    conflist = {"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "p1"}, {"type": "p2"}]}
    (conf_dir / "10-net.conflist").write_text(json.dumps(conflist))
    (conf_dir / "20-other.conf").write_text(json.dumps({"cniVersion": "1.0.0", "name": "other",
                                                        "type": "p2"}))  # fmt: skip
    monkeypatch.setenv("NETCONFPATH", str(conf_dir))
    monkeypatch.setenv("CNI_PATH", str(bin_dir))
    monkeypatch.setenv("LOG", str(tmp_path / "log"))
    return tmp_path


def log(tmp: Path) -> list[list[str]]:
    return [line.split() for line in (tmp / "log").read_text().splitlines()]


def test_container_id_is_cnitools() -> None:
    digest = hashlib.sha512(b"/run/netns/a").hexdigest()
    assert container_id("/run/netns/a") == f"cnitool-{digest[:20]}"


def test_add_chains_prev_result_and_del_runs_in_reverse(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["add", "net", "/run/netns/a"]) == 0
    assert json.loads(capsys.readouterr().out)["ips"][0]["address"] == "10.9.9.2/32"
    cid = container_id("/run/netns/a")
    assert log(setup) == [
        ["p1", "ADD", "-", cid, "eth0"],
        ["p2", "ADD", "10.9.9.1/32", cid, "eth0"],
    ]
    (setup / "log").unlink()
    assert main(["del", "net", "/run/netns/a"]) == 0
    assert [entry[:2] for entry in log(setup)] == [["p2", "DEL"], ["p1", "DEL"]]


def test_single_plugin_conf_and_missing_network(setup: Path) -> None:
    network = find_network(Path(setup / "net.d"), "other")
    assert [p["type"] for p in network["plugins"]] == ["p2"]
    with pytest.raises(CNIError, match="no network named 'nope'"):
        find_network(Path(setup / "net.d"), "nope")


def test_a_failing_plugin_stops_the_chain_with_its_error(
    setup: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAIL", "p1")
    assert main(["add", "net", "/run/netns/a"]) == 1
    error = json.loads(capsys.readouterr().err)
    assert (error["code"], error["msg"], error["plugin"]) == (11, "try again later", "p1")
    assert [entry[0] for entry in log(setup)] == ["p1"]
    with pytest.raises(CNIError, match="'p3' not found"):
        run_chain("ADD", {"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "p3"}]},
                  "/run/netns/a", {"CNI_PATH": str(setup / "bin")})  # fmt: skip
