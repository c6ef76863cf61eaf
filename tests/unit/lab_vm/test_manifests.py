"""README "A BGP lab on three VMs" and `gingham lab up --vm` apply the same cluster.

`manifests/systemd/three-vms.yaml` (the README's step 3) must be the lab's
plan for three nodes, with the README's addresses for the lab's; the env file
and etcd defaults must point at the same etcd address the lab substitutes.
"""

from __future__ import annotations

from typing import Any

import yaml

from gingham.lab.topology import LabOptions, plan_lab
from gingham.lab.vm.lab import README_DATASTORE_IP, SUBNET
from gingham.lab.vm.units import UNIT_DIR, parse_env_file

README_NODES = {"10.0.0.11/24": "10.200.0.1/24", "10.0.0.12/24": "10.200.0.2/24",
                "10.0.0.13/24": "10.200.0.3/24"}  # fmt: skip


def comparable(doc: dict[str, Any]) -> tuple[str, str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "Node":
        bgp = dict(spec["bgp"])
        bgp["ipv4Address"] = README_NODES.get(bgp["ipv4Address"], bgp["ipv4Address"])
        spec = {**spec, "bgp": bgp}
    return doc["kind"], doc["metadata"]["name"], spec


def test_three_vms_yaml_is_the_vm_labs_plan() -> None:
    readme = list(yaml.safe_load_all((UNIT_DIR / "three-vms.yaml").read_text()))
    plan = plan_lab(LabOptions(nodes=3, encap="ipip", vm=True, datastore="etcd"))
    assert [comparable(d) for d in readme] == [comparable(d) for d in plan.resources]
    pool = readme[0]["spec"]
    assert pool["ipipMode"] == "Always" and pool["vxlanMode"] == "Never"
    assert all(n.address.network == SUBNET for n in plan.nodes)


def test_env_file_and_etcd_defaults_agree_on_the_datastore() -> None:
    env = parse_env_file((UNIT_DIR / "gingham.env").read_text())
    etcd = parse_env_file((UNIT_DIR / "etcd.default").read_text())
    assert env["GINGHAM_DATASTORE"] == f"etcd://{README_DATASTORE_IP}:2379"
    assert etcd["ETCD_ADVERTISE_CLIENT_URLS"] == f"http://{README_DATASTORE_IP}:2379"
    assert f"http://{README_DATASTORE_IP}:2379" in etcd["ETCD_LISTEN_CLIENT_URLS"].split(",")
    name, peer = etcd["ETCD_INITIAL_CLUSTER"].split("=", 1)
    assert name == etcd["ETCD_NAME"] and peer == etcd["ETCD_INITIAL_ADVERTISE_PEER_URLS"]
