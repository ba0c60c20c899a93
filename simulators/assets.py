"""Asset types and the per-asset physical parameters drawn for one plant.

An asset type fixes which channels a machine of that kind reports, which faults it can
develop, and the ranges its physical constants come from (rated speed, currents, thermal
rises and time constants, vibration baselines, bearing defect frequency orders, process
design points). Each simulated asset draws its own constants from those ranges, so two
pumps never look identical and no absolute threshold separates healthy from faulty.

Parameters are stored as arrays over assets (``AssetParams``) so that the physics runs
vectorised across a whole plant in one numpy expression per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from forewarn.contracts import SIMULATED_FAULTS

_VIB = (
    "vib_rms_velocity_mm_s",
    "vib_rms_accel_g",
    "vib_peak_accel_g",
    "vib_kurtosis",
    "vib_crest_factor",
    "vib_axial_velocity_mm_s",
    "band_1x_mm_s",
    "band_2x_mm_s",
    "band_bpfo_g",
    "band_bpfi_g",
    "band_hf_g",
)
_MOTOR = ("winding_temp_c", "current_l1_a", "current_l2_a", "current_l3_a")
_MECHANICAL = ("bearing_outer_race", "bearing_inner_race", "imbalance", "misalignment", "looseness", "lubrication_loss")
_ELECTRICAL = ("overheating", "phase_imbalance")


@dataclass(frozen=True)
class AssetType:
    """A kind of machine: its channels, its possible faults, and where its constants come from."""

    id: str
    code: int
    noun: str
    """What operators call it in log text."""
    tag_prefix: str
    channels: tuple[str, ...]
    faults: tuple[str, ...]
    ranges: dict[str, tuple[float, float]]
    """Parameter name -> (low, high) for a uniform draw; missing names use DEFAULT_RANGES."""
    rated_rpm: tuple[float, ...]
    """Nameplate speeds to choose from (2-, 4-, 6-pole motors at 50 Hz, less slip)."""


# Constants shared by every type unless a type overrides them.
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "slip": (0.008, 0.025),
    "i_rated": (20.0, 120.0),
    "i_noload": (0.28, 0.42),
    "unbalance_base": (0.004, 0.018),
    "base_1x": (0.5, 1.6),
    "base_2x": (0.15, 0.55),
    "base_axial": (0.3, 0.9),
    "base_other": (0.4, 1.1),
    "base_hf": (0.03, 0.09),
    "base_bpfo": (0.01, 0.035),
    "base_bpfi": (0.008, 0.03),
    "base_gmf": (0.0, 0.0),
    "base_kurt": (2.9, 3.3),
    "bpfo_x": (3.0, 3.7),
    "bpfi_x": (4.9, 5.6),
    "res_gain": (0.0, 1.2),
    "res_pos": (0.55, 1.05),
    "res_width": (0.03, 0.08),
    "bearing_dt": (14.0, 30.0),
    "tau_bearing": (900.0, 2400.0),
    "winding_dt": (40.0, 65.0),
    "tau_winding": (700.0, 1500.0),
    "oil_dt": (0.0, 0.0),
    "tau_oil": (1800.0, 3600.0),
    "disch_dt": (0.0, 0.0),
    "suction_bar": (0.0, 0.0),
    "head_bar": (0.0, 0.0),
    "flow_design": (0.0, 0.0),
    "fan_mbar": (0.0, 0.0),
    "p_set": (0.0, 0.0),
    "ambient_offset": (0.0, 6.0),
}

ASSET_TYPES: dict[str, AssetType] = {
    t.id: t
    for t in (
        AssetType(
            id="centrifugal_pump",
            code=0,
            noun="pump",
            tag_prefix="P",
            channels=(
                "speed_rpm",
                *_VIB,
                "bearing_temp_c",
                *_MOTOR,
                "suction_pressure_bar",
                "discharge_pressure_bar",
                "flow_m3_h",
                "ambient_temp_c",
            ),
            faults=(*_MECHANICAL, "cavitation", *_ELECTRICAL, "seal_leak"),
            ranges={"suction_bar": (0.8, 2.5), "head_bar": (3.0, 9.0), "flow_design": (40.0, 400.0), "i_rated": (15.0, 90.0)},
            rated_rpm=(2960.0, 1480.0),
        ),
        AssetType(
            id="induction_motor",
            code=1,
            noun="motor",
            tag_prefix="M",
            channels=("speed_rpm", *_VIB, "bearing_temp_c", *_MOTOR, "ambient_temp_c"),
            faults=(*_MECHANICAL, *_ELECTRICAL),
            ranges={"i_rated": (10.0, 160.0)},
            rated_rpm=(2970.0, 1485.0, 990.0),
        ),
        AssetType(
            id="fan",
            code=2,
            noun="fan",
            tag_prefix="FAN",
            channels=("speed_rpm", *_VIB, "bearing_temp_c", *_MOTOR, "static_pressure_mbar", "flow_m3_h", "ambient_temp_c"),
            faults=(*_MECHANICAL, *_ELECTRICAL),
            ranges={"fan_mbar": (4.0, 25.0), "flow_design": (8_000.0, 60_000.0), "base_1x": (0.8, 2.2), "i_rated": (12.0, 80.0)},
            rated_rpm=(1480.0, 990.0, 740.0),
        ),
        AssetType(
            id="compressor",
            code=3,
            noun="compressor",
            tag_prefix="K",
            channels=(
                "speed_rpm",
                *_VIB,
                "bearing_temp_c",
                *_MOTOR,
                "oil_temp_c",
                "suction_pressure_bar",
                "discharge_pressure_bar",
                "flow_m3_h",
                "discharge_temp_c",
                "ambient_temp_c",
            ),
            faults=(*_MECHANICAL, *_ELECTRICAL, "seal_leak"),
            ranges={
                "oil_dt": (35.0, 50.0),
                "disch_dt": (55.0, 70.0),
                "p_set": (6.5, 9.5),
                "flow_design": (300.0, 2_500.0),
                "i_rated": (40.0, 250.0),
                "base_hf": (0.06, 0.14),
            },
            rated_rpm=(2975.0, 1485.0),
        ),
        AssetType(
            id="gearbox",
            code=4,
            noun="conveyor drive",
            tag_prefix="CV",
            channels=("speed_rpm", *_VIB, "band_gmf_g", "bearing_temp_c", "oil_temp_c", *_MOTOR, "ambient_temp_c"),
            faults=(*_MECHANICAL, *_ELECTRICAL),
            ranges={"oil_dt": (20.0, 35.0), "base_gmf": (0.15, 0.45), "base_hf": (0.05, 0.12), "i_rated": (15.0, 110.0)},
            rated_rpm=(1480.0, 985.0),
        ),
    )
}

TYPE_BY_CODE: dict[int, AssetType] = {t.code: t for t in ASSET_TYPES.values()}
FAULT_INDEX: dict[str, int] = {f: i for i, f in enumerate(SIMULATED_FAULTS)}

assert all(set(t.faults) <= set(SIMULATED_FAULTS) for t in ASSET_TYPES.values()), "asset type names an unknown fault"
assert set().union(*(t.faults for t in ASSET_TYPES.values())) == set(SIMULATED_FAULTS), "a fault no asset type can develop"


@dataclass
class AssetParams:
    """Physical constants of every asset of a plant, one array element per asset."""

    type_code: np.ndarray  # (A,) int
    vfd: np.ndarray  # (A,) bool: variable-speed drive (no inrush, speed setpoints move)
    rated_rpm: np.ndarray
    load_mean: np.ndarray
    phase_angle: np.ndarray  # direction of the inherent current unbalance
    slip: np.ndarray
    i_rated: np.ndarray
    i_noload: np.ndarray
    unbalance_base: np.ndarray
    base_1x: np.ndarray
    base_2x: np.ndarray
    base_axial: np.ndarray
    base_other: np.ndarray
    base_hf: np.ndarray
    base_bpfo: np.ndarray
    base_bpfi: np.ndarray
    base_gmf: np.ndarray
    base_kurt: np.ndarray
    bpfo_x: np.ndarray
    bpfi_x: np.ndarray
    res_gain: np.ndarray
    res_pos: np.ndarray
    res_width: np.ndarray
    bearing_dt: np.ndarray
    tau_bearing: np.ndarray
    winding_dt: np.ndarray
    tau_winding: np.ndarray
    oil_dt: np.ndarray
    tau_oil: np.ndarray
    disch_dt: np.ndarray
    suction_bar: np.ndarray
    head_bar: np.ndarray
    flow_design: np.ndarray
    fan_mbar: np.ndarray
    p_set: np.ndarray
    ambient_offset: np.ndarray

    def __len__(self) -> int:
        return len(self.type_code)

    def is_type(self, type_id: str) -> np.ndarray:
        return np.asarray(self.type_code == ASSET_TYPES[type_id].code)


def draw_params(
    types: list[str],
    vfd: list[bool],
    load_mean: list[float],
    rated_rpm: list[float | None],
    rng: np.random.Generator,
) -> AssetParams:
    """Draw every asset's constants from its type's ranges (deterministic for the generator's state)."""
    n = len(types)
    values: dict[str, np.ndarray] = {}
    range_names = [f.name for f in fields(AssetParams) if f.name in DEFAULT_RANGES]
    unit = rng.random((len(range_names), n))  # one draw per parameter and asset, in a fixed order
    for row, name in enumerate(range_names):
        lows = np.array([ASSET_TYPES[t].ranges.get(name, DEFAULT_RANGES[name])[0] for t in types])
        highs = np.array([ASSET_TYPES[t].ranges.get(name, DEFAULT_RANGES[name])[1] for t in types])
        values[name] = lows + (highs - lows) * unit[row]
    picks = rng.random(n)
    rpm = np.array(
        [
            given if given is not None else ASSET_TYPES[t].rated_rpm[int(p * len(ASSET_TYPES[t].rated_rpm))]
            for t, given, p in zip(types, rated_rpm, picks, strict=True)
        ]
    )
    return AssetParams(
        type_code=np.array([ASSET_TYPES[t].code for t in types], dtype=np.int64),
        vfd=np.array(vfd, dtype=bool),
        rated_rpm=rpm,
        load_mean=np.array(load_mean, dtype=np.float64),
        phase_angle=rng.uniform(0.0, 2 * np.pi, n),
        **values,
    )
