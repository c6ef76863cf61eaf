"""The supervisor's restart policy, driven with made-up times (no clock, no sleeping)."""

from __future__ import annotations

from gingham.node.restart import Backoff, RestartPolicy

B = Backoff(initial=0.5, maximum=8.0, stable_after=60.0, loop_window=30.0, loop_threshold=4)


def test_first_crash_restarts_at_once_then_backs_off_doubling_to_the_cap() -> None:
    policy = RestartPolicy(B)
    now, delays = 0.0, []
    for _ in range(7):
        policy.on_start(now)
        now += 1.0
        delays.append(policy.on_exit(now).delay)
        now += delays[-1]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_a_child_that_stayed_up_is_restarted_at_once_again() -> None:
    policy = RestartPolicy(B)
    for t in (0.0, 1.0, 2.0):
        policy.on_start(t)
        policy.on_exit(t + 0.1)
    policy.on_start(10.0)
    assert policy.on_exit(10.0 + B.stable_after).delay == 0.0


def test_crash_loop_is_reported_once_per_episode_and_ends_when_exits_thin_out() -> None:
    policy = RestartPolicy(B)
    decisions = []
    for t in (0.0, 1.0, 2.0, 3.0, 4.0):
        policy.on_start(t)
        decisions.append(policy.on_exit(t + 0.5))
    assert [d.crash_loop for d in decisions] == [False, False, False, True, True]
    assert [d.new_loop for d in decisions] == [False, False, False, True, False]
    policy.on_start(200.0)
    later = policy.on_exit(200.5)
    assert not later.crash_loop
    assert 0.0 <= later.delay <= B.maximum
