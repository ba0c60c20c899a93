"""A pump's own curve slope, fitted from its demand changes. numpy only: the edge runtime imports it.

At one speed a centrifugal pump's head falls as its flow rises, and how steeply depends on
where on its curve it runs: d log head / d log flow is about -0.02 at 30 % of design flow and
-0.6 at 100 % on the simulator's curve, and real curves bend alike. The fixed slope of
``models.derived.PUMP_CURVE_SLOPE`` (0.21) is right near 65 % of design flow only, so a pump
running near half flow moves the curve feature by -0.035 when its demand drops, which an
accurate reference reads as an early seal leak (held-out plant200 east.P-301). Demand moves
flow and head along the curve within minutes, while a leak takes both down over hours, so the
slope is the regression of ten-minute changes of log head per speed squared on those of log
flow per speed over the pump's running steps, starting from the fixed slope as a prior worth
about one demand change.
"""

from __future__ import annotations

import numpy as np

from models.derived import PUMP_CURVE_SLOPE

PRIOR_SLOPE = -PUMP_CURVE_SLOPE
"""d log(head/speed^2) / d log(flow/speed) before the pump has shown its own: the fixed curve feature's."""
PRIOR_WEIGHT = 0.1
"""The prior's weight in squared log-flow changes: a few ten-minute demand moves of 10 % outweigh it."""


class CurveSlope:
    """The running regression of one pump's curve: fold running steps, read ``slope``."""

    def __init__(self, step_s: float, span_s: float = 600.0) -> None:
        assert step_s > 0 and span_s >= step_s, "the span must hold at least one step"
        self.span = max(1, round(span_s / step_s))
        self._x = np.full(self.span, np.nan)  # log flow per speed of the last `span` steps, by step % span
        self._y = np.full(self.span, np.nan)  # log head per speed squared
        self._step = np.full(self.span, -(10**18), dtype=np.int64)
        self.sxx, self.sxy = PRIOR_WEIGHT, PRIOR_WEIGHT * PRIOR_SLOPE

    @property
    def slope(self) -> float:
        return self.sxy / self.sxx

    def fold(self, steps: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        """Running steps (k,) with log flow per speed ``x`` and log head per speed squared ``y`` (k,), NaN: unknown."""
        for step, xi, yi in zip(steps.tolist(), x.tolist(), y.tolist(), strict=True):
            if not (np.isfinite(xi) and np.isfinite(yi)):
                continue
            slot = step % self.span
            if self._step[slot] == step - self.span:  # the same pump ten minutes before, running too
                dx, dy = xi - self._x[slot], yi - self._y[slot]
                self.sxx += dx * dx
                self.sxy += dx * dy
            self._x[slot], self._y[slot], self._step[slot] = xi, yi, step
