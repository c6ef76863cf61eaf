"""natOutgoing: the nftables ruleset felix owns, as a pure function of the pools.

Traffic from a pool with `natOutgoing: true` to anywhere outside *all* pools
is masqueraded to the node's address (Calico's rule); pod-to-pod traffic,
even across nodes and pools, keeps its source.

Ownership: felix owns exactly one nftables table, `ip gingham_nat`, and only
ever replaces it whole in one atomic `nft -f` transaction (create-if-missing,
delete, re-create), so a half-written ruleset is never visible and other
tables (the operator's, kube-proxy's) are never touched. No pool needing NAT
means no table at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from felix.desired import PoolInfo

NAT_TABLE = "gingham_nat"


def _elements(cidrs: list[str]) -> str:
    return f" elements = {{ {', '.join(cidrs)} }};" if cidrs else ""


def nat_ruleset(pools: Iterable[PoolInfo]) -> str | None:
    """The table's full definition, or None when no enabled pool wants NAT."""
    enabled = [p for p in pools if not p.disabled]
    masq = sorted(str(p.cidr) for p in enabled if p.nat_outgoing)
    if not masq:
        return None
    # Disabled pools still hold running pods: their traffic is not "outside".
    every = sorted({str(p.cidr) for p in pools})
    return (
        f"table ip {NAT_TABLE} {{\n"
        f"  set all_pools {{ type ipv4_addr; flags interval;{_elements(every)} }}\n"
        f"  set masq_pools {{ type ipv4_addr; flags interval;{_elements(masq)} }}\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        "    ip saddr @masq_pools ip daddr != @all_pools masquerade\n"
        "  }\n"
        "}\n"
    )


def replace_script(ruleset: str | None) -> str:
    """One atomic nft transaction that makes the table exactly `ruleset` (or absent)."""
    head = f"table ip {NAT_TABLE}\ndelete table ip {NAT_TABLE}\n"
    return head + (ruleset or "")
