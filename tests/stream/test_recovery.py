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
    """Faust's own recovery service of an app that never connects, put into the state a stall leaves."""
    app = faust.App("recovery-watchdog-test", broker="kafka://127.0.0.1:9", store="memory://")
    r = app.tables.recovery
    r._set_recovery_started()
    r._recovery_started_at = 100.0
    r.active_highwaters.update({A: 41, B: 9})  # the last offsets the broker reported
    r.active_offsets.update({A: 37, B: 5})  # the last offsets applied
    r._active_events_received_at[B] = 125.0
    return r


def test_the_watchdog_ends_a_stalled_partition_in_fausts_own_recovery_state(recovery: Any) -> None:
    watchdog = RecoveryWatchdog(recovery.app, stall_s=30.0)
    progress = read_progress(recovery)
    assert progress is not None and progress.remaining == {A: 4, B: 4}, "read from Faust's attributes"

    assert watchdog.check(now=129.0) == [] and recovery.need_recovery()
    assert watchdog.check(now=131.0) == [A]
    assert recovery.active_offsets[A] == 41 and recovery.active_offsets[B] == 5, "only A declared caught up"
    assert recovery.need_recovery(), "B is still waiting"
    assert watchdog.check(now=156.0) == [B] and watchdog.forced == 2
    assert not recovery.need_recovery(), "Faust's loop now ends the recovery as it would have"


def test_no_recovery_running_nothing_to_do(recovery: Any) -> None:
    recovery._set_recovery_ended()
    assert read_progress(recovery) is None
    assert RecoveryWatchdog(recovery.app, stall_s=1.0).check(now=1e9) == []


def test_the_watchdog_is_on_by_default_for_tansu_only() -> None:
    assert effective_stall_s(None, "tansu_cluster") == 60.0
    assert effective_stall_s(None, "MkU3OEVBNTcwNTJENDM2Qk") == 0.0  # an Apache Kafka cluster id: off
    assert effective_stall_s(None, None) == 0.0
    assert effective_stall_s(15.0, "MkU3OEVBNTcwNTJENDM2Qk") == 15.0 and effective_stall_s(0.0, "tansu_cluster") == 0.0
