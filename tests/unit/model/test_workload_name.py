"""WorkloadEndpoint names: one per attachment, valid in every datastore (issue 16 item 2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gingham.model.fields import dns_subdomain_problem
from gingham.model.workload import workload_endpoint_name

# What the CNI spec allows as a container ID: alphanumeric first, then
# alphanumerics, "_", "." and "-".
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
CONTAINER_IDS = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(ALNUM),
    st.text(alphabet=ALNUM + "_.-", max_size=300),
)


def test_ids_that_differ_only_in_case_or_punctuation_get_their_own_names() -> None:
    for pair in (("CaseTest", "casetest"), ("pod_x1", "pod-x1"), ("a.b", "a_b")):
        names = {workload_endpoint_name("node1", cid, "eth0") for cid in pair}
        assert len(names) == 2, pair
    k8s = {
        workload_endpoint_name("n", cid, "eth0", orchestrator="k8s", namespace="ns", pod="web")
        for cid in ("sandbox1", "sandbox2")
    }
    assert len(k8s) == 2, "two sandboxes of one pod share a record"


def test_the_name_says_which_node_and_pod() -> None:
    name = workload_endpoint_name(
        "node1", "0123abcd", "eth0", orchestrator="k8s", namespace="default", pod="web-1"
    )
    assert name.startswith("node1-k8s-default-web-1-eth0-")
    assert workload_endpoint_name("node1", "Pod_X1", "eth0").startswith("node1-cni-pod-x1-eth0-")


@given(CONTAINER_IDS, st.sampled_from(["eth0", "net1", "Eth_0"]))
def test_every_container_id_the_spec_allows_gives_a_dns_1123_name(cid: str, ifname: str) -> None:
    name = workload_endpoint_name("node-1.example", cid, ifname)
    assert dns_subdomain_problem(name) is None
    assert name == workload_endpoint_name("node-1.example", cid, ifname)


@given(st.lists(CONTAINER_IDS, min_size=2, max_size=30, unique=True))
def test_distinct_container_ids_never_share_a_name(cids: list[str]) -> None:
    names = {workload_endpoint_name("n", cid, "eth0") for cid in cids}
    assert len(names) == len(cids)


def test_long_node_and_pod_names_still_fit() -> None:
    name = workload_endpoint_name(
        "n" * 253, "c" * 64, "eth0", orchestrator="k8s", namespace="x" * 63, pod="p" * 253
    )
    assert len(name) <= 253 and dns_subdomain_problem(name) is None
