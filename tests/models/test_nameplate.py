"""Three motors of one type: winding rise per ampere squared cannot tell the hot one, per rated ampere squared it can."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.metrics import EdgeMetrics
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import Telemetry
from models.derived import LAGGED_CHANNELS, derive
from models.windowing import Window, WindowSpec, windows_from_messages

T0 = 1_767_225_600.0
CHANNELS = ("ambient_temp_c", *LAGGED_CHANNELS, "speed_rpm", "winding_temp_c")
SPEC = WindowSpec(
    channels=CHANNELS,
    length_s=600.0,
    hop_s=60.0,
    steps=20,
    grace_s=30.0,
    running_channel="speed_rpm",
    reference_s=3600.0,
    reference_min_s=600.0,
    lagged=LAGGED_CHANNELS,
    lag_s=900.0,
    reference_derived=("log_winding_rise_per_lagged_current2", "log_winding_rise_per_lagged_rated_current2"),
)
NAMES = SPEC.reference_derived
MOTORS = {"small": (15.0, 50.0), "large": (110.0, 50.0), "hot": (40.0, 90.0)}
"""asset -> (rated current, winding rise at rated current): one design rise of 50 K; the hot one's cooling failed."""


def _motor(asset: str, minutes: int = 90, load: float = 0.8) -> list[Telemetry]:
    """1 Hz, steady at ``load`` of rated current, winding in equilibrium at its rise for that current."""
    rated, rise = MOTORS[asset]
    current = load * rated
    out = []
    for i in range(minutes * 6):
        ts = [T0 + i * 10 + k for k in range(10)]
        channels = {c: [current] * 10 for c in LAGGED_CHANNELS}
        channels.update(ambient_temp_c=[20.0] * 10, speed_rpm=[1480.0] * 10, winding_temp_c=[20.0 + rise * load**2] * 10)
        out.append(Telemetry(site="p", asset_id=asset, seq=i, timestamps=ts, channels=channels))
    return out


def _features(windows: list[Window]) -> np.ndarray:
    """(N, 2) the two cooling features at each window's last step."""
    stats, counts = np.stack([w.stats for w in windows]), np.stack([w.counts for w in windows])
    lagged = np.stack([w.lagged for w in windows])  # type: ignore[misc]
    rated = np.array([np.nan if w.rated_current_a is None else w.rated_current_a for w in windows])
    return derive(NAMES, CHANNELS, stats, counts, lagged, SPEC.lagged, rated)[:, -1]


def test_per_rated_current_the_hot_motor_stands_out_and_machine_size_drops_out() -> None:
    rated = {a: r for a, (r, _) in MOTORS.items()}
    last = {a: _features(list(windows_from_messages(_motor(a), SPEC, rated_currents=rated)))[-1] for a in MOTORS}
    per_ampere = {a: f[0] for a, f in last.items()}
    per_rated = {a: f[1] for a, f in last.items()}
    assert per_ampere["small"] - per_ampere["large"] == pytest.approx(2 * math.log(110 / 15), abs=1e-3), "size dominates"
    assert per_ampere["large"] < per_ampere["hot"] < per_ampere["small"], "no threshold on rise per A^2 finds the hot one"
    assert per_rated["small"] == pytest.approx(per_rated["large"], abs=1e-3) == pytest.approx(math.log(50.0), abs=1e-3)
    assert per_rated["hot"] - per_rated["small"] == pytest.approx(math.log(90 / 50), abs=1e-3)


def test_windows_carry_the_rating_and_an_unrated_asset_gets_the_feature_masked() -> None:
    rated = list(windows_from_messages(_motor("hot"), SPEC, rated_currents={"hot": 40.0}))
    unrated = list(windows_from_messages(_motor("hot"), SPEC))
    assert all(w.rated_current_a == 40.0 for w in rated) and all(w.rated_current_a is None for w in unrated)
    assert np.isnan(_features(unrated)[:, 1]).all() and np.isfinite(_features(unrated)[:, 0]).all()
    reference = rated[-1].reference_derived
    assert reference is not None and reference[1, 0] == pytest.approx(math.log(90.0), abs=1e-3), "its own history too"
    assert np.isnan(unrated[-1].reference_derived[1]).all()  # type: ignore[index]


def test_the_gateway_gives_each_asset_the_rating_its_config_names() -> None:
    stage = WindowStage(SPEC, AssetPolicy(rated_currents={"hot": 40.0}), EdgeMetrics())
    for message in _motor("hot", minutes=15) + _motor("small", minutes=15):
        stage.add(message)
    ratings = {w.asset_id: w.rated_current_a for w, _ in stage.ready()}
    assert ratings == {"hot": 40.0, "small": None}
