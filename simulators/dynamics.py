"""Small numerical helpers shared by the operating-point and physics models."""

from __future__ import annotations

import numpy as np


def lowpass(target: np.ndarray, y0: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """First-order lag of ``target`` (A, N) starting from ``y0`` (A,): y[n] = a*y[n-1] + (1-a)*target[n].

    ``alpha`` is (A,) or (A, N) (a time constant that depends on the state, e.g. a motor cools
    slower at standstill). Machines are thermal and mechanical low-pass systems, so every
    temperature, speed and load follows its driver through one of these.
    """
    out = np.empty_like(target)
    y = y0.astype(np.float64, copy=True)
    per_sample = alpha.ndim == 2
    for n in range(target.shape[1]):
        a = alpha[:, n] if per_sample else alpha
        y = a * y + (1.0 - a) * target[:, n]
        out[:, n] = y
    return out


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, a smooth S between: how a fault's stage fades in."""
    u = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)
