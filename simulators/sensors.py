"""Sensor artefacts: what the transmitters and the network do to the true values.

A model trained on clean physics learns nothing about a real plant, so every channel gets
what real instrumentation gives it: white noise (additive, and multiplicative for
vibration features, whose estimates fluctuate), slow calibration drift, EMI spikes,
dropouts (samples sent as None), stuck sensors (a frozen last good value for hours), lost
batches (communication gaps; ``seq`` still advances) and source clock jitter (timestamps
never decrease within a batch, as the contract requires). Sizes come from the channel
catalogue, scaled by the scenario's ``[noise]`` section.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.channels import CHANNELS
from simulators.scenario import NoiseSection

DAY = 86400.0
_NON_NEGATIVE = np.array(
    [not c.name.endswith(("_bar", "_c")) for c in CHANNELS], dtype=bool
)  # vibration, speed, current, flow: a transmitter reports no negatives


@dataclass(frozen=True)
class SensorEvent:
    """A sensor started misbehaving (the controller may log it)."""

    ts: float
    asset: int
    channel: int
    kind: str  # "dropout" | "stuck"


class Sensors:
    """Per (asset, channel) artefact state for a plant."""

    def __init__(self, present: np.ndarray, noise: NoiseSection, rng: np.random.Generator) -> None:
        self.present = present  # (A, C) bool: the channel exists on this asset
        self.cfg = noise
        self.rng = rng
        n_assets, n_channels = present.shape
        self.noise_abs = np.array([c.noise_abs for c in CHANNELS])[None, :, None] * noise.level
        self.noise_rel = np.array([c.noise_rel for c in CHANNELS])[None, :, None] * noise.level
        self.drift_sd = np.array([c.drift_per_day for c in CHANNELS])[None, :] * noise.drift
        self.offset = rng.normal(0.0, 1.0, (n_assets, n_channels)) * self.drift_sd * 3.0  # installed calibration error
        self.stuck_from = np.full((n_assets, n_channels), np.inf)
        self.stuck_until = np.full((n_assets, n_channels), -np.inf)
        self.stuck_value = np.zeros((n_assets, n_channels))
        self.drop_from = np.full((n_assets, n_channels), np.inf)
        self.drop_until = np.full((n_assets, n_channels), -np.inf)
        self.gap_until = np.full(n_assets, -np.inf)
        self.channels_per_asset = np.maximum(present.sum(axis=1), 1)[:, None]

    def apply(self, true: np.ndarray, ts: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray, list[SensorEvent]]:
        """Measured values (A, C, N) with NaN for dropouts, a (A,) mask of batches lost in transit, and sensor events."""
        rng, cfg = self.rng, self.cfg
        n_assets, n_channels, n = true.shape
        span = t1 - t0
        x = true + self.noise_abs * rng.standard_normal(true.shape)
        x += np.abs(true) * self.noise_rel * rng.standard_normal(true.shape)
        self.offset += self.drift_sd * np.sqrt(span / DAY) * rng.standard_normal((n_assets, n_channels))
        x += self.offset[:, :, None]
        if cfg.spike_rate > 0:
            spikes = rng.random(true.shape) < cfg.spike_rate
            if spikes.any():
                x[spikes] *= 1.0 + rng.uniform(0.5, 4.0, int(spikes.sum())) * rng.choice([-1.0, 1.0], int(spikes.sum()))
        np.maximum(x, 0.0, out=x, where=_NON_NEGATIVE[None, :, None])

        events: list[SensorEvent] = []
        tsc = ts[:, None, :]  # (A, 1, N)
        for kind, per_day, mean_s in (("stuck", cfg.stuck_per_day, 3 * 3600.0), ("dropout", cfg.dropout_per_day, 90.0)):
            if per_day <= 0:
                continue
            p = per_day * span / DAY / self.channels_per_asset
            start = (rng.random((n_assets, n_channels)) < p) & self.present
            begin, until = (self.stuck_from, self.stuck_until) if kind == "stuck" else (self.drop_from, self.drop_until)
            for a, c in zip(*np.nonzero(start), strict=True):
                if until[a, c] > t0:
                    continue  # already misbehaving
                k = int(rng.integers(0, n))
                begin[a, c] = ts[a, k]
                until[a, c] = ts[a, k] + rng.exponential(mean_s)
                if kind == "stuck":
                    self.stuck_value[a, c] = x[a, c, k - 1] if k > 0 else x[a, c, 0]
                events.append(SensorEvent(float(ts[a, k]), int(a), int(c), kind))
            if (until > t0).any():
                mask = (tsc >= begin[:, :, None]) & (tsc < until[:, :, None])
                x = np.where(mask, self.stuck_value[:, :, None], x) if kind == "stuck" else np.where(mask, np.nan, x)
        lost = self.gap_until > t0
        if cfg.gap_per_day > 0:
            new_gap = (rng.random(n_assets) < cfg.gap_per_day * span / DAY) & ~lost
            self.gap_until[new_gap] = t0 + rng.exponential(120.0, int(new_gap.sum()))
            lost |= new_gap
        return x, lost, events

    def jitter(self, nominal: np.ndarray, t0: float, t1: float) -> np.ndarray:
        """Source timestamps: nominal sample times plus clock jitter, non-decreasing, inside [t0, t1)."""
        if self.cfg.jitter_s <= 0:
            return nominal
        jittered = nominal + self.rng.normal(0.0, self.cfg.jitter_s, nominal.shape)
        jittered = np.maximum.accumulate(jittered, axis=1)
        return np.clip(jittered, t0, np.nextafter(t1, t0))
