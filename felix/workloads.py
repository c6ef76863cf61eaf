"""Pod attachments: IPAM + plumbing + the /32 route, idempotent per attachment.

`Workloads.add` is what AddWorkload does: validate, assign addresses through
an injected `Ipam` while the veth pair is made (felix.veth, raw rtnetlink: the
pair needs no address), then put the addresses on it, record the
WorkloadEndpoint and have the agent program the /32 route, all three at once,
and return once they are done, so the pod can be answered the moment the
runtime starts it.
`delete` undoes all of it and works when the netns is already gone: the veth
goes down first (its routes with it), then the address is released, the
record removed and the veth deleted concurrently. Each step's wall time is
logged at DEBUG (`Phases`; bench/cni.py prints the medians).

Invariants:
- One attachment per (container ID, interface), named by
  `host_interface_name`; a repeated add with the same key returns the same
  result without assigning again.
- The IPAM handle is `<container ID>.<interface>`, so IPAM's leak repair can
  map handles back to attachments; which pool an address comes from is
  felix.pod_addresses' decision.
- A failed add leaves nothing behind: addresses are released and the veth is
  removed before the error is raised (also when its route is not programmed
  in time).
- Add and delete of one attachment never interleave (a lock per host
  interface name): a DEL sent while its ADD is still running — the plugin's
  deadline undo — takes effect after that ADD.
- A deleted veth is reported to the agent (`link_removed`): the kernel took
  its /32 with it, and a new veth of the same name (same container ID again)
  must get the route anew.
- One sandbox per attachment. An ADD of a (container ID, interface) that is
  attached in another, still existing network namespace is refused (`invalid`
  on field `netns`) before anything is assigned or plumbed; the first sandbox
  keeps its veth, address and record. Namespaces are compared by identity
  (device and inode), so two paths of one namespace are one sandbox. If the
  first sandbox's namespace is gone, the ADD first deletes what is left of it
  (as a DEL would) and then adds anew. After a restart felix does not know the
  namespace; veth.plumb then refuses a pair whose peer lives elsewhere.
- A DEL that names another existing namespace than the live attachment's is
  the DEL of an ADD felix refused: it deletes nothing (existed=False).
- A pod whose veth vanished (the agent dropped its routes) keeps its address
  and record until its DEL or a GC that does not list it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from felix import veth
from felix.agent import Agent
from felix.attachments import (
    Attachment,
    EndpointRecords,
    netns_identity,
    other_live_sandbox,
    same_sandbox,
    sandbox_alive,
)
from felix.dataplane import host_interface_name
from felix.desired import EncapMode, LocalWorkload
from felix.pod_addresses import (
    Ipam,
    WorkloadError,
    assign_addresses,
    handle_for,
    resolve_pools,
)
from gingham.datastore.base import Datastore, DatastoreError
from gingham.keyed_locks import KeyedLocks

log = logging.getLogger("felix.workloads")

DEFAULT_HOST_MTU = 1500
VXLAN_OVERHEAD, IPIP_OVERHEAD = 50, 20


@dataclass(frozen=True)
class AddRequest:
    container_id: str
    netns: str
    interface: str = "eth0"
    pod_namespace: str = ""
    pod_name: str = ""
    pod_uid: str = ""
    requested_ips: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    mtu: int = 0
    # The pod interface's MAC (CNI runtimeConfig.mac); "": the kernel's choice.
    mac: str = ""


class Phases:
    """Wall time per step of one add or delete, logged at DEBUG: where felix's time goes."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.steps: list[tuple[str, float]] = []

    def mark(self, step: str) -> None:
        now = time.perf_counter()
        self.steps.append((step, (now - self._last) * 1000))
        self._last = now

    def __str__(self) -> str:
        return " ".join(f"{step}={ms:.1f}ms" for step, ms in self.steps)


def valid_unicast_mac(mac: str) -> bool:
    """Six colon-separated hex octets, multicast bit clear (a NIC cannot own a group)."""
    octets = mac.split(":")
    if len(octets) != 6 or not all(len(o) == 2 for o in octets):
        return False
    try:
        values = [int(o, 16) for o in octets]
    except ValueError:
        return False
    return not values[0] & 1 and any(values)


@dataclass
class Workloads:
    agent: Agent
    host_netns: str | None
    ipam: Ipam
    host_mtu: int = DEFAULT_HOST_MTU
    # Where WorkloadEndpoints are recorded (None: nowhere, e.g. unit set-ups).
    datastore: Datastore | None = None
    attachments: dict[str, Attachment] = field(default_factory=dict)
    route_timeout: float = 10.0
    # One add/delete at a time per attachment: a runtime retrying ADD while the
    # first is still running must not get a second address.
    _locks: KeyedLocks = field(default_factory=KeyedLocks)

    def __post_init__(self) -> None:
        self.records = EndpointRecords(self.datastore, self.agent.node)

    def _lock(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locks.hold(name)

    def pod_mtu(self) -> int:
        pools = [p for p in self.agent.pools.values() if not p.disabled]
        if any(p.vxlan_mode is not EncapMode.NEVER for p in pools):
            return self.host_mtu - VXLAN_OVERHEAD
        if any(p.ipip_mode is not EncapMode.NEVER for p in pools):
            return self.host_mtu - IPIP_OVERHEAD
        return self.host_mtu

    def _validate(self, req: AddRequest) -> IPv4Address | None:
        if not req.container_id:
            raise WorkloadError("invalid", "container_id is empty", "container_id")
        if not req.netns or not os.path.exists(req.netns):
            raise WorkloadError("invalid", f"netns {req.netns!r} does not exist", "netns")
        if len(req.requested_ips) > 1:
            raise WorkloadError("invalid", "at most one requested IP is supported", "requested_ips")
        if req.mtu and not 576 <= req.mtu <= 65535:
            raise WorkloadError("invalid", f"mtu {req.mtu} is outside 576..65535", "mtu")
        if req.mac and not valid_unicast_mac(req.mac):
            raise WorkloadError(
                "invalid", f"mac {req.mac!r} is not a unicast MAC like 0a:58:0a:41:00:07", "mac"
            )
        if not req.requested_ips:
            return None
        try:
            return IPv4Address(req.requested_ips[0])
        except ValueError:
            raise WorkloadError(
                "invalid", f"{req.requested_ips[0]!r} is not an IPv4 address", "requested_ips[0]"
            ) from None

    async def add(self, req: AddRequest) -> Attachment:
        interface = req.interface or "eth0"
        name = host_interface_name(req.container_id, interface)
        requested = self._validate(req)
        phases = Phases()
        async with self._lock(name):
            phases.mark("lock")
            attachment = await self._add_locked(req, interface, name, requested, phases)
        log.debug("add %s/%s: %s", req.container_id, interface, phases)
        return attachment

    def _known(self, name: str, req: AddRequest, interface: str) -> Attachment | None:
        """felix's attachment of this name: in memory, or a veth adopted at start
        that has no record (its addresses are in the kernel, its netns unknown)."""
        known = self.attachments.get(name)
        adopted = self.agent.workloads.get(name)
        if known is None and adopted is not None:
            mtu = req.mtu or self.pod_mtu()
            known = Attachment(req.container_id, interface, "", name, adopted.ips, "", "", mtu)
        return known

    async def _add_locked(
        self,
        req: AddRequest,
        interface: str,
        name: str,
        requested: IPv4Address | None,
        phases: Phases,
    ) -> Attachment:
        existing = self._known(name, req, interface)
        if existing is not None:
            if (existing.container_id, existing.interface) != (req.container_id, interface):
                # 44 bits of a hash name the veth: another attachment has this one.
                raise WorkloadError(
                    "internal",
                    f"host interface name {name} of {req.container_id}/{interface} is taken "
                    f"by {existing.container_id}/{existing.interface}",
                )
            same = same_sandbox(existing, req.netns)
            if same is not False:  # the same sandbox again, or one felix cannot tell
                return await self._converge(existing, req, interface, name)
            if sandbox_alive(existing):
                raise WorkloadError(
                    "invalid",
                    f"container {req.container_id!r} interface {interface!r} is already "
                    f"attached in netns {existing.netns!r}; DEL it before ADDing it into "
                    f"{req.netns!r}",
                    "netns",
                )
            # The first sandbox's namespace is gone: what is left of it goes first.
            log.info(
                "add %s/%s into %s: its earlier netns %s is gone; deleting that attachment",
                req.container_id, interface, req.netns, existing.netns,
            )  # fmt: skip
            await self._delete_locked(req.container_id, interface, name)
        handle = handle_for(req.container_id, interface)
        attributes = {"namespace": req.pod_namespace, "pod": req.pod_name, "node": self.agent.node}
        mtu = req.mtu or self.pod_mtu()
        spec = veth.VethSpec(name, interface, req.netns, (), mtu, req.container_id, req.mac.lower())
        # The pair needs no address: it is made while IPAM works.
        assigned, pair = await asyncio.gather(
            assign_addresses(
                self.ipam, handle, self.agent.node, attributes=attributes,
                pools=self.resolve_pools(req.pools), requested=requested,
            ),
            asyncio.to_thread(veth.plumb_pair, self.host_netns, spec),
            return_exceptions=True,
        )  # fmt: skip
        phases.mark("ipam+pair")
        try:
            return await self._complete_add(req, interface, name, handle, assigned, pair, phases)
        finally:
            if isinstance(pair, veth.PairInProgress):
                pair.close()

    async def _complete_add(  # noqa: PLR0917 - the two outcomes of the first step, and its context
        self,
        req: AddRequest,
        interface: str,
        name: str,
        handle: str,
        assigned: Sequence[object] | BaseException,
        pair: veth.PairInProgress | BaseException,
        phases: Phases,
    ) -> Attachment:
        """After IPAM and the pair: undo either if the other failed, else the addresses,
        the record and the route, all at once."""
        ips = () if isinstance(assigned, BaseException) else tuple(
            ip for ip in assigned if isinstance(ip, IPv4Address)
        )  # fmt: skip
        if isinstance(assigned, BaseException) or isinstance(pair, BaseException) or not ips:
            await self._undo_first_step(handle, name, assigned, pair)
            if isinstance(assigned, BaseException):
                raise assigned
            if isinstance(pair, veth.AttachedElsewhere):
                raise WorkloadError(
                    "invalid", f"container {req.container_id!r}: {pair}; DEL it first", "netns"
                ) from None
            if isinstance(pair, BaseException):
                raise WorkloadError("internal", f"plumbing {name}: {pair}") from pair
            raise WorkloadError("exhausted", "IPAM returned no IPv4 address", "pools")
        plumbed, mtu = pair.plumbed, pair.spec.mtu
        attachment = Attachment(
            req.container_id, interface, req.netns, name, ips, plumbed.host_mac,
            plumbed.pod_mac, mtu, req.pod_namespace, req.pod_name, req.pod_uid,
            netns_id=netns_identity(req.netns),
        )  # fmt: skip
        self.attachments[name] = attachment
        self.agent.workloads[name] = LocalWorkload(name, ips)
        self.agent.mark_dirty()
        # The pod's addresses, the WorkloadEndpoint write and the route's reconcile
        # pass do not depend on each other: wait for all three at once.
        addressed, recorded, routed = await asyncio.gather(
            asyncio.to_thread(veth.plumb_addresses, pair, ips),
            self.records.record(attachment),
            self._wait_routes({IPv4Network(ip) for ip in ips}),
            return_exceptions=True,
        )
        phases.mark("addresses+record+route")
        outcomes = (addressed, recorded, routed)
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None or not isinstance(recorded, str):
            # A failed add leaves nothing behind, even this late (unrecorded, the
            # IPs would also look leaked to IPAM's check).
            await self._delete_locked(req.container_id, interface, name)
            if isinstance(failure, DatastoreError):
                raise WorkloadError(
                    "transient", f"recording WorkloadEndpoint: {failure}"
                ) from failure
            if isinstance(failure, veth.PlumbingError):
                raise WorkloadError("internal", f"plumbing {name}: {failure}") from failure
            raise failure or AssertionError("unreachable: recorded is a revision")
        attachment = dataclasses.replace(
            attachment,
            endpoint_revision=recorded,
            endpoint_name=self.records.name_for(attachment),
        )
        self.attachments[name] = attachment
        return attachment

    async def _undo_first_step(
        self, handle: str, name: str, assigned: object, pair: object
    ) -> None:
        """After IPAM or the pair failed: give back what the other one made. A pair
        that is another sandbox's is not ours to remove, nor one we did not make
        when only IPAM failed."""
        if not isinstance(assigned, BaseException):
            await self.ipam.release(handle)
        made_here = isinstance(pair, veth.PairInProgress) and pair.plumbed.created
        if made_here or (
            isinstance(pair, BaseException) and not isinstance(pair, veth.AttachedElsewhere)
        ):
            await asyncio.to_thread(veth.unplumb, self.host_netns, name)

    async def _converge(
        self, existing: Attachment, req: AddRequest, interface: str, name: str
    ) -> Attachment:
        """The same attachment again (or one reloaded after a restart, whose netns
        felix does not store): converge the plumbing, assign nothing new."""
        spec = veth.VethSpec(
            name, interface, req.netns, existing.ips, existing.mtu, req.container_id,
            req.mac.lower(),
        )  # fmt: skip
        try:
            plumbed = await asyncio.to_thread(veth.plumb, self.host_netns, spec)
        except veth.AttachedElsewhere as exc:
            raise WorkloadError(
                "invalid",
                f"container {req.container_id!r} interface {interface!r} is already attached "
                f"in another netns ({exc}); DEL it before ADDing it into {req.netns!r}",
                "netns",
            ) from None
        except veth.PlumbingError as exc:
            raise WorkloadError("internal", f"plumbing {name}: {exc}") from exc
        netns_id = existing.netns_id or netns_identity(req.netns)
        existing = dataclasses.replace(
            existing, netns=req.netns, netns_id=netns_id, pod_mac=plumbed.pod_mac,
            host_mac=plumbed.host_mac,
        )  # fmt: skip
        self.attachments[name] = existing
        workload = LocalWorkload(name, existing.ips)
        if plumbed.created or self.agent.workloads.get(name) != workload:
            # A new pair (or one the agent dropped as vanished): it has no route yet.
            if plumbed.created:
                self.agent.link_removed(name)
            self.agent.workloads[name] = workload
            self.agent.mark_dirty()
            await self._wait_routes({IPv4Network(ip) for ip in existing.ips})
        return existing

    def resolve_pools(self, entries: Sequence[str]) -> list[str]:
        """Each CNI `ipv4_pools` entry — an IPPool name or its CIDR — as the pool's name."""
        return resolve_pools(entries, self.agent.pools, self.agent.reconciler.datastore_synced)

    async def _wait_routes(self, wanted: set[IPv4Network]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.route_timeout
        # At least one pass that began after the workload was registered: before
        # it, the programmed view may still hold a route of a deleted veth.
        while True:
            remaining = deadline - loop.time()
            try:
                await asyncio.wait_for(self.agent.reconciled(), max(remaining, 0.001))
                if wanted <= self.agent.programmed().routes.keys():
                    return
                if loop.time() >= deadline:
                    raise TimeoutError
            except TimeoutError:
                failures = "; ".join(self.agent.reconciler.failures.values())
                raise WorkloadError(
                    "transient", f"routes {sorted(map(str, wanted))} not programmed: {failures}"
                ) from None

    async def delete(self, container_id: str, interface: str, netns: str = "") -> bool:
        """DEL: undo the attachment. `netns` ("" when the runtime gave none or it is
        gone) only serves to tell a refused second sandbox's DEL from the first's."""
        interface = interface or "eth0"
        name = host_interface_name(container_id, interface)
        phases = Phases()
        async with self._lock(name):
            phases.mark("lock")
            if netns and await self._attached_elsewhere(name, interface, netns):
                log.warning(
                    "DEL %s/%s names netns %s, but it is attached in another namespace, "
                    "which still exists: deleting nothing (the DEL of a refused second ADD?)",
                    container_id, interface, netns,
                )  # fmt: skip
                return False
            existed = await self._delete_locked(container_id, interface, name, phases)
        log.debug("delete %s/%s: %s", container_id, interface, phases)
        return existed

    async def _attached_elsewhere(self, name: str, interface: str, netns: str) -> bool:
        """Is the attachment `name` alive in another namespace than `netns`?"""
        known = self.attachments.get(name)
        if known is not None and known.netns:
            return other_live_sandbox(known, netns)
        if known is None and name not in self.agent.workloads:
            return False  # nothing felix knows of: the DEL is harmless
        if not os.path.exists(netns):
            return False
        # Reloaded after a restart (no netns in memory): the kernel knows the peer.
        peer_here = await asyncio.to_thread(
            veth.attached_in, self.host_netns, name, interface, netns
        )
        return peer_here is False

    async def _delete_locked(
        self, container_id: str, interface: str, name: str, phases: Phases | None = None
    ) -> bool:
        phases = phases or Phases()
        # Down first: the kernel drops the pod's routes at once, so the address
        # can be released while the veth itself is still being deleted.
        plumbed = await asyncio.to_thread(veth.disconnect, self.host_netns, name)
        phases.mark("down")
        if plumbed:
            self.agent.link_removed(name)
        known = self.attachments.pop(name, None)
        existed = plumbed or known is not None
        existed = self.agent.workloads.pop(name, None) is not None or existed
        self.agent.mark_dirty()
        steps = [
            self.ipam.release(handle_for(container_id, interface)),
            self.records.forget(container_id, interface, known),
        ]
        if plumbed:
            steps.append(asyncio.to_thread(veth.unplumb, self.host_netns, name))
        # All three run to the end even when one fails (no half-done DEL); the
        # first failure is raised and the runtime retries the DEL.
        outcomes = await asyncio.gather(*steps, return_exceptions=True)
        phases.mark("release+unplumb")
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return existed

    async def load(self) -> None:
        """Rebuild attachments from this node's WorkloadEndpoints (after a restart).

        Records whose veth is gone (the pod's netns vanished) are loaded too: the
        address stays theirs until a DEL, or a GC that does not list them."""
        for wep in await self.records.this_node():
            spec = wep.spec
            name = spec.interface_name or host_interface_name(spec.container_id, spec.endpoint)
            ips = tuple(IPv4Address(n.network_address) for n in spec.ip_networks if n.version == 4)
            self.attachments[name] = Attachment(
                spec.container_id, spec.endpoint, "", name, ips, "", spec.mac or "",
                self.host_mtu, spec.namespace, spec.pod, "", wep.resource_version or "",
                wep.name,
            )  # fmt: skip
