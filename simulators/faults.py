"""Fault episodes: when each fault starts, how fast it grows, when it fails, and its severity.

Severity runs from 0 at onset to 1 at functional failure along the episode's growth curve.
The physics (``physics.py``) turns severities into channel changes; this module only keeps
time. All episodes of a plant are held as arrays, so severities for every asset and sample
of a batch come from one vectorised expression, whatever the number of episodes.

Growth curves, with x = (t - onset) / time_to_failure in [0, 1] and k = shape:

    linear       s = x                                    steady wear
    exponential  s = (e^(kx) - 1) / (e^k - 1)             slow start, accelerating (classic P-F curve)
    power        s = x^k                                  accelerating, gentler
    sigmoid      logistic in x, steepness k, rescaled     a stage change in mid-life
    step         s = 0.5 + 0.5 x                          sudden onset (a bolt lets go), then growth

An episode without a time to failure grows over ``OPEN_ENDED_S`` and levels off below
failure: it is a fault that never fails within the run.

Ground truth uses the reliability engineer's P-F interval: the labelled ``onset`` is the
P point, when the fault first becomes physically detectable (severity ``DETECTABLE[fault]``),
not the scenario's initiation, when degradation starts invisibly; ``failure`` is the F
point. A window whose end lies between P and F is that fault; before P even a perfect
model could not tell. The initiation times are kept in meta.json (``extra.episodes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forewarn.contracts import SIMULATED_FAULTS, FaultEpisode
from simulators.assets import FAULT_INDEX
from simulators.scenario import FaultSpec

OPEN_ENDED_S = 2 * 86400.0
OPEN_ENDED_CAP = 0.85
DETECTABLE: dict[str, float] = {
    "bearing_outer_race": 0.08,
    "bearing_inner_race": 0.08,
    "imbalance": 0.12,
    "misalignment": 0.12,
    "looseness": 0.15,
    "cavitation": 0.15,
    "lubrication_loss": 0.15,
    "overheating": 0.2,
    "phase_imbalance": 0.15,
    "seal_leak": 0.25,
}
"""Severity at which each fault mode first shows in the channels clearly enough to call (the P point)."""
assert set(DETECTABLE) == set(SIMULATED_FAULTS), "every fault mode needs a detectability threshold"
_GROWTH_CODE = {"linear": 0, "exponential": 1, "power": 2, "sigmoid": 3, "step": 4}


def growth_curve(x: np.ndarray, code: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Severity for progress ``x`` (clipped to [0, 1]) under each growth code; shapes broadcast with x."""
    x = np.clip(x, 0.0, 1.0)
    k = shape
    out = x.copy()
    expo = (np.expm1(k * x)) / np.expm1(k)
    power = x**k
    half = 1.0 / (1.0 + np.exp(k / 2.0))
    sig = (1.0 / (1.0 + np.exp(-k * (x - 0.5))) - half) / (1.0 - 2.0 * half)
    step = np.where(x > 0, 0.5 + 0.5 * x, 0.0)
    out = np.where(code == 1, expo, out)
    out = np.where(code == 2, power, out)
    out = np.where(code == 3, sig, out)
    return np.where(code == 4, step, out)


@dataclass
class Episodes:
    """Every fault episode of a run, as arrays (E,)."""

    asset: np.ndarray  # asset index
    fault: np.ndarray  # index into SIMULATED_FAULTS
    onset: np.ndarray  # absolute seconds
    ttf: np.ndarray  # seconds from onset to failure; inf when open-ended
    growth: np.ndarray
    shape: np.ndarray
    repair: np.ndarray  # downtime after failure
    log_probability: np.ndarray
    # Text-carries-weight options (simulators/textual.py); inf / -inf when unused:
    hidden_until: np.ndarray | None = None  # physical severity held below DETECTABLE / 2 until then (a text-only fault)
    hidden_ramp: np.ndarray | None = None  # seconds over which a hidden episode's signature catches up afterwards
    announced: np.ndarray | None = None  # time of the first log line that announces the episode (inf: none planned)

    def __post_init__(self) -> None:
        n = len(self.asset)
        if self.hidden_until is None:
            self.hidden_until = np.full(n, -np.inf)
        if self.hidden_ramp is None:
            self.hidden_ramp = np.ones(n)
        if self.announced is None:
            self.announced = np.full(n, np.inf)

    @classmethod
    def build(cls, specs: tuple[FaultSpec, ...], asset_index: dict[str, int], start: float, default_log_p: float) -> Episodes:
        return cls(
            asset=np.array([asset_index[f.asset] for f in specs], dtype=np.int64),
            fault=np.array([FAULT_INDEX[f.fault] for f in specs], dtype=np.int64),
            onset=np.array([start + f.onset for f in specs], dtype=np.float64),
            ttf=np.array([f.time_to_failure if f.time_to_failure else np.inf for f in specs], dtype=np.float64),
            growth=np.array([_GROWTH_CODE[f.growth] for f in specs], dtype=np.int64),
            shape=np.array([f.shape for f in specs], dtype=np.float64),
            repair=np.array([f.repair for f in specs], dtype=np.float64),
            log_probability=np.array([default_log_p if f.logs is None else f.logs for f in specs], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.asset)

    @property
    def failure(self) -> np.ndarray:
        failure: np.ndarray = self.onset + self.ttf
        return failure

    def severity_at(self, e: int, t: np.ndarray | float) -> np.ndarray:
        """Severity of episode ``e`` at times ``t`` (0 before onset, 0 again once repaired)."""
        t = np.asarray(t, dtype=np.float64)
        if np.isfinite(self.ttf[e]):
            x = (t - self.onset[e]) / self.ttf[e]
            s = growth_curve(x, self.growth[e], self.shape[e])
            repaired = t >= self.failure[e] + self.repair[e]
        else:
            x = (t - self.onset[e]) / OPEN_ENDED_S
            s = OPEN_ENDED_CAP * growth_curve(x, self.growth[e], self.shape[e])
            repaired = np.zeros_like(t, dtype=bool)
        return np.where((t >= self.onset[e]) & ~repaired, s, 0.0)

    def time_at_severity(self, e: int, severity: float) -> float:
        """When episode ``e`` first reaches ``severity`` (inf if it never does)."""
        span = self.ttf[e] if np.isfinite(self.ttf[e]) else OPEN_ENDED_S
        cap = 1.0 if np.isfinite(self.ttf[e]) else OPEN_ENDED_CAP
        x = np.linspace(0.0, 1.0, 2001)
        s = cap * growth_curve(x, np.full_like(x, self.growth[e], dtype=np.int64), np.full_like(x, self.shape[e]))
        if severity > s[-1]:
            return float("inf")
        return float(self.onset[e] + span * x[int(np.argmax(s >= severity))])

    def sensor_detectable_at(self, e: int) -> float:
        """When episode ``e`` first shows in the channels: its severity reaches the mode's detectability threshold
        (for a hidden, text-only episode: once its signature is let through, see ``severities``)."""
        p = self.time_at_severity(e, DETECTABLE[SIMULATED_FAULTS[int(self.fault[e])]])
        assert self.hidden_until is not None and self.hidden_ramp is not None
        if np.isfinite(self.hidden_until[e]) and p < self.hidden_until[e]:
            return float(self.hidden_until[e] + 0.5 * self.hidden_ramp[e])
        return p

    def detectable_at(self, e: int) -> float:
        """The P point of episode ``e``: when it first becomes detectable, in the channels or, where the scenario
        makes logs announce faults (``simulators.textual``), by the first log line that announces it."""
        assert self.announced is not None
        return min(self.sensor_detectable_at(e), float(self.announced[e]))

    def describe(self, asset_ids: list[str]) -> list[dict[str, object]]:
        """Every episode with its initiation, P point, scheduled failure and growth curve (for meta.json)."""
        codes = {v: k for k, v in _GROWTH_CODE.items()}
        return [
            {
                "asset_id": asset_ids[int(self.asset[e])],
                "fault": SIMULATED_FAULTS[int(self.fault[e])],
                "initiation": round(float(self.onset[e]), 3),
                "detectable": round(self.detectable_at(e), 3) if np.isfinite(self.detectable_at(e)) else None,
                **self._textual(e),
                "failure": round(float(self.failure[e]), 3) if np.isfinite(self.ttf[e]) else None,
                "growth": codes[int(self.growth[e])],
                "shape": round(float(self.shape[e]), 3),
            }
            for e in range(len(self))
        ]

    def _textual(self, e: int) -> dict[str, object]:
        """meta.json fields of an episode the log announces (none for scenarios without the textual options)."""
        assert self.announced is not None and self.hidden_until is not None
        if not np.isfinite(self.announced[e]):
            return {}
        return {
            "announced": round(float(self.announced[e]), 3),
            "sensor_detectable": round(self.sensor_detectable_at(e), 3) if np.isfinite(self.sensor_detectable_at(e)) else None,
            "text_only_until": round(float(self.hidden_until[e]), 3) if np.isfinite(self.hidden_until[e]) else None,
        }

    def severities(self, ts: np.ndarray, n_assets: int) -> np.ndarray:
        """(F, A, N) severity of every fault mode on every asset at sample times ``ts`` (A, N)."""
        out = np.zeros((len(SIMULATED_FAULTS), n_assets, ts.shape[1]))
        if len(self) == 0:
            return out
        t_lo, t_hi = float(ts.min()), float(ts.max())
        ends = np.where(np.isfinite(self.ttf), self.failure + self.repair, np.inf)
        live = np.flatnonzero((self.onset <= t_hi) & (ends > t_lo))
        if len(live) == 0:
            return out
        t = ts[self.asset[live]]  # (E, N)
        finite = np.isfinite(self.ttf[live])[:, None]
        span = np.where(finite, self.ttf[live][:, None], OPEN_ENDED_S)
        x = (t - self.onset[live][:, None]) / span
        s = growth_curve(x, self.growth[live][:, None], self.shape[live][:, None])
        s = np.where(finite, s, OPEN_ENDED_CAP * s)
        alive = (t >= self.onset[live][:, None]) & (t < ends[live][:, None])
        s = np.where(alive, s, 0.0)
        assert self.hidden_until is not None and self.hidden_ramp is not None
        hidden = self.hidden_until[live]
        if np.isfinite(hidden).any():  # text-only episodes: held below what the sensors show, then catching up
            cap = np.array([0.5 * DETECTABLE[SIMULATED_FAULTS[int(f)]] for f in self.fault[live]])[:, None]
            w = np.clip((t - hidden[:, None]) / self.hidden_ramp[live][:, None], 0.0, 1.0)
            s = np.minimum(s, cap) * (1.0 - w) + s * w
        np.maximum.at(out, (self.fault[live], self.asset[live]), s)
        return out

    def to_labels(self, asset_ids: list[str], sites: list[str], until: float | None) -> list[FaultEpisode]:
        """Ground truth: episodes begun by ``until``; a failure after ``until`` is not yet known (None)."""
        labels = []
        for e in range(len(self)):
            onset = self.detectable_at(e)
            if not np.isfinite(onset) or (until is not None and onset > until):
                continue
            failure: float | None = float(self.failure[e]) if np.isfinite(self.ttf[e]) else None
            if failure is not None and until is not None and failure > until:
                failure = None
            a = int(self.asset[e])
            labels.append(
                FaultEpisode(
                    asset_id=asset_ids[a],
                    fault=SIMULATED_FAULTS[int(self.fault[e])],
                    onset=round(onset, 3),
                    failure=None if failure is None else round(failure, 3),
                    site=sites[a],
                )
            )
        return labels
