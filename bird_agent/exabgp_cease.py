"""A session ended on purpose says so: `teardown` sends its Cease even under graceful restart.

`python -m bird_agent.exabgp_cease CONFIG` is ExaBGP as `bird_agent.exabgp_main`
runs it, plus one change to the pinned ExaBGP (5.0.15), for stopping a node
for good (`gingham node stop --drain`, SIGUSR2 to `gingham-bgp`).

ExaBGP ends a session in two ways. On SIGTERM, on a neighbor removed from its
configuration, or after `neighbor X teardown <subcode>` when graceful restart
(RFC 4724) was negotiated — always, for Gingham's sessions — it closes the TCP
connection without a NOTIFICATION (`Peer._main`: "closing the session without
notification"). A graceful-restart peer then treats us as restarting and keeps
routing to us for the whole restart time (120 s by default). That is right
for a restart, and wrong for a node that is leaving.

`patch_teardown` makes `neighbor X teardown <subcode>` do what RFC 4486 §4
asks of an administrative shutdown: the peer gets a NOTIFICATION, Cease with
that subcode (2, "Administrative Shutdown", as BIRD sends when it shuts down),
carrying a short shutdown communication (RFC 8203). ExaBGP's OPEN has no "N"
bit (RFC 8538), so on a NOTIFICATION the peer does not enter graceful-restart
helper mode: it drops our routes at once. The session does not come back in
this process either: the torn-down neighbor refuses new connections and does
not reconnect (a quick reconnect would announce our routes again, and the
silent close of that new session would leave them stale at the peer).

Nothing else changes: SIGTERM, reloads and removed neighbors still close
silently, so a restarting node keeps its routes at graceful-restart peers.

The wrapped methods are `Peer.teardown` and `Peer._main` (a generator, which
ExaBGP's `Peer._run` drives and whose `Notify` it turns into the NOTIFICATION
on the wire, then into a `state: down` API message); the wrapper checks for a
requested Cease before resuming `_main`, because resumed, `_main` would see
the teardown and close silently. `tests/unit/bgp/test_exabgp_cease.py` fails
if either changes shape.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from bird_agent.exabgp_main import _wraps
from bird_agent.exabgp_main import main as exabgp_main

# Sent as the RFC 8203 shutdown communication with every Cease we ask for.
SHUTDOWN_COMMUNICATION = "Gingham node stopping: routes withdrawn"
_CEASE = 6


def patch_teardown() -> None:
    from exabgp.bgp.message import Notify  # type: ignore[import-untyped]
    from exabgp.reactor.peer import Peer  # type: ignore[import-untyped]

    @_wraps(Peer, "teardown")
    def _(teardown: Any) -> Any:
        def _teardown(self: Any, code: int, restart: bool = True) -> None:
            teardown(self, code, restart=False)
            self._gingham_cease = code

        return _teardown

    @_wraps(Peer, "_main")
    def _(main: Any) -> Any:
        def _main(self: Any) -> Iterator[Any]:
            return until_cease(self, main(self), Notify)

        return _main


def until_cease(peer: Any, session: Generator[Any, None, None], notify: Any) -> Iterator[Any]:
    """Run `session` (ExaBGP's `Peer._main`) step by step; before each step, if a
    teardown asked for a Cease, close it and raise `notify(6, subcode, text)`."""
    while True:
        cease = getattr(peer, "_gingham_cease", None)
        if cease is not None:
            session.close()
            raise notify(_CEASE, cease, _communication(cease))
        try:
            action = next(session)
        except StopIteration:
            return
        yield action


def _communication(subcode: int) -> str | None:
    # RFC 8203/9003: only Administrative Shutdown and Reset carry a text.
    return SHUTDOWN_COMMUNICATION if subcode in (2, 4) else None


def main() -> None:
    patch_teardown()
    exabgp_main()


if __name__ == "__main__":
    main()
