"""What real runtimes send our plugin, checked against a FAKE felix (contract shape only).

containerd's CRI, podman and the libcni driver exec the installed `gingham` plugin; the
fake felix (tests/support/fake_felix.py) records the requests and answers from
memory, so no pod is really wired here. This pins the runtime -> plugin ->
felix contract: libcni 1.1 accepts our 1.0.0 results, CNI_ARGS carry the pod
identity, containerd's capitalised portMappings parse, and containerd's two
DELs (the second with CNI_NETNS="") both succeed. Reachability is tested with
the real felix in the other files of this folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cni.install import install
from gingham.v1 import dataplane_pb2 as pb
from tests.e2e.runtimes.conftest import _need
from tests.support.fake_felix import serve_fake_felix
from tests.support.runtimes.containerd import Containerd
from tests.support.runtimes.libcni import LibcniDriver, build_driver
from tests.support.runtimes.netns import node_netns
from tests.support.runtimes.podman import IMAGE, Podman

pytestmark = [pytest.mark.root]


def test_containerd_drives_the_plugin(short_tmp: Path, node: str, image_cache: Path) -> None:
    _need("containerd", "ctr", "runc", "podman")
    run_dir = short_tmp / "run"
    run_dir.mkdir()
    bin_dir, conf_dir = short_tmp / "bin", short_tmp / "net.d"
    install(bin_dir, conf_dir, run_dir=str(run_dir))
    with serve_fake_felix(str(run_dir / "felix.sock")) as fake:
        cd = Containerd(short_tmp / "cd", bin_dir, conf_dir, node, image_cache)
        try:
            cd.start()
            crib = cd.pb
            ports = [crib.PortMapping(protocol=crib.TCP, container_port=80, host_port=18090)]
            sandbox = cd.run_pod("web", namespace="shop", port_mappings=ports)
            status, _ = cd.status(sandbox)
            add = next(r for r in fake.requests if isinstance(r, pb.AddWorkloadRequest))
            assert status.network.ip == fake.workloads[(add.container_id, "eth0")]["ip"]
            assert (add.pod_namespace, add.pod_name, add.pod_uid) == ("shop", "web", "uid-web")
            assert add.container_id == sandbox and add.interface_name == "eth0"
            assert add.netns.startswith(str(short_tmp / "cd"))  # netns under the state dir
            cd.stop_pod(sandbox)
            cd.remove_pod(sandbox)
        finally:
            cd.stop()
    deletes = [r for r in fake.requests if isinstance(r, pb.DeleteWorkloadRequest)]
    assert len(deletes) >= 2 and deletes[-1].netns == ""
    assert fake.workloads == {}
    log = (run_dir / "cni.log").read_text()
    assert "Traceback" not in log


def test_libcni_check_and_chain_with_the_plugin(
    short_tmp: Path, node: str, image_cache: Path
) -> None:
    _need("go")
    run_dir = short_tmp / "run"
    run_dir.mkdir()
    bin_dir, conf_dir = short_tmp / "bin", short_tmp / "net.d"
    install(bin_dir, conf_dir, run_dir=str(run_dir))
    conflist = conf_dir / "10-gingham.conflist"
    doc = json.loads(conflist.read_text())
    doc["plugins"] = doc["plugins"][:1]  # the fake wires nothing, so nothing to chain onto
    conflist.write_text(json.dumps(doc))
    driver = LibcniDriver(build_driver(image_cache / "go"), node, [bin_dir], short_tmp / "cache")
    with node_netns("pd") as pod, serve_fake_felix(str(run_dir / "felix.sock")) as fake:
        add = driver.run("add", conflist, "lc1", pod)
        assert add.returncode == 0, add.stderr
        assert add.result["cniVersion"] == "1.0.0"
        assert driver.run("check", conflist, "lc1", pod).returncode == 0
        fake.kernel_problems = ["route 10.99.0.2/32 missing"]
        broken = driver.run("check", conflist, "lc1", pod)
        assert broken.returncode != 0 and "route 10.99.0.2/32 missing" in broken.stderr
        assert driver.run("del", conflist, "lc1", pod).returncode == 0
        assert fake.workloads == {}


def test_podman_drives_the_plugin(short_tmp: Path, node: str) -> None:
    _need("podman", "runc")
    run_dir = short_tmp / "run"
    run_dir.mkdir()
    bin_dir, conf_dir = short_tmp / "bin", short_tmp / "net.d"
    install(bin_dir, conf_dir, run_dir=str(run_dir))
    pm = Podman(short_tmp / "pm", bin_dir, conf_dir, netns=node)
    with serve_fake_felix(str(run_dir / "felix.sock")) as fake:
        try:
            pm.import_busybox()
            pm.run("run", "-d", "--name", "pc", "--network", "gingham", IMAGE)
            add = next(r for r in fake.requests if isinstance(r, pb.AddWorkloadRequest))
            info: Any = pm.inspect("pc")
            ip = info["NetworkSettings"]["Networks"]["gingham"]["IPAddress"]
            assert ip == fake.workloads[(add.container_id, "eth0")]["ip"]
            pm.run("rm", "--force", "--time", "0", "pc")
        finally:
            pm.close()
    assert fake.workloads == {}
    assert "Traceback" not in (run_dir / "cni.log").read_text()
