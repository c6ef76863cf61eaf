"""The lab plan: options in, every namespace, link, address and resource out. Pure.

`plan_lab(LabOptions)` decides everything `gingham lab up` builds, so the
builder (`gingham.lab.build`) only applies it and tests check it without root.

Layout:
- ``mesh`` / ``rr``: one L2 segment, a bridge ``br0`` in the lab's fabric
  namespace ``<lab>-fabric``; node i is namespace ``<lab>-node<i>`` with
  ``eth0`` = 10.200.0.<i>/24, its veth peer ``n<i>`` on the bridge.
- ``racks``: rack r is its own subnet 10.200.<r>.0/24 behind a ToR namespace
  ``<lab>-tor<r>`` (bridge ``br0`` there, gateway 10.200.<r>.1); ToRs meet on
  a spine bridge in the fabric namespace (10.200.255.<r>/24). Nodes of rack r
  are in AS 65100+r and peer eBGP with their ToR (AS 65000+r); the ToRs peer
  eBGP with each other over the spine. The standard Calico-on-L3 design.
- The fabric namespace has 10.200.0.254 (racks: 10.200.255.254, with routes
  to each rack via its ToR): ``--datastore etcd`` runs etcd there.
- Pods: namespace ``<lab>-node<i>-p<j>``, created through the CNI plugin.

Invariants (tested): node, ToR and gateway addresses are unique; link names
fit IFNAMSIZ; every resource document parses under `gingham.model`; every
namespace name starts with ``<lab>-`` so two labs never share one and
`lab down` can tell its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

TOPOLOGIES = ("mesh", "rr", "racks")
ENCAPS = ("none", "vxlan", "ipip")
TORS = ("frr", "bird")
POOL_CIDR = "10.244.0.0/16"
LAB_AS = 64512
RR_CLUSTER_ID = "244.0.0.1"
RR_LABEL = "route-reflector"
MAX_NODES = 200
_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")


class PlanError(ValueError):
    """Bad lab options: the message names the option and what is allowed."""


@dataclass(frozen=True)
class LabOptions:
    name: str = "lab"
    nodes: int = 4
    topology: str = "mesh"
    encap: str = "none"
    pods_per_node: int = 2
    tor: str = "frr"
    racks: int = 2
    datastore: str = "sqlite"
    vm: bool = False
    """Nodes are QEMU guests (`gingham.lab.vm.lab`), not namespaces; same plan."""
    kubernetes: bool = False
    """A real Kubernetes cluster with the DaemonSet (`gingham.lab.kubernetes`)."""


@dataclass(frozen=True)
class PodPlan:
    name: str
    node: str
    netns: str
    container_id: str


@dataclass(frozen=True)
class NodePlan:
    name: str
    netns: str
    address: IPv4Interface
    fabric_link: str
    """The veth end on the bridge (in the fabric or ToR namespace); the node end is eth0."""
    bridge_netns: str
    gateway: IPv4Address | None
    asn: int
    rack: int | None
    route_reflector: bool
    labels: dict[str, str]
    pods: tuple[PodPlan, ...]


@dataclass(frozen=True)
class TorPlan:
    name: str
    netns: str
    rack: int
    asn: int
    rack_address: IPv4Interface
    spine_address: IPv4Interface
    spine_link: str


@dataclass(frozen=True)
class LabPlan:
    options: LabOptions
    fabric_netns: str
    fabric_address: IPv4Interface
    """The fabric namespace's own address on its bridge (where a lab etcd listens)."""
    nodes: tuple[NodePlan, ...]
    tors: tuple[TorPlan, ...]
    resources: tuple[dict[str, Any], ...] = field(default=())

    @property
    def namespaces(self) -> list[str]:
        """Every namespace, in creation order (fabric, ToRs, nodes, pods)."""
        names = [self.fabric_netns, *(t.netns for t in self.tors)]
        names += [n.netns for n in self.nodes]
        names += [p.netns for n in self.nodes for p in n.pods]
        return names


def check_options(o: LabOptions) -> None:
    if not _NAME.match(o.name):
        raise PlanError(
            f"--name {o.name!r}: 1-12 lowercase letters and digits, starting with a letter"
        )
    if not 1 <= o.nodes <= MAX_NODES:
        raise PlanError(f"--nodes {o.nodes}: must be 1..{MAX_NODES}")
    if o.topology not in TOPOLOGIES:
        raise PlanError(f"--topology {o.topology!r}: one of {', '.join(TOPOLOGIES)}")
    if o.encap not in ENCAPS:
        raise PlanError(f"--encap {o.encap!r}: one of {', '.join(ENCAPS)}")
    if o.tor not in TORS:
        raise PlanError(f"--tor {o.tor!r}: one of {', '.join(TORS)}")
    if not 0 <= o.pods_per_node <= 50:
        raise PlanError(f"--pods-per-node {o.pods_per_node}: must be 0..50")
    if o.topology == "racks" and not 1 <= o.racks <= 50:
        raise PlanError(f"--racks {o.racks}: must be 1..50")
    if o.datastore not in ("sqlite", "etcd"):
        raise PlanError(f"--datastore {o.datastore!r}: sqlite or etcd")
    if o.topology == "rr" and o.nodes < 2:
        raise PlanError("--topology rr needs --nodes 2 or more (a reflector and a client)")


def plan_lab(o: LabOptions) -> LabPlan:
    check_options(o)
    fabric = f"{o.name}-fabric"
    racks = o.topology == "racks"
    reflectors = 0 if o.topology != "rr" else (2 if o.nodes >= 4 else 1)
    tors = tuple(
        TorPlan(
            name=f"tor{r}",
            netns=f"{o.name}-tor{r}",
            rack=r,
            asn=65000 + r,
            rack_address=IPv4Interface(f"10.200.{r}.1/24"),
            spine_address=IPv4Interface(f"10.200.255.{r}/24"),
            spine_link=f"t{r}",
        )
        for r in range(1, o.racks + 1)
    ) if racks else ()  # fmt: skip
    nodes = []
    for i in range(1, o.nodes + 1):
        name = f"node{i}"
        labels = {"gingham.io/lab": o.name}
        rack: int | None = None
        if racks:
            rack = (i - 1) % o.racks + 1
            host = (i - 1) // o.racks + 10
            address = IPv4Interface(f"10.200.{rack}.{host}/24")
            labels["rack"] = f"rack{rack}"
        else:
            address = IPv4Interface(f"10.200.0.{i}/24")
        rr = i <= reflectors
        if rr:
            labels[RR_LABEL] = "true"
        pods = tuple(
            PodPlan(f"{name}-pod{j}", name, f"{o.name}-{name}-p{j}", f"{o.name}-{name}-pod{j}")
            for j in range(1, o.pods_per_node + 1)
        )
        nodes.append(
            NodePlan(
                name=name,
                netns=f"{o.name}-{name}",
                address=address,
                fabric_link=f"n{i}",
                bridge_netns=tors[rack - 1].netns if rack else fabric,
                gateway=tors[rack - 1].rack_address.ip if rack else None,
                asn=65100 + rack if rack else LAB_AS,
                rack=rack,
                route_reflector=rr,
                labels=labels,
                pods=pods,
            )
        )
    # On the spine for racks (the nodes reach it through their ToR), else on the shared segment.
    fabric_address = IPv4Interface("10.200.255.254/24" if racks else "10.200.0.254/24")
    plan = LabPlan(o, fabric, fabric_address, tuple(nodes), tors)
    return LabPlan(o, fabric, fabric_address, tuple(nodes), tors, tuple(resources(plan)))


def _doc(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> Any:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "gingham.io/v1", "kind": kind, "metadata": metadata, "spec": spec}


def pool_spec(o: LabOptions) -> dict[str, Any]:
    # racks: encapsulate only between subnets (CrossSubnet), as Calico recommends on L3 fabrics.
    mode = "CrossSubnet" if o.topology == "racks" else "Always"
    spec: dict[str, Any] = {"cidr": POOL_CIDR, "blockSize": 26}
    spec["ipipMode"] = mode if o.encap == "ipip" else "Never"
    spec["vxlanMode"] = mode if o.encap == "vxlan" else "Never"
    return spec


def resources(plan: LabPlan) -> list[dict[str, Any]]:
    """The datastore documents: pool, BGP configuration, Nodes, BGPPeers."""
    o = plan.options
    docs = [_doc("IPPool", "default-ipv4-ippool", pool_spec(o))]
    docs.append(
        _doc(
            "BGPConfiguration",
            "default",
            {"asNumber": LAB_AS, "nodeToNodeMeshEnabled": o.topology == "mesh"},
        )
    )
    for node in plan.nodes:
        bgp: dict[str, Any] = {"ipv4Address": str(node.address), "asNumber": node.asn}
        if node.route_reflector:
            bgp["routeReflectorClusterID"] = RR_CLUSTER_ID
        docs.append(_doc("Node", node.name, {"bgp": bgp}, node.labels))
    if o.topology == "rr":
        # Calico's recipe: clients peer with every reflector, reflectors with each other.
        docs.append(
            _doc(
                "BGPPeer",
                "peer-with-route-reflectors",
                {"nodeSelector": f"!has({RR_LABEL})", "peerSelector": f"has({RR_LABEL})"},
            )
        )
        docs.append(
            _doc(
                "BGPPeer",
                "route-reflector-mesh",
                {"nodeSelector": f"has({RR_LABEL})", "peerSelector": f"has({RR_LABEL})"},
            )
        )
    for node in plan.nodes:
        if node.rack is None:
            continue
        tor = plan.tors[node.rack - 1]
        docs.append(
            _doc(
                "BGPPeer",
                f"{node.name}-{tor.name}",
                {"node": node.name, "peerIP": str(tor.rack_address.ip), "asNumber": tor.asn},
            )
        )
    return docs
