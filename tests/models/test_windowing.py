"""Windows cut from a message stream are aligned, complete, deterministic and bounded, whatever order samples arrive in."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.contracts import LogRecord, Telemetry
from models.windowing import AssetWindower, WindowSpec, windows_from_messages

T0 = 1_767_225_600.0  # hop-aligned (multiple of 60)
SPEC = WindowSpec(channels=("temp", "vib"), length_s=60.0, hop_s=20.0, steps=6, grace_s=10.0, max_log_lines=3)


def _batch(seq: int, start: float, n: int, rate_hz: float = 1.0, temp: float = 20.0) -> Telemetry:
    ts = [start + i / rate_hz for i in range(n)]
    return Telemetry(
        site="p",
        asset_id="a",
        seq=seq,
        timestamps=ts,
        channels={"temp": [temp] * n, "vib": [float(i) for i in range(n)]},
    )


def _stream(seconds: int, batch: int = 10) -> list[Telemetry]:
    return [_batch(i, T0 + i * batch, batch) for i in range(seconds // batch)]


def test_windows_are_hop_aligned_and_full() -> None:
    windows = list(windows_from_messages(_stream(200), SPEC))
    ends = [w.end for w in windows]
    assert ends[0] == T0 + 60 and all(b - a == 20 for a, b in itertools.pairwise(ends))
    first = windows[0]
    assert first.stats.shape == (6, 2, 4) and first.counts.shape == (6, 2)
    assert (first.counts == 10).all(), "one sample per second, 10 s steps"
    np.testing.assert_allclose(first.stats[:, 0, 0], 20.0)  # mean temp
    np.testing.assert_allclose(first.stats[0, 1], [4.5, np.std(np.arange(10)), 0, 9], rtol=1e-5)


def test_live_emits_only_after_grace() -> None:
    w = AssetWindower(SPEC, "p", "a")
    w.add_telemetry(_batch(0, T0, 65))  # data up to T0+64: window ending T0+60 needs data past T0+70
    assert list(w.ready()) == []
    w.add_telemetry(_batch(1, T0 + 65, 6))  # up to T0+70
    assert [x.end for x in w.ready()] == [T0 + 60]
    assert list(w.ready()) == [], "each window exactly once"


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(12))))
def test_out_of_order_batches_within_grace_give_the_same_windows(order: list[int]) -> None:
    batches = [_batch(i, T0 + i * 5, 5) for i in range(12)]  # 60 s of data
    tail = [_batch(12 + i, T0 + 60 + i * 5, 5) for i in range(4)]
    w = AssetWindower(SPEC, "p", "a")
    w.add_telemetry(batches[0])  # the first batch fixes the alignment
    for i in order:
        if i:
            w.add_telemetry(batches[i])
    for b in tail:
        w.add_telemetry(b)
    (window,) = list(w.ready())
    assert (window.counts == 10).all()
    assert w.counters.late_samples == 0


def test_late_samples_are_counted_not_used() -> None:
    w = AssetWindower(SPEC, "p", "a")
    for b in _stream(100):
        w.add_telemetry(b)
    list(w.ready())
    w.add_telemetry(_batch(99, T0, 5))  # long past
    assert w.counters.late_samples == 10  # 5 samples x 2 channels


def test_missing_and_unknown_channels() -> None:
    messages = [
        Telemetry(site="p", asset_id="a", seq=i, timestamps=[T0 + i], channels={"temp": [None], "vib": [1.0], "rpm": [3.0]})
        for i in range(100)
    ]
    windower = AssetWindower(SPEC, "p", "a")
    for m in messages:
        windower.add_telemetry(m)
    window = next(iter(windower.flush()))
    assert np.isnan(window.stats[:, 0]).all() and (window.counts[:, 0] == 0).all()
    assert windower.counters.unknown_channel_samples == 100


def test_gap_longer_than_a_window_skips_instead_of_emitting_empty_windows() -> None:
    messages = _stream(100) + [_batch(100 + i, T0 + 10_000 + i * 10, 10) for i in range(10)]
    windows = list(windows_from_messages(messages, SPEC))
    assert all(w.coverage >= SPEC.min_coverage for w in windows)
    assert len(windows) < 15


def test_logs_keep_the_most_severe_then_latest() -> None:
    w = AssetWindower(SPEC, "p", "a")
    w.add_telemetry(_batch(0, T0, 1))
    levels = ["INFO", "ALARM", "INFO", "INFO", "WARNING", "INFO"]
    for i, level in enumerate(levels):
        w.add_log(LogRecord(site="p", asset_id="a", ts=T0 + 5 + i, level=level, text=f"line {i}"))
    w.add_telemetry(_batch(1, T0 + 1, 80))
    window = next(iter(w.ready()))
    assert [r.text for r in window.logs] == ["line 1", "line 4", "line 5"]


def test_memory_is_bounded_by_the_spec() -> None:
    w = AssetWindower(SPEC, "p", "a")
    before = w._sum.nbytes
    for b in _stream(5_000):
        w.add_telemetry(b)
        list(w.ready())
    for i in range(10_000):
        w.add_log(LogRecord(site="p", asset_id="a", ts=T0 + 4_990 + i * 0.001, text="spam"))
    assert w._sum.nbytes == before and len(w._logs) <= 256


def test_spec_round_trips_and_validates() -> None:
    assert WindowSpec.from_dict(SPEC.to_dict()) == SPEC
    assert WindowSpec(channels=("a",), length_s=600, hop_s=60, steps=60, grace_s=5).grace_s == 5, "grace is any duration"
    with pytest.raises(AssertionError, match="multiple of step_s"):
        WindowSpec(channels=("a",), length_s=60, hop_s=7, steps=6)


REF = WindowSpec(
    channels=("temp", "rpm"),
    length_s=60.0,
    hop_s=20.0,
    steps=6,
    grace_s=10.0,
    reference_s=600.0,
    reference_min_s=120.0,
    running_channel="rpm",
)


def _run(seconds: int, temp: float | None, rpm: float, start: float = T0, seq: int = 0) -> list[Telemetry]:
    """temp None: a live reading around 20 C; a number: exactly that value (a steady or a stuck transmitter)."""
    rng = np.random.default_rng(seq)
    return [
        Telemetry(
            site="p",
            asset_id="a",
            seq=seq + i,
            timestamps=[start + i * 10 + k for k in range(10)],
            channels={
                "temp": [temp] * 10 if temp is not None else list(20.0 + rng.normal(0, 0.2, 10)),
                "rpm": [rpm] * 10,  # a drive may report its setpoint: exactly constant, never taken for stuck
            },
        )
        for i in range(seconds // 10)
    ]


def test_reference_is_the_assets_own_past_and_only_while_running() -> None:
    stopped = _run(300, temp=50.0, rpm=0.0)  # a stopped machine is not its own baseline
    running = _run(600, temp=20.0, rpm=1500.0, start=T0 + 300, seq=30)
    hot = _run(120, temp=30.0, rpm=1500.0, start=T0 + 900, seq=90)
    windows = list(windows_from_messages(stopped + running + hot, REF))
    early = [w for w in windows if w.start < T0 + 300 + 120]  # less than 120 s of running before the window
    assert early and all(np.isnan(w.reference).all() for w in early), "no reference before 120 s of running history"
    last = next(w for w in windows if w.start == T0 + 900)  # all hot, none of it history yet
    assert last.stats[-1, 0, 0] == pytest.approx(30.0)
    assert last.reference[0, 0] == pytest.approx(20.0, abs=0.5), (
        "the reference is history before the window, not 50 C while stopped"
    )
    assert last.reference[0, 1] < 1.0


def test_the_reference_averages_its_start_instead_of_keeping_the_first_step() -> None:
    """A machine whose first running step reads 35 C (a transient), then a steady 20 C: the plain
    exponential mean keeps that one step for many time constants' worth of steps, the averaged start does not."""
    first = _run(10, temp=35.0, rpm=1500.0)
    steady = _run(290, temp=None, rpm=1500.0, start=T0 + 10, seq=1)
    after = {}
    for average in (False, True):
        spec = dataclasses.replace(REF, reference_average_start=average)
        assert WindowSpec.from_dict(spec.to_dict()) == spec
        after[average] = next(w for w in windows_from_messages(first + steady, spec) if w.start == T0 + 200).reference
    assert after[True][0, 0] == pytest.approx(20.0 + 15.0 / 20, abs=0.2), "the mean of the 20 steps before the window"
    assert after[False][0, 0] > 25.0, "the first step still weighs (1 - 1/60)^19 = 73 %"

    clean = list(windows_from_messages(_run(300, temp=None, rpm=1500.0), dataclasses.replace(REF, reference_average_start=True)))
    sd = next(w for w in clean if w.start == T0 + 200).reference[0, 1]
    assert sd == pytest.approx(0.2 / np.sqrt(10), rel=0.35), "the spread of 10-sample step means, not a fraction of it"


def test_no_reference_unless_asked() -> None:
    assert all(w.reference is None for w in windows_from_messages(_stream(200), SPEC))
    assert (
        WindowSpec.from_dict({k: v for k, v in REF.to_dict().items() if not k.startswith(("reference", "running"))}).reference_s
        == 0
    )


def test_derived_reference_follows_a_load_normalised_quantity_across_load_changes() -> None:
    """A motor whose winding rise per current squared never changes, while its load (current) doubles,
    has a stable derived reference; the raw winding temperature's reference swings with the load."""
    spec = WindowSpec(
        channels=("ambient_temp_c", "current_l1_a", "current_l2_a", "current_l3_a", "speed_rpm", "winding_temp_c"),
        length_s=60.0,
        hop_s=20.0,
        steps=6,
        grace_s=10.0,
        reference_s=600.0,
        reference_min_s=120.0,
        running_channel="speed_rpm",
        reference_derived=("log_winding_rise_per_current2", "winding_rise_c"),
    )
    assert WindowSpec.from_dict(spec.to_dict()) == spec
    messages = []
    for i in range(120):  # 20 minutes, current alternating 10 A / 20 A every 100 s; rise = 0.1 * I^2
        current = 10.0 if (i // 10) % 2 == 0 else 20.0
        channels = {c: [current] * 10 for c in ("current_l1_a", "current_l2_a", "current_l3_a")}
        channels.update(ambient_temp_c=[20.0] * 10, speed_rpm=[1500.0] * 10, winding_temp_c=[20.0 + 0.1 * current**2] * 10)
        messages.append(
            Telemetry(site="p", asset_id="m", seq=i, timestamps=[T0 + i * 10 + k for k in range(10)], channels=channels)
        )
    windows = list(windows_from_messages(messages, spec))
    late = windows[-1]
    assert late.reference_derived is not None and late.reference_derived.shape == (2, 2)
    cooling, rise = late.reference_derived
    assert cooling[0] == pytest.approx(np.log(0.1), abs=1e-3) and cooling[1] < 1e-3, "per current squared: constant"
    assert rise[1] > 5.0, "the raw rise swings with load"
    early = windows[0]
    assert np.isnan(early.reference_derived).all(), "not seen long enough yet"
    assert all(w.reference_derived is None for w in windows_from_messages(messages, REF)), "only when asked"


def test_every_nth_window_is_the_same_window_with_the_same_history() -> None:
    """Training builds every 2nd window only; those windows, references included, are the ones a gateway builds."""
    messages = _run(300, temp=50.0, rpm=0.0) + _run(900, temp=20.0, rpm=1500.0, start=T0 + 300, seq=30)
    every = list(windows_from_messages(messages, REF))
    half = list(windows_from_messages(messages, REF, every=2))
    expected = [w for w in every if round(w.end / REF.hop_s) % 2 == 0]
    assert half and len(half) == len(expected)
    for a, b in zip(half, expected, strict=True):
        assert a.end == b.end
        np.testing.assert_array_equal(a.stats, b.stats)
        np.testing.assert_array_equal(a.reference, b.reference)


def test_a_channel_stuck_while_running_counts_as_missing() -> None:
    spec = WindowSpec(**{**REF.__dict__, "flatline_samples": 5})
    stopped = _run(300, temp=2.0, rpm=0.0, start=T0, seq=0)  # flat at rest: a real constant, kept
    healthy = _run(600, temp=None, rpm=1500.0, start=T0 + 300, seq=30)
    stuck = _run(300, temp=2.0, rpm=1500.0, start=T0 + 900, seq=90)  # frozen at its standstill value
    windows = {w.start: w for w in windows_from_messages(stopped + healthy + stuck, spec)}
    assert (windows[T0].counts[:, 0] == 10).all(), "a stopped machine's constant reading is kept"
    assert (windows[T0 + 600].counts == 10).all(), "a live reading and the running channel are kept"
    frozen = windows[T0 + 1120]
    assert (frozen.counts[:, 0] == 0).all() and np.isnan(frozen.stats[:, 0]).all(), "stuck while running: no samples"
    assert (frozen.counts[:, 1] == 10).all()
    assert frozen.reference[0, 0] == pytest.approx(20.0, abs=0.5), "the stuck value never enters the reference"
    plain = {w.start: w for w in windows_from_messages(stopped + healthy + stuck, REF)}
    assert (plain[T0 + 1120].counts[:, 0] == 10).all(), "flatline_samples 0: every sample counts"
    assert WindowSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "flatline_samples"}).flatline_samples == 0, (
        "a bundle saved before the field cuts windows as it always did"
    )


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=8))
def test_messages_of_any_size_give_the_windows_one_sample_messages_give(sizes: list[int]) -> None:
    """A historian export or a backlog batch spanning many windows loses nothing (the ring holds one hop)."""

    def ramp(seq: int, first: int, n: int) -> Telemetry:
        ts = [T0 + first + i for i in range(n)]
        return Telemetry(
            site="p", asset_id="a", seq=seq, timestamps=ts, channels={"temp": [20.0] * n, "vib": [t - T0 for t in ts]}
        )

    reference = list(windows_from_messages([ramp(i, i, 1) for i in range(sum(sizes))], SPEC))
    batches, start = [], 0
    for seq, n in enumerate(sizes):
        batches.append(ramp(seq, start, n))
        start += n
    batched = list(windows_from_messages(batches, SPEC))
    assert [w.end for w in batched] == [w.end for w in reference]
    for got, want in zip(batched, reference, strict=True):
        np.testing.assert_array_equal(got.counts, want.counts)
        np.testing.assert_allclose(got.stats, want.stats, rtol=1e-6)


def test_one_large_message_is_cut_into_every_window_it_completes() -> None:
    w = AssetWindower(SPEC, "p", "a")
    w.add_telemetry(_batch(0, T0, 1000))  # 1,000 s in one message: 47 windows, ring of 11 steps
    ends = [x.end for x in w.ready()]
    assert ends == [T0 + 60 + 20 * k for k in range(len(ends))] and ends[-1] == T0 + 980
    assert w.counters.late_samples == 0
