"""A motor's load steps: its winding rise per *lagged* current squared holds still, per present current squared it swings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.contracts import Telemetry
from models.derived import LAGGED_CHANNELS, derive
from models.lag import Lag
from models.windowing import WindowSpec, windows_from_messages

T0 = 1_767_225_600.0
TAU = 900.0


def test_lag_is_a_first_order_filter_that_holds_through_gaps_and_restarts_after_long_ones() -> None:
    lag = Lag(1, time_constant_s=TAU, step_s=30.0)
    out = lag.run(np.arange(3), np.array([[4.0], [np.nan], [8.0]]), commit=True)
    keep = math.exp(-30.0 / TAU)
    assert out[0, 0] == 4.0, "starts in equilibrium at the first value"
    assert out[1, 0] == 4.0, "no value: the state holds"
    assert out[2, 0] == pytest.approx(8.0 + (4.0 - 8.0) * keep**2)
    peek = lag.run(np.array([3]), np.array([[8.0]]), commit=False)
    assert lag.run(np.array([3]), np.array([[8.0]]), commit=False)[0, 0] == peek[0, 0], "a look-ahead does not move it"
    assert lag.run(np.array([1000]), np.array([[1.0]]), commit=True)[0, 0] == 1.0, "after a gap longer than tau: restart"


def _step_by_step(lag: Lag, steps: np.ndarray, values: np.ndarray, running: np.ndarray) -> np.ndarray:
    """The filter as its docstring says it, one step at a time: the reference Lag.run must equal."""
    out = np.full(values.shape, np.nan)
    for i, step in enumerate(steps.tolist()):
        for j in range(values.shape[1]):
            x, state, last = values[i, j], lag.state[j], lag.last_step[j]
            if math.isfinite(x):
                if not math.isfinite(state) or step - last > lag.max_gap_steps[j]:
                    lag.state[j] = x
                else:
                    keep = lag.keep[j] if running[i] else lag.keep_stopped[j]
                    lag.state[j] = x + (state - x) * keep ** max(step - last, 1)
                lag.last_step[j] = step
            out[i, j] = lag.state[j]
    return out


_value = st.one_of(st.just(math.nan), st.floats(0.0, 1e4))


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(
        st.lists(st.tuples(st.integers(1, 40), st.booleans(), st.tuples(_value, _value)), max_size=25), min_size=1, max_size=4
    ),
    commits=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_lag_run_equals_the_step_by_step_filter_across_gaps_restarts_and_look_aheads(
    chunks: list[list[tuple[int, bool, tuple[float, float]]]], commits: list[bool]
) -> None:
    lag = Lag(2, np.array([TAU, 300.0]), step_s=30.0, standstill=3.0)  # max gaps 30 and 10 steps
    reference = Lag(2, np.array([TAU, 300.0]), step_s=30.0, standstill=3.0)
    step = 0
    for chunk, commit in zip(chunks, commits[: len(chunks)], strict=True):
        if not chunk:
            continue
        gaps, running, values = zip(*chunk, strict=True)
        steps = step + np.cumsum(gaps)
        rows, ran = np.array(values, dtype=np.float64), np.array(running)
        before = (reference.state.copy(), reference.last_step.copy())
        expected = _step_by_step(reference, steps, rows, ran)
        if not commit:
            reference.state, reference.last_step = before
        got = lag.run(steps, rows, commit, ran)
        # equal to rounding (Python's and numpy's pow differ in the last bit), NaN where no value was seen
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0)
        np.testing.assert_allclose(lag.state, reference.state, rtol=1e-12, atol=0.0)
        assert (lag.last_step == reference.last_step).all()
        step = int(steps[-1]) if commit else step


def _motor(minutes: int) -> list[Telemetry]:
    """1 Hz, current stepping 10 A <-> 20 A every 40 min; the winding follows I^2 through a 900 s lag."""
    messages, winding = [], 20.0 + 0.1 * 100.0
    for i in range(minutes * 6):
        ts = [T0 + i * 10 + k for k in range(10)]
        current = 10.0 if (i // 240) % 2 == 0 else 20.0
        temps = []
        for _ in ts:
            winding += (20.0 + 0.1 * current**2 - winding) * (1 - math.exp(-1.0 / TAU))
            temps.append(winding)
        channels = {c: [current] * 10 for c in LAGGED_CHANNELS}
        channels.update(ambient_temp_c=[20.0] * 10, speed_rpm=[1500.0] * 10, winding_temp_c=temps)
        messages.append(Telemetry(site="p", asset_id="m", seq=i, timestamps=ts, channels=channels))
    return messages


def test_lagged_cooling_feature_is_steady_through_load_steps() -> None:
    channels = ("ambient_temp_c", *LAGGED_CHANNELS, "speed_rpm", "winding_temp_c")
    spec = WindowSpec(channels=channels, length_s=600.0, hop_s=60.0, steps=20, grace_s=30.0, lagged=LAGGED_CHANNELS, lag_s=TAU)
    assert WindowSpec.from_dict(spec.to_dict()) == spec
    windows = [w for w in windows_from_messages(_motor(240), spec) if w.start > T0 + 1800]
    assert windows and all(w.lagged is not None and w.lagged.shape == (20, 3) for w in windows)
    stats = np.stack([w.stats for w in windows])
    counts = np.stack([w.counts for w in windows])
    lagged = np.stack([w.lagged for w in windows])  # type: ignore[misc]
    names = ("log_winding_rise_per_current2", "log_winding_rise_per_lagged_current2")
    d = derive(names, channels, stats, counts, lagged, spec.lagged)  # (N, steps, 2)
    present, steady = d[..., 0], d[..., 1]
    assert np.nanstd(present) > 0.3, "per present current squared: swings after every load step"
    assert np.nanstd(steady) < 0.05, "per lagged current squared: holds still"
    assert np.nanmean(steady) == pytest.approx(math.log(0.1), abs=0.05)
    assert (
        derive(names, channels, stats, counts)[..., 1].size and np.isnan(derive(names, channels, stats, counts)[..., 1]).all()
    ), "no lagged values: undefined, masked downstream"


def test_a_stopped_machine_decays_with_the_standstill_time_constant() -> None:
    lag = Lag(1, time_constant_s=TAU, step_s=30.0, standstill=2.5)
    out = lag.run(np.arange(3), np.array([[9.0], [0.0], [0.0]]), commit=True, running=np.array([True, False, False]))
    assert out[2, 0] == pytest.approx(9.0 * math.exp(-60.0 / (2.5 * TAU))), "two stopped steps at 2.5 tau"
    plain = Lag(1, time_constant_s=TAU, step_s=30.0, standstill=2.5).run(np.arange(3), np.array([[9.0], [0.0], [0.0]]), True)
    assert plain[2, 0] == pytest.approx(9.0 * math.exp(-60.0 / TAU)), "no running flags: every step ran"
    with pytest.raises(AssertionError, match="cool faster"):
        Lag(1, time_constant_s=TAU, step_s=30.0, standstill=0.5)


def _duty_cycle(run_min: int, stop_min: int, cycles: int, standstill: float, winding_tau: float = TAU) -> list[Telemetry]:
    """1 Hz motor at 20 A that stops and restarts; its winding loses its fan when it stops (tau x standstill)."""
    messages, winding, i = [], 20.0 + 0.1 * 400.0, 0
    for _ in range(cycles):
        for minutes, current in ((run_min, 20.0), (stop_min, 0.0)):
            tau = winding_tau if current else winding_tau * standstill
            for _ in range(minutes * 6):
                ts = [T0 + i * 10 + k for k in range(10)]
                temps = []
                for _ in ts:
                    winding += (20.0 + 0.1 * current**2 - winding) * (1 - math.exp(-1.0 / tau))
                    temps.append(winding)
                channels = {c: [current] * 10 for c in LAGGED_CHANNELS}
                rpm = 1500.0 if current else 0.0
                channels.update(ambient_temp_c=[20.0] * 10, speed_rpm=[rpm] * 10, winding_temp_c=temps)
                messages.append(Telemetry(site="p", asset_id="m", seq=i, timestamps=ts, channels=channels))
                i += 1
    return messages


def _restart_deviation(messages: list[Telemetry], after_s: float = 3600.0, **lag: object) -> float:
    """Largest |log winding rise per lagged current^2 - its true log(0.1)| over running steps after ``after_s``."""
    channels = ("ambient_temp_c", *LAGGED_CHANNELS, "speed_rpm", "winding_temp_c")
    spec = WindowSpec(
        channels=channels, length_s=600.0, hop_s=60.0, steps=20, grace_s=30.0, running_channel="speed_rpm",
        lagged=LAGGED_CHANNELS, lag_s=TAU, **lag,  # type: ignore[arg-type]
    )  # fmt: skip
    assert WindowSpec.from_dict(spec.to_dict()) == spec
    windows = [w for w in windows_from_messages(messages, spec) if w.start > T0 + after_s]
    stats, counts = np.stack([w.stats for w in windows]), np.stack([w.counts for w in windows])
    lagged = np.stack([w.lagged for w in windows])  # type: ignore[misc]
    d = derive(("log_winding_rise_per_lagged_current2",), channels, stats, counts, lagged, spec.lagged)[..., 0]
    running = stats[:, :, channels.index("speed_rpm"), 0] > 10
    return float(np.nanmax(np.abs(d[running] - math.log(0.1))))


def test_a_slow_winding_is_read_through_its_own_time_constant() -> None:
    """A winding of 1,500 s behind a 900 s filter reads too cool at every restart, like a reference formed low,
    then too hot; from its second restart on, the history reads it through the candidate that holds still.

    (Its first restart is the first load change the history sees: until then every candidate fits.)"""
    messages = _duty_cycle(run_min=90, stop_min=45, cycles=6, standstill=2.5, winding_tau=1500.0)
    candidates = (600.0, 1200.0, 1500.0, 1800.0)
    after_first = (90 + 45 + 90) * 60.0
    fixed = _restart_deviation(messages, after_first, lag_standstill=2.5)
    fitted = _restart_deviation(messages, after_first, lag_standstill=2.5, lag_fit=candidates)
    assert fixed > 0.3, f"one 900 s lag: every restart swings the feature by {fixed:.2f}"
    assert fitted < 0.05, f"fitted: {fitted:.2f} (one 900 s lag: {fixed:.2f})"
    first = _restart_deviation(messages, 0.0, lag_standstill=2.5, lag_fit=candidates)
    assert first == pytest.approx(_restart_deviation(messages, 0.0, lag_standstill=2.5), abs=0.02), "the first restart alike"


def test_the_fitted_lag_picks_the_steadiest_candidate_and_starts_on_the_first() -> None:
    from models.lag import FittedLag

    lag = FittedLag(1, (900.0, 1500.0), step_s=30.0)
    assert lag.chosen == 0, "no evidence yet: the spec's own lag_s"
    keep = math.exp(-30.0 / 1500.0)
    heat, rise, steps = 1.0, 10.0 * 1.0, np.arange(200)
    values, rises = [], []
    for k in steps.tolist():  # a load step at step 50: heating x4, the winding follows through 1,500 s
        target = 1.0 if k < 50 else 4.0
        heat = target
        rise = 10.0 * target + (rise - 10.0 * target) * keep
        values.append([heat])
        rises.append(rise)
    lag.run(steps, np.array(values), True, None, np.array(rises))
    assert lag.chosen == 1 and lag.roughness[1] < lag.roughness[0] / 10


def test_restarts_after_short_stops_do_not_look_like_a_cooling_failure_with_the_standstill_lag() -> None:
    """The machine cools 2.5x slower at rest: a filter that forgets its heat at the running rate
    sees a warm winding with little lagged current at every restart (the overheating signature)."""
    messages = _duty_cycle(run_min=40, stop_min=20, cycles=4, standstill=2.5)
    deviation = {standstill: _restart_deviation(messages, lag_standstill=standstill) for standstill in (1.0, 2.5)}
    assert deviation[2.5] < 0.1, "the standstill lag follows the winding through every stop and restart"
    assert deviation[1.0] > 0.3, "one time constant: the restart looks like a winding too hot for its current"


def test_the_turning_cooling_features_leave_out_the_standstill_cooldown() -> None:
    """A duty-cycled motor whose stopped winding cools slower than the filter's standstill guess: while
    it stands still its rise per lagged current squared is a cooldown curve (in the training plant it
    widened the gearbox type's healthy spread twentyfold); the _turning forms are those steps' NaN."""
    channels = ("ambient_temp_c", *LAGGED_CHANNELS, "speed_rpm", "winding_temp_c")
    spec = WindowSpec(
        channels=channels, length_s=600.0, hop_s=60.0, steps=20, grace_s=30.0, running_channel="speed_rpm",
        lagged=LAGGED_CHANNELS, lag_s=TAU, lag_standstill=2.5,
    )  # fmt: skip
    windows = [w for w in windows_from_messages(_duty_cycle(60, 30, 3, standstill=5.0), spec) if w.start > T0 + 1800]
    stats, counts = np.stack([w.stats for w in windows]), np.stack([w.counts for w in windows])
    lagged = np.stack([w.lagged for w in windows])  # type: ignore[misc]
    names = ("log_winding_rise_per_lagged_current2", "log_winding_rise_per_lagged_current2_turning")
    every, turning = np.moveaxis(derive(names, channels, stats, counts, lagged, spec.lagged), -1, 0)
    stopped = stats[:, :, channels.index("speed_rpm"), 0] <= 10
    assert stopped.any() and (~stopped).any()
    assert np.isnan(turning[stopped]).all() and np.isfinite(every[stopped]).any(), "standstill: only the every-step form"
    assert np.array_equal(turning[~stopped], every[~stopped], equal_nan=True), "turning: the same value"
    assert np.nanstd(turning) < np.nanstd(every), "the cooldown widened the spread"
    no_speed = tuple(c for c in channels if c != "speed_rpm")
    keep = [channels.index(c) for c in no_speed]
    blind = derive(names, no_speed, stats[:, :, keep], counts[:, :, keep], lagged, spec.lagged)
    assert np.array_equal(blind[..., 1], blind[..., 0], equal_nan=True), "no speed channel: every step is kept"
