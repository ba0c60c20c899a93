"""A pump's own curve, fitted from its demand changes. numpy only: the edge runtime imports it.

By the affinity laws a centrifugal pump at any speed runs on one curve in head per speed
squared against flow per speed, and that curve is close to a parabola: head/n^2 = a - b (Q/n)^2
(the simulator's is exactly 1.25 - 0.3 q^2, and real curves bend alike). So head/n^2 + b (Q/n)^2
holds still wherever on its curve the pump runs, at a quarter flow or at full, while a seal leak
takes flow and head down together and moves it off. A straight line in log head against log
flow (the fixed feature ``log_pump_curve``, or a fitted log slope, tried on 2026-12-01) is right
at one duty point only: d log head / d log flow is -0.02 at 30 % of design flow and -0.6 at
100 %, so a pump at half flow whose demand drifted read as leaking.

``b`` is the pump's own: the regression of ten-minute changes of head/n^2 on those of (Q/n)^2
over its running steps. Demand moves the duty point along the curve within minutes, a leak
takes hours, so changes see the curve and not the leak. Before the pump has shown its own
curve the fixed feature's slope is the prior, scaled to the pump's first running duty point
and worth about one demand change.
"""

from __future__ import annotations

import numpy as np

from models.derived import PUMP_CURVE_SLOPE

PRIOR_WEIGHT = 0.1
"""The prior's weight, in squared changes of log flow: a few ten-minute demand moves of 10 % outweigh it."""


class PumpCurve:
    """The running regression of one pump's curve: fold running steps, read ``slope`` (b, None before any)."""

    def __init__(self, step_s: float, span_s: float = 600.0) -> None:
        assert step_s > 0 and span_s >= step_s, "the span must hold at least one step"
        self.span = max(1, round(span_s / step_s))
        self._x = np.full(self.span, np.nan)  # (flow per speed)^2 of the last `span` steps, by step % span
        self._y = np.full(self.span, np.nan)  # head per speed squared
        self._step = np.full(self.span, -(10**18), dtype=np.int64)
        self.sxx, self.sxy = 0.0, 0.0

    @property
    def slope(self) -> float | None:
        """b of head/n^2 = a - b (Q/n)^2; None until a running step with flow and head was seen."""
        return -self.sxy / self.sxx if self.sxx > 0 else None

    def fold(self, steps: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        """Running steps (k,) with (flow per speed)^2 ``x`` and head per speed squared ``y`` (k,), NaN: unknown."""
        for step, xi, yi in zip(steps.tolist(), x.tolist(), y.tolist(), strict=True):
            if not (np.isfinite(xi) and np.isfinite(yi) and xi > 0 and yi > 0):
                continue
            if self.sxx == 0:  # the prior, at this first duty point: the fixed log slope there
                weight = PRIOR_WEIGHT * (2.0 * xi) ** 2  # d(Q^2) = 2 Q^2 d log Q
                self.sxx, self.sxy = weight, -weight * (PUMP_CURVE_SLOPE / 2.0) * yi / xi
            slot = step % self.span
            if self._step[slot] == step - self.span:  # the same pump ten minutes before, running too
                dx, dy = xi - self._x[slot], yi - self._y[slot]
                self.sxx += dx * dx
                self.sxy += dx * dy
            self._x[slot], self._y[slot], self._step[slot] = xi, yi, step
