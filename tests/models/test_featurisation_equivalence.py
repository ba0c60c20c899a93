"""The gateway's windowing and featurisation give the arrays they gave before they were made faster.

``featurisation_reference.npz`` was written by the implementation before the speed-ups of
2026-12-07 (``python tests/models/test_featurisation_equivalence.py --write`` with that code
first on PYTHONPATH). The stream below is varied on purpose: a pump whose demand moves (its
own curve is fitted), a motor missing channels with gaps, None values, a standstill, a
duplicate and a late message, a fan of a type the bundle does not know with a stuck bearing
transmitter, a gearbox whose messages span several hops and carry a channel the model does
not read, log lines of every level (more than a window keeps), and log-only assets under a
spec that counts log lines. Any change to what the model is fed shows up here.

Floats are compared to 1e-6 relative (a CPU's own SIMD transcendental functions may differ in
the last bit); NaN positions, counts and tokens exactly.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.metrics import EdgeMetrics
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import LogRecord, Telemetry
from models.runtime import Bundle, default_bundle_path
from models.windowing import LOG_RATE_CHANNEL, AssetWindower, Window, WindowSpec

FIXTURE = Path(__file__).parent / "data" / "featurisation_reference.npz"
T0 = 1_767_225_600.0
MINUTES = 80
RATED = {"M-1": 90.0}
LEVELS = ("DEBUG", "INFO", "NOTICE", "WARNING", "ALARM", "ERROR", "CRITICAL")
KEPT_EVERY = 5
"""Every fifth window of the stream is kept in the fixture (each depends on all before it through the history)."""


def _machine(rng: np.random.Generator, n: int, minute: float, speed: float, load: float) -> dict[str, np.ndarray]:
    """Plausible values of every catalogue channel for n seconds of a machine at a speed and load."""
    on = speed > 0
    current = load * 80.0 if on else 0.0
    return {
        "ambient_temp_c": 20.0 + 0.05 * minute + rng.normal(0, 0.05, n),
        "speed_rpm": (speed + rng.normal(0, 1.5, n)) if on else np.zeros(n),
        "current_l1_a": current + rng.normal(0, 0.3, n) * on,
        "current_l2_a": current * 1.01 + rng.normal(0, 0.3, n) * on,
        "current_l3_a": current * 0.99 + rng.normal(0, 0.3, n) * on,
        "winding_temp_c": 45.0 + 25.0 * load * on + 0.1 * minute + rng.normal(0, 0.1, n),
        "bearing_temp_c": 35.0 + 10.0 * on + rng.normal(0, 0.1, n),
        "vib_rms_velocity_mm_s": 1.6 * on + 0.05 + rng.normal(0, 0.05, n),
        "vib_rms_accel_g": 0.1 * on + 0.01 + rng.normal(0, 0.005, n),
        "vib_peak_accel_g": 0.3 * on + 0.02 + rng.normal(0, 0.01, n),
        "vib_kurtosis": 3.0 + rng.normal(0, 0.1, n),
        "vib_crest_factor": 3.1 + rng.normal(0, 0.1, n),
        "vib_axial_velocity_mm_s": 0.6 * on + 0.02 + rng.normal(0, 0.02, n),
        "band_1x_mm_s": 1.5 * on + 0.03 + rng.normal(0, 0.05, n),
        "band_2x_mm_s": 0.37 * on + 0.01 + rng.normal(0, 0.02, n),
        "band_bpfo_g": 0.033 * on + 0.002 + rng.normal(0, 0.002, n),
        "band_bpfi_g": 0.015 * on + 0.002 + rng.normal(0, 0.001, n),
        "band_hf_g": 0.04 * on + 0.003 + rng.normal(0, 0.002, n),
        "band_gmf_g": 0.2 * on + 0.01 + rng.normal(0, 0.01, n),
        "oil_temp_c": 50.0 + rng.normal(0, 0.1, n),
        "flow_m3_h": 120.0 * load * on + rng.normal(0, 0.5, n) * on,
        "suction_pressure_bar": 1.2 + rng.normal(0, 0.01, n),
        "discharge_pressure_bar": 1.2 + (5.0 - 1.5 * load * load) * on + rng.normal(0, 0.02, n),
        "discharge_temp_c": 30.0 + 10.0 * on + rng.normal(0, 0.1, n),
        "static_pressure_mbar": 12.0 * on + rng.normal(0, 0.1, n),
    }


ASSETS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "P-1": ("centrifugal_pump", ("ambient_temp_c", "speed_rpm", "current_l1_a", "current_l2_a", "current_l3_a",
                                 "winding_temp_c", "bearing_temp_c", "vib_rms_velocity_mm_s", "band_1x_mm_s", "band_2x_mm_s",
                                 "band_bpfo_g", "band_bpfi_g", "band_hf_g", "vib_axial_velocity_mm_s", "flow_m3_h",
                                 "suction_pressure_bar", "discharge_pressure_bar")),
    "M-1": ("induction_motor", ("ambient_temp_c", "speed_rpm", "current_l1_a", "current_l2_a", "current_l3_a",
                                "winding_temp_c", "bearing_temp_c", "vib_rms_velocity_mm_s", "vib_kurtosis", "band_1x_mm_s")),
    "F-1": ("cooling_tower_fan", ("ambient_temp_c", "speed_rpm", "current_l1_a", "winding_temp_c", "bearing_temp_c",
                                  "vib_rms_velocity_mm_s", "vib_rms_accel_g", "vib_peak_accel_g", "vib_crest_factor",
                                  "static_pressure_mbar", "flow_m3_h")),
    "G-1": ("gearbox", ("ambient_temp_c", "speed_rpm", "current_l1_a", "current_l2_a", "current_l3_a", "winding_temp_c",
                        "oil_temp_c", "band_gmf_g", "band_hf_g", "bearing_temp_c", "discharge_temp_c")),
}  # fmt: skip


def telemetry_stream(seed: int = 3) -> list[Telemetry | LogRecord]:
    """The varied stream, in arrival order (mostly time order; one late and one duplicate message)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, int, Telemetry | LogRecord]] = []
    seq = dict.fromkeys(ASSETS, 0)
    for asset, (asset_type, channels) in ASSETS.items():
        per_message = 90 if asset == "G-1" else 10  # the gearbox's 90 s messages span several 30 s steps and a hop
        t = 0
        while t < MINUTES * 60:
            n = 400 if asset == "G-1" and t == 1800 else per_message  # one historian-sized message: more than a hop
            minute = t / 60.0
            if asset == "M-1" and 1500 <= t < 2700:  # a 20-minute silence: longer than a window
                t += n
                continue
            speed = 0.0 if asset == "M-1" and 3000 <= t < 3600 else 1480.0  # a standstill of ten minutes
            load = 0.55 + 0.25 * np.sin(t / 900.0) if asset == "P-1" else 0.7  # the pump's demand moves
            values = _machine(rng, n, minute, speed, load)
            columns: dict[str, list[float | None]] = {}
            for c in channels:
                column: list[float | None] = [round(float(v), 4) for v in values[c]]
                if asset == "F-1" and c == "bearing_temp_c" and 2400 <= t < 3300:
                    column = [41.25] * n  # a stuck transmitter while the fan runs
                if asset == "M-1" and c == "vib_kurtosis" and t % 70 == 0:
                    column[::3] = [None] * len(column[::3])
                columns[c] = column
            if asset == "G-1":
                columns["lube_flow_l_min"] = [1.0] * n  # not a channel the model reads
            message = Telemetry(
                site="s", asset_id=asset, asset_type=asset_type, seq=seq[asset],
                timestamps=[T0 + t + i + 0.25 for i in range(n)], channels=columns,
            )  # fmt: skip
            seq[asset] += 1
            arrival = T0 + t + n
            if asset == "P-1" and t == 2000:
                arrival += 25.0  # late, within the grace: still lands in its step
            out.append((arrival, 0, message))
            if asset == "M-1" and t == 600:
                out.append((arrival + 1.0, 0, message))  # redelivered: dropped as a duplicate
            t += n
    for i in range(MINUTES * 6):
        ts = T0 + 10.0 * i + 3.0
        asset = ("P-1", "M-1", "F-1")[i % 3]
        level = LEVELS[int(rng.integers(len(LEVELS)))]
        text = f"event {int(rng.integers(12))} on {asset}" if i % 5 else "shift handover, all normal"
        out.append((ts, 1, LogRecord(site="s", asset_id=asset, ts=ts, level=level, text=text, seq=i // 3)))
    out.sort(key=lambda item: (item[0], item[1]))
    return [m for _, _, m in out]


def log_only_stream(seed: int = 5) -> list[Telemetry | LogRecord]:
    """Two machines that only write logs, in bursts with silences between, and one that also sends telemetry."""
    rng = np.random.default_rng(seed)
    out: list[Telemetry | LogRecord] = []
    for i in range(400):
        ts = T0 + 11.0 * i
        if 1200 <= 11.0 * i < 2400:  # a silence in both
            continue
        for asset in ("H-1", "H-2"):
            if rng.random() < (0.7 if asset == "H-1" else 0.2):
                level = LEVELS[int(rng.integers(len(LEVELS)))]
                out.append(LogRecord(site="s", asset_id=asset, ts=ts + 0.5, level=level, text=f"block {int(rng.integers(9))}"))
        if i % 2 == 0:
            out.append(
                Telemetry(
                    site="s", asset_id="H-3", asset_type=None, seq=i // 2, timestamps=[ts, ts + 5.0],
                    channels={"speed_rpm": [1480.0 + float(rng.normal()), None], "winding_temp_c": [60.0, 60.5]},
                )
            )  # fmt: skip
    return out


def _windows(spec: WindowSpec, messages: list[Telemetry | LogRecord]) -> list[Window]:
    stage = WindowStage(spec, AssetPolicy(rated_currents=RATED), EdgeMetrics())
    windows: list[Window] = []
    for message in messages:
        stage.add(message)
        windows.extend(w for w, _ in stage.ready())
    windows.extend(stage.flush())
    return windows


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def _window_arrays(prefix: str, windows: list[Window]) -> dict[str, np.ndarray]:
    def stacked(name: str) -> np.ndarray:
        values = [getattr(w, name) for w in windows]
        return np.stack([np.full((0,), np.nan) if v is None else v for v in values]) if values else np.zeros(0)

    return {
        f"{prefix}asset_end": np.array([(int(w.asset_id.split("-")[1]) + 10 * ord(w.asset_id[0]), w.end) for w in windows]),
        f"{prefix}stats": stacked("stats"),
        f"{prefix}counts": stacked("counts"),
        f"{prefix}reference": stacked("reference"),
        f"{prefix}reference_derived": stacked("reference_derived"),
        f"{prefix}lagged": stacked("lagged"),
        f"{prefix}pump_slope": np.array([_nan(w.pump_slope) for w in windows]),
        f"{prefix}log_ts": np.array([[r.ts for r in w.logs] + [np.nan] * (16 - len(w.logs)) for w in windows]),
    }


def compute() -> dict[str, np.ndarray]:
    """Every array the fixture holds, from the code under test."""
    bundle = Bundle.load(default_bundle_path())
    featuriser = bundle.featuriser()
    every = _windows(bundle.spec, telemetry_stream())
    kept = every[::KEPT_EVERY]
    arrays = _window_arrays("", kept)
    features = featuriser(kept)
    stats, counts = np.stack([w.stats for w in kept]), np.stack([w.counts for w in kept])
    types = featuriser.type_indices([w.asset_type for w in kept])
    z, value = featuriser.deviations(stats, counts, types)
    arrays |= {
        "windows_total": np.array([len(every)]),
        "sensors": features.sensors,
        "tokens": features.tokens,
        "line_index": features.line_index,
        "deviation_z": z,
        "deviation_value": value,
        "running": featuriser.running(stats, counts),
    }
    log_spec = dataclasses.replace(bundle.spec, channels=(*bundle.spec.channels, LOG_RATE_CHANNEL))
    logs = _windows(log_spec, log_only_stream())
    arrays |= _window_arrays("log_", logs[::KEPT_EVERY]) | {"log_windows_total": np.array([len(logs)])}
    return arrays


@pytest.fixture(scope="module")
def computed() -> dict[str, np.ndarray]:
    return compute()


def test_the_stream_exercises_what_it_claims(computed: dict[str, np.ndarray]) -> None:
    ends = computed["asset_end"]
    assert {int(a) for a in ends[:, 0]} == {10 * ord(c) + 1 for c in "PMFG"}, "every telemetry asset gives windows"
    assert np.isfinite(computed["reference"]).any() and np.isnan(computed["reference"]).any(), "references warm up"
    assert np.isfinite(computed["pump_slope"]).any(), "the pump's own curve is fitted"
    assert not computed["running"].all() and computed["running"].any(), "some windows stand still"
    assert (computed["tokens"] > 0).any(), "log lines reach the tokens"
    assert (computed["log_counts"][..., -1] > 0).any(), "log-only assets count their lines"


@pytest.mark.parametrize("name", sorted(np.load(FIXTURE).files) if FIXTURE.exists() else ["missing"])
def test_arrays_match_the_reference(computed: dict[str, np.ndarray], name: str) -> None:
    assert FIXTURE.exists(), f"{FIXTURE} is missing"
    expected = np.load(FIXTURE)[name]
    got = computed[name]
    assert got.shape == expected.shape, f"{name}: shape {got.shape}, reference {expected.shape}"
    if np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{name}: NaN positions differ")
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=name)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=name)


SMALL = WindowSpec(channels=("temp", "vib"), length_s=60.0, hop_s=20.0, steps=6, grace_s=10.0, max_log_lines=3)


class _PerMessage(AssetWindower):
    """The windower folding each message into the ring as it comes, as it did before folds were queued per hop."""

    def _fold(self, steps: np.ndarray, values: np.ndarray) -> None:
        super()._fold(steps, values)
        self._flush()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-40, 400), st.integers(1, 45), st.booleans()), min_size=1, max_size=40
    )  # (start offset s, samples, with a gap of NaNs)
)
def test_folding_a_hops_messages_at_once_equals_folding_each_as_it_comes(messages: list[tuple[int, int, bool]]) -> None:
    """Any arrival order, late and overlapping messages, gaps and NaNs: the same windows, bit for bit, and the same counts."""
    rng = np.random.default_rng(len(messages))
    queued, each = AssetWindower(SMALL, "p", "a"), _PerMessage(SMALL, "p", "a")
    got: dict[str, list[Window]] = {"queued": [], "each": []}
    for seq, (offset, n, gap) in enumerate(messages):
        vib: list[float | None] = [round(float(v), 3) for v in rng.normal(2.0, 1.0, n)]
        if gap:
            vib[::2] = [None] * len(vib[::2])
        message = Telemetry(
            site="p", asset_id="a", seq=seq, timestamps=[T0 + offset + 0.7 * i for i in range(n)],
            channels={"temp": [round(float(t), 2) for t in rng.normal(20.0, 0.5, n)], "vib": vib},
        )  # fmt: skip
        for name, windower in (("queued", queued), ("each", each)):
            windower.add_telemetry(message)
            got[name].extend(windower.ready())
    for name, windower in (("queued", queued), ("each", each)):
        got[name].extend(windower.flush())
    assert [(w.end, w.stats.tobytes(), w.counts.tobytes()) for w in got["queued"]] == [
        (w.end, w.stats.tobytes(), w.counts.tobytes()) for w in got["each"]
    ]
    assert queued.counters == each.counters


def _write() -> None:
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = compute()
    np.savez_compressed(FIXTURE, **arrays)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size:,} bytes): " + ", ".join(f"{k}{v.shape}" for k, v in arrays.items()))


if __name__ == "__main__" and "--write" in sys.argv:
    _write()
