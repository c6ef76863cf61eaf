"""WorkloadEndpoint: a pod's attachment to the fabric, written by felix.

One object per (node, container ID, pod interface). IPAM's leak check treats
an allocation as live when some WorkloadEndpoint carries its handle
(`ipam_handle`, which defaults to felix's ``<container id>.<interface>``).

The name is Calico-like: ``<node>-<orchestrator>-<namespace>-<pod>-<interface>``
when those are known (see `workload_endpoint_name`), any DNS-1123 name
otherwise.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from gingham.model.base import Model, Resource, register_kind
from gingham.model.fields import CIDR, MACAddress


def workload_endpoint_name(
    node: str, orchestrator: str, namespace: str, pod: str, interface: str
) -> str:
    parts = [node, orchestrator, namespace, pod, interface]
    text = "-".join(re.sub(r"[^a-z0-9.]+", "-", p.lower()).strip("-.") for p in parts if p)
    return text[:253].strip("-.") or "workload"


class WorkloadEndpointSpec(Model):
    node: str
    orchestrator: str = "k8s"
    # namespace/pod for Kubernetes pods; free text for other orchestrators.
    namespace: str = ""
    pod: str = ""
    workload: str = ""
    container_id: str
    # The pod-side interface (CNI_IFNAME, usually eth0) and the host side veth.
    endpoint: str = "eth0"
    interface_name: str = ""
    ip_networks: list[CIDR] = Field(default_factory=list)
    mac: MACAddress | None = None
    profiles: list[str] = Field(default_factory=list)
    # Empty: felix's convention, "<container id>.<endpoint>".
    ipam_handle: str = ""

    @property
    def handle(self) -> str:
        return self.ipam_handle or f"{self.container_id}.{self.endpoint}"


@register_kind
class WorkloadEndpoint(Resource):
    kind: ClassVar[str] = "WorkloadEndpoint"
    plural: ClassVar[str] = "workloadendpoints"
    aliases: ClassVar[tuple[str, ...]] = ("workloadendpoint", "wep", "weps")

    spec: WorkloadEndpointSpec
