"""Windowing: per-asset bounded buffers that turn a message stream into fixed windows.

One implementation serves training (dataset directories), offline scoring (`edge score`)
and the live gateway, so a model never sees windows built differently from the ones it
was trained on. Nothing here needs torch.

A window covers ``[end - length_s, end)`` and is cut into ``steps`` equal steps: one
sensor token per step. Samples are not kept: each step keeps running aggregates per
channel (count, sum, sum of squares, min, max), so memory per asset is fixed by the spec,
whatever the sample rate, and a sample arriving out of order still lands in its step.

Window ends are aligned to multiples of ``hop_s`` in source time, so the same data gives
the same windows (and the same prediction ids) on any gateway, in any replay. A window is
emitted once the asset's data has passed its end by ``grace_s`` (time for late samples).

A spec may list the reserved channel ``log_lines`` (LOG_RATE_CHANNEL): its value in each step is
the number of log lines the asset wrote in that step (0 when none), and every step counts as
covered. It lets a machine that only writes logs (HDFS blocks, a controller without telemetry)
have windows: its log lines advance the asset's clock, its first window is the hop-aligned one
that holds its first line, and at the end of a finite stream the window holding its last line
is emitted too, so a session shorter than a window still gives one.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from forewarn.contracts import LogRecord, Telemetry, Waveform
from models.history import AssetHistory, DerivedBacklog

STATS = ("mean", "std", "min", "max")
"""The per-step statistics of each channel, in the order of Window.stats' last axis."""

SPECTRAL_FLOOR = 1e-8
"""Smallest relative band energy a spectral feature reads (log10 -8): an empty band is very quiet, not -inf."""

LOG_RATE_CHANNEL = "log_lines"
"""Reserved channel name: log lines per step, counted by the windower from the asset's log records."""

_LEVEL_RANK = {"DEBUG": 0, "INFO": 1, "NOTICE": 2, "WARNING": 3, "ALARM": 4, "ERROR": 5, "CRITICAL": 6}


@dataclass(frozen=True)
class WindowSpec:
    """How windows are cut; saved in the model bundle so the edge cuts them exactly as training did."""

    channels: tuple[str, ...]
    length_s: float = 600.0
    hop_s: float = 60.0
    steps: int = 60
    max_log_lines: int = 16
    grace_s: float = 5.0
    min_coverage: float = 0.5
    """Fraction of steps that must hold at least one sample for a window to be emitted."""
    reference_s: float = 0.0
    """Time constant of each asset's running reference (exponentially weighted mean and std of its
    step means, over the steps before each window); 0: windows carry no reference."""
    reference_min_s: float = 3600.0
    """Running time the reference must have seen before windows carry it (NaN until then)."""
    reference_average_start: bool = False
    """The reference is the plain mean and variance of the asset's steps until reference_s worth
    is folded, exponentially weighted after (models.history._EW); False: the weighted mean
    starts at the first running step's value, as bundles before 2026-12-01 cut it."""
    running_channel: str | None = None
    """A channel whose step mean above running_min says the machine runs: only running steps enter
    the reference (a stopped machine is not its own baseline). None: every step with data does."""
    running_min: float = 10.0
    reference_derived: tuple[str, ...] = ()
    """Derived features (models.derived.DERIVED) whose per-step values also enter the running reference.
    Load-normalised quantities (winding rise per current squared, 2x/1x) are stable for a healthy
    asset whatever its duty, so a drift against the asset's own history shows where its raw
    channels, swinging with load, cannot."""
    lagged: tuple[str, ...] = ()
    """Channels whose per-step mean square is also low-pass filtered across windows with time constant
    lag_s (models.lag): the heating a winding sees of its phase currents (Window.lagged)."""
    lag_s: float = 900.0
    lag_standstill: float = 1.0
    """Factor on lag_s while the machine stands still (running_channel below running_min): a
    self-ventilated motor loses its fan when it stops and cools two to three times slower
    (IEC 60034-1's separate standstill time constant; motor protection relays model it the
    same way). 1.0: one time constant."""
    lag_fit: tuple[float, ...] = ()
    """Further candidate time constants (s) besides lag_s: each asset's history reads its heating
    through the candidate under which its winding's rise per lagged current squared holds
    stillest (models.lag.FittedLag), since windings differ and a wrong time constant makes every
    restart look like a cooling failure. Empty: lag_s for every asset."""
    pump_fit: bool = False
    """Each asset's history fits its pump's own curve, head/n^2 = a - b (Q/n)^2, from its demand
    changes (models.curve); windows carry b (Window.pump_slope) for the derived feature log_pump_curve_own."""
    flatline_samples: int = 0
    """A step in which a channel has at least this many samples, all exactly equal, counts as
    having none of that channel: a stuck transmitter repeats its last value, and a frozen
    standstill pressure read while running would look like a fault. 0: never."""

    spectral_bands: int = 0
    """Per step, each spectral channel's log10 energy in this many octave bands of its power spectrum,
    relative to the step's total (band_energies, Window.spectra). 0: none, as bundles before 2026-12-07."""
    spectral_channels: tuple[str, ...] = ()
    """The waveform channels (kHz vibration, acoustic, current) whose spectrum is read."""
    spectral_min_samples: int = 64
    """A stretch of one message's samples within one step feeds the spectrum only from this many samples:
    fewer resolve no band."""

    def __post_init__(self) -> None:
        assert self.channels, "a window needs at least one channel"
        assert len(set(self.channels)) == len(self.channels), "channel names must be unique"
        assert self.steps >= 1 and self.length_s > 0 and self.hop_s > 0, "steps, length_s and hop_s must be positive"
        assert self.grace_s >= 0, "grace_s cannot be negative"
        for name, value in (("length_s", self.length_s), ("hop_s", self.hop_s)):
            ratio = value / self.step_s
            assert abs(ratio - round(ratio)) < 1e-9, f"{name}={value} must be a multiple of step_s={self.step_s}"
        assert 0.0 <= self.min_coverage <= 1.0, "min_coverage is a fraction"
        assert self.reference_s >= 0 and self.reference_min_s >= 0, "reference times cannot be negative"
        assert set(self.lagged) <= set(self.channels) and self.lag_s > 0, "lagged channels must be window channels"
        assert self.lag_standstill >= 1.0, "a machine does not cool faster standing still"
        assert all(tau > 0 for tau in self.lag_fit), "candidate time constants must be positive"
        assert self.flatline_samples >= 0, "flatline_samples cannot be negative"
        assert self.spectral_bands >= 0 and self.spectral_min_samples >= 8, "spectral bands need samples"
        assert set(self.spectral_channels) <= set(self.channels), "spectral channels must be window channels"
        assert not self.spectral_channels or self.spectral_bands, "spectral channels need spectral_bands"

    @property
    def step_s(self) -> float:
        return self.length_s / self.steps

    @property
    def spectral_features(self) -> int:
        """Sensor-token columns the spectra add: each spectral channel's bands and its presence flag."""
        return len(self.spectral_channels) * (self.spectral_bands + 1)

    def to_dict(self) -> dict[str, object]:
        data = {**self.__dict__, "channels": list(self.channels), "spectral_channels": list(self.spectral_channels)}
        if not self.spectral_channels:  # a spec without spectra reads (and keys caches) as before they existed
            for name in ("spectral_bands", "spectral_channels", "spectral_min_samples"):
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> WindowSpec:
        values = dict(data)
        values["channels"] = tuple(values["channels"])  # type: ignore[arg-type]
        values["reference_derived"] = tuple(values.get("reference_derived", ()))  # type: ignore[arg-type]
        values["lagged"] = tuple(values.get("lagged", ()))  # type: ignore[arg-type]
        values["lag_fit"] = tuple(values.get("lag_fit", ()))  # type: ignore[arg-type]
        values["spectral_channels"] = tuple(values.get("spectral_channels", ()))  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


def band_edges(bands: int) -> np.ndarray:
    """(bands + 1,) edges in cycles per sample: octaves down from Nyquist (0.5), the lowest at 0.5 / 2**bands.

    Relative to the sampling rate, so the same bands describe any waveform at any rate: at 12 kHz
    and 8 bands, 23 Hz to 6 kHz in octaves (shaft orders low, bearing and resonance bands high).
    """
    return np.asarray(0.5 * 2.0 ** np.arange(-bands, 1, dtype=np.float64))


_BAND_OF: dict[tuple[int, int], np.ndarray] = {}


def _band_of_bins(n: int, bands: int) -> np.ndarray:
    """Band index of each rfft bin 1..n//2 of an n-sample stretch; -1 below the lowest band."""
    key = (n, bands)
    found = _BAND_OF.get(key)
    if found is None:
        if len(_BAND_OF) > 4096:
            _BAND_OF.clear()
        frequency = np.arange(1, n // 2 + 1) / n
        found = np.minimum(np.searchsorted(band_edges(bands), frequency, side="right") - 1, bands - 1)
        _BAND_OF[key] = found
    return found


def band_energies(x: np.ndarray, bands: int) -> tuple[np.ndarray, float]:
    """(bands,) energy of a stretch of samples in each octave band of its Hann-windowed power spectrum, and
    the total over every bin but DC (the mean is removed first). Energies add over stretches (Welch's method)."""
    n = len(x)
    taper = np.hanning(n)
    power = np.abs(np.fft.rfft((x - x.mean()) * taper)[1:]) ** 2
    band = _band_of_bins(n, bands)
    inside = band >= 0
    return np.bincount(band[inside], weights=power[inside], minlength=bands), float(power.sum())


@dataclass(frozen=True)
class Window:
    """One asset's window, ready for featurisation."""

    site: str
    asset_id: str
    asset_type: str | None
    start: float
    end: float
    stats: np.ndarray
    """(steps, channels, len(STATS)) float32; NaN where a step had no sample of that channel."""
    counts: np.ndarray
    """(steps, channels) int32: samples per step and channel."""
    logs: tuple[LogRecord, ...]
    """Log lines inside the window, time order, at most spec.max_log_lines (the most severe, then latest)."""
    waveforms: tuple[Waveform, ...] = ()
    """Raw bursts that started inside the window, latest per channel."""
    reference: np.ndarray | None = None
    """(channels, 2) float32 [mean, std] of the asset's step means before the window (spec.reference_s);
    NaN for a channel not yet seen long enough; None when the spec keeps no reference."""
    reference_derived: np.ndarray | None = None
    """(len(spec.reference_derived), 2) float32 [mean, std] of the asset's per-step derived features
    before the window, NaN where not seen long enough; None when the spec keeps none."""
    lagged: np.ndarray | None = None
    """(steps, len(spec.lagged)) float32: each step's mean square of the lagged channels, low-pass
    filtered over the asset's history up to that step; NaN before any sample; None when the spec lags none."""
    rated_current_a: float | None = None
    """The asset's rated current from its rating plate (contracts.Nameplate); None when unknown."""
    pump_slope: float | None = None
    """The pump's own curve b fitted over its history before the window (models.curve); None
    when the spec fits none or the asset has not run with flow and head yet."""
    spectra: np.ndarray | None = None
    """(steps, len(spec.spectral_channels), spec.spectral_bands) float32: log10 of each band's share of the
    step's spectral energy (floored at SPECTRAL_FLOOR); NaN where a step had no stretch of
    spec.spectral_min_samples samples; None when the spec reads no spectra."""

    @property
    def coverage(self) -> float:
        """Fraction of steps that hold at least one sample of any channel."""
        return np.count_nonzero(self.counts.sum(axis=1)) / len(self.counts)  # counts are never negative


@dataclass
class WindowerCounters:
    """What a windower refused or skipped, for the gateway's metrics (nothing is dropped silently)."""

    late_samples: int = 0
    """Samples older than the oldest window still to be emitted."""
    unknown_channel_samples: int = 0
    """Samples of channels the model does not read."""
    late_logs: int = 0
    sparse_windows: int = 0
    """Windows skipped for coverage below spec.min_coverage (a silent or dead asset)."""


class AssetWindower:
    """Bounded per-asset buffer of step aggregates and recent log lines; emits windows in order."""

    def __init__(
        self,
        spec: WindowSpec,
        site: str,
        asset_id: str,
        asset_type: str | None = None,
        every: int = 1,
        rated_current_a: float | None = None,
        backlog: DerivedBacklog | None = None,
    ) -> None:
        """``every``: build only every n-th window (by its end, in hops); the history still folds every hop.
        ``rated_current_a``: from the asset's rating plate, when known. ``backlog``: shared by a stream's
        assets, whose histories then derive their features together (models.history.DerivedBacklog)."""
        assert every >= 1, "every must be a positive number of hops"
        self.spec = spec
        self.every = every
        self.site = site
        self.asset_id = asset_id
        self.asset_type = asset_type
        self.rated_current_a = rated_current_a
        self.counters = WindowerCounters()
        self._column = {name: i for i, name in enumerate(spec.channels)}
        self._layouts: dict[tuple[str, ...], tuple[np.ndarray, list[bool]]] = {}  # see _values
        self._hop_steps = round(spec.hop_s / spec.step_s)
        grace_steps = math.ceil(spec.grace_s / spec.step_s)
        # The ring holds the window being waited for, its grace, and one hop of newer data.
        self._ring = spec.steps + grace_steps + self._hop_steps + 1
        channels = len(spec.channels)
        self._bin = np.full(self._ring, -1, dtype=np.int64)  # absolute step index held by each slot
        self._count = np.zeros((self._ring, channels), dtype=np.int32)
        self._sum = np.zeros((self._ring, channels), dtype=np.float64)
        self._sumsq = np.zeros((self._ring, channels), dtype=np.float64)
        self._min = np.full((self._ring, channels), np.inf)
        self._max = np.full((self._ring, channels), -np.inf)
        self._spectral = [self._column[c] for c in spec.spectral_channels]
        self._band = np.zeros((self._ring, len(self._spectral), spec.spectral_bands))  # band energies
        self._band_total = np.zeros((self._ring, len(self._spectral)))  # all bins but DC
        self._logs: deque[LogRecord] = deque(maxlen=max(256, 8 * spec.max_log_lines))
        self._waveforms: deque[Waveform] = deque(maxlen=8)
        self._next_end_step: int | None = None  # end (exclusive, in steps) of the next window to emit
        self._completed: list[Window] = []  # windows cut while folding a large batch, not yet taken
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # (steps, values) not yet in the ring: _fold
        self._pending_low = self._pending_high = 0  # their lowest and highest step
        self._run_column = self._column.get(spec.running_channel) if spec.running_channel else None
        self._lag_columns = [self._column[c] for c in spec.lagged]
        self._log_column = self._column.get(LOG_RATE_CHANNEL)
        self.history = AssetHistory(spec, rated_current_a, backlog)
        self.latest_ts = -math.inf

    # ---------------------------------------------------------------- input

    def add_telemetry(self, message: Telemetry) -> None:
        """Fold a telemetry batch into its steps; samples too late for any pending window are counted."""
        if message.asset_type and self.asset_type is None:
            self.asset_type = message.asset_type
        ts = np.asarray(message.timestamps, dtype=np.float64)  # (n,), non-decreasing by contract
        steps = np.floor(ts / self.spec.step_s).astype(np.int64)
        if self._next_end_step is None:
            self._start(int(steps[0]))
        assert self._next_end_step is not None
        values = self._values(message, len(ts))  # (n, channels)
        oldest_useful = self._next_end_step - self.spec.steps
        keep = steps >= oldest_useful
        if not keep.all():
            self.counters.late_samples += int(np.count_nonzero(~np.isnan(values[~keep])))
            ts, steps, values = ts[keep], steps[keep], values[keep]
            if len(ts) == 0:
                return
        self._fold_in_hops(ts, steps, values)
        if message.waveform is not None:
            self._waveforms.append(message.waveform)

    def _values(self, message: Telemetry, n: int) -> np.ndarray:
        """(n, channels) float64 of a message's samples on the spec's columns, NaN where none (None or not sent).

        One array conversion for all the message's columns, not one per channel, and the columns'
        places looked up once per set of channel names an asset sends (it rarely changes): at a
        few samples per message, per-call overhead is most of the windower's cost.
        """
        names = tuple(message.channels)
        layout = self._layouts.get(names)
        if layout is None:
            if len(self._layouts) >= 16:  # an asset whose channel set keeps changing: stay bounded
                self._layouts.clear()
            layout = self._layouts[names] = self._layout(names)
        indices, known = layout
        columns = list(message.channels.values())
        if len(indices) < len(columns):
            for column, used in zip(columns, known, strict=True):
                if not used:
                    self.counters.unknown_channel_samples += sum(v is not None for v in column)
            columns = [column for column, used in zip(columns, known, strict=True) if used]
        values = np.full((n, len(self.spec.channels)), np.nan)
        if columns:
            values[:, indices] = np.array(columns, dtype=np.float64).T  # None -> nan
        return values

    def _layout(self, names: tuple[str, ...]) -> tuple[np.ndarray, list[bool]]:
        """Column of each of the spec's channels among ``names`` (int64), and which names are the spec's.

        log_lines is counted from log records, never sent: sent, it counts as an unknown channel.
        """
        columns = [self._column.get(name) for name in names]
        known = [index is not None and index != self._log_column for index in columns]
        used = [index for index, kept in zip(columns, known, strict=True) if kept and index is not None]
        return np.array(used, dtype=np.int64), known

    def _start(self, first_step: int) -> None:
        """Set the first window's end from the asset's first step of data."""
        hop, steps = self._hop_steps, self.spec.steps
        if self._log_column is None:
            self._next_end_step = -(-(first_step + steps) // hop) * hop  # first hop-aligned full window
            return
        # Log lines come in bursts (a session, a restart): the first window is the last hop-aligned
        # one that still holds the first line, so no line before it is lost.
        end = (first_step + steps) // hop * hop
        self._next_end_step = end if end > first_step else -(-(first_step + 1) // hop) * hop

    def _fold_in_hops(self, ts: np.ndarray, steps: np.ndarray, values: np.ndarray) -> None:
        """Fold a batch at most one hop of steps at a time, cutting the windows each hop completes.

        The ring holds one hop of data beyond the window being waited for, so a batch spanning more
        (a historian export, a backlog, a 10,000-sample message) would overwrite steps of windows
        not yet cut. Windows completed between chunks wait in ``_completed`` for the next ready().
        """
        start = 0
        while start < len(steps):
            stop = int(np.searchsorted(steps, steps[start] + self._hop_steps, side="left"))
            self._fold(steps[start:stop], values[start:stop])
            self.latest_ts = max(self.latest_ts, float(ts[stop - 1]))
            if stop < len(steps):
                self._completed.extend(self._emit(until=self.latest_ts - self.spec.grace_s))
            start = stop

    def _fold(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Queue a message's samples (at most a hop of sorted steps) for the ring; ``_flush`` adds them in.

        Folding waits until a window is cut (about once a hop) so that the ring's numpy work is done
        once for the half-dozen messages of a hop, not once per message: per message it cost more
        than the arithmetic. The queue is flushed early rather than ever span as many steps as the
        ring has slots, so that each step it holds has a slot of its own (see ``_flush``).
        """
        low, high = int(steps[0]), int(steps[-1])
        if self._pending and max(high, self._pending_high) - min(low, self._pending_low) >= self._ring:
            self._flush()
        if not self._pending:
            self._pending_low, self._pending_high = low, high
        self._pending.append((steps, values))
        self._pending_low, self._pending_high = min(low, self._pending_low), max(high, self._pending_high)

    def _flush(self) -> None:
        """Add the queued samples into their steps' slots, exactly as folding them message by message would.

        Each message's samples of one step are summed on their own (a run), then the runs are added
        into their slots in arrival order (``np.add.at`` applies repeated indices in order), so the
        float sums are bit for bit those of folding each message as it came. A run older than its
        slot's step is late (counted, dropped); a newer one resets the slot first. That each queued
        step has its own slot (``_fold``) is what lets these checks be made for all runs at once.
        """
        if not self._pending:
            return
        queued, self._pending = self._pending, []
        steps = np.concatenate([s for s, _ in queued]) if len(queued) > 1 else queued[0][0]
        values = np.concatenate([v for _, v in queued]) if len(queued) > 1 else queued[0][1]
        starts_run = np.zeros(len(steps), dtype=bool)
        starts_run[np.cumsum([0] + [len(s) for s, _ in queued[:-1]])] = True  # a message starts a run
        starts_run[1:] |= steps[1:] != steps[:-1]  # and so does a new step within one
        starts = np.flatnonzero(starts_run)
        run_steps = steps[starts]
        present = ~np.isnan(values)
        zeroed = np.where(present, values, 0.0)
        counts = np.add.reduceat(present.astype(np.int32), starts, axis=0)
        sums = np.add.reduceat(zeroed, starts, axis=0)
        sumsqs = np.add.reduceat(zeroed * zeroed, starts, axis=0)
        mins = np.fmin.reduceat(values, starts, axis=0)  # fmin/fmax skip NaN; an all-NaN run stays NaN,
        maxs = np.fmax.reduceat(values, starts, axis=0)  # which fmin/fmax into the slot's +-inf then ignore
        slots = run_steps % self._ring
        held = self._bin[slots]
        late = run_steps < held  # the slot already moved on to newer data: this step is gone
        bands = self._run_bands(values, starts, counts) if self._spectral else None
        if late.any():
            self.counters.late_samples += int(counts[late].sum())
            keep = ~late
            run_steps, slots, counts, sums, sumsqs, mins, maxs = (
                a[keep] for a in (run_steps, slots, counts, sums, sumsqs, mins, maxs)
            )
            bands = None if bands is None else (bands[0][keep], bands[1][keep])
            held = held[keep]
        newer = run_steps > held
        if newer.any():
            self._reset(slots[newer], run_steps[newer])
        np.add.at(self._count, slots, counts)
        np.add.at(self._sum, slots, sums)
        np.add.at(self._sumsq, slots, sumsqs)
        np.fmin.at(self._min, slots, mins)
        np.fmax.at(self._max, slots, maxs)
        if bands is not None:
            np.add.at(self._band, slots, bands[0])
            np.add.at(self._band_total, slots, bands[1])

    def _run_bands(self, values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Band energies (runs, S, B) and totals (runs, S) of each run's spectral channels.

        A run (one message's samples of one step) of at least spec.spectral_min_samples samples of a
        channel is one Welch segment of that step's spectrum; shorter runs add nothing.
        """
        spec = self.spec
        bands = np.zeros((len(starts), len(self._spectral), spec.spectral_bands))
        totals = np.zeros((len(starts), len(self._spectral)))
        stops = np.append(starts[1:], len(values))
        for s, column in enumerate(self._spectral):
            for r in np.flatnonzero(counts[:, column] >= spec.spectral_min_samples):
                x = values[starts[r] : stops[r], column]
                x = x[~np.isnan(x)]
                bands[r, s], totals[r, s] = band_energies(x, spec.spectral_bands)
        return bands, totals

    def _reset(self, slot: np.ndarray, step: np.ndarray) -> None:
        """Give slots (k,) to steps (k,): their aggregates start empty."""
        self._bin[slot] = step
        self._count[slot] = 0
        self._sum[slot] = 0.0
        self._sumsq[slot] = 0.0
        self._min[slot] = np.inf
        self._max[slot] = -np.inf
        if self._spectral:
            self._band[slot] = 0.0
            self._band_total[slot] = 0.0

    def add_log(self, record: LogRecord) -> None:
        """Keep a log line for the windows that will cover it; one older than every pending window is counted.

        With LOG_RATE_CHANNEL in the spec the line is also counted in its step and advances the asset's clock.
        """
        step = math.floor(record.ts / self.spec.step_s)
        if self._log_column is not None and self._next_end_step is None:
            self._start(step)
        if self._next_end_step is not None and record.ts < self._next_end_step * self.spec.step_s - self.spec.length_s:
            self.counters.late_logs += 1
            return
        if self._log_column is not None:
            values = np.full((1, len(self.spec.channels)), np.nan)
            values[0, self._log_column] = 1.0
            self._fold_in_hops(np.array([record.ts]), np.array([step], dtype=np.int64), values)
        self._logs.append(record)

    # --------------------------------------------------------------- output

    def ready(self) -> Iterator[Window]:
        """Windows whose end the data has passed by grace_s, in time order, each exactly once."""
        yield from self._take_completed()
        yield from self._emit(until=self.latest_ts - self.spec.grace_s)

    def flush(self) -> Iterator[Window]:
        """At the end of a finite stream: also the windows still inside their grace period.

        With LOG_RATE_CHANNEL in the spec, up to the first window that holds the asset's last data:
        a log session shorter than a window still gives that window.
        """
        yield from self._take_completed()
        until = self.latest_ts
        pending = self._next_end_step
        if self._log_column is not None and pending is not None and math.isfinite(until):
            last = math.floor(until / self.spec.step_s)
            if pending - self.spec.steps <= last:  # the next window still holds the last data
                after_last = -(-(last + 1) // self._hop_steps) * self._hop_steps
                until = max(until, max(pending, after_last) * self.spec.step_s)
        yield from self._emit(until=until)

    def _take_completed(self) -> list[Window]:
        completed, self._completed = self._completed, []
        return completed

    def _emit(self, until: float) -> Iterator[Window]:
        spec = self.spec
        while self._next_end_step is not None and self._next_end_step * spec.step_s <= until:
            self._flush()  # the ring is read from here on
            end_step = self._next_end_step
            newest_step = math.floor(self.latest_ts / spec.step_s)
            if end_step < newest_step - spec.steps:
                # A gap longer than a window (asset stopped, clock jump): skip to the first window with data.
                skip = (newest_step - spec.steps - end_step) // self._hop_steps * self._hop_steps
                self.counters.sparse_windows += skip // self._hop_steps
                self._next_end_step = end_step + max(skip, self._hop_steps)
                continue
            self._next_end_step = end_step + self._hop_steps
            kept = (end_step // self._hop_steps) % self.every == 0
            window = self._build(end_step) if kept else None
            self._fold_history(end_step - spec.steps, end_step - spec.steps + self._hop_steps)
            if window is None:
                continue
            if window.coverage < spec.min_coverage:
                self.counters.sparse_windows += 1
                continue
            yield window

    def _build(self, end_step: int) -> Window:
        spec = self.spec
        wanted = np.arange(end_step - spec.steps, end_step, dtype=np.int64)  # (steps,)
        slots = wanted % self._ring
        valid = (self._bin[slots] == wanted)[:, None]  # (steps, 1)
        count = np.where(valid, self._count[slots], 0)  # (steps, channels)
        running = self._running(slots, count)
        count = self._held_count(slots, count, running)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self._sum[slots] / count
            var = np.maximum(self._sumsq[slots] / count - mean * mean, 0.0)
        empty = count == 0
        stats = np.stack([mean, np.sqrt(var), self._min[slots], self._max[slots]], axis=-1)  # (steps, channels, 4)
        stats[empty] = np.nan
        if self._log_column is not None:
            count = self._log_rate(stats, count, valid[:, 0], slots)
        start, end = float((end_step - spec.steps) * spec.step_s), float(end_step * spec.step_s)
        with np.errstate(invalid="ignore", divide="ignore"):
            squares = self._sumsq[slots][:, self._lag_columns] / count[:, self._lag_columns]  # (steps, L), nan: none
        return Window(
            site=self.site,
            asset_id=self.asset_id,
            asset_type=self.asset_type,
            start=start,
            end=end,
            stats=stats.astype(np.float32),
            counts=count.astype(np.int32),
            logs=self._window_logs(start, end),
            waveforms=self._window_waveforms(start, end),
            reference=self.history.reference(),
            reference_derived=self.history.reference_derived(),
            lagged=self.history.lagged(wanted, squares, running),
            rated_current_a=self.rated_current_a,
            pump_slope=self.history.pump_slope(),
            spectra=self._spectra(slots, valid[:, 0], count) if self._spectral else None,
        )

    def _spectra(self, slots: np.ndarray, valid: np.ndarray, count: np.ndarray) -> np.ndarray:
        """(steps, S, B) float32 log10 band shares of the window's steps; NaN where a step has no spectrum
        or its channel counts as having no samples (a flatlined, stuck transmitter)."""
        total = self._band_total[slots]  # (steps, S)
        known = valid[:, None] & (total > 0) & (count[:, self._spectral] > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = self._band[slots] / total[..., None]
        out: np.ndarray = np.log10(np.maximum(share, SPECTRAL_FLOOR)).astype(np.float32)
        out[~known] = np.nan
        return out

    def _fold_history(self, first: int, stop: int) -> None:
        """Fold steps [first, stop), the hop every later window has behind it, into the asset's history."""
        steps = np.arange(first, stop, dtype=np.int64)
        slots = steps % self._ring
        held = self._bin[slots] == steps
        if self._log_column is None:
            steps, slots = steps[held], slots[held]
            count, sums, sumsqs = self._count[slots], self._sum[slots], self._sumsq[slots]  # (k, channels)
        else:  # a step without a line is a step of 0 lines, not a step without data: fold them all
            count = np.where(held[:, None], self._count[slots], 0)
            sums = np.where(held[:, None], self._sum[slots], 0.0)
            sumsqs = np.where(held[:, None], self._sumsq[slots], 0.0)
        running = self._running(slots, count)
        count = self._held_count(slots, count, running)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums / count  # (k, channels), nan where no sample
            std = np.sqrt(np.maximum(sumsqs / count - mean * mean, 0.0))
            squares = sumsqs[:, self._lag_columns] / count[:, self._lag_columns]
        if self._log_column is not None:
            stats = np.stack([mean, std, mean, mean], axis=-1)
            count = self._log_rate(stats, count, held, slots)
            mean, std = stats[..., 0], stats[..., 1]
        self.history.fold(steps, mean, std, count, running, squares)

    def _log_rate(self, stats: np.ndarray, count: np.ndarray, held: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Write the log_lines column of (k, channels, 4) stats in place: lines per step, every step covered.

        ``count`` (k, channels) holds the lines counted per step (0 where ``held`` is False); returns it
        with one sample per step in that column.
        """
        column = self._log_column
        assert column is not None
        lines = np.where(held, self._count[slots, column], 0).astype(np.float64)  # (k,)
        stats[:, column] = lines[:, None]
        stats[:, column, 1] = 0.0
        count = count.copy()
        count[:, column] = 1
        return count

    def _held_count(self, slots: np.ndarray, count: np.ndarray, running: np.ndarray) -> np.ndarray:
        """Samples per step and channel; a channel flatlined in a running step (stuck) counts as none (spec.flatline_samples)."""
        if not self.spec.flatline_samples:
            return count
        # Only while running: a stopped machine's current or vibration may read one constant value.
        # Never the running channel itself: a drive may report its speed setpoint, exactly constant.
        flat = (count >= self.spec.flatline_samples) & (self._min[slots] == self._max[slots])
        if self._run_column is not None:
            flat[:, self._run_column] = False
        return np.where(flat & running[:, None], 0, count)

    def _running(self, slots: np.ndarray, count: np.ndarray) -> np.ndarray:
        """(k,) bool: the machine ran throughout each step (no run-up, coast-down or standstill)."""
        if self._run_column is None:
            return np.ones(len(slots), dtype=bool)
        slowest = self._min[slots, self._run_column]
        running: np.ndarray = (count[:, self._run_column] > 0) & (slowest > self.spec.running_min)
        return running

    def _window_logs(self, start: float, end: float) -> tuple[LogRecord, ...]:
        inside = [r for r in self._logs if start <= r.ts < end]
        next_start = end + self.spec.hop_s - self.spec.length_s
        while self._logs and self._logs[0].ts < next_start:
            self._logs.popleft()  # no window still to come covers it
        if len(inside) > self.spec.max_log_lines:
            ranked = sorted(range(len(inside)), key=lambda i: (_LEVEL_RANK[inside[i].level], i), reverse=True)
            inside = [inside[i] for i in sorted(ranked[: self.spec.max_log_lines])]
        return tuple(inside)

    def _window_waveforms(self, start: float, end: float) -> tuple[Waveform, ...]:
        latest: dict[str, Waveform] = {}
        for burst in self._waveforms:
            if start <= burst.t0 < end:
                latest[burst.channel] = burst
        return tuple(latest.values())


@dataclass
class Windower:
    """Windowers for every asset of a stream: the edge agent's and offline scoring's shared front."""

    spec: WindowSpec
    assets: dict[str, AssetWindower] = field(default_factory=dict)
    every: int = 1
    """Build only every n-th window of each asset (training needs fewer of the overlapping windows)."""
    rated_currents: dict[str, float] = field(default_factory=dict)
    """asset_id -> rated current, for the assets whose rating plates are known."""
    backlog: DerivedBacklog | None = None
    """Shared by the assets' histories (models.history.DerivedBacklog); one is made for the spec when None."""

    def __post_init__(self) -> None:
        if self.backlog is None:
            self.backlog = DerivedBacklog(self.spec)

    def asset(self, site: str, asset_id: str, asset_type: str | None = None) -> AssetWindower:
        windower = self.assets.get(asset_id)
        if windower is None:
            rated = self.rated_currents.get(asset_id)
            windower = AssetWindower(self.spec, site, asset_id, asset_type, self.every, rated, self.backlog)
            self.assets[asset_id] = windower
        return windower

    def add(self, message: Telemetry | LogRecord) -> AssetWindower:
        if isinstance(message, Telemetry):
            windower = self.asset(message.site, message.asset_id, message.asset_type)
            windower.add_telemetry(message)
        else:
            windower = self.asset(message.site, message.asset_id)
            windower.add_log(message)
        return windower


def windows_from_messages(
    messages: Iterable[Telemetry | LogRecord], spec: WindowSpec, every: int = 1, rated_currents: dict[str, float] | None = None
) -> Iterator[Window]:
    """Every (``every``-th) window of a finite, time-ordered message stream (a dataset directory), deterministically;
    ``rated_currents``: asset_id -> rated current where known (DatasetMeta.nameplates)."""
    windower = Windower(spec, every=every, rated_currents=dict(rated_currents or {}))
    for message in messages:
        yield from windower.add(message).ready()
    for asset in windower.assets.values():
        yield from asset.flush()
