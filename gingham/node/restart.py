"""The restart policy for supervised children: pure, clock passed in as `now`.

A child that exits is restarted after a delay that doubles with each quick
failure (``initial`` → ``maximum``) and resets once the child has stayed up for
``stable_after`` seconds: a daemon that ran for an hour and then crashed
restarts at once, one that dies at start-up does not spin a core.

Crash-loop detection: ``loop_threshold`` exits within ``loop_window`` seconds
mark the child as crash-looping; the supervisor keeps restarting it (at the
maximum delay) but says so loudly, once per episode — a node agent that gives
up restarting leaves the node without a dataplane, which is worse.

Invariants: `on_exit` always returns a delay in ``[0, maximum]``; the policy
never reads a clock or sleeps (tests drive it with made-up times).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    stable_after: float = 60.0
    loop_window: float = 60.0
    loop_threshold: int = 5


@dataclass(frozen=True)
class RestartDecision:
    delay: float
    crash_loop: bool
    """True while the child is exiting too often (``loop_threshold`` in ``loop_window``)."""
    new_loop: bool
    """True on the exit that starts a crash-loop episode (log it once)."""


@dataclass
class RestartPolicy:
    backoff: Backoff = field(default_factory=Backoff)
    _next_delay: float = 0.0
    _started_at: float | None = None
    _exits: deque[float] = field(default_factory=deque)
    _looping: bool = False

    def on_start(self, now: float) -> None:
        self._started_at = now

    def on_exit(self, now: float) -> RestartDecision:
        """The child exited at `now`: how long to wait before starting it again."""
        b = self.backoff
        uptime = now - self._started_at if self._started_at is not None else 0.0
        if uptime >= b.stable_after:
            self._next_delay = 0.0  # it had been healthy: restart at once
        delay = self._next_delay
        self._next_delay = min(b.maximum, max(b.initial, delay * b.factor))
        self._exits.append(now)
        while self._exits and now - self._exits[0] > b.loop_window:
            self._exits.popleft()
        looping = len(self._exits) >= b.loop_threshold
        new_loop = looping and not self._looping
        self._looping = looping
        if looping:
            delay = b.maximum if delay == 0 else delay
        return RestartDecision(delay=min(delay, b.maximum), crash_loop=looping, new_loop=new_loop)
