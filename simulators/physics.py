"""Machine physics: true channel values from the operating point, the ambient and fault severities.

One vectorised model serves every asset type; type-specific parts (the process side of a
pump, fan or compressor, a gearbox's mesh) are selected per asset. The rules are the ones
a vibration analyst and a reliability engineer use (see docs/simulators.md, "Fault
signatures"):

- vibration amplitudes scale with speed (1x with its square: centrifugal force) and a
  structural resonance can amplify 1x at some speeds with no fault;
- imbalance raises 1x; misalignment raises 2x and axial vibration and warms the bearing;
  looseness raises 1x, 2x and harmonics and makes them erratic;
- a bearing defect raises envelope energy at its defect frequency (BPFO or BPFI) first,
  then impulsiveness (kurtosis, crest factor), then broadband velocity and, last, the
  bearing temperature; late in life kurtosis falls back as the damage spreads;
- cavitation adds broadband high-frequency noise, pressure and flow fluctuation and a
  lower suction pressure, worse at high flow; lubrication loss adds friction (high-frequency
  energy) and heat early; a cooling failure heats the winding for the same current;
- phase imbalance spreads the phase currents apart and heats the winding; a seal leak
  loses flow and pressure (pumps) or pressure and efficiency (compressors);
- load moves current and every temperature, through first-order thermal lags.

Sensor artefacts are not added here (see sensors.py): these are the true values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.assets import FAULT_INDEX, AssetParams
from simulators.channels import CHANNELS, INDEX
from simulators.dynamics import lowpass, smoothstep
from simulators.operation import OpBatch

G = 9.80665
_TWO_PI = 2.0 * np.pi


@dataclass
class Components:
    """The vibration components behind the slow channels, at one instant per asset: what a raw burst is made of."""

    speed: np.ndarray
    v1: np.ndarray
    v2: np.ndarray
    v_other: np.ndarray
    a_bpfo: np.ndarray
    a_bpfi: np.ndarray
    a_hf: np.ndarray
    a_gmf: np.ndarray
    impulsive: np.ndarray
    """Excess kurtosis from impacts (bearing defects, looseness, cavitation)."""


def _col(x: np.ndarray) -> np.ndarray:
    """(A,) -> (A, 1), to broadcast a per-asset constant over the samples of a batch."""
    return x[:, None]


class Physics:
    """Per-plant thermal state and the vectorised channel model."""

    def __init__(self, params: AssetParams, rng: np.random.Generator) -> None:
        self.p = params
        self.rng = rng
        self.is_pump = params.is_type("centrifugal_pump")
        self.is_fan = params.is_type("fan")
        self.is_compressor = params.is_type("compressor")
        self.is_motor = params.is_type("induction_motor")
        self.is_gearbox = params.is_type("gearbox")
        self.ripple_period = rng.uniform(90.0, 240.0, len(params))
        self._temps: dict[str, np.ndarray] | None = None

    def step(self, ts: np.ndarray, op: OpBatch, ambient: np.ndarray, sev: np.ndarray, dt: float) -> tuple[np.ndarray, Components]:
        """True values (A, C, N) in catalogue order, and the vibration components at each asset's first sample."""
        p, rng = self.p, self.rng
        n_assets, n = ts.shape
        s = {name: sev[i] for name, i in FAULT_INDEX.items()}
        s_or, s_ir = s["bearing_outer_race"], s["bearing_inner_race"]
        s_imb, s_mis, s_loose = s["imbalance"], s["misalignment"], s["looseness"]
        s_lub, s_heat, s_phase, s_seal = s["lubrication_loss"], s["overheating"], s["phase_imbalance"], s["seal_leak"]
        run, load = op.run, op.load
        r = np.maximum(op.speed, 0.0) / _col(p.rated_rpm)  # (A, N) fraction of rated speed
        r2, r15 = r * r, r**1.5
        on = np.clip((r - 0.05) / 0.15, 0.0, 1.0)
        sb = np.maximum(s_or, 1.1 * s_ir)
        bearing_late = smoothstep(0.5, 1.0, s_or) + 0.9 * smoothstep(0.5, 1.0, s_ir)
        cav = s["cavitation"] * (0.5 + 0.6 * load)
        lf = 0.6 + 0.4 * load
        sigma = 0.35 * s_loose
        erratic = np.exp(sigma * rng.standard_normal((n_assets, n)) - 0.5 * sigma * sigma)

        # --- vibration velocity components (mm/s RMS at the bearing housing)
        resonance = 1.0 + _col(p.res_gain) * np.exp(-(((r - _col(p.res_pos)) / _col(p.res_width)) ** 2))
        v1 = (
            (_col(p.base_1x) + 9.0 * s_imb + 2.0 * s_mis + 2.2 * s_loose + 0.5 * smoothstep(0.3, 1.0, s_ir))
            * r2
            * resonance
            * erratic
        )
        two_pole = _col((p.rated_rpm > 2000).astype(np.float64))
        v2 = (_col(p.base_2x) + 6.0 * s_mis * lf + 2.5 * s_loose + 0.6 * s_phase * two_pole) * r2 * erratic
        vax = (_col(p.base_axial) + 6.5 * s_mis * lf + 0.6 * s_imb + 0.8 * s_loose) * r2
        v_other = (
            _col(p.base_other) + 3.0 * s_loose * erratic + 2.8 * bearing_late + 2.0 * cav + 0.5 * s_lub + 0.4 * s_phase
        ) * r15
        vrms = np.sqrt(v1 * v1 + v2 * v2 + v_other * v_other)

        # --- acceleration components (g)
        a_bpfo = (
            (
                _col(p.base_bpfo)
                + 0.9 * smoothstep(0.0, 0.55, s_or)
                + 0.08 * smoothstep(0.0, 0.55, s_ir)
                + 0.025 * s_lub
                + 0.03 * s_loose
            )
            * lf
            * r15
        )
        a_bpfi = (
            (
                _col(p.base_bpfi)
                + 0.65 * smoothstep(0.0, 0.6, s_ir)
                + 0.07 * smoothstep(0.0, 0.55, s_or)
                + 0.025 * s_lub
                + 0.03 * s_loose
            )
            * lf
            * r15
        )
        a_hf = (
            (_col(p.base_hf) + 0.3 * smoothstep(0.1, 0.8, sb) + 0.55 * smoothstep(0.0, 0.7, s_lub) + 0.6 * cav + 0.12 * s_loose)
            * r15
            * (0.7 + 0.3 * load)
        )
        a_gmf = (
            _col(p.base_gmf) * (0.4 + 0.6 * load) + (0.25 * s_lub + 0.3 * s_mis + 0.25 * s_loose) * _col(self.is_gearbox)
        ) * r
        f1 = op.speed / 60.0
        a_low = np.sqrt((v1 * f1) ** 2 + (2 * v2 * f1) ** 2 + (5 * v_other * f1) ** 2) * _TWO_PI / 1000.0 / G
        arms = np.sqrt(a_hf**2 + 0.5 * a_bpfo**2 + 0.5 * a_bpfi**2 + a_gmf**2 + a_low**2) + 0.003
        excess = on * (
            5.5 * smoothstep(0.15, 0.6, sb) * (1.0 - 0.55 * smoothstep(0.8, 1.0, sb)) + 1.4 * cav + 1.2 * s_loose + 0.35 * s_lub
        )
        kurt = _col(p.base_kurt) + excess
        crest = 3.1 + 0.5 * (_col(p.base_kurt) - 3.0) + 0.6 * excess**0.8
        peak = crest * arms

        # --- electrical: load -> power fraction -> current, per machine kind
        pf = np.select(
            [_col(self.is_pump), _col(self.is_fan), _col(self.is_compressor), _col(self.is_gearbox)],
            [
                r**3 * (0.35 + 0.65 * load) * (1.0 + 0.06 * s_seal),
                r**3 * (0.4 + 0.6 * load),
                (0.25 + 0.75 * load) * r * (1.0 + 0.12 * s_seal),
                (0.2 + 0.8 * load) * r,
            ],
            default=(0.12 + 0.88 * load) * r,
        ) * (1.0 + 0.04 * s_mis + 0.03 * s_lub + 0.03 * bearing_late)
        nl = _col(p.i_noload)
        i_avg = _col(p.i_rated) * np.sqrt(nl * nl + (1.0 - nl * nl) * pf * pf) * run
        i_avg = i_avg * (1.0 + 0.04 * cav * rng.standard_normal((n_assets, n)))
        i_frac = i_avg / _col(p.i_rated)
        since = op.since_start
        inrush = np.where((since >= 0) & _col(~p.vfd), 5.5 * np.exp(-np.clip(since, 0, None) / 1.2), 0.0)
        unbalance = _col(p.unbalance_base) + 0.22 * s_phase**1.2
        phases = [i_avg * (1.0 + inrush) * (1.0 + unbalance * np.cos(_col(p.phase_angle) + k * _TWO_PI / 3.0)) for k in range(3)]

        # --- temperatures (first-order lags; stopped machines cool slower without their fan)
        bearing_target = ambient + on * (
            _col(p.bearing_dt) * r * (0.45 + 0.55 * load)
            + 28.0 * smoothstep(0.6, 1.0, sb)
            + 38.0 * smoothstep(0.15, 1.0, s_lub) ** 1.3
            + 5.0 * s_imb
            + 9.0 * s_mis
            + 4.0 * s_loose
            + 10.0 * smoothstep(0.3, 1.0, s_heat)
            + 4.0 * s_seal * _col(self.is_pump)
        )
        winding_target = ambient + run * (_col(p.winding_dt) * i_frac**2 * (1.0 + 1.6 * s_heat**1.3) + 28.0 * s_phase**2)
        oil_target = ambient + on * (
            _col(p.oil_dt) * (0.4 + 0.6 * load) * r + 9.0 * s_lub + 7.0 * s_heat + 4.0 * s_mis + 6.0 * s_seal
        )
        disch_target = ambient + run * (_col(p.disch_dt) * (0.55 + 0.45 * load) + 16.0 * s_seal + 9.0 * s_heat + 6.0 * s_lub)
        if self._temps is None:  # start in thermal equilibrium: no warm-up transient at every run's start
            self._temps = {
                k: v[:, 0].copy()
                for k, v in (
                    ("bearing", bearing_target),
                    ("winding", winding_target),
                    ("oil", oil_target),
                    ("disch", disch_target),
                )
            }
            self._pressure = np.where(self.is_compressor, p.p_set, 0.0)
        slow = np.where(run > 0, 1.0, 2.5)
        temps = {}
        for key, target, tau in (
            ("bearing", bearing_target, _col(p.tau_bearing) * slow),
            ("winding", winding_target, _col(p.tau_winding) * slow),
            ("oil", oil_target, _col(p.tau_oil) * slow),
            ("disch", disch_target, np.full((n_assets, 1), 240.0) * slow),
        ):
            temps[key] = lowpass(target, self._temps[key], np.exp(-dt / tau))
            self._temps[key] = temps[key][:, -1].copy()

        # --- process side
        noise = rng.standard_normal((3, n_assets, n))
        demand = load
        pump_flow = _col(p.flow_design) * r * demand * (1.0 - 0.22 * s_seal) * (1.0 - 0.15 * cav) * (1.0 + 0.06 * cav * noise[0])
        pump_suction = (
            _col(p.suction_bar)
            - 0.35 * (pump_flow / np.maximum(_col(p.flow_design), 1.0)) ** 2
            - 0.3 * cav
            + 0.12 * cav * noise[1]
        )
        pump_dp = _col(p.head_bar) * r2 * (1.25 - 0.3 * demand**2) * (1.0 - 0.18 * s_seal) * (1.0 + 0.08 * cav * noise[2])
        fan_flow = _col(p.flow_design) * r * (0.3 + 0.7 * load)
        fan_mbar = _col(p.fan_mbar) * r2 * (1.25 - 0.3 * (0.3 + 0.7 * load) ** 2)
        comp_flow = _col(p.flow_design) * load * r * (1.0 - 0.2 * s_seal)
        ripple = 0.08 * np.sin(_TWO_PI * ts / _col(self.ripple_period)) * run
        comp_target = _col(p.p_set) - 0.9 * s_seal - 0.3 * (1.0 - run)
        comp_p = lowpass(comp_target, self._pressure, np.full(n_assets, np.exp(-dt / 120.0))) + ripple
        self._pressure = comp_p[:, -1] - ripple[:, -1]
        pump_or_comp = _col(self.is_pump | self.is_compressor)
        suction = np.where(_col(self.is_pump), pump_suction, -0.01 - 0.04 * load * r) * pump_or_comp
        discharge = np.where(_col(self.is_pump), pump_suction + pump_dp, comp_p) * pump_or_comp
        flow = np.select([_col(self.is_pump), _col(self.is_fan), _col(self.is_compressor)], [pump_flow, fan_flow, comp_flow], 0.0)

        values = {
            "speed_rpm": op.speed,
            "vib_rms_velocity_mm_s": vrms + 0.06,
            "vib_rms_accel_g": arms,
            "vib_peak_accel_g": peak,
            "vib_kurtosis": kurt,
            "vib_crest_factor": crest,
            "vib_axial_velocity_mm_s": vax + 0.04,
            "band_1x_mm_s": v1 + 0.02,
            "band_2x_mm_s": v2 + 0.015,
            "band_bpfo_g": a_bpfo + 0.003,
            "band_bpfi_g": a_bpfi + 0.003,
            "band_hf_g": a_hf + 0.004,
            "band_gmf_g": a_gmf + 0.003,
            "bearing_temp_c": temps["bearing"],
            "winding_temp_c": temps["winding"],
            "oil_temp_c": temps["oil"],
            "current_l1_a": phases[0],
            "current_l2_a": phases[1],
            "current_l3_a": phases[2],
            "suction_pressure_bar": suction,
            "discharge_pressure_bar": discharge,
            "static_pressure_mbar": fan_mbar * _col(self.is_fan),
            "flow_m3_h": np.maximum(flow, 0.0),
            "discharge_temp_c": temps["disch"],
            "ambient_temp_c": ambient,
        }
        assert list(values) == [c.name for c in CHANNELS], "physics must produce the catalogue's channels in order"
        out = np.stack([np.broadcast_to(values[c.name], (n_assets, n)) for c in CHANNELS], axis=1)  # (A, C, N)
        first = Components(
            speed=op.speed[:, 0],
            v1=v1[:, 0],
            v2=v2[:, 0],
            v_other=v_other[:, 0],
            a_bpfo=a_bpfo[:, 0],
            a_bpfi=a_bpfi[:, 0],
            a_hf=a_hf[:, 0],
            a_gmf=a_gmf[:, 0],
            impulsive=excess[:, 0],
        )
        return out, first


__all__ = ["INDEX", "Components", "Physics"]
