"""A pump whose demand steps: read against its own fitted curve it holds still wherever it runs, and a leak still shows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from forewarn.contracts import Telemetry
from models.curve import PumpCurve
from models.derived import PUMP_CURVE_SLOPE, derive
from models.windowing import WindowSpec, windows_from_messages

T0 = 1_767_225_600.0
CHANNELS = ("discharge_pressure_bar", "flow_m3_h", "speed_rpm", "suction_pressure_bar")


def _pump(
    hours: float, leak_from_h: float | None = None, seed: int = 0, demand: tuple[float, float] = (0.4, 0.6)
) -> list[Telemetry]:
    """1 Hz, the simulator's curve (head ~ 1.25 - 0.3 q^2) at 2,950 rpm: demand steps between two levels each 40 min."""
    rng = np.random.default_rng(seed)
    messages, q = [], float(np.mean(demand))
    for i in range(int(hours * 360)):
        ts = [T0 + i * 10 + k for k in range(10)]
        target = demand[(i // 240) % 2]
        leak = 0.0 if leak_from_h is None else float(np.clip((i / 360 - leak_from_h) / 2.0, 0.0, 1.0))
        flows, heads = [], []
        for _ in ts:
            q += (target - q) * (1 - np.exp(-1 / 120)) + rng.normal(0, 0.002)
            flows.append(120.0 * q * (1.0 - 0.22 * leak) * (1 + rng.normal(0, 0.003)))
            heads.append(6.0 * (1.25 - 0.3 * q * q) * (1.0 - 0.18 * leak) * (1 + rng.normal(0, 0.002)))
        messages.append(
            Telemetry(
                site="p", asset_id="P-1", seq=i, timestamps=ts,
                channels={"discharge_pressure_bar": [1.5 + h for h in heads], "flow_m3_h": flows,
                          "speed_rpm": [2950.0] * 10, "suction_pressure_bar": [1.5] * 10},
            )
        )  # fmt: skip
    return messages


def _curve(messages: list[Telemetry], fit: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window after the first hour: (fixed-slope curve, own-slope curve, window end), step means averaged."""
    spec = WindowSpec(channels=CHANNELS, length_s=600.0, hop_s=60.0, steps=20, grace_s=30.0, pump_fit=fit)
    assert WindowSpec.from_dict(spec.to_dict()) == spec
    windows = [w for w in windows_from_messages(messages, spec) if w.start > T0 + 3600]
    assert all((w.pump_slope is not None) == fit for w in windows)
    stats, counts = np.stack([w.stats for w in windows]), np.stack([w.counts for w in windows])
    slope = np.array([np.nan if w.pump_slope is None else w.pump_slope for w in windows])
    d = derive(("log_pump_curve", "log_pump_curve_own"), CHANNELS, stats, counts, pump_slope=slope)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows without a fit
        return np.nanmean(d[..., 0], axis=1), np.nanmean(d[..., 1], axis=1), np.array([w.end for w in windows])


B = 6.0 * 0.3 / 120.0**2
"""The test pump's b in bar per (m3/h)^2: head/n^2 = a - b (Q/n)^2 holds at every speed."""


def test_b_starts_from_the_fixed_slope_at_the_first_duty_point_and_becomes_the_pumps_own() -> None:
    curve = PumpCurve(step_s=30.0)
    assert curve.slope is None, "no duty point seen: no curve"
    curve.fold(np.array([0]), np.array([4.0]), np.array([2.0]))
    assert curve.slope == pytest.approx(PUMP_CURVE_SLOPE / 2.0 * 2.0 / 4.0), "the fixed log slope at that point"
    spec = WindowSpec(channels=CHANNELS, length_s=600.0, hop_s=60.0, steps=20, grace_s=30.0, pump_fit=True)
    last = list(windows_from_messages(_pump(6.0), spec))[-1]
    assert last.pump_slope is not None and last.pump_slope == pytest.approx(B, rel=0.1), (last.pump_slope, B)


@pytest.mark.parametrize("demand", [(0.4, 0.6), (0.2, 0.45), (0.7, 1.0)])
def test_demand_steps_leave_the_own_curve_still_and_a_leak_does_not(demand: tuple[float, float]) -> None:
    fixed, own, _ = _curve(_pump(8.0, demand=demand), fit=True)
    assert np.ptp(own) < np.ptp(fixed) / 2, f"own curve {np.ptp(own):.3f} vs fixed slope {np.ptp(fixed):.3f}"
    _, leaking, ends = _curve(_pump(8.0, leak_from_h=5.0, demand=demand), fit=True)
    late = ends > T0 + 6.5 * 3600  # the leak past its middle
    assert np.median(own[late]) - np.median(leaking[late]) > 3 * np.ptp(own), "the leak leaves the pump's own curve"


def test_without_a_fit_the_own_curve_is_undefined() -> None:
    _, unfitted, _ = _curve(_pump(2.0), fit=False)
    assert np.isnan(unfitted).all(), "no fit: the feature is undefined, masked downstream"
