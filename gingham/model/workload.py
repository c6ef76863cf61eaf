"""WorkloadEndpoint: a pod's attachment to the fabric, written by felix.

One object per (node, container ID, pod interface). IPAM's leak check treats
an allocation as live when some WorkloadEndpoint carries its handle
(`ipam_handle`, which defaults to felix's ``<container id>.<interface>``).

The name (`workload_endpoint_name`) is a readable Calico-like part,
``<node>-<orchestrator>-<namespace>-<pod>-<interface>`` (plain CNI: the
container ID for the pod), then ``-`` and a digest of the exact (node,
container ID, interface). The readable part is lossy (lower-cased, every run
of other characters one ``-``, cut to fit); the digest is what tells
attachments apart, so two container IDs that differ only in case or in
``_`` / ``.`` / ``-`` (``CaseTest`` and ``casetest``, ``pod_x1`` and
``pod-x1``), and two sandboxes of one pod, each get their own record. It is
a DNS-1123 subdomain of at most 253 characters, valid in every datastore
(Kubernetes object names included).

Records written before that naming (the readable part alone) are still
found: felix keeps the name a record was loaded under, and removal by
(container ID, interface) lists the node's records and compares their spec.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import ClassVar

from pydantic import Field

from gingham.model.base import Model, Resource, register_kind
from gingham.model.fields import CIDR, MACAddress

MAX_NAME = 253
# 128 bits of SHA-256 in base32 (a-z, 2-7): no two attachments share a name,
# even chosen on purpose.
_DIGEST_CHARS = 26


def workload_endpoint_name(
    node: str,
    container_id: str,
    interface: str,
    *,
    orchestrator: str = "cni",
    namespace: str = "",
    pod: str = "",
) -> str:
    """The record name of one attachment, unique per (node, container ID, interface)."""
    identity = "\0".join((node, container_id, interface)).encode()
    raw = hashlib.sha256(identity).digest()[:16]
    digest = base64.b32encode(raw).decode().rstrip("=").lower()
    parts = [node, orchestrator, namespace, pod or container_id, interface]
    readable = "-".join(
        text for text in (re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts) if text
    )
    readable = readable[: MAX_NAME - _DIGEST_CHARS - 1].rstrip("-")
    return f"{readable}-{digest}" if readable else digest


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
