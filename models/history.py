"""An asset's past, as each new window needs it: its running reference and its lagged heating.

The windower (``models.windowing``) folds every hop of steps into an ``AssetHistory`` once no
later window can change them, and attaches what the history says to each window it builds:

- the **running reference**: exponentially weighted mean and std (time constant
  ``spec.reference_s``) of each channel's step means and of each derived feature
  (``spec.reference_derived``), from the steps in which the machine ran throughout (a run-up,
  coast-down or standstill is not its working baseline). Raw channels swing with load and get
  plain EW statistics; derived features are load-normalised and get a *robust* reference;
- the **lagged heating** (``spec.lagged``, ``models.lag``): the phase currents' mean square
  low-pass filtered with a winding-like time constant, or with the candidate of ``spec.lag_fit``
  that this asset's winding fits best (``models.lag.FittedLag``).

numpy only: the edge runtime imports it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from models.curve import PumpCurve
from models.derived import derive
from models.lag import FittedLag, Lag

if TYPE_CHECKING:
    from models.windowing import WindowSpec

REFERENCE_CLIP = 3.0
"""Largest deviation, in reference standard deviations, that one step folds into a warm derived reference's mean."""
REFERENCE_VAR_CLIP = 1.5
"""The same for its variance: under a persistent deviation the spread then grows by about 1.25 a per step
(a = step_s / reference_s), not 8 a, so a fault hours long does not hide itself in its own spread."""


class _EW:
    """Exponentially weighted mean and variance of n values, and the seconds of data folded into each.

    ``average_start``: each step weighs max(alpha, 1/count), so the statistics are the plain
    mean and variance of everything folded until a time constant's worth has been seen, and
    exponentially weighted after (a bias-corrected EW). Without it the mean starts at the first
    step's value and moves by alpha a step: an hour into a 6 h reference that one step still
    weighs 85 %, and the first running step after a standstill (a cold winding)
    fixed an asset's reference for hours (plant200 east.FAN-302: its settled winding read 0.77
    log units above its reference at warm-up and still 0.16 above ten hours later). Its
    variance, started at zero, also read a fifth of the true one at warm-up.
    """

    def __init__(self, n: int, alpha: float, step_s: float, warm_s: float, robust: bool, average_start: bool = False) -> None:
        self.mean, self.var, self.seen_s = np.zeros(n), np.zeros(n), np.zeros(n)
        self.alpha, self.step_s, self.warm_s, self.robust = alpha, step_s, warm_s, robust
        self.average_start = average_start

    def update(self, x: np.ndarray, seen: np.ndarray) -> None:
        """Fold one step's values where ``seen``.

        Robust: once warm, a step moves the mean by at most REFERENCE_CLIP standard deviations
        and the variance by at most REFERENCE_VAR_CLIP, so a transient (a restart's cold
        winding) cannot inflate the spread for hours and a developing fault is absorbed only
        slowly and keeps standing out.
        """
        first_seen = seen & (self.seen_s == 0)
        self.mean[first_seen] = x[first_seen]
        update = seen & ~first_seen
        delta = np.where(update, x - self.mean, 0.0)
        delta_var = delta
        if self.robust:
            warm = self.seen_s >= self.warm_s
            sd = np.maximum(np.sqrt(self.var), 1e-6 + 1e-3 * np.abs(self.mean))
            # np.minimum(np.maximum()) is np.clip without its Python wrapper's cost (four calls a hop per asset)
            delta = np.where(warm, np.minimum(np.maximum(delta, -REFERENCE_CLIP * sd), REFERENCE_CLIP * sd), delta)
            delta_var = np.where(warm, np.minimum(np.maximum(delta, -REFERENCE_VAR_CLIP * sd), REFERENCE_VAR_CLIP * sd), delta)
        a: float | np.ndarray = self.alpha
        if self.average_start:
            a = np.maximum(self.alpha, self.step_s / (self.seen_s + self.step_s))  # 1/count, this step included
        self.mean += a * delta
        self.var = np.where(update, (1.0 - a) * (self.var + a * delta_var * delta_var), self.var)
        self.seen_s[seen] += self.step_s

    def value(self) -> np.ndarray:
        """(n, 2) float32 [mean, std], NaN where not seen for warm_s yet."""
        ref = np.stack([self.mean, np.sqrt(self.var)], axis=-1)
        ref[self.seen_s < max(self.warm_s, self.step_s)] = np.nan
        return ref.astype(np.float32)


class AssetHistory:
    """What one asset's folded steps say: reference (channels, derived features) and lagged heating."""

    def __init__(self, spec: WindowSpec, rated_current_a: float | None = None, backlog: DerivedBacklog | None = None) -> None:
        """``backlog``: shared by the assets of one stream, so that their derived features are derived together."""
        self.spec = spec
        self._backlog = DerivedBacklog(spec) if backlog is None else backlog
        assert self._backlog.spec == spec, "a backlog derives for one window spec"
        self._queued = 0  # hops of this asset waiting in the backlog
        self._rated = np.array([np.nan if rated_current_a is None else rated_current_a])
        alpha = 1.0 - math.exp(-spec.step_s / spec.reference_s) if spec.reference_s > 0 else 0.0
        warm = spec.reference_min_s
        start = spec.reference_average_start
        self._channels = _EW(len(spec.channels), alpha, spec.step_s, warm, False, start) if alpha else None
        self._derived = _EW(len(spec.reference_derived), alpha, spec.step_s, warm, True, start) if alpha else None
        self._lag: Lag | FittedLag | None = None
        if spec.lagged and spec.lag_fit:
            self._lag = FittedLag(len(spec.lagged), (spec.lag_s, *spec.lag_fit), spec.step_s, spec.lag_standstill)
        elif spec.lagged:
            self._lag = Lag(len(spec.lagged), spec.lag_s, spec.step_s, spec.lag_standstill)
        self._curve = PumpCurve(spec.step_s) if spec.pump_fit else None

    def lagged(self, steps: np.ndarray, squares: np.ndarray, running: np.ndarray | None = None) -> np.ndarray | None:
        """(k, L) lagged heating after each of a window's steps (k,) with mean squares (k, L) and running flags (k,);
        the history stays put."""
        return None if self._lag is None else self._lag.run(steps, squares, False, running).astype(np.float32)

    def fold(
        self, steps: np.ndarray, mean: np.ndarray, std: np.ndarray, count: np.ndarray, running: np.ndarray, squares: np.ndarray
    ) -> None:
        """Fold steps (k,) for good: mean/std/count (k, channels), running (k,) bool, mean squares of spec.lagged (k, L)."""
        stats = np.stack([mean, std, mean, mean], axis=-1)[None]  # (1, k, channels, 4): derive reads mean and std
        fitted, curve = isinstance(self._lag, FittedLag), self._curve is not None
        names = ("winding_rise_c",) * fitted + ("log_flow_per_speed", "head_per_speed2") * curve
        raw = derive(names, self.spec.channels, stats, count[None])[0].T if names else None  # one call for both needs
        lagged = None
        if isinstance(self._lag, FittedLag):
            assert raw is not None
            lagged = self._lag.run(steps, squares, True, running, raw[0])  # the winding's rise (k,) scores candidates
        elif self._lag is not None:
            lagged = self._lag.run(steps, squares, True, running)
        slope = self.pump_slope()  # as the windows before these steps read it
        if self._curve is not None:
            assert raw is not None
            flow, head = raw[-2], raw[-1]
            self._curve.fold(steps[running], np.exp(2.0 * flow[running]), head[running])  # (Q/n)^2, head/n^2
        if self._channels is None:
            return
        stats, count = stats[:, running], count[running]  # a stopped machine is not its own baseline
        for k in range(stats.shape[1]):
            self._channels.update(stats[0, k, :, 0], count[k] > 0)
        if self._derived is not None and self.spec.reference_derived and stats.shape[1]:
            self._queued += 1
            self._backlog.add(self, stats[0], count, None if lagged is None else lagged[running], slope)

    def _take_derived(self, values: np.ndarray) -> None:
        """Fold one queued hop's derived features (k, D), NaN where undefined, into the reference, in order."""
        assert self._derived is not None
        self._queued -= 1
        for k in range(len(values)):
            self._derived.update(values[k], np.isfinite(values[k]))

    def pump_slope(self) -> float | None:
        """The pump's own curve b so far (models.curve); None when the spec fits none or no running duty point was seen."""
        return None if self._curve is None else self._curve.slope

    def reference(self) -> np.ndarray | None:
        """(channels, 2) [mean, std] of step means before the window; None when the spec keeps no reference."""
        return None if self._channels is None else self._channels.value()

    def reference_derived(self) -> np.ndarray | None:
        """(D, 2) [mean, std] of derived features before the window; None when the spec keeps none."""
        if self._derived is None or not self.spec.reference_derived:
            return None
        if self._queued:
            self._backlog.drain()
        return self._derived.value()


class DerivedBacklog:
    """Folded hops whose derived features the assets' running references have still to take in.

    Deriving the features of a hop's few steps costs about a third of a millisecond of numpy call
    overhead, whatever the number of rows, and a stream's assets complete their windows one after
    another. So a hop waits here until its asset next reads its reference (a hop later), by which
    time every other asset has queued its own, and one derive call serves them all. The values
    are those of deriving each hop alone (every derived feature is computed step by step, never
    across steps or windows), and each asset takes its hops in, in order, before it reads.
    """

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self._items: list[tuple[AssetHistory, np.ndarray, np.ndarray, np.ndarray | None, float, float | None]] = []

    def add(
        self, history: AssetHistory, stats: np.ndarray, count: np.ndarray, lagged: np.ndarray | None, slope: float | None
    ) -> None:
        """Queue a hop's running steps: stats (k, channels, 4), count (k, channels), lagged (k, L), the pump slope before it."""
        self._items.append((history, stats, count, lagged, float(history._rated[0]), slope))

    def drain(self) -> None:
        """Derive every queued hop in one call and hand each asset its values, in queue order."""
        items, self._items = self._items, []
        if not items:
            return
        steps = max(len(item[1]) for item in items)
        spec = self.spec
        stats = np.full((len(items), steps, len(spec.channels), 4), np.nan)
        count = np.zeros((len(items), steps, len(spec.channels)), dtype=np.int32)  # padding: no sample, never read
        lagged = np.full((len(items), steps, len(spec.lagged)), np.nan) if spec.lagged else None
        for i, (_, s, c, lag, _, _) in enumerate(items):
            stats[i, : len(s)], count[i, : len(c)] = s, c
            if lagged is not None and lag is not None:
                lagged[i, : len(lag)] = lag
        rated = np.array([item[4] for item in items])  # NaN where the rating plate is unknown
        slope = np.array([np.nan if item[5] is None else item[5] for item in items])
        values = derive(spec.reference_derived, spec.channels, stats, count, lagged, spec.lagged, rated, slope)
        for i, (history, s, *_) in enumerate(items):
            history._take_derived(values[i, : len(s)])
