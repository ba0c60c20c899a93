"""Raw accelerometer bursts: a short high-rate signal built from the same components as the slow channels.

Some assets carry an accelerometer whose raw signal a condition-monitoring unit sends now
and then (a few thousand samples at kHz), so that spectral features can be computed at
the edge. The burst is the sum of what the physics says is there: running-speed orders
(velocity converted to acceleration), bearing defect impacts at BPFO or BPFI that ring a
structural resonance (inner-race impacts modulated by the load zone once per turn), gear
mesh tones, broadband friction and cavitation noise, random impacts, and a noise floor.
"""

from __future__ import annotations

import numpy as np

from forewarn.contracts import Waveform
from simulators.assets import AssetParams
from simulators.channels import WAVEFORM_CHANNEL
from simulators.physics import Components, G

_MM_S_TO_G_PER_HZ = np.sqrt(2.0) * 2.0 * np.pi / 1000.0 / G  # RMS mm/s at f Hz -> peak g: x f


def synthesise(c: Components, a: int, p: AssetParams, rate: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """The burst of asset ``a`` (n samples at ``rate`` Hz), in g."""
    t = np.arange(n) / rate
    f1 = max(float(c.speed[a]) / 60.0, 0.0)
    x = rng.normal(0.0, 0.004, n)  # sensor noise floor
    if f1 < 1.0:
        return x
    for order, v in ((1, c.v1[a]), (2, c.v2[a])):
        x += v * _MM_S_TO_G_PER_HZ * order * f1 * np.sin(2 * np.pi * order * f1 * t + rng.uniform(0, 2 * np.pi))
    for order in (3, 4, 5, 6):  # harmonics and broadband low-frequency content
        x += c.v_other[a] / 2.0 * _MM_S_TO_G_PER_HZ * order * f1 * np.sin(2 * np.pi * order * f1 * t + rng.uniform(0, 2 * np.pi))
    resonance = rng.uniform(2500.0, 5000.0)
    kernel_t = np.arange(int(0.004 * rate)) / rate
    kernel = np.exp(-kernel_t / 0.0006) * np.sin(2 * np.pi * resonance * kernel_t)
    impulses = np.zeros(n)
    for amplitude, order, modulated in ((c.a_bpfo[a], p.bpfo_x[a], False), (c.a_bpfi[a], p.bpfi_x[a], True)):
        f_defect = order * f1
        times = np.arange(rng.uniform(0, 1 / f_defect), n / rate, 1 / f_defect)
        times = times + rng.normal(0.0, 0.01 / f_defect, len(times))  # rolling elements slip
        idx = np.clip((times * rate).astype(np.int64), 0, n - 1)
        gain = (0.5 + 0.5 * np.cos(2 * np.pi * f1 * times)) if modulated else np.ones(len(times))
        np.add.at(impulses, idx, 4.0 * amplitude * gain)
    random_hits = rng.random(n) < min(0.02, 0.002 * float(c.impulsive[a]))
    impulses[random_hits] += rng.normal(0.0, 0.5 + 0.3 * float(c.impulsive[a]), int(random_hits.sum()))
    x += np.convolve(impulses, kernel)[:n]
    x += rng.normal(0.0, 1.0, n) * c.a_hf[a]
    if c.a_gmf[a] > 0.01:
        x += np.sqrt(2.0) * c.a_gmf[a] * np.sin(2 * np.pi * 23.0 * f1 * t)
    return x


def burst(c: Components, a: int, p: AssetParams, rate: float, n: int, t0: float, rng: np.random.Generator) -> Waveform:
    """A contract Waveform for asset ``a``; built with model_construct because every value is ours and finite."""
    values = np.round(synthesise(c, a, p, rate, n, rng), WAVEFORM_CHANNEL.decimals).tolist()
    return Waveform.model_construct(schema_version=1, channel=WAVEFORM_CHANNEL.name, sample_rate_hz=rate, t0=t0, values=values)
