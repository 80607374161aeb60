"""A root's state is one RootState, changed only by Root's named transitions."""

from __future__ import annotations

from typing import Any, cast

import pytest

from watchd.watching import Root, RootState

WAIT, FAIL, NAT, OBS, LOST = (
    RootState.WAITING,
    RootState.FAILED,
    RootState.NATIVE,
    RootState.OBSERVED,
    RootState.LOST,
)
OBSERVER, WATCH = cast(Any, object()), cast(Any, object())  # watchdog's, as opaque handles
IDENTITY = (1, 2)


def root() -> Root:
    return Root(0, "/srv/app", recursive=True, poll=False, poll_interval=0.0)


STEPS = {
    "watched_natively": lambda r: r.watched_natively(IDENTITY),
    "observed_by": lambda r: r.observed_by(OBSERVER, WATCH, IDENTITY),
    "lose": lambda r: r.lose(),
    "fail": lambda r: r.fail(),
    "unwatched": lambda r: r.unwatched(),
}

# (transitions from a new root, the state after each; on a backend; on the inotify tree)
# (`on_tree`, not `native`: a parameter native=True marks a test Linux-only in tests/conftest.py)
CASES = [
    (["watched_natively"], [NAT], True, True),
    (["observed_by"], [OBS], True, False),
    (["watched_natively", "lose"], [NAT, LOST], True, True),  # lost on the tree: still on it
    (["observed_by", "lose"], [OBS, LOST], True, False),
    (["watched_natively", "lose", "unwatched"], [NAT, LOST, WAIT], False, False),
    (["watched_natively", "lose", "lose"], [NAT, LOST, LOST], True, True),  # said twice: once is enough
    (["lose"], [WAIT], False, False),  # a late notice about a root not watched changes nothing
    (["fail", "lose"], [FAIL, FAIL], False, False),
    (["fail", "fail", "observed_by"], [FAIL, FAIL, OBS], True, False),
    (["watched_natively", "unwatched", "observed_by"], [NAT, WAIT, OBS], True, False),  # moved to polling
]


@pytest.mark.parametrize(
    ("steps", "states", "scheduled", "on_tree"), CASES, ids=["-".join(c[0]) for c in CASES]
)
def test_transitions(steps: list[str], states: list[RootState], scheduled: bool, on_tree: bool) -> None:
    r = root()
    assert r.state is WAIT
    seen = []
    for step in steps:
        STEPS[step](r)
        seen.append(r.state)
    assert seen == states
    assert (r.scheduled, r.native) == (scheduled, on_tree)


def test_a_failure_is_to_be_logged_once_until_the_root_is_watched() -> None:
    r = root()
    assert r.fail() is True
    assert r.fail() is False
    r.watched_natively(IDENTITY)
    r.unwatched()
    assert r.fail() is True


def test_the_backend_handle_and_identity_go_with_the_state() -> None:
    r = root()
    r.observed_by(OBSERVER, WATCH, IDENTITY)
    assert (r.observer, r.observed, r.identity) == (OBSERVER, WATCH, IDENTITY)
    r.lose()
    assert r.observer is OBSERVER  # still to be unscheduled from it
    r.unwatched()
    assert (r.observer, r.observed, r.identity) == (None, None, None)


def test_degraded_outlives_the_states() -> None:
    """Polled instead of watched natively, from the watch limit on: through losing the root and
    watching it again."""
    r = root()
    r.watched_natively(IDENTITY)
    r.degraded = True
    r.lose()
    r.unwatched()
    r.observed_by(OBSERVER, WATCH, IDENTITY)
    assert r.degraded
