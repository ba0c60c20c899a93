"""A first-order lag of heating power: what a winding with a thermal time constant sees of its current.

A winding's temperature follows I^2 through a first-order lag with a time constant of a
quarter of an hour or so. Its rise divided by the *present* I^2 therefore swings for many
minutes after every load change or restart, just as it does when the cooling fails; divided
by I^2 filtered with a similar time constant it holds still in health. The windower keeps one
filter per asset across windows, so training, offline scoring and the gateway see the same
values. numpy only.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=64)
def _triangles(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of ``Lag.run``'s unrolled recursion over k steps, made once per k (read-only).

    later (k + 1, k): step m comes at or after input r; reaches (k + 1, k): input r (0: the
    state before) is in by step i.
    """
    later = np.arange(k)[None, :] >= np.arange(k + 1)[:, None]
    reaches = np.arange(k)[None, :] >= np.arange(k + 1)[:, None] - 1
    later.setflags(write=False)
    reaches.setflags(write=False)
    return later, reaches


class Lag:
    """First-order low-pass filters of a few per-step values, one state per value.

    A step without a value holds the state; a gap longer than the time constant restarts the
    filter at the next value (after hours without data the machine's thermal state is unknown,
    and starting in equilibrium is the better guess).
    """

    def __init__(self, size: int, time_constant_s: float | np.ndarray, step_s: float, standstill: float = 1.0) -> None:
        """``time_constant_s``: one for every value, or one per value (size,)."""
        tau = np.broadcast_to(np.asarray(time_constant_s, dtype=np.float64), (size,))
        assert (tau > 0).all() and step_s > 0, "the time constant and the step must be positive"
        assert standstill >= 1.0, "a machine does not cool faster standing still"
        self.keep = np.exp(-step_s / tau)
        self.keep_stopped = np.exp(-step_s / (tau * standstill))
        self.max_gap_steps = np.maximum(1, np.round(tau / step_s)).astype(np.int64)
        self.state = np.full(size, np.nan)
        self.last_step = np.full(size, -(10**18), dtype=np.int64)

    def run(
        self,
        steps: np.ndarray,
        values: np.ndarray,
        commit: bool,
        running: np.ndarray | None = None,
        columns: slice = slice(None),
    ) -> np.ndarray:
        """Filter ``values`` (k, size) at absolute step indices ``steps`` (k,), increasing; NaN: no value.

        ``running`` (k,) bool: steps where the machine ran; a stopped step decays with the
        standstill time constant (a motor without its fan cools slower). None: all ran.

        Returns the filtered value after each step (k, size), NaN until a value was seen.
        ``commit=False`` looks ahead (a window's steps, which later hops will fold for good)
        without moving the filter; it may filter only some ``columns`` of the state (values
        then has that many), each column being a filter of its own.
        """
        assert not commit or columns == slice(None), "a commit moves every filter"
        state, last_step = self.state[columns], self.last_step[columns]
        steps = np.asarray(steps, dtype=np.int64)
        ran = np.ones(len(steps), dtype=bool) if running is None else np.asarray(running, dtype=bool)
        seen = np.isfinite(values)
        # Known up front, per step and value: the last step with a value before this one,
        # whether any value came before, and so each step's decay. The gateway runs this for
        # every window, so it is whole-array numpy with no Python loop per step.
        stamped = np.where(seen, steps[:, None], last_step)
        last = np.maximum.accumulate(np.concatenate([last_step[None], stamped]), axis=0)  # (k + 1, size)
        had = np.isfinite(state) | np.concatenate([np.zeros((1, seen.shape[1]), bool), np.logical_or.accumulate(seen, axis=0)])
        gap = steps[:, None] - last[:-1]
        restart = seen & (~had[:-1] | (gap > self.max_gap_steps[columns]))
        keep = np.where(ran[:, None], self.keep[columns], self.keep_stopped[columns]) ** np.maximum(gap, 1)
        # state_i = carry_i * state_(i-1) + put_i: a value moves the state towards itself (a
        # restart all the way), a step without one carries it. Unrolled over the steps as a
        # (k + 1, k) triangle of carried products (a window is 20 steps, so it stays small).
        carry = np.where(seen, np.where(restart, 0.0, keep), 1.0)
        with np.errstate(invalid="ignore"):  # nan value: masked by the where
            put = np.where(seen, (1.0 - carry) * values, 0.0)
        k = len(steps)
        later, reaches = _triangles(k)
        products = np.cumprod(np.where(later[:, :, None], carry[None], 1.0), axis=1)  # (r, i): carried from r to i
        inputs = np.concatenate([np.where(had[0], state, 0.0)[None], put])  # a finite stand-in before any value
        out: np.ndarray = np.einsum("ris,rs->is", np.where(reaches[:, :, None], products, 0.0), inputs)
        out[~had[1:]] = np.nan
        if commit:
            self.state = out[-1].copy() if k else self.state
            self.last_step = last[-1]
        return out


class FittedLag:
    """The lagged heating through the time constant that the asset's own history fits best.

    Windings differ (the simulator's take 700-1,500 s; a fleet's spread is wider), and through
    a wrong time constant a winding's rise per lagged current squared swings after every
    restart and load step exactly as it does when the cooling fails: a winding slower than the
    filter reads too cool while it warms up, so its running reference forms low and the settled
    winding then reads as overheating for an hour. Under its own time constant the ratio holds
    still. So the heating is filtered through every candidate at once, each candidate is scored
    by how much that ratio moves between consecutive running steps (summed over the asset's
    history: only load changes tell candidates apart, and a machine's winding does not change),
    and the steadiest candidate is read out. Until a load change has shown a difference, all
    score alike and the first candidate (``WindowSpec.lag_s``) is read.
    """

    def __init__(self, size: int, time_constants_s: tuple[float, ...], step_s: float, standstill: float = 1.0) -> None:
        assert time_constants_s, "at least one candidate time constant"
        self.size, self.candidates = size, len(time_constants_s)
        self.lag = Lag(
            size * self.candidates, np.repeat(np.asarray(time_constants_s, dtype=np.float64), size), step_s, standstill
        )
        self.roughness = np.zeros(self.candidates)
        """Sum of squared step-to-step moves of log(rise / lagged heating), per candidate."""
        self._last_ratio = np.full(self.candidates, np.nan)
        self._last_step = -(10**18)

    @property
    def chosen(self) -> int:
        """Index of the candidate read out now: the first of those equal to rounding. The filters
        agree on a steady input only to the last bits, so a steady history sums squares of moves
        near 1e-16; a tie within 1e-20 (moves of 1e-10, far below any winding's) goes to the first."""
        return int(np.flatnonzero(self.roughness <= self.roughness.min() * (1.0 + 1e-9) + 1e-20)[0])

    def run(
        self,
        steps: np.ndarray,
        values: np.ndarray,
        commit: bool,
        running: np.ndarray | None = None,
        rise: np.ndarray | None = None,
    ) -> np.ndarray:
        """As ``Lag.run``, through the chosen candidate; ``rise`` (k,): the winding's rise over ambient per step,
        NaN where unknown, scores the candidates when ``commit``."""
        if not commit:  # a look ahead reads the chosen candidate only: filter just its columns
            first = self.chosen * self.size
            return self.lag.run(steps, values, False, running, slice(first, first + self.size))
        tiled = np.tile(values, (1, self.candidates))  # (k, candidates * size), candidate-major like the lag's columns
        out = self.lag.run(steps, tiled, commit, running).reshape(len(steps), self.candidates, self.size)
        chosen = out[:, self.chosen]  # chosen from the history before these steps
        if commit and rise is not None:
            self._score(steps, out, np.ones(len(steps), dtype=bool) if running is None else running, rise)
        return chosen

    def _score(self, steps: np.ndarray, out: np.ndarray, running: np.ndarray, rise: np.ndarray) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.log(np.maximum(rise, 0.1)[:, None] / out.mean(axis=2))  # (k, candidates)
        for i, step in enumerate(steps.tolist()):
            now = ratio[i] if running[i] and np.isfinite(ratio[i]).all() else None
            if now is not None and step == self._last_step + 1 and np.isfinite(self._last_ratio).all():
                self.roughness += (now - self._last_ratio) ** 2
            self._last_ratio = now if now is not None else np.full(self.candidates, np.nan)
            self._last_step = step
