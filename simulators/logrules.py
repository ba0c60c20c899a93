"""What log lines exist: per fault mode, per nuisance, per trip, and what the generator reads of a batch.

Data for ``logplan.LogGenerator`` and ``alarms.ThresholdAlarms``: which candidate lines a fault
episode may produce (event, severity range in which it appears, chance), the nuisance mix
every asset draws from, which protection trips a failure, and the measurement a
controller alarm watches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.channels import INDEX

# fault -> candidate lines: (event, severity range in which it appears, chance, extra fields)
FAULT_LOGS: dict[str, list[tuple[str, tuple[float, float], float, dict[str, Any]]]] = {
    "bearing_outer_race": [
        ("cms_band", (0.12, 0.45), 0.45, {"band": "bpfo"}),
        ("cms_kurtosis", (0.3, 0.7), 0.35, {}),
        ("obs_noise", (0.35, 0.9), 0.3, {}),
        ("cms_diag", (0.35, 0.9), 0.25, {}),
        ("cms_trend", (0.5, 0.9), 0.25, {}),
        ("obs_hot", (0.75, 0.98), 0.15, {}),
    ],
    "bearing_inner_race": [
        ("cms_band", (0.15, 0.5), 0.45, {"band": "bpfi"}),
        ("cms_kurtosis", (0.3, 0.7), 0.35, {}),
        ("obs_noise", (0.35, 0.9), 0.3, {}),
        ("cms_diag", (0.35, 0.9), 0.25, {}),
        ("cms_trend", (0.5, 0.9), 0.25, {}),
        ("obs_hot", (0.75, 0.98), 0.15, {}),
    ],
    "imbalance": [
        ("cms_band", (0.2, 0.7), 0.4, {"band": "1x"}),
        ("cms_trend", (0.3, 0.8), 0.3, {}),
        ("obs_vibration", (0.4, 0.9), 0.3, {}),
        ("cms_diag", (0.4, 0.9), 0.25, {}),
        ("obs_noise", (0.5, 0.9), 0.1, {}),
    ],
    "misalignment": [
        ("cms_band", (0.2, 0.7), 0.4, {"band": "2x"}),
        ("cms_band", (0.3, 0.8), 0.2, {"band": "axial"}),
        ("obs_hot", (0.5, 0.95), 0.2, {}),
        ("cms_diag", (0.4, 0.9), 0.25, {}),
        ("obs_vibration", (0.5, 0.9), 0.15, {}),
        ("obs_noise", (0.5, 0.9), 0.1, {}),
    ],
    "looseness": [
        ("obs_noise", (0.1, 0.6), 0.35, {}),
        ("obs_vibration", (0.2, 0.7), 0.35, {}),
        ("cms_band", (0.3, 0.8), 0.25, {"band": "1x"}),
        ("cms_diag", (0.4, 0.9), 0.2, {}),
        ("cms_kurtosis", (0.4, 0.9), 0.15, {}),
    ],
    "cavitation": [
        ("obs_noise", (0.05, 0.4), 0.4, {}),
        ("m:suction_low", (0.4, 0.9), 0.3, {}),
        ("m:flow_low", (0.5, 0.95), 0.2, {}),
        ("cms_band", (0.3, 0.8), 0.3, {"band": "hf"}),
        ("cms_diag", (0.4, 0.9), 0.2, {}),
    ],
    "lubrication_loss": [
        ("obs_grease", (0.02, 0.35), 0.35, {}),
        ("cms_band", (0.2, 0.7), 0.3, {"band": "hf"}),
        ("obs_noise", (0.4, 0.9), 0.2, {}),
        ("obs_hot", (0.5, 0.95), 0.25, {}),
        ("cms_diag", (0.4, 0.9), 0.2, {}),
    ],
    "overheating": [
        ("obs_cooling", (0.05, 0.5), 0.3, {}),
        ("obs_hot", (0.4, 0.9), 0.3, {}),
        ("m:winding_temp", (0.5, 0.9), 0.3, {}),
        ("cms_diag", (0.5, 0.9), 0.05, {}),
    ],
    "phase_imbalance": [
        ("m:current_unbalance", (0.2, 0.7), 0.45, {}),
        ("obs_power", (0.05, 0.6), 0.3, {}),
        ("cms_diag", (0.4, 0.9), 0.1, {}),
    ],
    "seal_leak": [
        ("obs_leak", (0.05, 0.5), 0.5, {}),
        ("m:flow_low", (0.4, 0.9), 0.3, {}),
        ("m:pressure_low", (0.5, 0.95), 0.25, {}),
        ("cms_diag", (0.5, 0.9), 0.1, {}),
    ],
}
NUISANCE: list[tuple[str, float]] = [
    ("cms_band", 2.0),
    ("cms_kurtosis", 0.8),
    ("cms_trend", 1.0),
    ("cms_diag", 0.6),
    ("obs_noise", 1.5),
    ("obs_vibration", 0.6),
    ("obs_hot", 0.6),
    ("obs_leak", 0.7),
    ("obs_grease", 0.7),
    ("obs_cooling", 0.5),
    ("obs_power", 0.7),
    ("m:vib", 0.8),
    ("m:bearing_temp", 0.6),
    ("m:winding_temp", 0.4),
    ("m:current_unbalance", 0.5),
    ("m:flow_low", 0.3),
    ("sensor_fault", 0.8),
    ("comm", 1.5),
    ("misc", 2.0),
]
TRIP_REASONS: dict[str, list[tuple[str, float]]] = {
    "lubrication_loss": [("trip_temp", 0.7), ("trip_vib", 0.3)],
    "overheating": [("trip_temp", 1.0)],
    "phase_imbalance": [("trip_elec", 0.8), ("trip_temp", 0.2)],
    "cavitation": [("trip_process", 0.5), ("trip_vib", 0.5)],
    "seal_leak": [("trip_process", 0.8), ("trip_vib", 0.2)],
}
# measure -> (channel it reads, warning and alarm limit keys, stat)
MEASURE_CHANNEL = {
    "vib": "vib_rms_velocity_mm_s",
    "bearing_temp": "bearing_temp_c",
    "winding_temp": "winding_temp_c",
    "oil_temp": "oil_temp_c",
    "disch_temp": "discharge_temp_c",
    "suction_low": "suction_pressure_bar",
    "pressure_low": "discharge_pressure_bar",
    "flow_low": "flow_m3_h",
    "current_unbalance": "current_l1_a",
    "current_high": "current_l1_a",
}
# Limits the controller watches continuously (the others only appear as soft alerts or notes).
THRESHOLD_MEASURES = (
    "vib",
    "bearing_temp",
    "winding_temp",
    "oil_temp",
    "disch_temp",
    "suction_low",
    "current_unbalance",
    "current_high",
)


@dataclass
class ChunkView:
    """What the log generator may read of one batch: sample times and measured values."""

    ts: np.ndarray  # (A, N)
    values: np.ndarray  # (A, C, N) measured, NaN for dropouts
    running: np.ndarray  # (A,) bool, at the end of the batch
    since_start: np.ndarray  # (A,) seconds since the last start, at the end of the batch

    def value(self, a: int, channel: str, t: float) -> float:
        k = min(int(np.searchsorted(self.ts[a], t)), self.ts.shape[1] - 1)
        row = self.values[a, INDEX[channel]]
        v = row[k]
        return float(v) if v == v else float(np.nanmean(row)) if np.isfinite(row).any() else 0.0

    def unbalance(self, a: int) -> float:
        """Median over the batch of the per-sample phase current unbalance, percent."""
        phases = self.values[a, INDEX["current_l1_a"] : INDEX["current_l3_a"] + 1]  # (3, N)
        mean = phases.mean(axis=0)
        ok = np.isfinite(mean) & (mean > 1.0)
        if not ok.any():
            return 0.0
        return float(np.median((phases.max(axis=0) - phases.min(axis=0))[ok] / mean[ok] * 100.0))


LEVELS: dict[str, str] = {
    "obs_noise": "NOTICE",
    "obs_vibration": "NOTICE",
    "obs_hot": "WARNING",
    "obs_leak": "NOTICE",
    "obs_grease": "NOTICE",
    "obs_cooling": "NOTICE",
    "obs_power": "WARNING",
    "cms_band": "WARNING",
    "cms_kurtosis": "WARNING",
    "cms_trend": "NOTICE",
    "cms_diag": "WARNING",
    "sensor_fault": "WARNING",
    "comm": "WARNING",
    "misc": "NOTICE",
}
