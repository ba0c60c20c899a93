"""A vibration analyst checks that each simulated fault moves the channels the way the physics says, and only those."""

from __future__ import annotations

import numpy as np
import pytest

from forewarn.contracts import SIMULATED_FAULTS
from simulators.assets import FAULT_INDEX, draw_params
from simulators.channels import INDEX
from simulators.operation import OpBatch
from simulators.physics import Physics

N_ASSETS = 24  # many machines of one type, so conclusions hold across drawn constants
T0 = 1_750_000_000.0


def _run(
    fault: str | None,
    severity: float,
    *,
    load: float = 0.7,
    speed_frac: float = 1.0,
    type_id: str = "centrifugal_pump",
    settle: bool = True,
) -> dict[str, np.ndarray]:
    """Mean channel values per asset at a steady operating point and a fixed severity (thermal lags settled)."""
    rng = np.random.default_rng(7)
    params = draw_params([type_id] * N_ASSETS, [False] * N_ASSETS, [load] * N_ASSETS, [None] * N_ASSETS, rng)
    physics = Physics(params, np.random.default_rng(11))
    n = 50
    ts = T0 + np.arange(n)[None, :].repeat(N_ASSETS, axis=0)
    speed = np.repeat((params.rated_rpm * speed_frac)[:, None], n, axis=1)
    op = OpBatch(
        run=np.ones((N_ASSETS, n)),
        speed=speed,
        load=np.full((N_ASSETS, n), load),
        since_start=np.full((N_ASSETS, n), 1e6),
        events=[],
    )
    sev = np.zeros((len(SIMULATED_FAULTS), N_ASSETS, n))
    physics.step(ts, op, np.full((N_ASSETS, n), 20.0), sev, 1.0)  # equilibrium at health
    if fault is not None:
        sev[FAULT_INDEX[fault]] = severity
    values, _ = physics.step(ts, op, np.full((N_ASSETS, n), 20.0), sev, 1e6 if settle else 1.0)
    return {name: values[:, i].mean(axis=1) for name, i in INDEX.items()}


def _ratio(fault: str, severity: float, channel: str, **kw: object) -> float:
    """Median over assets of faulty / healthy for one channel."""
    healthy = _run(None, 0.0, **kw)  # type: ignore[arg-type]
    faulty = _run(fault, severity, **kw)  # type: ignore[arg-type]
    return float(np.median(faulty[channel] / healthy[channel]))


def test_imbalance_raises_1x_and_not_2x() -> None:
    assert _ratio("imbalance", 0.5, "band_1x_mm_s") > 3.0
    assert _ratio("imbalance", 0.5, "band_2x_mm_s") == pytest.approx(1.0, abs=0.02)
    assert _ratio("imbalance", 0.5, "vib_rms_velocity_mm_s") > 2.0


def test_misalignment_raises_2x_and_axial_more_than_1x() -> None:
    two_x = _ratio("misalignment", 0.5, "band_2x_mm_s")
    axial = _ratio("misalignment", 0.5, "vib_axial_velocity_mm_s")
    one_x = _ratio("misalignment", 0.5, "band_1x_mm_s")
    assert two_x > 3.0 and axial > 2.5
    assert one_x < two_x and one_x < axial


@pytest.mark.parametrize(
    ("fault", "band", "other"),
    [("bearing_outer_race", "band_bpfo_g", "band_bpfi_g"), ("bearing_inner_race", "band_bpfi_g", "band_bpfo_g")],
)
def test_bearing_defect_raises_its_band_then_kurtosis_then_temperature(fault: str, band: str, other: str) -> None:
    healthy = _run(None, 0.0)
    first: dict[str, float] = {}
    for s in np.linspace(0.02, 1.0, 50):
        faulty = _run(fault, float(s))
        rises = {
            "band": np.median(faulty[band] / healthy[band]) > 2.0,
            "kurtosis": np.median(faulty["vib_kurtosis"] - healthy["vib_kurtosis"]) > 1.0,
            "temperature": np.median(faulty["bearing_temp_c"] - healthy["bearing_temp_c"]) > 3.0,
        }
        for name, risen in rises.items():
            if risen:
                first.setdefault(name, float(s))
    assert set(first) == {"band", "kurtosis", "temperature"}
    assert first["band"] < first["kurtosis"] < first["temperature"]
    # its own band, not the other race's
    assert _ratio(fault, 0.5, band) > 3 * _ratio(fault, 0.5, other)


def test_cavitation_adds_broadband_noise_and_lowers_suction_and_flow() -> None:
    assert _ratio("cavitation", 0.6, "band_hf_g") > 3.0
    assert _ratio("cavitation", 0.6, "suction_pressure_bar") < 0.9
    assert _ratio("cavitation", 0.6, "flow_m3_h") < 0.95
    assert _ratio("cavitation", 0.6, "band_1x_mm_s") == pytest.approx(1.0, abs=0.02)


def test_phase_imbalance_spreads_the_phase_currents() -> None:
    def spread(v: dict[str, np.ndarray]) -> np.ndarray:
        phases = np.stack([v["current_l1_a"], v["current_l2_a"], v["current_l3_a"]])
        spread: np.ndarray = (phases.max(axis=0) - phases.min(axis=0)) / phases.mean(axis=0)
        return spread

    assert np.median(spread(_run("phase_imbalance", 0.6))) > 4 * np.median(spread(_run(None, 0.0)))
    assert _ratio("phase_imbalance", 0.6, "band_1x_mm_s") == pytest.approx(1.0, abs=0.02)


def test_cooling_failure_heats_the_winding_without_vibration() -> None:
    healthy, faulty = _run(None, 0.0), _run("overheating", 0.6)
    assert np.median(faulty["winding_temp_c"] - healthy["winding_temp_c"]) > 15.0
    assert _ratio("overheating", 0.6, "vib_rms_velocity_mm_s") == pytest.approx(1.0, abs=0.02)


def test_lubrication_loss_heats_the_bearing_earlier_than_a_bearing_defect() -> None:
    healthy = _run(None, 0.0)
    lube, bearing = _run("lubrication_loss", 0.4), _run("bearing_outer_race", 0.4)
    assert np.median(lube["bearing_temp_c"] - healthy["bearing_temp_c"]) > 3.0
    assert np.median(bearing["bearing_temp_c"] - healthy["bearing_temp_c"]) < 1.0
    assert _ratio("lubrication_loss", 0.4, "band_hf_g") > 2.0


def test_seal_leak_loses_flow_and_pressure_at_the_same_speed() -> None:
    assert _ratio("seal_leak", 0.8, "flow_m3_h") < 0.9
    assert _ratio("seal_leak", 0.8, "discharge_pressure_bar") < 0.95


def test_load_raises_current_and_temperature_without_any_fault() -> None:
    light, heavy = _run(None, 0.0, load=0.4), _run(None, 0.0, load=1.0)
    assert np.all(heavy["current_l1_a"] > light["current_l1_a"])
    assert np.all(heavy["winding_temp_c"] > light["winding_temp_c"])
    assert np.all(heavy["bearing_temp_c"] > light["bearing_temp_c"])


def test_vibration_scales_with_speed() -> None:
    slow, fast = _run(None, 0.0, speed_frac=0.6), _run(None, 0.0, speed_frac=1.0)
    assert np.median(fast["vib_rms_velocity_mm_s"] / slow["vib_rms_velocity_mm_s"]) > 1.5


def test_every_fault_changes_something_on_every_type_that_can_develop_it() -> None:
    from simulators.assets import ASSET_TYPES

    for type_id, asset_type in ASSET_TYPES.items():
        healthy = _run(None, 0.0, type_id=type_id)
        for fault in asset_type.faults:
            faulty = _run(fault, 0.8, type_id=type_id)
            moved = [
                c for c in asset_type.channels if np.median(np.abs(faulty[c] - healthy[c]) / (np.abs(healthy[c]) + 1e-3)) > 0.1
            ]
            assert moved, f"{fault} changes nothing on a {type_id}"
