"""Gingham's resource model (apiVersion gingham.io/v1).

Importing this package registers every kind (`KINDS`, `resolve_kind`), so
code that reads documents or the datastore imports `gingham.model`, not the
kind modules one by one.
"""

from __future__ import annotations

from gingham.model import ipam, workload
from gingham.model.base import (
    API_VERSION,
    KINDS,
    FieldError,
    InvalidResource,
    Metadata,
    Model,
    Resource,
    UnknownKind,
    register_kind,
    resolve_kind,
)
from gingham.model.bgp import (
    BGPConfiguration,
    BGPConfigurationSpec,
    BGPPeer,
    BGPPeerSpec,
    LogSeverity,
    Node,
    NodeBGPSpec,
    NodeSpec,
    NodeVXLANSpec,
    effective_bgp_configuration,
)
from gingham.model.documents import check_pool_overlaps, check_set, load_documents, parse_resource
from gingham.model.ipam import (
    AffinityState,
    AllocationAttribute,
    BlockAffinity,
    BlockAffinitySpec,
    IPAMBlock,
    IPAMBlockSpec,
    IPAMConfiguration,
    IPAMConfigurationSpec,
    IPAMHandle,
    IPAMHandleSpec,
)
from gingham.model.network import EncapsulationMode, IPPool, IPPoolSpec
from gingham.model.workload import WorkloadEndpoint, WorkloadEndpointSpec

__all__ = [
    "API_VERSION",
    "KINDS",
    "AffinityState",
    "AllocationAttribute",
    "BGPConfiguration",
    "BGPConfigurationSpec",
    "BGPPeer",
    "BGPPeerSpec",
    "BlockAffinity",
    "BlockAffinitySpec",
    "EncapsulationMode",
    "FieldError",
    "IPAMBlock",
    "IPAMBlockSpec",
    "IPAMConfiguration",
    "IPAMConfigurationSpec",
    "IPAMHandle",
    "IPAMHandleSpec",
    "IPPool",
    "IPPoolSpec",
    "InvalidResource",
    "LogSeverity",
    "Metadata",
    "Model",
    "Node",
    "NodeBGPSpec",
    "NodeSpec",
    "NodeVXLANSpec",
    "Resource",
    "UnknownKind",
    "WorkloadEndpoint",
    "WorkloadEndpointSpec",
    "check_pool_overlaps",
    "check_set",
    "effective_bgp_configuration",
    "ipam",
    "load_documents",
    "parse_resource",
    "register_kind",
    "resolve_kind",
    "workload",
]
