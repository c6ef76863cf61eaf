"""The plugin against a FAKE felix: result shapes, CNI_ARGS/runtimeConfig, error mapping.

The fake (tests/support/fake_felix.py) speaks the real gRPC contract but does no
kernel work; these tests pin what the plugin sends and prints. Pod plumbing and
reachability are tested with the real felix (test_real_felix.py).
"""

from __future__ import annotations

import grpc
import pytest

from gingham.v1 import dataplane_pb2 as pb
from tests.integration.cni.conftest import Installed
from tests.integration.cni.test_spec_errors import assert_error
from tests.support.fake_felix import Failure, FakeFelix
from tests.support.poll import wait_for


def test_add_result_1_1_0(installed: Installed, fake_felix: FakeFelix, netns: str) -> None:
    run = installed.run("ADD", installed.config(mtu=1400), netns=netns, container_id="c1")
    assert run.returncode == 0, run
    result = run.json
    assert result["cniVersion"] == "1.1.0"
    host, pod = result["interfaces"]
    assert "sandbox" not in host
    assert pod == {"name": "eth0", "mac": pod["mac"], "sandbox": netns, "mtu": 1400}
    assert result["ips"] == [
        {"address": result["ips"][0]["address"], "gateway": "169.254.1.1", "interface": 1}
    ]
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}]


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_add_result_legacy_versions(
    installed: Installed, fake_felix: FakeFelix, netns: str, version: str
) -> None:
    run = installed.run("ADD", installed.config(version), netns=netns)
    assert run.returncode == 0, run
    assert run.json["cniVersion"] == version
    assert run.json["ips"][0]["version"] == "4"
    assert "mtu" not in run.json["interfaces"][1]


def test_add_1_0_0_has_no_ip_version(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    run = installed.run("ADD", installed.config("1.0.0"), netns=netns)
    assert "version" not in run.json["ips"][0]
    assert "mtu" not in run.json["interfaces"][1]


def test_add_passes_pod_identity_pools_and_requested_ip(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    args = (
        "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_UID=u-1;"
        "K8S_POD_INFRA_CONTAINER_ID=c2;IP=10.99.0.77"
    )
    config = installed.config(ipam={"ipv4_pools": ["pool-a"]}, mtu=1450)
    run = installed.run("ADD", config, netns=netns, container_id="c2", cni_args=args)
    assert run.returncode == 0, run
    assert run.json["ips"][0]["address"] == "10.99.0.77/32"
    sent = fake_felix.requests[-1]
    assert (sent.pod_namespace, sent.pod_name, sent.pod_uid) == ("ns1", "web", "u-1")
    assert list(sent.pools) == ["pool-a"] and sent.mtu == 1450
    assert (sent.container_id, sent.netns, sent.interface_name) == ("c2", netns, "eth0")


def test_runtime_config_ips_and_capitalised_port_mappings(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    runtime = {
        "ips": ["10.99.0.88/24"],
        "portMappings": [
            {"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp"},
            {"hostPort": 5353, "containerPort": 53, "protocol": "udp"},
        ],
    }
    run = installed.run(
        "ADD",
        installed.config(runtimeConfig=runtime),
        netns=netns,
        cni_args="IgnoreUnknown=1;K8S_POD_NAME=p;FOO=bar",
    )
    assert run.returncode == 0, run
    assert list(fake_felix.requests[-1].requested_ips) == ["10.99.0.88"]


def test_runtime_config_mac_reaches_felix_and_the_result(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    config = installed.config(runtimeConfig={"mac": "02:00:00:00:00:01"})
    run = installed.run("ADD", config, netns=netns, container_id="cmac")
    assert run.returncode == 0, run
    assert fake_felix.requests[-1].mac == "02:00:00:00:00:01"
    pod = [i for i in run.json["interfaces"] if i.get("sandbox")]
    assert [i["mac"] for i in pod] == ["02:00:00:00:00:01"]
    # CHECK compares prevResult with the record CheckWorkload returns.
    prev = run.json
    check = installed.run(
        "CHECK", installed.config(prevResult=prev), netns=netns, container_id="cmac"
    )
    assert check.returncode == 0, check
    prev["interfaces"] = [
        {**i, "mac": "02:00:00:00:00:02"} if i.get("sandbox") else i for i in prev["interfaces"]
    ]
    check = installed.run(
        "CHECK", installed.config(prevResult=prev), netns=netns, container_id="cmac"
    )
    assert_error(check, 102, "02:00:00:00:00:02")


def test_add_is_idempotent(installed: Installed, fake_felix: FakeFelix, netns: str) -> None:
    first = installed.run("ADD", installed.config(), netns=netns, container_id="c3")
    again = installed.run("ADD", installed.config(), netns=netns, container_id="c3")
    assert first.json == again.json


def test_del_twice_and_with_empty_netns(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    assert installed.run("ADD", installed.config(), netns=netns, container_id="c4").returncode == 0
    first = installed.run("DEL", installed.config(), netns=netns, container_id="c4")
    second = installed.run("DEL", installed.config(), netns="", container_id="c4")
    gone = installed.run("DEL", installed.config(), netns="/var/run/netns/gone", container_id="c4")
    assert (first.returncode, second.returncode, gone.returncode) == (0, 0, 0)
    assert first.stdout == second.stdout == ""
    assert ("c4", "eth0") not in fake_felix.workloads
    assert fake_felix.requests[-1].netns == ""  # a vanished netns is sent as ""


def test_del_unknown_to_felix_succeeds(installed: Installed, fake_felix: FakeFelix) -> None:
    fake_felix.fail_next = Failure(pb.NOT_FOUND, grpc.StatusCode.NOT_FOUND, "no such workload")
    assert installed.run("DEL", installed.config(), container_id="never").returncode == 0


def _add(installed: Installed, netns: str, cid: str, version: str = "1.1.0") -> dict[str, object]:
    run = installed.run("ADD", installed.config(version), netns=netns, container_id=cid)
    assert run.returncode == 0, run
    result: dict[str, object] = run.json
    return result


def test_check_passes_with_matching_prev_result(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    prev = _add(installed, netns, "c5", "0.4.0")
    run = installed.run(
        "CHECK", installed.config("0.4.0", prevResult=prev), netns=netns, container_id="c5"
    )
    assert run.returncode == 0 and run.stdout == "", run


def test_check_reports_address_mismatch_precisely(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    prev = _add(installed, netns, "c6")
    prev["ips"] = [{"address": "10.99.0.250/32", "interface": 1}]
    run = installed.run("CHECK", installed.config(prevResult=prev), netns=netns, container_id="c6")
    assert_error(run, 102, "10.99.0.250")


def test_check_reports_kernel_problems(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    prev = _add(installed, netns, "c7")
    fake_felix.kernel_problems = ["route 10.99.0.2/32 via gh0 missing"]
    run = installed.run("CHECK", installed.config(prevResult=prev), netns=netns, container_id="c7")
    assert_error(run, 102, "route 10.99.0.2/32 via gh0 missing")


def test_check_without_prev_result_is_invalid_config(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    assert_error(installed.run("CHECK", installed.config(), netns=netns), 7, "prevResult")


def test_check_of_unknown_attachment(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    prev = _add(installed, netns, "c8")
    fake_felix.workloads.clear()
    run = installed.run("CHECK", installed.config(prevResult=prev), netns=netns, container_id="c8")
    assert_error(run, 102, "no such workload")


def test_gc_sends_valid_attachments(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    for cid in ("keep", "drop"):
        _add(installed, netns, cid)
    config = installed.config(
        **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]}
    )
    assert installed.run("GC", config).returncode == 0
    assert set(fake_felix.workloads) == {("keep", "eth0")}


def test_status_ready_and_not_ready(installed: Installed, fake_felix: FakeFelix) -> None:
    assert installed.run("STATUS", installed.config()).returncode == 0
    fake_felix.synced = False
    assert_error(installed.run("STATUS", installed.config()), 50, "synced")


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (Failure(pb.TRY_AGAIN_LATER, grpc.StatusCode.UNAVAILABLE, "datastore down"), 11),
        (Failure(pb.TRY_AGAIN_LATER, grpc.StatusCode.ABORTED, "CAS contention"), 11),
        (Failure(pb.ADDRESS_EXHAUSTED, grpc.StatusCode.RESOURCE_EXHAUSTED, "pool full"), 101),
        (Failure(pb.INVALID_ARGUMENT, grpc.StatusCode.INVALID_ARGUMENT, "bad", "netns"), 4),
        (Failure(pb.INVALID_ARGUMENT, grpc.StatusCode.INVALID_ARGUMENT, "no pool", "pools"), 7),
        (Failure(pb.INTERNAL, grpc.StatusCode.INTERNAL, "kernel said no"), 100),
    ],
)
def test_felix_errors_map_to_cni_codes(
    installed: Installed, fake_felix: FakeFelix, netns: str, failure: Failure, code: int
) -> None:
    fake_felix.fail_next = failure
    assert_error(installed.run("ADD", installed.config(), netns=netns), code)


def test_add_deadline_is_try_again_and_undone(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    fake_felix.delay = 1.5
    run = installed.run(
        "ADD", installed.config(timeout_seconds=0.5), netns=netns, container_id="slow"
    )
    assert_error(run, 11)
    # The plugin deleted what felix finished after the deadline. Its DEL is sent
    # before it exits; the server may dispatch it a moment later on a busy machine
    # (and after the stalled ADD), so it is waited for and order is not asserted.

    def deleted() -> list[str]:
        return [
            r.container_id for r in fake_felix.requests if isinstance(r, pb.DeleteWorkloadRequest)
        ]

    wait_for(lambda: deleted() == ["slow"], 10, what="the plugin's DEL of what felix finished late")


def test_grpcio_fallback_transport_gives_the_same_answers(
    installed: Installed, fake_felix: FakeFelix
) -> None:
    from cni import h2grpc, wire
    from cni.felix_client import _grpcio_call

    request = wire.encode(
        "AddWorkloadRequest", {"container_id": "fb", "netns": "/n", "interface_name": "eth0"}
    )
    fast = h2grpc.unary_call(installed.socket, "/gingham.v1.Dataplane/AddWorkload", request, 5)
    slow = _grpcio_call(installed.socket, "AddWorkload", request, 5)
    assert wire.decode("AddWorkloadReply", fast) == wire.decode("AddWorkloadReply", slow)
    fake_felix.fail_next = Failure(
        pb.ADDRESS_EXHAUSTED, grpc.StatusCode.RESOURCE_EXHAUSTED, "pool full", "pools"
    )
    with pytest.raises(h2grpc.GrpcStatus) as exc:
        _grpcio_call(installed.socket, "AddWorkload", request, 5)
    detail = wire.decode("ErrorDetail", exc.value.trailers["gingham-error-bin"])
    assert (exc.value.code, detail["field"]) == (8, "pools")


def test_large_reply_arrives_whole(installed: Installed, fake_felix: FakeFelix) -> None:
    """Replies beyond HTTP/2's default 64 KiB window (ListWorkloads on a busy node)."""
    from cni import h2grpc, wire

    for i in range(1500):
        fake_felix.AddWorkload(
            pb.AddWorkloadRequest(container_id=f"bulk{i:05d}", netns="/n", interface_name="eth0"),
            None,
        )
    raw = h2grpc.unary_call(installed.socket, "/gingham.v1.Dataplane/ListWorkloads", b"", 10)
    assert len(raw) > 65_535 + 16_384  # more than the default window plus a frame
    assert len(wire.messages(wire.decode("ListWorkloadsReply", raw), "workloads")) == 1500


def test_large_gc_request_goes_through(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    _add(installed, netns, "keep-me")
    valid = [{"containerID": f"c{i:06d}-{'x' * 40}", "ifname": "eth0"} for i in range(600)]
    valid.append({"containerID": "keep-me", "ifname": "eth0"})
    run = installed.run("GC", installed.config(**{"cni.dev/valid-attachments": valid}))
    assert run.returncode == 0, run
    assert set(fake_felix.workloads) == {("keep-me", "eth0")}
    assert len(fake_felix.requests[-1].valid) == 601


def test_unusable_add_reply_is_undone(
    installed: Installed, fake_felix: FakeFelix, netns: str
) -> None:
    fake_felix.omit_ips = True
    assert_error(installed.run("ADD", installed.config(), netns=netns, container_id="odd"), 103)
    assert ("odd", "eth0") not in fake_felix.workloads
