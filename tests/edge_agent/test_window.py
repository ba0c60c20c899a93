"""Redelivered, reordered, skipped and restarted sequences are told apart, and assets are admitted by policy."""

from __future__ import annotations

import pytest

from edge_agent.errors import Rejected
from edge_agent.metrics import EdgeMetrics
from edge_agent.window import AssetPolicy, SeqTracker, WindowStage
from forewarn.contracts import LogRecord, Telemetry
from models.windowing import WindowSpec

T0 = 1_767_225_600.0
SPEC = WindowSpec(channels=("temp", "vib"), length_s=60.0, hop_s=20.0, steps=6, grace_s=10.0, max_log_lines=3)


def _tel(seq: int, start: float, n: int = 10, asset: str = "a") -> Telemetry:
    ts = [start + i for i in range(n)]
    return Telemetry(site="p", asset_id=asset, seq=seq, timestamps=ts, channels={"temp": [20.0] * n, "vib": [1.0] * n})


def _value(metrics: EdgeMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_seq_tracker_verdicts() -> None:
    t = SeqTracker(window=16)
    assert t.check(0, T0) == ("new", 0)
    assert t.check(1, T0 + 10) == ("new", 0)
    assert t.check(1, T0 + 10) == ("duplicate", 0)
    assert t.check(5, T0 + 50) == ("new", 3), "2, 3, 4 skipped"
    assert t.check(3, T0 + 30) == ("reordered", 0)
    assert t.check(3, T0 + 30) == ("duplicate", 0)
    assert t.check(0, T0 + 900) == ("reset", 0), "a seen seq with another first timestamp: the publisher restarted"
    assert t.check(1, T0 + 910) == ("new", 0)
    for s in range(2, 100):
        t.check(s, T0 + 910 + s)
    assert t.check(10, T0 + 5) == ("reset", 0), "far below every remembered seq: a restart, not a duplicate"
    assert t.check(10**30, T0 + 6) == ("reset", 0), "a hostile jump is not 10^30 missing messages"


def test_seq_tracker_memory_is_bounded() -> None:
    t = SeqTracker(window=16)
    for s in range(10_000):
        t.check(s, float(s))
    assert len(t._seen) <= 32


def test_a_redelivered_batch_is_not_counted_twice() -> None:
    metrics = EdgeMetrics()
    stage = WindowStage(SPEC, AssetPolicy(), metrics)
    messages = [_tel(i, T0 + 10 * i) for i in range(10)]
    for m in messages:
        assert stage.add(m)
    assert not stage.add(messages[3]), "QoS 1 redelivery after a reconnect"
    windows = [w for w, _ in stage.ready()]
    assert windows and all((w.counts == 10).all() for w in windows), "one sample per second, 10 s steps, never 20"
    assert _value(metrics, "forewarn_edge_duplicates_total") == 1
    assert _value(metrics, "forewarn_edge_messages_total", {"kind": "telemetry"}) == 10
    assert _value(metrics, "forewarn_edge_samples_total") == 10 * 10 * 2


def test_gaps_and_late_arrivals_are_counted_and_late_samples_still_land() -> None:
    metrics = EdgeMetrics()
    stage = WindowStage(SPEC, AssetPolicy(), metrics)
    order = [0, 1, 3, 4, 2, 5, 6, 7, 8, 9]  # seq 2 arrives late but within the grace
    for i in order:
        stage.add(_tel(i, T0 + 10 * i))
    assert _value(metrics, "forewarn_edge_missing_messages_total") == 1
    assert _value(metrics, "forewarn_edge_reordered_total") == 1
    first = next(w for w, _ in stage.ready())
    assert (first.counts == 10).all()


def test_duplicate_log_lines_are_dropped_with_or_without_seq() -> None:
    metrics = EdgeMetrics()
    stage = WindowStage(SPEC, AssetPolicy(), metrics)
    stage.add(_tel(0, T0))
    line = LogRecord(site="p", asset_id="a", ts=T0 + 5, text="bearing noise", seq=7)
    bare = LogRecord(site="p", asset_id="a", ts=T0 + 6, text="seal drip")
    assert stage.add(line) and not stage.add(line)
    assert stage.add(bare) and not stage.add(bare)
    assert _value(metrics, "forewarn_edge_duplicates_total") == 2


def test_unknown_assets_are_refused_when_the_policy_says_so() -> None:
    stage = WindowStage(SPEC, AssetPolicy(unknown="reject", known=frozenset({"a"})), EdgeMetrics())
    assert stage.add(_tel(0, T0, asset="a"))
    with pytest.raises(Rejected) as caught:
        stage.add(_tel(0, T0, asset="intruder"))
    assert caught.value.reason == "unknown_asset"


def test_the_number_of_buffered_assets_is_bounded_and_idle_ones_give_way() -> None:
    stage = WindowStage(SPEC, AssetPolicy(max_assets=2, idle_s=3600), EdgeMetrics())
    stage.add(_tel(0, T0, asset="a"))
    stage.add(_tel(0, T0, asset="b"))
    with pytest.raises(Rejected) as caught:
        stage.add(_tel(0, T0, asset="c"))
    assert caught.value.reason == "too_many_assets"
    stage.policy = AssetPolicy(max_assets=2, idle_s=0.0)  # everyone has been idle long enough now
    assert stage.add(_tel(0, T0, asset="c"))
    assert stage.asset_count == 2


def test_a_new_spec_restarts_the_buffers() -> None:
    stage = WindowStage(SPEC, AssetPolicy(), EdgeMetrics())
    for i in range(10):
        stage.add(_tel(i, T0 + 10 * i))
    assert stage.ready()
    stage.replace_spec(WindowSpec(channels=("temp",), length_s=60.0, hop_s=20.0, steps=6, grace_s=10.0))
    assert stage.asset_count == 0 and stage.ready() == []
    stage.add(_tel(10, T0 + 100))
    assert stage.asset_count == 1


def test_a_fast_replay_folded_in_one_step_keeps_every_window() -> None:
    """A drain of many messages of one asset (a 100x replay) must not overwrite windows before they are asked for."""
    stage = WindowStage(SPEC, AssetPolicy(), EdgeMetrics())
    for i in range(100):  # 1000 s of data: far more than the ring holds
        stage.add(_tel(i, T0 + 10 * i), arrived=float(i))
    ready = stage.ready()
    assert [w.end for w, _ in ready] == [T0 + 60 + 20 * k for k in range(len(ready))] and len(ready) == 47
    assert all(arrived > 0 for _, arrived in ready), "each window knows the message that completed it"


def _windows(stage: WindowStage) -> list[tuple[float, int]]:
    return [(w.end, int(w.counts.sum())) for w, _ in stage.ready()]


def test_a_backlog_arriving_behind_a_live_message_is_windowed_in_source_order() -> None:
    """After a broker restart the publisher's first live message comes ahead of its queued backlog."""
    in_order = WindowStage(SPEC, AssetPolicy(), EdgeMetrics())
    for i in range(40):
        in_order.add(_tel(i, T0 + 10 * i))
    expected = _windows(in_order)
    backlog_first = [*range(5), 39, *range(5, 39)]  # seq 39 (live) overtakes 5..38 (the backlog)

    metrics = EdgeMetrics()
    stage = WindowStage(SPEC, AssetPolicy(reorder_hold_s=10.0), metrics)
    for i in backlog_first:
        stage.add(_tel(i, T0 + 10 * i))
    assert _windows(stage) == expected
    assert _value(metrics, "forewarn_edge_late_samples_total") == 0
    assert _value(metrics, "forewarn_edge_held_messages") == 0

    arrival_order = WindowStage(SPEC, AssetPolicy(reorder_hold_s=0), EdgeMetrics())  # what holding prevents
    for i in backlog_first:
        arrival_order.add(_tel(i, T0 + 10 * i))
    assert len(_windows(arrival_order)) < len(expected)


def test_a_gap_that_never_fills_releases_what_it_held_after_the_hold() -> None:
    now = [0.0]
    metrics = EdgeMetrics()
    stage = WindowStage(SPEC, AssetPolicy(reorder_hold_s=10.0), metrics, clock=lambda: now[0])
    for i in [0, 1, 2, *range(4, 20)]:  # seq 3 is lost for good
        stage.add(_tel(i, T0 + 10 * i))
    assert _value(metrics, "forewarn_edge_held_messages") == 16
    held_windows = _windows(stage)
    now[0] = 9.0
    assert stage.release_expired() == 0
    now[0] = 10.0
    assert stage.release_expired() == 16
    released = _windows(stage)
    assert len(released) > len(held_windows)
    assert _value(metrics, "forewarn_edge_missing_messages_total") == 1
    assert _value(metrics, "forewarn_edge_held_messages") == 0
    stage.add(_tel(3, T0 + 30))  # too late now: folded as a late arrival, not held
    assert _value(metrics, "forewarn_edge_held_messages") == 0


def test_a_filling_gap_keeps_the_hold_open_and_the_hold_is_bounded() -> None:
    now = [0.0]
    stage = WindowStage(SPEC, AssetPolicy(reorder_hold_s=10.0, dedup_window=16), EdgeMetrics(), clock=lambda: now[0])
    stage.add(_tel(0, T0))
    stage.add(_tel(30, T0 + 300))  # 1..29 missing: held
    for i in range(1, 10):
        now[0] += 5.0  # each backlog message comes 5 s after the last: progress, the hold stays open
        stage.add(_tel(i, T0 + 10 * i))
        assert stage.release_expired() == 0
    metrics = EdgeMetrics()
    bounded = WindowStage(SPEC, AssetPolicy(reorder_hold_s=3600.0, dedup_window=16), metrics)
    bounded.add(_tel(0, T0))
    for i in range(2, 40):  # seq 1 never comes; at most 16 wait
        bounded.add(_tel(i, T0 + 10 * i))
        assert _value(metrics, "forewarn_edge_held_messages") <= 16


def test_flush_folds_what_is_held() -> None:
    stage = WindowStage(SPEC, AssetPolicy(reorder_hold_s=3600.0), EdgeMetrics())
    for i in [0, *range(2, 12)]:
        stage.add(_tel(i, T0 + 10 * i))
    assert not _windows(stage)
    assert stage.flush()


def test_a_channel_map_reads_a_plant_that_names_its_channels_otherwise() -> None:
    named = WindowStage(SPEC, AssetPolicy(), EdgeMetrics())
    for i in range(12):
        named.add(_tel(i, T0 + 10 * i))
    mapped = WindowStage(SPEC, AssetPolicy(channel_map={"tt_101": "temp", "vt_7": "vib"}), EdgeMetrics())
    unmapped = WindowStage(SPEC, AssetPolicy(), EdgeMetrics())
    for i in range(12):
        ts = [T0 + 10 * i + k for k in range(10)]
        plant = Telemetry(site="p", asset_id="a", seq=i, timestamps=ts, channels={"tt_101": [20.0] * 10, "vt_7": [1.0] * 10})
        mapped.add(plant)
        unmapped.add(plant)
    assert _windows(mapped) == _windows(named) != []
    assert _windows(unmapped) == []  # without the map the bundle's channels stay empty: every window too sparse
