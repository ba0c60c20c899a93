"""Controller limit alarms: measured values against the limits a commissioning engineer set.

Every batch, each watched measurement (vibration, bearing/winding/oil/discharge
temperatures, suction pressure, current unbalance and overload) is compared per asset with
its warning and alarm limits, using the batch median (an on-delay: one EMI spike raises
nothing), hysteresis on clearing, a start-up inhibit for running-only measurements and a
re-arm delay. Real faults raise these late; heavy loads, hot afternoons, stuck sensors and
spikes raise them on healthy machines too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.assets import ASSET_TYPES, AssetParams
from simulators.channels import INDEX
from simulators.logrules import MEASURE_CHANNEL, THRESHOLD_MEASURES, ChunkView
from simulators.scenario import AssetSpec


@dataclass(frozen=True)
class AlarmChange:
    """An alarm raised (level 1 warning, 2 alarm) or cleared (level 0) on one asset."""

    ts: float
    asset: int
    measure: str
    level: int
    value: float
    limit: float
    active: bool
    """False when it cleared because the measurement stopped applying (machine stopped)."""


class ThresholdAlarms:
    """Alarm state of every asset and watched measurement of a plant."""

    def __init__(self, assets: tuple[AssetSpec, ...], params: AssetParams, ambient_mean: np.ndarray) -> None:
        self.p = params
        n = len(assets)
        self.level = np.zeros((n, len(MEASURE_CHANNEL)), dtype=np.int64)
        self.quiet_until = np.zeros((n, len(MEASURE_CHANNEL)))
        self.limits = self._limits(ambient_mean)
        suction_types = ("centrifugal_pump",)
        self.present = [
            np.array(
                [channel in ASSET_TYPES[x.type].channels and (m != "suction_low" or x.type in suction_types) for x in assets]
            )
            for m, channel in MEASURE_CHANNEL.items()
        ]

    def limit(self, a: int, measure: str, level: int = 1) -> float:
        """The warning (1) or alarm (2) limit of one measurement on one asset."""
        return float(self.limits[a, list(MEASURE_CHANNEL).index(measure), level - 1])

    def _limits(self, ambient: np.ndarray) -> np.ndarray:
        """(A, measures, 2) warning and alarm limits, as a commissioning engineer would have set them."""
        p = self.p
        healthy_vib = np.sqrt(p.base_1x**2 + p.base_2x**2 + p.base_other**2) + 0.06
        bearing = ambient + p.bearing_dt
        warn = {
            "vib": np.maximum(4.5, 2.3 * healthy_vib),
            "bearing_temp": bearing + 20.0,
            "winding_temp": np.full(len(p), 125.0),
            "oil_temp": ambient + p.oil_dt + 18.0,
            "disch_temp": np.full(len(p), 105.0),
            "suction_low": p.suction_bar - 0.5,
            "pressure_low": p.suction_bar + 0.55 * p.head_bar,
            "flow_low": 0.35 * p.flow_design,
            "current_unbalance": np.full(len(p), 5.0),
            "current_high": 1.1 * p.i_rated,
        }
        alarm_factor = {"vib": 1.6, "current_unbalance": 2.0, "current_high": 1.1}
        out = np.zeros((len(p), len(MEASURE_CHANNEL), 2))
        for m, key in enumerate(MEASURE_CHANNEL):
            out[:, m, 0] = warn[key]
            if key.endswith("_low"):
                out[:, m, 1] = warn[key] * 0.8
            elif key in alarm_factor:
                out[:, m, 1] = warn[key] * alarm_factor[key]
            else:
                out[:, m, 1] = warn[key] + 10.0
        return out

    def step(self, t1: float, view: ChunkView) -> list[AlarmChange]:
        """Alarms raised and cleared by the batch ending at ``t1``."""
        out: list[AlarmChange] = []
        values = view.values
        for m, (measure, channel) in enumerate(MEASURE_CHANNEL.items()):
            if measure not in THRESHOLD_MEASURES:
                continue
            present = self.present[m]
            # The median over the batch acts as the alarm's on-delay: one spike does not raise it.
            if measure == "current_unbalance":
                x = nanmedian(phase_unbalance(values))  # per sample across phases (simultaneous), then the median
                x = np.where(nanmedian(values[:, INDEX["current_l1_a"]]) > 0.2 * self.p.i_rated, x, 0.0)
            else:
                x = nanmedian(values[:, INDEX[channel]])
            low = measure.endswith("_low")
            active = present & np.isfinite(x)
            if low or measure in ("vib", "current_high", "current_unbalance"):
                active &= view.running & (view.since_start > 180.0)  # start-up inhibit, as on every real PLC
            sign = -1.0 if low else 1.0
            warn, alarm = sign * self.limits[:, m, 0], sign * self.limits[:, m, 1]
            xs = sign * np.where(np.isfinite(x), x, -np.inf * sign)
            new = np.where(xs > alarm, 2, np.where(xs > warn, 1, 0)) * active
            margin = np.abs(warn) * 0.05 + (1.0 if "temp" in measure else 0.0)
            clear = (xs < warn - margin) | ~active
            changed = np.flatnonzero(
                ((new > self.level[:, m]) & (t1 >= self.quiet_until[:, m])) | (clear & (self.level[:, m] > 0))
            )
            for a in changed.tolist():
                ts = float(view.ts[a, -1])
                if new[a] > self.level[a, m]:
                    self.level[a, m] = new[a]
                    limit = float(self.limits[a, m, new[a] - 1])
                    out.append(AlarmChange(ts, a, measure, int(new[a]), float(x[a]), limit, True))
                else:
                    self.level[a, m] = 0
                    self.quiet_until[a, m] = t1 + 600.0
                    out.append(AlarmChange(ts, a, measure, 0, float(x[a]), float(self.limits[a, m, 0]), bool(active[a])))
        return out


def nanmedian(x: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN, without numpy's all-NaN warning (such rows give NaN)."""
    filled = np.where(np.isnan(x), np.inf, x)
    count = np.sum(~np.isnan(x), axis=-1)
    ordered = np.sort(filled, axis=-1)
    k = np.maximum(count - 1, 0) // 2
    med = np.take_along_axis(ordered, k[..., None], axis=-1)[..., 0]
    return np.where(count > 0, med, np.nan)


def phase_unbalance(values: np.ndarray) -> np.ndarray:
    """(A, N) current unbalance in percent, (max - min) / mean of the three phases at each sample (NaN if one is missing)."""
    phases = values[:, INDEX["current_l1_a"] : INDEX["current_l3_a"] + 1]  # (A, 3, N)
    mean = phases.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unbalance: np.ndarray = np.where(mean > 0.5, (phases.max(axis=1) - phases.min(axis=1)) / mean * 100.0, 0.0)
    return np.where(np.isnan(mean), np.nan, unbalance)
