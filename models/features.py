"""Featurisation: a Window becomes the model's input, the same way in training and on the gateway.

Token layout of one window (T = 1 + steps + log_tokens tokens, fixed by the bundle):

    position  0            1 .. steps                 steps+1 .. T-1
              [CLS]        one sensor token per step  log word pieces: line [SEP] line [SEP] ... [PAD]

A sensor token is a vector of ``channels x (mean, std, min, max)`` z-scores against the
bundle's healthy baseline for the asset's type (the global baseline when the type is
unknown), clipped to +-clip, followed by one presence flag per channel. A channel the
asset lacks, or a step without samples, is zero with presence 0: masked, never imputed.

Log lines are the window's lines, deduplicated by text (latest kept), chosen most severe
then latest until the word-piece budget is full, then laid out in time order, each cut to
``line_tokens`` pieces and closed by ``[SEP]``. ``line_index`` tells which of the window's
lines each piece came from (-1 for [SEP] and padding), so attention over pieces can be
summed per line for evidence.

numpy only (no torch): the edge runtime imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from models.derived import derive, running
from models.tokenizer import LogTokenizer, log_text
from models.windowing import STATS, Window, WindowSpec

GLOBAL = "*"
"""The baseline used for an asset whose type the bundle does not know."""

DERIVED_STD_FLOOR = 0.05
"""Floor of an asset's own spread of a derived feature, as a fraction of its type's spread."""

_LEVEL_RANK = {"DEBUG": 0, "INFO": 1, "NOTICE": 2, "WARNING": 3, "ALARM": 4, "ERROR": 5, "CRITICAL": 6}


class LogLine(Protocol):
    """What featurisation needs of a log line (a LogRecord has it; so do cached training rows)."""

    @property
    def ts(self) -> float: ...
    @property
    def level(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class FeatureSpec:
    """The token budget; saved in the bundle next to the WindowSpec."""

    log_tokens: int = 48
    """Word pieces (and [SEP]s) for the window's log lines."""
    line_tokens: int = 12
    """At most this many pieces of one line."""
    clip: float = 8.0
    """Sensor z-scores are clipped to +-clip."""
    derived: tuple[str, ...] = ()
    """Derived features (models.derived.DERIVED) appended to each sensor token, each with a presence flag."""
    relative: bool = False
    """Append each step's deviation from the asset's running reference (Window.reference): channel
    means and derived features, each with a presence flag."""
    context: tuple[str, ...] = ()
    """Channels that describe the machine's surroundings, not its health (the site's ambient
    temperature): the model reads them only through the derived features that subtract them
    (the rises over ambient), and their own columns are encoded as a channel that sent nothing.
    An evening's cooling is no fault, yet against the asset's last six hours it is a deviation
    like any other, and a site colder than any the training saw is an input the model never met."""

    def __post_init__(self) -> None:
        assert self.log_tokens >= 2 and 1 <= self.line_tokens < self.log_tokens, "log budget must fit a line and its [SEP]"
        assert self.clip > 0, "clip must be positive"

    def sensor_features(self, channels: int, spectral: int = 0) -> int:
        """Width of one sensor token: z of each statistic of each channel, a presence flag per channel,
        then z of each derived feature and its presence flag, the running reference's columns, and
        last ``spectral`` columns of band spectra (WindowSpec.spectral_features)."""
        width = channels * (len(STATS) + 1) + 2 * len(self.derived)
        return width + (2 * channels + 2 * len(self.derived) if self.relative else 0) + spectral

    def tokens(self, spec: WindowSpec) -> int:
        return 1 + spec.steps + self.log_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "derived": list(self.derived), "context": list(self.context)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(**{**data, "derived": tuple(data.get("derived", ())), "context": tuple(data.get("context", ()))})


@dataclass(frozen=True)
class Normaliser:
    """Healthy baseline of every asset type: per channel and statistic, and per derived feature.

    What sensor z-scores and channel evidence are measured against. Index 0 of the types is
    GLOBAL, used for an asset of unknown type.
    """

    channels: tuple[str, ...]
    asset_types: tuple[str, ...]
    mean: np.ndarray
    """(types, channels, stats) float64."""
    std: np.ndarray
    """(types, channels, stats) float64, > 0."""
    known: np.ndarray
    """(types, channels) bool: assets of this type have this channel."""
    derived: tuple[str, ...] = ()
    derived_mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """(types, derived) float64."""
    derived_std: np.ndarray = field(default_factory=lambda: np.ones((0, 0)))
    derived_known: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    spectral_mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """(types, S * B) float64: mean of each spectral channel's log band shares (WindowSpec.spectral_channels)
    over the training windows of the type; (types, 0) without spectra."""
    spectral_std: np.ndarray = field(default_factory=lambda: np.ones((0, 0)))

    def __post_init__(self) -> None:
        shape = (len(self.asset_types), len(self.channels), len(STATS))
        assert self.asset_types and self.asset_types[0] == GLOBAL, "the first baseline must be the global one"
        assert self.mean.shape == shape and self.std.shape == shape, f"baseline arrays must be {shape}"
        assert self.known.shape == shape[:2], f"known must be {shape[:2]}"
        assert (self.std > 0).all(), "baseline std must be positive"
        if not self.derived:  # no derived features: empty (types, 0) arrays
            empty = np.zeros((shape[0], 0))
            object.__setattr__(self, "derived_mean", empty)
            object.__setattr__(self, "derived_std", empty + 1.0)
            object.__setattr__(self, "derived_known", empty.astype(bool))
        d = (shape[0], len(self.derived))
        assert self.derived_mean.shape == self.derived_std.shape == self.derived_known.shape == d, (
            f"derived baselines must be {d}"
        )
        assert (self.derived_std > 0).all(), "derived baseline std must be positive"
        if self.spectral_mean.size == 0:
            object.__setattr__(self, "spectral_mean", np.zeros((shape[0], 0)))
            object.__setattr__(self, "spectral_std", np.ones((shape[0], 0)))
        assert self.spectral_mean.shape == self.spectral_std.shape and len(self.spectral_mean) == shape[0], (
            "spectral baselines must be (types, S * B)"
        )
        assert (self.spectral_std > 0).all(), "spectral baseline std must be positive"

    def type_index(self, asset_type: str | None) -> int:
        try:
            return self.asset_types.index(asset_type) if asset_type else 0
        except ValueError:
            return 0

    @classmethod
    def fit(
        cls,
        channels: Sequence[str],
        stats: np.ndarray,
        counts: np.ndarray,
        asset_types: Sequence[str | None],
        healthy: np.ndarray,
        derived: tuple[str, ...] = (),
        min_values: int = 10,
        lagged: np.ndarray | None = None,
        lagged_channels: tuple[str, ...] = (),
        rated_current: np.ndarray | None = None,
        pump_slope: np.ndarray | None = None,
        spectra: np.ndarray | None = None,
    ) -> Normaliser:
        """Fit from windows: stats (N, steps, C, 4), counts (N, steps, C), one type per window, healthy (N,) bool,
        lagged (N, steps, L) mean squares of lagged_channels (WindowSpec.lagged), rated_current (N,) NaN where unknown,
        pump_slope (N,) the pumps' own curve slopes (Window.pump_slope), NaN where none, spectra (N, steps, S, B)
        (Window.spectra). Spectra are scaled by every training window's spread, faulty ones included: a
        single healthy recording's bands barely move, and against their spread every fault would clip."""
        n, steps, c, k = stats.shape
        assert counts.shape == stats.shape[:3] and len(asset_types) == n and healthy.shape == (n,), "inconsistent arrays"
        names = (GLOBAL, *sorted({t for t in asset_types if t}))
        type_of = np.array([names.index(t) if t else 0 for t in asset_types], dtype=np.int64)

        def channel_values(rows: slice) -> tuple[np.ndarray, np.ndarray]:
            x = stats[rows].astype(np.float64)
            present = (counts[rows] > 0)[..., None] & np.isfinite(x)
            return x.reshape(len(x), steps, c * k), present.reshape(len(x), steps, c * k)

        def derived_values(rows: slice) -> tuple[np.ndarray, np.ndarray]:
            lag = None if lagged is None else lagged[rows]
            rated = None if rated_current is None else rated_current[rows]
            slope = None if pump_slope is None else pump_slope[rows]
            x = derive(derived, tuple(channels), stats[rows], counts[rows], lag, lagged_channels, rated, slope)
            return x, np.isfinite(x)

        mean, std, known = _baseline(channel_values, n, type_of, healthy, len(names), min_values)
        d_mean, d_std, d_known = _baseline(derived_values, n, type_of, healthy, len(names), min_values)
        s_mean = s_std = np.zeros((len(names), 0))
        if spectra is not None and spectra.size:

            def spectral_values(rows: slice) -> tuple[np.ndarray, np.ndarray]:
                x = spectra[rows].reshape(len(spectra[rows]), steps, -1).astype(np.float64)
                return x, np.isfinite(x)

            s_mean, s_std, _ = _baseline(spectral_values, n, type_of, np.ones(n, dtype=bool), len(names), min_values)
        return cls(
            tuple(channels),
            names,
            mean.reshape(len(names), c, k),
            std.reshape(len(names), c, k),
            np.asarray(known.reshape(len(names), c, k).any(axis=-1)),
            derived,
            d_mean,
            d_std,
            d_known,
            s_mean,
            s_std,
        )

    def to_dict(self) -> dict[str, Any]:
        spectral = {}
        if self.spectral_mean.shape[1]:  # a baseline without spectra is written as before they existed
            spectral = {
                "spectral_mean": np.round(self.spectral_mean, 6).tolist(),
                "spectral_std": np.round(self.spectral_std, 6).tolist(),
            }
        return {
            "channels": list(self.channels),
            "stats": list(STATS),
            "asset_types": list(self.asset_types),
            "mean": np.round(self.mean, 6).tolist(),
            "std": np.round(self.std, 6).tolist(),
            "known": self.known.tolist(),
            "derived": list(self.derived),
            "derived_mean": np.round(self.derived_mean, 6).tolist(),
            "derived_std": np.round(self.derived_std, 6).tolist(),
            "derived_known": self.derived_known.tolist(),
            **spectral,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normaliser:
        assert list(data["stats"]) == list(STATS), f"baseline statistics {data['stats']} are not {list(STATS)}"
        derived = tuple(data.get("derived", ()))
        extra = {}
        if derived:
            extra = {
                "derived_mean": np.asarray(data["derived_mean"], dtype=np.float64),
                "derived_std": np.asarray(data["derived_std"], dtype=np.float64),
                "derived_known": np.asarray(data["derived_known"], dtype=bool),
            }
        if "spectral_mean" in data:
            extra["spectral_mean"] = np.asarray(data["spectral_mean"], dtype=np.float64)
            extra["spectral_std"] = np.asarray(data["spectral_std"], dtype=np.float64)
        return cls(
            channels=tuple(data["channels"]),
            asset_types=tuple(data["asset_types"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.asarray(data["std"], dtype=np.float64),
            known=np.asarray(data["known"], dtype=bool),
            derived=derived,
            **extra,
        )


def _baseline(
    values: Callable[[slice], tuple[np.ndarray, np.ndarray]],
    n: int,
    type_of: np.ndarray,
    healthy: np.ndarray,
    n_types: int,
    min_values: int,
    chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, std and presence of K columns per type, over the steps of healthy windows (all windows when too few).

    ``values(rows)`` gives (values, present) of shape (rows, steps, K); accumulated in chunks to bound memory.
    Types (index >= 1) with too few values borrow the global (index 0) baseline.
    """
    sums: dict[tuple[int, bool], np.ndarray] = {}
    for at in range(0, n, chunk):
        rows = slice(at, min(at + chunk, n))
        x, present = values(rows)
        x = np.where(present, x, 0.0)
        for t in range(n_types):
            in_type = np.ones(x.shape[0], dtype=bool) if t == 0 else type_of[rows] == t
            for only_healthy in (True, False):
                sel = in_type & healthy[rows] if only_healthy else in_type
                acc = sums.setdefault((t, only_healthy), np.zeros((3, x.shape[-1])))
                acc[0] += present[sel].sum(axis=(0, 1))
                acc[1] += x[sel].sum(axis=(0, 1))
                acc[2] += (x[sel] ** 2).sum(axis=(0, 1))
    k = next(iter(sums.values())).shape[1] if sums else 0
    mean, std = np.zeros((n_types, k)), np.ones((n_types, k))
    known, done = np.zeros((n_types, k), dtype=bool), np.zeros((n_types, k), dtype=bool)
    for t in range(n_types):
        known[t] = sums[(t, False)][0] > 0 if sums else False
        for only_healthy in (True, False):
            count, total, squares = sums[(t, only_healthy)] if sums else (np.zeros(k),) * 3
            with np.errstate(invalid="ignore", divide="ignore"):
                m = total / count
                s = np.sqrt(np.maximum(squares / count - m * m, 0.0))
            fill = (count >= min_values) & ~done[t]
            mean[t][fill], std[t][fill] = m[fill], s[fill]
            done[t] |= fill
    for t in range(1, n_types):
        mean[t][~done[t]], std[t][~done[t]] = mean[0][~done[t]], std[0][~done[t]]
    return mean, np.maximum(std, 1e-3 + 1e-3 * np.abs(mean)), known


def _stack_reference(references: Sequence[np.ndarray | None], rows: int) -> np.ndarray:
    """(N, rows, 2) from each window's reference, NaN (masked) for a window without one."""
    missing = np.full((rows, 2), np.nan, dtype=np.float32)
    return np.stack([missing if r is None else r for r in references])


@dataclass(frozen=True)
class Features:
    """Model input of a batch of windows."""

    sensors: np.ndarray
    """(batch, steps, channels * 5) float32."""
    tokens: np.ndarray
    """(batch, log_tokens) int64, 0 = [PAD]."""
    line_index: np.ndarray
    """(batch, log_tokens) int32: which of the window's log lines a piece came from, -1 for [SEP]/[PAD]."""


class Featuriser:
    """Window -> model input, and the channel deviations that evidence reports. One implementation."""

    def __init__(self, spec: WindowSpec, features: FeatureSpec, normaliser: Normaliser, tokenizer: LogTokenizer) -> None:
        assert normaliser.channels == spec.channels, "baseline and window spec must list the same channels"
        assert normaliser.derived == features.derived, "baseline and feature spec must list the same derived features"
        assert not spec.reference_derived or spec.reference_derived == features.derived, (
            "the window's derived reference must list the feature spec's derived features"
        )
        self.spec = spec
        self.features = features
        self.normaliser = normaliser
        self.tokenizer = tokenizer
        self._context = np.array([c in features.context for c in spec.channels], dtype=bool)
        spectral = len(spec.spectral_channels) * spec.spectral_bands
        assert normaliser.spectral_mean.shape[1] == spectral, "baseline and window spec must read the same spectra"

    def __call__(self, windows: Sequence[Window]) -> Features:
        stats = np.stack([w.stats for w in windows]) if windows else np.zeros((0, self.spec.steps, len(self.spec.channels), 4))
        counts = np.stack([w.counts for w in windows]) if windows else np.zeros(stats.shape[:3], dtype=np.int32)
        types = self.type_indices([w.asset_type for w in windows])
        tokens, line_index = self.log_tokens([w.logs for w in windows])
        reference = reference_derived = None
        if self.features.relative and windows:
            reference = _stack_reference([w.reference for w in windows], len(self.spec.channels))
            if self.spec.reference_derived:
                reference_derived = _stack_reference([w.reference_derived for w in windows], len(self.spec.reference_derived))
        lagged = None
        if self.spec.lagged and windows:
            missing = np.full((self.spec.steps, len(self.spec.lagged)), np.nan, dtype=np.float32)
            lagged = np.stack([missing if w.lagged is None else w.lagged for w in windows])
        rated = np.array([np.nan if w.rated_current_a is None else w.rated_current_a for w in windows])
        slope = np.array([np.nan if w.pump_slope is None else w.pump_slope for w in windows])
        spectra = None
        if self.spec.spectral_channels and windows:
            shape = (self.spec.steps, len(self.spec.spectral_channels), self.spec.spectral_bands)
            missing_spectra = np.full(shape, np.nan, dtype=np.float32)
            spectra = np.stack([missing_spectra if w.spectra is None else w.spectra for w in windows])
        sensors = self.sensors(stats, counts, types, reference, reference_derived, lagged, rated, slope, spectra)
        return Features(sensors, tokens, line_index)

    def type_indices(self, asset_types: Sequence[str | None]) -> np.ndarray:
        return np.array([self.normaliser.type_index(t) for t in asset_types], dtype=np.int64)

    def _check(self, stats: np.ndarray, counts: np.ndarray) -> None:
        shape = (self.spec.steps, len(self.spec.channels), len(STATS))
        assert stats.shape[1:] == shape, f"stats must be (batch, {shape}), got {stats.shape}"
        assert counts.shape == stats.shape[:3], f"counts must be {stats.shape[:3]}, got {counts.shape}"

    def sensors(
        self,
        stats: np.ndarray,
        counts: np.ndarray,
        types: np.ndarray,
        reference: np.ndarray | None = None,
        reference_derived: np.ndarray | None = None,
        lagged: np.ndarray | None = None,
        rated_current: np.ndarray | None = None,
        pump_slope: np.ndarray | None = None,
        spectra: np.ndarray | None = None,
    ) -> np.ndarray:
        """stats (N, steps, C, 4), counts (N, steps, C), types (N,), reference (N, C, 2), reference_derived (N, D, 2),
        lagged (N, steps, L), rated_current (N,), pump_slope (N,), spectra (N, steps, S, B) -> (N, steps, F) float32."""
        self._check(stats, counts)
        norm = self.normaliser
        z = (stats - norm.mean[types][:, None]) / norm.std[types][:, None]  # (N, steps, C, 4)
        present = (counts > 0) & norm.known[types][:, None] & ~self._context  # (N, steps, C)
        clip = self.features.clip
        z = np.where(present[..., None] & np.isfinite(z), np.clip(z, -clip, clip), 0.0)
        n, steps, c = stats.shape[:3]
        parts = [z.reshape(n, steps, c * len(STATS)), present]
        relative = self.features.relative
        if relative and reference is None:
            reference = np.full((n, c, 2), np.nan)
        d = d_ref = None
        if norm.derived:
            if relative:  # the reference's means as one more step: one derive call for both (cheaper at batch 1)
                assert reference is not None
                ref_stats = np.full((n, 1, c, len(STATS)), np.nan, dtype=stats.dtype)
                ref_stats[:, 0, :, 0] = reference[:, :, 0]
                both = derive(
                    norm.derived,
                    self.spec.channels,
                    np.concatenate([stats, ref_stats], axis=1),
                    np.concatenate([counts, np.isfinite(ref_stats[..., 0]).astype(counts.dtype)], axis=1),
                    None if lagged is None else np.concatenate([lagged, np.full_like(lagged[:, :1], np.nan)], axis=1),
                    self.spec.lagged,
                    rated_current,
                    pump_slope,
                )
                d, d_ref = both[:, :steps], both[:, steps:]  # (N, steps, D), (N, 1, D)
            else:
                d = derive(norm.derived, self.spec.channels, stats, counts, lagged, self.spec.lagged, rated_current, pump_slope)
            zd = (d - norm.derived_mean[types][:, None]) / norm.derived_std[types][:, None]
            known = np.isfinite(zd) & norm.derived_known[types][:, None]
            parts += [np.where(known, np.clip(zd, -clip, clip), 0.0), known]
        if relative:
            assert reference is not None
            if self.spec.reference_derived:
                if reference_derived is None:
                    reference_derived = np.full((n, len(self.spec.reference_derived), 2), np.nan)
                parts += self._relative(stats, types, reference, present, d, None, reference_derived)
            else:
                parts += self._relative(stats, types, reference, present, d, d_ref)
        if self.spec.spectral_channels:
            parts += self._spectral(spectra, types, n)
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def _spectral(self, spectra: np.ndarray | None, types: np.ndarray, n: int) -> list[np.ndarray]:
        """z of each spectral channel's log band shares against the type's training spread, clipped, then a
        presence flag per spectral channel; zero with presence 0 where a step has no spectrum."""
        steps, s, b = self.spec.steps, len(self.spec.spectral_channels), self.spec.spectral_bands
        if spectra is None:
            spectra = np.full((n, steps, s, b), np.nan, dtype=np.float32)
        assert spectra.shape == (n, steps, s, b), f"spectra must be {(n, steps, s, b)}, got {spectra.shape}"
        norm, clip = self.normaliser, self.features.clip
        z = (spectra.reshape(n, steps, s * b) - norm.spectral_mean[types][:, None]) / norm.spectral_std[types][:, None]
        present = np.isfinite(spectra).all(axis=-1)  # (N, steps, S)
        known = np.repeat(present, b, axis=-1)
        return [np.where(known, np.clip(z, -clip, clip), 0.0), present]

    def _relative(
        self,
        stats: np.ndarray,
        types: np.ndarray,
        reference: np.ndarray,
        present: np.ndarray,
        d: np.ndarray | None,
        d_ref: np.ndarray | None,
        reference_derived: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """Deviation of each step from the asset's own running reference: channel means, then derived features.

        Derived features are measured against the asset's own history of them when the window
        carries it (``reference_derived``), in units of their own spread (floored at a twentieth
        of the type's spread, so a machine that never changed load cannot make noise look huge).
        Otherwise they are derived from the reference's channel means and scaled by the type's
        spread, which is blind to drifts smaller than the differences between machines.
        """
        norm, clip = self.normaliser, self.features.clip
        ref_mean, ref_std = reference[:, None, :, 0], reference[:, None, :, 1]  # (N, 1, C)
        scale = np.maximum(np.nan_to_num(ref_std), 1e-3 + 0.02 * np.abs(np.nan_to_num(ref_mean)))
        z = (stats[..., 0] - ref_mean) / scale  # (N, steps, C)
        known = present & np.isfinite(z)
        parts = [np.where(known, np.clip(z, -clip, clip), 0.0), known]
        if d is not None and reference_derived is not None:
            type_std = norm.derived_std[types][:, None]  # (N, 1, D)
            own_mean, own_std = reference_derived[:, None, :, 0], reference_derived[:, None, :, 1]  # (N, 1, D)
            zd = (d - own_mean) / np.maximum(np.nan_to_num(own_std), DERIVED_STD_FLOOR * type_std)
            known_d = np.isfinite(zd) & norm.derived_known[types][:, None]
            parts += [np.where(known_d, np.clip(zd, -clip, clip), 0.0), known_d]
        elif d is not None and d_ref is not None:
            zd = (d - d_ref) / norm.derived_std[types][:, None]  # (N, steps, D)
            known_d = np.isfinite(zd) & norm.derived_known[types][:, None]
            parts += [np.where(known_d, np.clip(zd, -clip, clip), 0.0), known_d]
        return parts

    def running(self, stats: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """(N,) bool: the machine ran in most of the window (models.derived.running)."""
        return running(self.spec.channels, stats, counts, self.spec.running_channel)

    def deviations(self, stats: np.ndarray, counts: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per window, channel and statistic: mean z over the steps with samples, and the raw mean. (N, C, 4) each.

        NaN where the channel had no samples or the asset type lacks it.
        """
        self._check(stats, counts)
        norm = self.normaliser
        present = ((counts > 0) & norm.known[types][:, None])[..., None] & np.isfinite(stats)  # (N, steps, C, 4)
        n = present.sum(axis=1)  # (N, C, 4)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(present, stats, 0.0).sum(axis=1) / n
        z = (value - norm.mean[types]) / norm.std[types]
        return z, value

    def log_tokens(self, logs: Sequence[Sequence[LogLine]]) -> tuple[np.ndarray, np.ndarray]:
        """Log lines of each window -> tokens (N, log_tokens) int64 and line_index (N, log_tokens) int32."""
        budget, per_line = self.features.log_tokens, self.features.line_tokens
        tokens = np.zeros((len(logs), budget), dtype=np.int64)
        line_index = np.full((len(logs), budget), -1, dtype=np.int32)
        texts = list(dict.fromkeys(log_text(r.level, r.text) for lines in logs for r in lines))
        ids = dict(zip(texts, self.tokenizer.encode(texts), strict=True))
        for row, lines in enumerate(logs):
            latest: dict[str, int] = {}
            for i, r in enumerate(lines):
                latest[log_text(r.level, r.text)] = i  # duplicates: the latest occurrence stands for all
            ranked = sorted(latest.items(), key=lambda kv: (_LEVEL_RANK.get(lines[kv[1]].level, 1), lines[kv[1]].ts, kv[1]))
            chosen: list[tuple[int, tuple[int, ...]]] = []
            left = budget
            for text, i in reversed(ranked):
                pieces = ids[text][: min(per_line, left - 1)]
                if not pieces:
                    continue
                chosen.append((i, pieces))
                left -= len(pieces) + 1
                if left < 2:
                    break
            at = 0
            for i, pieces in sorted(chosen):
                tokens[row, at : at + len(pieces)] = pieces
                line_index[row, at : at + len(pieces)] = i
                tokens[row, at + len(pieces)] = self.tokenizer.sep_id
                at += len(pieces) + 1
            assert at <= budget, "log layout overflowed its budget"
        return tokens, line_index
