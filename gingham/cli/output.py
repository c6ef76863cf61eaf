"""How `gingham get` shows resources: tables (plain and wide), YAML and JSON.

Pure: resources in, text out; no datastore, no printing. Tables follow
calicoctl's columns per kind; any kind without its own columns gets NAME (and
LABELS when wide), so a new kind is listable before anyone designs its table.

Invariants:
- YAML and JSON output is exactly `Resource.to_document()`, so it can be fed
  back to ``gingham apply -f`` unchanged (``metadata.resourceVersion``
  included: re-applying it is a compare-and-swap, as with kubectl).
- Several objects in YAML are a multi-document stream (one ``---`` document
  each); in JSON they are one ``kind: List`` object. A single object asked
  for by name is printed on its own in both.
- Table cells never contain a newline or a tab, so columns stay aligned.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gingham.model.base import Resource

FORMATS = ("table", "wide", "yaml", "json")
_GAP = "   "  # kubectl's column gap


@dataclass(frozen=True)
class TableContext:
    """Cluster facts some columns need, e.g. the AS a node inherits."""

    default_as_number: int | None = None


Cell = Callable[[Any, TableContext], object]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell
    wide_only: bool = False


def _text(value: object) -> str:
    """A cell: None → empty, bools as true/false, enums by value, one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(getattr(value, "value", value))
    return " ".join(text.split())


def _labels(obj: Resource, _: TableContext) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(obj.metadata.labels.items()))


def _name(obj: Resource, _: TableContext) -> str:
    return obj.name


# --- per-kind columns ---------------------------------------------------------


def _peer_node(peer: Any, _: TableContext) -> str:
    # calicoctl's NODE column: the node, the node selector, or "(global)".
    spec = peer.spec
    if spec.node is not None:
        return str(spec.node)
    if spec.node_selector is not None:
        return str(spec.node_selector)
    return "(global)"


def _peer_asn(peer: Any, _: TableContext) -> object:
    # A peerSelector peer takes each selected node's AS: show that, as calicoctl does.
    if peer.spec.as_number is None:
        return "(node's)"
    return peer.spec.as_number


def _node_bgp(field: str) -> Cell:
    def cell(node: Any, _: TableContext) -> object:
        bgp = node.spec.bgp
        return None if bgp is None else getattr(bgp, field)

    return cell


def _node_asn(node: Any, context: TableContext) -> object:
    # An AS in parentheses is inherited from BGPConfiguration "default" (calicoctl).
    bgp = node.spec.bgp
    if bgp is None:
        return None
    if bgp.as_number is not None:
        return bgp.as_number
    return None if context.default_as_number is None else f"({context.default_as_number})"


def _node_vxlan(node: Any, _: TableContext) -> object:
    vxlan = node.spec.vxlan
    return None if vxlan is None else vxlan.tunnel_address


def _spec(field: str) -> Cell:
    def cell(obj: Any, _: TableContext) -> object:
        return getattr(obj.spec, field)

    return cell


def _seconds(field: str) -> Cell:
    def cell(obj: Any, _: TableContext) -> object:
        value = getattr(obj.spec, field)
        return None if value is None else f"{value}s"

    return cell


def _password(peer: Any, _: TableContext) -> str:
    return "set" if peer.spec.password else ""


def _block_use(block: Any, _: TableContext) -> str:
    allocations = block.spec.allocations
    used = sum(1 for ordinal in allocations if ordinal is not None)
    return f"{used}/{len(allocations)}"


def _handle_blocks(handle: Any, _: TableContext) -> str:
    return ",".join(f"{cidr}:{count}" for cidr, count in sorted(handle.spec.block.items()))


def _joined(field: str) -> Cell:
    def cell(obj: Any, _: TableContext) -> str:
        return ",".join(str(v) for v in getattr(obj.spec, field))

    return cell


NAME = Column("NAME", _name)
LABELS = Column("LABELS", _labels, wide_only=True)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "IPPool": (
        NAME,
        Column("CIDR", _spec("cidr")),
        Column("SELECTOR", _spec("node_selector")),
        Column("BLOCKSIZE", _spec("block_size"), wide_only=True),
        Column("IPIPMODE", _spec("ipip_mode"), wide_only=True),
        Column("VXLANMODE", _spec("vxlan_mode"), wide_only=True),
        Column("NAT", _spec("nat_outgoing"), wide_only=True),
        Column("DISABLED", _spec("disabled"), wide_only=True),
    ),
    "BGPPeer": (
        NAME,
        Column("PEERIP", _spec("peer_ip")),
        Column("NODE", _peer_node),
        Column("ASN", _peer_asn),
        Column("PEERSELECTOR", _spec("peer_selector"), wide_only=True),
        Column("KEEPNEXTHOP", _spec("keep_original_next_hop"), wide_only=True),
        Column("PASSWORD", _password, wide_only=True),
    ),
    "Node": (
        NAME,
        Column("ASN", _node_asn),
        Column("IPV4", _node_bgp("ipv4_address")),
        Column("IPV6", _node_bgp("ipv6_address")),
        Column("RRCLUSTERID", _node_bgp("route_reflector_cluster_id"), wide_only=True),
        Column("IPIPTUNNEL", _node_bgp("ipv4_ipip_tunnel_addr"), wide_only=True),
        Column("VXLANTUNNEL", _node_vxlan, wide_only=True),
        LABELS,
    ),
    "BGPConfiguration": (
        NAME,
        Column("LOGSEVERITY", _spec("log_severity")),
        Column("MESHENABLED", _spec("node_to_node_mesh_enabled")),
        Column("ASNUMBER", _spec("as_number")),
        Column("LISTENPORT", _spec("listen_port"), wide_only=True),
        Column("KEEPALIVE", _seconds("keepalive_time"), wide_only=True),
        Column("HOLD", _seconds("hold_time"), wide_only=True),
    ),
    "IPAMConfiguration": (
        NAME,
        Column("STRICTAFFINITY", _spec("strict_affinity")),
        Column("MAXBLOCKSPERHOST", _spec("max_blocks_per_host")),
        Column("AUTORELEASE", _spec("auto_release_empty_blocks"), wide_only=True),
    ),
    "IPAMBlock": (
        NAME,
        Column("CIDR", _spec("cidr")),
        Column("AFFINITY", _spec("affinity")),
        Column("INUSE", _block_use),
        Column("STRICT", _spec("strict_affinity"), wide_only=True),
    ),
    "BlockAffinity": (
        NAME,
        Column("NODE", _spec("node")),
        Column("CIDR", _spec("cidr")),
        Column("STATE", _spec("state")),
        Column("DELETED", _spec("deleted"), wide_only=True),
    ),
    "IPAMHandle": (
        NAME,
        Column("HANDLE", _spec("handle_id")),
        Column("BLOCKS", _handle_blocks, wide_only=True),
    ),
    "WorkloadEndpoint": (
        NAME,
        Column("NODE", _spec("node")),
        Column("NAMESPACE", _spec("namespace")),
        Column("POD", _spec("pod")),
        Column("NETWORKS", _joined("ip_networks")),
        Column("INTERFACE", _spec("interface_name"), wide_only=True),
        Column("MAC", _spec("mac"), wide_only=True),
    ),
}

GENERIC_COLUMNS = (NAME, LABELS)


def columns_for(kind: str, wide: bool) -> list[Column]:
    return [c for c in COLUMNS.get(kind, GENERIC_COLUMNS) if wide or not c.wide_only]


def render_table(
    kind: str,
    resources: Sequence[Resource],
    wide: bool = False,
    context: TableContext | None = None,
) -> str:
    """Aligned columns with a header row (kubectl style), ending in a newline."""
    context = context or TableContext()
    columns = columns_for(kind, wide)
    rows = [[c.header for c in columns]]
    rows += [[_text(c.cell(obj, context)) for c in columns] for obj in resources]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [
        _GAP.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def render_yaml(resources: Sequence[Resource]) -> str:
    """One YAML document per resource, ``---`` between them."""
    import yaml  # only this output needs PyYAML

    docs = [r.to_document() for r in resources]
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def list_document(resources: Sequence[Resource]) -> dict[str, Any]:
    """Several resources as one object (kubectl's ``kind: List``)."""
    from gingham.model.base import API_VERSION

    return {
        "apiVersion": API_VERSION,
        "kind": "List",
        "items": [r.to_document() for r in resources],
    }


def render_json(resources: Sequence[Resource], single: bool) -> str:
    """The one resource (`single`) or a List of all of them, indented."""
    body = resources[0].to_document() if single else list_document(resources)
    return json.dumps(body, indent=2) + "\n"


def render(
    kind: str,
    resources: Sequence[Resource],
    output: str,
    single: bool = False,
    context: TableContext | None = None,
) -> str:
    """`resources` in the `output` format (one of FORMATS)."""
    if output == "yaml":
        return render_yaml(resources) if resources else ""
    if output == "json":
        return render_json(resources, single and len(resources) == 1)
    if output in ("table", "wide"):
        return render_table(kind, resources, wide=output == "wide", context=context)
    raise ValueError(f"unknown output format {output!r} (one of {', '.join(FORMATS)})")
