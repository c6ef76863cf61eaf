"""ExaBGP with Gingham's changes to one pinned release: `python -m bird_agent.exabgp_main CONFIG`.

The changes apply only when the installed ExaBGP is `PINNED_VERSION` (read
from the distribution at start) and `GINGHAM_EXABGP_STOCK` is not set; any
other release runs stock, at ExaBGP's own reactor speed, with a warning on
stderr (the speaker logs it). The suite runs the speaker and the reflector
both ways. Every replacement is recorded and `restore()` undoes them all, so
a test that applies one leaves ExaBGP as it found it.

What each change is for (measurements: bench/rr.py's notes):

- `patch_reactor` — the reactor wakes every `reactor.speed` / 100 s even
  when idle; we run it at `IDLE_SPEED` (100 ms) so an idle node costs little,
  and this makes it never wait while API work is queued (stock paces large
  announcements by that wait).
- `patch_accept` — accepting a peer's connection is queued behind API work;
  this puts it first, so sessions come up while routes are being queued.
- `patch_api_steps` — the API scheduler starts a new asyncio event loop per
  pass for callbacks that are all generators in this release; this drives
  them without one.
- `patch_family` — `nlri.family()` builds new objects on every call, about
  ten calls per route received or sent; this returns the one `Family` per
  (afi, safi).
- `patch_reflected_commands` — new commands, `announce/withdraw reflected …`
  (written as ExaBGP's `announce/withdraw attributes … nlri …`), for the
  reflector's routes: parsed by ExaBGP's parser (plain IPv4 prefixes made
  as it makes them, `parse_routes`), neighbors found by address (ExaBGP
  runs a regular expression per neighbor and name: with 200 clients, most of
  its time), and sent as shared UPDATEs (`share_changes`): built once per
  distinct negotiation and queued on every named session, never entering an
  outgoing RIB — an update group, as BIRD and FRR send one table to many
  peers. ExaBGP's own commands (our exports use them) are left as they are.
- `patch_shared_updates` — a session sends its queued shared UPDATEs before
  its RIB's, several per write, and ExaBGP's "anything pending" (which holds
  End-of-RIB back) counts them.
- `patch_nlri_order` — UPDATE building sorts NLRI through a `__lt__` that
  recomputes both indexes per comparison; this computes each once.

Gone since update groups (each made the per-neighbor RIB path cheaper, which
reflected routes no longer take): copy avoidance for `next-hop self`, a
per-neighbor RIB insert in one pass, a cache of parsed commands, and a
prefix's packed form kept per mask.

`bird_agent.exabgp_cease` (the entry point the speaker runs) adds one more,
under the same gate: a `teardown` sends its Cease even under graceful
restart, for a node that stops for good.

Each is pinned by a unit test that compares its result with ExaBGP's own on
the same input (tests/unit/bgp/test_exabgp_main.py); the reflection and
speaker integration tests exercise them end to end, and on stock ExaBGP.
The garbage collector runs at the thresholds of the other daemons
(`gingham.collector`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterator, MutableMapping
from operator import methodcaller
from typing import Any

from gingham.collector import return_large_blocks, tune_gc
from gingham.prefix import parse_prefix, prefix_ints

IDLE_SPEED = "10"  # exabgp_reactor_speed: the idle wait is speed / 100 seconds
# ExaBGP's own default: what a stock (unpatched) ExaBGP is run at, since its
# reactor then sleeps between slices of queued API work.
STOCK_SPEED = "1.0"
# The one ExaBGP release the patches below were written for and are tested on.
PINNED_VERSION = "5.0.15"
# Set (to anything but "", "0" or "false") to run stock ExaBGP even when the
# pinned release is installed: the suite does, to keep the stock path working.
STOCK_VARIABLE = "GINGHAM_EXABGP_STOCK"

# How to undo every replacement made so far, oldest first (`restore`).
_UNDO: list[Callable[[], None]] = []


@functools.cache
def exabgp_version() -> str | None:
    """The installed ExaBGP distribution's version (None when not installed)."""
    try:
        return importlib.metadata.version("exabgp")
    except importlib.metadata.PackageNotFoundError:
        return None


def patches_apply() -> bool:
    """Whether ExaBGP here is the pinned release and stock was not asked for."""
    stock = os.environ.get(STOCK_VARIABLE, "").lower() not in ("", "0", "false")
    return not stock and exabgp_version() == PINNED_VERSION


def default_speed() -> str:
    """The reactor speed ExaBGP runs at unless an operator sets one."""
    return IDLE_SPEED if patches_apply() else STOCK_SPEED


def _set_attribute(owner: Any, name: str, value: Any) -> None:
    """`setattr`, remembered so that `restore` puts back what was there."""
    had = name in vars(owner)
    old = vars(owner).get(name)
    setattr(owner, name, value)
    _UNDO.append(lambda: setattr(owner, name, old) if had else delattr(owner, name))


def _set_item(mapping: MutableMapping[str, Any], key: str, value: Any) -> None:
    had = key in mapping
    old = mapping.get(key)

    def undo() -> None:
        if had:
            mapping[key] = old
        else:
            del mapping[key]

    mapping[key] = value
    _UNDO.append(undo)


def _register(command: Any, name: str, function: Callable[..., Any]) -> None:
    """`Command.register(name)(function)` for an API command of our own (undone by `restore`)."""
    functions = command.functions
    _set_item(command.callback["text"], name, function)
    _set_item(command.callback["neighbor"], name, True)
    _set_item(command.callback["options"], name, None)
    if name not in functions:
        functions.append(name)
        functions.sort(reverse=True)
        _UNDO.append(lambda: functions.remove(name))


def restore() -> None:
    """Puts back every ExaBGP method and command the patches replaced."""
    while _UNDO:
        _UNDO.pop()()


def _wraps(owner: Any, name: str) -> Callable[[Callable[[Any], Any]], None]:
    """Decorates `make(original)`: `owner.name` becomes what it returns, once.

    The replacement is marked, so patching twice wraps once; the original
    stays reachable in its closure (the tests read it from there). Nothing
    is replaced unless `patches_apply()`; `restore` undoes it.
    """

    def apply(make: Callable[[Any], Any]) -> None:
        if not patches_apply():
            return
        original = getattr(owner, name)
        if getattr(original, "gingham", False):
            return
        wrapper = make(original)
        wrapper.gingham = True
        _set_attribute(owner, name, wrapper)

    return apply


def patch_reactor() -> None:
    from exabgp.reactor.loop import Reactor  # type: ignore[import-untyped]

    @_wraps(Reactor, "_wait_for_io")
    def _(wait_for_io: Any) -> Any:
        def _wait_for_io(self: Any, sleeptime: int) -> Iterator[int]:
            if not self.asynchronous.ready():  # API work queued: no idle wait
                sleeptime = 0
            return wait_for_io(self, sleeptime)  # type: ignore[no-any-return]

        return _wait_for_io


ACCEPT = "checking for new connection(s)"  # what the reactor schedules to accept peers


def patch_accept() -> None:
    from exabgp.reactor.asynchronous import ASYNC  # type: ignore[import-untyped]

    @_wraps(ASYNC, "schedule")
    def _(schedule: Any) -> Any:
        def _schedule(self: Any, uid: str, command: str, callback: Any) -> None:
            if command == ACCEPT:  # ahead of queued route work, not behind it
                self._async.appendleft((uid, callback))
                return
            schedule(self, uid, command, callback)

        return _schedule


def patch_api_steps() -> None:
    from exabgp.reactor.asynchronous import ASYNC

    @_wraps(ASYNC, "run")
    def _(run: Any) -> Any:
        def _run(self: Any) -> Any:
            if not self._async:
                return False
            if any(self._is_coroutine(callback) for _, callback in self._async):
                return run(self)
            steps = self._run_async()  # only generators: it never awaits
            try:
                steps.send(None)
            except StopIteration as done:
                return done.value
            steps.close()
            raise RuntimeError("ExaBGP's API scheduler awaited with only generators queued")

        return _run


def patch_family() -> None:
    from exabgp.protocol.family import AFI, SAFI, Family  # type: ignore[import-untyped]

    if not patches_apply() or getattr(Family.family, "gingham", False):
        return
    _set_attribute(Family, "family", _per_family(Family.family))
    _set_attribute(Family, "index", _per_family(Family.index))
    for resource in (AFI, SAFI):
        create = resource.create.__func__

        def _create(cls: Any, value: int, create: Any = create) -> Any:
            found = cls.cache.get(value)
            return found if found is not None else create(cls, value)

        _set_attribute(resource, "create", classmethod(_create))


def _per_family(method: Any) -> Any:
    """`method(self)`, computed once per (afi, safi) and then read from a table."""
    table: dict[tuple[int, int], Any] = {}

    def wrapper(self: Any) -> Any:
        key = (self.afi, self.safi)
        found = table.get(key)
        if found is None:
            found = table[key] = method(self)
        return found

    wrapper.gingham = True  # type: ignore[attr-defined]
    return wrapper


# `announce REFLECTED …` / `withdraw REFLECTED …`: the attribute commands'
# words, for reflected routes, which go to sessions as shared UPDATEs.
REFLECTED = "reflected"
_index = methodcaller("index")  # each NLRI's own index() (INET overrides NLRI's)
SELECTIONS = 256  # neighbor selectors whose matches are kept


def patch_reflected_commands() -> None:
    """Registers `announce/withdraw reflected …` (`REFLECTED`): ExaBGP's attribute
    commands, for reflected routes, sent as shared UPDATEs (`share_changes`)."""
    from exabgp.bgp.message import Action  # type: ignore[import-untyped]
    from exabgp.logger import log  # type: ignore[import-untyped]
    from exabgp.reactor.api.command import announce  # type: ignore[import-untyped]
    from exabgp.reactor.api.command.command import Command  # type: ignore[import-untyped]

    if not patches_apply() or f"announce {REFLECTED}" in Command.callback["text"]:
        return
    selected: dict[tuple[tuple[str, ...], str], list[str]] = {}
    indexes: dict[tuple[str, ...], dict[str, list[str]]] = {}

    def neighbors(reactor: Any, service: str, line: str) -> tuple[list[str], str]:
        descriptions, command = announce.extract_neighbors(line)
        names = tuple(reactor.peers(service))
        peers = select_by_address(names, descriptions, indexes)
        if peers is not None:
            return peers, command
        # Other selectors: ExaBGP's matching, remembered per selector text.
        key = (names, repr(descriptions))
        peers = selected.get(key)
        if peers is None:
            peers = announce.match_neighbors(list(names), descriptions)
            if len(selected) >= SELECTIONS:
                del selected[next(iter(selected))]
            selected[key] = peers
        return peers, command

    def handler(action: Any, verb: str) -> Any:
        def command(self: Any, reactor: Any, service: str, line: str, use_json: bool) -> bool:
            def callback() -> Iterator[bool]:
                try:
                    peers, command = neighbors(reactor, service, line)
                    if not peers:
                        self.log_failure(f"no neighbor matching the command : {command}")
                        reactor.processes.answer_error(service)
                        yield True
                        return
                    # Parsed as the attribute command it is written as.
                    written = command.replace(f" {REFLECTED} ", " attributes ", 1)
                    changes = parse_routes(self, written, peers)
                    if not changes:
                        self.log_failure(f"command could not parse route in : {command}")
                        reactor.processes.answer_error(service)
                        yield True
                        return
                    for change in changes:
                        change.nlri.action = action
                    sessions = share_changes(reactor, peers, changes)
                    if sessions is None:
                        self.log_failure(f"routes that cannot be shared in : {command}")
                        reactor.processes.answer_error(service)
                        yield True
                        return
                    log.info(
                        lambda: (
                            f"{len(changes)} routes {verb} {sessions} of"
                            f" {len(peers)} sessions as shared UPDATEs"
                        ),
                        "processes",
                    )
                    yield False
                    reactor.processes.answer_done(service)
                except (ValueError, IndexError):
                    self.log_failure("issue parsing the route")
                    reactor.processes.answer_error(service)
                    yield True

            reactor.asynchronous.schedule(service, line, callback())
            return True

        command.gingham = True  # type: ignore[attr-defined]
        return command

    for name, function in (
        (f"announce {REFLECTED}", handler(Action.ANNOUNCE, "added to")),
        (f"withdraw {REFLECTED}", handler(Action.WITHDRAW, "removed from")),
    ):
        _register(Command, name, function)


_NEIGHBOR = "neighbor "
_NAMED = re.compile(r"(?:^|\s)neighbor (\S+)")


def select_by_address(
    names: tuple[str, ...],
    descriptions: list[list[str]],
    indexes: dict[tuple[str, ...], dict[str, list[str]]],
) -> list[str] | None:
    """`match_neighbors(names, descriptions)` when every description is one
    `neighbor ADDRESS` (the reflector's commands name up to every client but
    one: ExaBGP runs a regular expression per name and description, 40,000
    per command with 200 clients). Names are looked up by address, then
    checked with ExaBGP's own `match_neighbor`; None: not that shape."""
    from exabgp.reactor.api.command.limit import match_neighbor  # type: ignore[import-untyped]

    if not descriptions or any(
        len(d) != 1 or not d[0].startswith(_NEIGHBOR) or d[0].strip() == "neighbor *"
        for d in descriptions
    ):
        return None
    index = indexes.get(names)
    if index is None:
        if len(indexes) >= 8:
            indexes.clear()
        index = indexes[names] = {}
        for name in names:
            for found in _NAMED.finditer(name):
                index.setdefault(found.group(1).split(",", 1)[0], []).append(name)
    matched: set[str] = set()
    for description in descriptions:
        address = description[0][len(_NEIGHBOR) :].split(",", 1)[0]
        matched.update(n for n in index.get(address, ()) if match_neighbor(description, n))
    return [name for name in names if name in matched]


def parse_routes(api: Any, command: str, peers: list[str]) -> list[Any]:
    """`api.api_attributes(command, peers)`: the routes of an attribute command.

    ExaBGP's parser tokenises and checks every prefix of `nlri P1 P2 …`
    through its generic machinery, then makes each route the same way
    (`configuration.static.attributes`): a new NLRI of the first one's
    class with its own prefix, the shared next hop and the shared attributes.
    Here ExaBGP parses the attributes with the first prefix, and the other
    plain IPv4 prefixes are made as it makes them. Anything else (IPv6, labels,
    route distinguishers, path IDs, host bits, a split) is ExaBGP's own parse.
    """
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update.nlri.cidr import CIDR  # type: ignore[import-untyped]
    from exabgp.bgp.message.update.nlri.inet import INET  # type: ignore[import-untyped]
    from exabgp.bgp.message.update.nlri.qualifier import PathInfo  # type: ignore[import-untyped]
    from exabgp.protocol.family import AFI
    from exabgp.rib.change import Change  # type: ignore[import-untyped]

    head, nlri_word, tail = command.partition(" nlri ")
    texts = tail.split()
    rest = [_ipv4_prefix(text) for text in texts[1:]]
    if not nlri_word or not rest or None in rest:
        return api.api_attributes(command, peers)  # type: ignore[no-any-return]
    first = api.api_attributes(f"{head} nlri {texts[0]}", peers)
    template = first[0] if len(first) == 1 else None
    if (
        template is None
        or type(template.nlri) is not INET
        or template.nlri.afi != AFI.ipv4
        or template.nlri.path_info is not PathInfo.NOPATH
    ):
        return api.api_attributes(command, peers)  # type: ignore[no-any-return]
    nlri, attributes = template.nlri, template.attributes
    changes = [template]
    for packed, length in rest:  # type: ignore[misc]
        new = Change(INET(nlri.afi, nlri.safi, Action.UNSET), attributes)
        new.nlri.cidr = CIDR(packed, length)
        new.nlri.nexthop = nlri.nexthop
        changes.append(new)
    return changes


def _ipv4_prefix(text: str) -> tuple[bytes, int] | None:
    """("10.65.1.0/26" →) the packed address and length; None unless canonical IPv4."""
    if "/" not in text:
        return None
    try:
        prefix = parse_prefix(text)  # strict: host bits refused
    except ValueError:
        return None  # IPv6, host bits, not a prefix: ExaBGP's parse decides
    address, length = prefix_ints(prefix)
    return address.to_bytes(4, "big"), length


# An OutgoingRIB's attribute: its neighbor's queue of shared UPDATE messages,
# as (the session they were built for, the message).
SHARED = "_gingham_shared"
# Queued UPDATEs are written to a session up to this many bytes at a time.
WRITE_BYTES = 64 * 1024


def share_changes(reactor: Any, peers: list[str], changes: list[Any]) -> int | None:
    """One command's routes sent to every named neighbor that has a session,
    as UPDATE messages built once per distinct negotiation (not per neighbor)
    and queued on each session (`patch_shared_updates` sends them); the number
    of sessions. None: routes that need ExaBGP's per-neighbor handling (next-hop
    self, anything but plain IPv4 unicast, more than one attribute set), which
    the caller injects into each neighbor's outgoing RIB instead.

    Nothing is kept for a neighbor without an Established session, and nothing
    enters its outgoing RIB: the speaker sends a session everything it must hear
    when it comes up (`ExaBGPAdapter`), as ExaBGP's RIB would have replayed it.
    """
    from exabgp.bgp.fsm import FSM  # type: ignore[import-untyped]
    from exabgp.bgp.message.update import Update  # type: ignore[import-untyped]
    from exabgp.bgp.message.update.nlri.inet import INET
    from exabgp.bgp.message.update.nlri.qualifier import PathInfo
    from exabgp.protocol.family import AFI, SAFI

    attributes = changes[0].attributes
    for change in changes:
        nlri = change.nlri
        if (
            type(nlri) is not INET
            or nlri.afi != AFI.ipv4
            or nlri.safi != SAFI.unicast
            or nlri.path_info is not PathInfo.NOPATH
            or nlri.nexthop.SELF
            or change.attributes is not attributes
        ):
            return None
    update = Update([change.nlri for change in changes], attributes)
    built: dict[tuple[Any, ...], list[bytes]] = {}
    sessions = 0
    for name in peers:
        peer = reactor._peers.get(name)
        proto = None if peer is None else peer.proto
        if proto is None or peer.fsm != FSM.ESTABLISHED:
            continue
        negotiated = proto.negotiated
        key = negotiation_key(negotiated)
        messages = built.get(key)
        if messages is None:
            messages = built[key] = list(update.messages(negotiated, True))
        rib = vars(peer.neighbor.rib.outgoing)
        queue = rib.get(SHARED)
        if queue is None:
            queue = rib[SHARED] = deque()
        elif queue and queue[0][0] is not proto:
            kept = [item for item in queue if item[0] is proto]
            queue.clear()
            queue.extend(kept)
        queue.extend((proto, raw) for raw in messages)
        sessions += 1
    return sessions


def negotiation_key(negotiated: Any) -> tuple[Any, ...]:
    """What of a session's negotiation changes how an IPv4 unicast UPDATE without
    next-hop self is encoded (`Update.messages`, `Attributes.pack`, `INET.pack`):
    sessions with equal keys get the very same bytes."""
    from exabgp.protocol.family import AFI, SAFI

    return (
        negotiated.msg_size,
        negotiated.asn4,
        bool(negotiated.addpath.send(AFI.ipv4, SAFI.unicast)),
        int(negotiated.local_as),
        int(negotiated.peer_as),
        bool(negotiated.aigp),
        tuple(negotiated.families),
    )


def patch_shared_updates() -> None:
    """A session sends its queued shared UPDATEs (`share_changes`) before what its
    outgoing RIB holds, and `pending` counts them, so ExaBGP's End-of-RIB waits
    for them as it waits for the RIB. Messages queued for a session that has
    ended are dropped, never sent on the next one."""
    from exabgp.bgp.message import _NOP
    from exabgp.reactor.protocol import Protocol  # type: ignore[import-untyped]
    from exabgp.rib.outgoing import OutgoingRIB  # type: ignore[import-untyped]

    @_wraps(OutgoingRIB, "pending")
    def _(pending: Any) -> Any:
        def _pending(self: Any) -> bool:
            return bool(vars(self).get(SHARED)) or bool(pending(self))

        return _pending

    @_wraps(Protocol, "new_update")
    def _(new_update: Any) -> Any:
        def _new_update(self: Any, include_withdraw: bool) -> Iterator[Any]:
            queue = vars(self.neighbor.rib.outgoing).get(SHARED)
            while queue:
                # Consecutive messages go out in one write (a system call per
                # UPDATE was most of ExaBGP's time with 200 sessions), each
                # counted as the UPDATE it is.
                batch: list[bytes] = []
                size = 0
                while queue and size < WRITE_BYTES:
                    session, raw = queue.popleft()
                    if session is self:  # else built for a session that has ended
                        batch.append(raw)
                        size += len(raw)
                if not batch:
                    continue
                self.peer.stats["send-update"] += len(batch) - 1
                for _ in self.send(b"".join(batch)):
                    yield _NOP
            yield from new_update(self, include_withdraw)

        return _new_update


def patch_nlri_order() -> None:
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.nlri.nlri import NLRI  # type: ignore[import-untyped]
    from exabgp.protocol.family import AFI, SAFI

    by_index = NLRI.__lt__
    native_family = (AFI.ipv4, SAFI.unicast)
    ANNOUNCE, WITHDRAW = Action.ANNOUNCE, Action.WITHDRAW

    @_wraps(Update, "_split_nlris")
    def _(split_nlris: Any) -> Any:
        def _split_nlris(self: Any, negotiated: Any) -> Any:
            """ExaBGP's `_split_nlris`, its NLRI sorted by `index()` computed once each.

            Only where ExaBGP's order *is* the order of `index()` (`NLRI.__lt__`);
            otherwise, and for anything but IPv4 unicast, ExaBGP's own.
            """
            everything = self.nlris
            kinds: set[Any] = set(map(type, everything))
            if any(kind.__lt__ is not by_index for kind in kinds):
                return split_nlris(self, negotiated)
            families = negotiated.families
            nlris: list[Any] = []
            rest: list[Any] = []
            for nlri in sorted(everything, key=_index):
                family = (nlri.afi, nlri.safi)  # nlri.family().afi_safi()
                if family not in families:
                    continue
                action = nlri.action
                if family == native_family and (
                    action == WITHDRAW or (action == ANNOUNCE and nlri.nexthop.afi == AFI.ipv4)
                ):
                    nlris.append(nlri)
                else:
                    rest.append(nlri)
            if not rest:
                return nlris, {}
            # The others as ExaBGP splits them (already in order: its sort keeps it).
            self.nlris = rest
            try:
                mp_nlris = split_nlris(self, negotiated)[1]
            finally:
                self.nlris = everything
            return nlris, mp_nlris

        return _split_nlris


PATCHES: tuple[Callable[[], None], ...] = (
    patch_reactor,
    patch_accept,
    patch_api_steps,
    patch_family,
    patch_reflected_commands,
    patch_shared_updates,
    patch_nlri_order,
)


def apply_patches() -> bool:
    """Every patch, if ExaBGP is the pinned release; else none, said on stderr."""
    if not patches_apply():
        why = (
            f"{STOCK_VARIABLE} is set"
            if exabgp_version() == PINNED_VERSION
            else f"ExaBGP {exabgp_version()} is installed; Gingham's changes are for"
            f" {PINNED_VERSION} only"
        )
        print(
            f"gingham: WARNING: running stock ExaBGP ({why}): idle loop and route"
            " reflection at ExaBGP's own speed",
            file=sys.stderr,
            flush=True,
        )
        return False
    for patch in PATCHES:
        patch()
    return True


def main() -> None:
    tune_gc()
    return_large_blocks()
    apply_patches()
    from exabgp.application.main import main as exabgp_main  # type: ignore[import-untyped]

    exabgp_main()


if __name__ == "__main__":
    main()
