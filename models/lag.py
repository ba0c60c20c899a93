"""A first-order lag of heating power: what a winding with a thermal time constant sees of its current.

A winding's temperature follows I^2 through a first-order lag with a time constant of a
quarter of an hour or so. Its rise divided by the *present* I^2 therefore swings for many
minutes after every load change or restart, just as it does when the cooling fails; divided
by I^2 filtered with a similar time constant it holds still in health. The windower keeps one
filter per asset across windows, so training, offline scoring and the gateway see the same
values. numpy only.
"""

from __future__ import annotations

import math

import numpy as np


class Lag:
    """First-order low-pass filters of a few per-step values, one state per value.

    A step without a value holds the state; a gap longer than the time constant restarts the
    filter at the next value (after hours without data the machine's thermal state is unknown,
    and starting in equilibrium is the better guess).
    """

    def __init__(self, size: int, time_constant_s: float, step_s: float, standstill: float = 1.0) -> None:
        assert time_constant_s > 0 and step_s > 0, "the time constant and the step must be positive"
        assert standstill >= 1.0, "a machine does not cool faster standing still"
        self.keep = math.exp(-step_s / time_constant_s)
        self.keep_stopped = math.exp(-step_s / (time_constant_s * standstill))
        self.max_gap_steps = max(1, round(time_constant_s / step_s))
        self.state = np.full(size, np.nan)
        self.last_step = np.full(size, -(10**18), dtype=np.int64)

    def run(self, steps: np.ndarray, values: np.ndarray, commit: bool, running: np.ndarray | None = None) -> np.ndarray:
        """Filter ``values`` (k, size) at absolute step indices ``steps`` (k,), increasing; NaN: no value.

        ``running`` (k,) bool: steps where the machine ran; a stopped step decays with the
        standstill time constant (a motor without its fan cools slower). None: all ran.

        Returns the filtered value after each step (k, size), NaN until a value was seen.
        ``commit=False`` looks ahead (a window's steps, which later hops will fold for good)
        without moving the filter.
        """
        state, last = self.state.copy(), self.last_step.copy()
        out = np.full(values.shape, np.nan)
        keeps = np.full(len(steps), self.keep) if running is None else np.where(running, self.keep, self.keep_stopped)
        for i, step in enumerate(steps.tolist()):
            x = values[i]
            seen = np.isfinite(x)
            restart = seen & (~np.isfinite(state) | (step - last > self.max_gap_steps))
            decay = keeps[i] ** np.clip(step - last, 1, None)
            with np.errstate(invalid="ignore"):  # nan state or value: masked by the where
                state = np.where(restart, x, np.where(seen, x + (state - x) * decay, state))
            last = np.where(seen, step, last)
            out[i] = state
        if commit:
            self.state, self.last_step = state, last
        return out
