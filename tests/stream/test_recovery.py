"""A changelog recovery waiting for records its broker overstated ends; one that is still receiving does not."""

from __future__ import annotations

from typing import Any

import faust
import pytest
from faust.types import TP

from stream.recovery import Progress, RecoveryWatchdog, effective_stall_s, read_progress, stalled

A, B = TP("app-entity-state-changelog", 0), TP("app-entity-state-changelog", 1)


def test_a_partition_is_stalled_only_when_short_of_its_end_and_silent_for_the_whole_wait() -> None:
    progress = Progress(started_at=100.0, remaining={A: 3, B: 2}, last_event_at={B: 125.0})
    assert stalled(progress, 129.0, 30.0) == [], "A silent 29 s since the start, B 4 s since its last record"
    assert stalled(progress, 130.0, 30.0) == [A]
    assert stalled(progress, 155.0, 30.0) == [A, B]
    caught_up = Progress(started_at=100.0, remaining={A: 0, B: 0}, last_event_at={})
    assert stalled(caught_up, 1e9, 30.0) == [], "nothing left to wait for"
    assert stalled(Progress(None, {A: 3}, {}), 1e9, 30.0) == [], "no recovery started"


@pytest.fixture
def recovery() -> Any:
    """Faust's own recovery service of an app that never connects, put into the state a stall leaves (public attributes)."""
    app = faust.App("recovery-watchdog-test", broker="kafka://127.0.0.1:9", store="memory://")
    r: Any = app.tables.recovery  # type: ignore[attr-defined]  # the manager type omits it; the object has it
    r.in_recovery = True
    r.active_highwaters.update({A: 41, B: 9})  # the last offsets the broker reported
    r.active_offsets.update({A: 37, B: 5})  # the last offsets applied
    return r


def test_the_watchdog_ends_a_stalled_partition_in_fausts_own_recovery_state(recovery: Any) -> None:
    watchdog = RecoveryWatchdog(recovery.app, stall_s=30.0)
    assert watchdog.check(now=100.0) == [], "the first look starts the clock"
    assert watchdog.watch.started_at == 100.0
    recovery.active_offsets[B] = 6  # B delivers a record
    assert watchdog.check(now=125.0) == []
    assert read_progress(recovery, watchdog.watch, 126.0) == Progress(100.0, {A: 4, B: 3}, {B: 125.0})

    assert watchdog.check(now=129.0) == [] and recovery.need_recovery()
    assert watchdog.check(now=131.0) == [A]
    assert recovery.active_offsets[A] == 41 and recovery.active_offsets[B] == 6, "only A declared caught up"
    assert recovery.need_recovery(), "B is still waiting"
    assert watchdog.check(now=156.0) == [B] and watchdog.forced == 2
    assert not recovery.need_recovery(), "Faust's loop now ends the recovery as it would have"


def test_a_new_recovery_between_two_looks_starts_the_clock_again(recovery: Any) -> None:
    watchdog = RecoveryWatchdog(recovery.app, stall_s=30.0)
    watchdog.check(now=100.0)
    recovery.active_highwaters[A] = 50  # a rebalance: another recovery, new end offsets, A not yet advanced
    assert watchdog.check(now=131.0) == [], "A has been silent 31 s, but only 0 s in this recovery"
    assert watchdog.check(now=161.0) == [A, B]


def test_no_recovery_running_nothing_to_do(recovery: Any) -> None:
    watchdog = RecoveryWatchdog(recovery.app, stall_s=1.0)
    watchdog.check(now=100.0)
    recovery.in_recovery = False
    assert read_progress(recovery, watchdog.watch, 1e9) is None and watchdog.watch.started_at is None
    assert watchdog.check(now=1e9) == []


def test_the_watchdog_reads_only_public_attributes_this_faust_has(recovery: Any) -> None:
    """Pins the contract: a Faust that renamed one of these fails here, not silently in a stalled worker."""
    for name in ("in_recovery", "active_highwaters", "active_offsets", "active_remaining", "need_recovery"):
        assert not name.startswith("_") and hasattr(recovery, name), name


def test_the_watchdog_is_on_by_default_for_tansu_only() -> None:
    assert effective_stall_s(None, "tansu_cluster") == 60.0
    assert effective_stall_s(None, "MkU3OEVBNTcwNTJENDM2Qk") == 0.0  # an Apache Kafka cluster id: off
    assert effective_stall_s(None, None) == 0.0
    assert effective_stall_s(15.0, "MkU3OEVBNTcwNTJENDM2Qk") == 15.0 and effective_stall_s(0.0, "tansu_cluster") == 0.0
