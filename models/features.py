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

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from models.tokenizer import LogTokenizer, log_text
from models.windowing import STATS, Window, WindowSpec

GLOBAL = "*"
"""The baseline used for an asset whose type the bundle does not know."""

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

    def __post_init__(self) -> None:
        assert self.log_tokens >= 2 and 1 <= self.line_tokens < self.log_tokens, "log budget must fit a line and its [SEP]"
        assert self.clip > 0, "clip must be positive"

    def sensor_features(self, channels: int) -> int:
        """Width of one sensor token: z of each statistic of each channel, then one presence flag per channel."""
        return channels * (len(STATS) + 1)

    def tokens(self, spec: WindowSpec) -> int:
        return 1 + spec.steps + self.log_tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Normaliser:
    """Healthy baseline of every (asset type, channel, statistic): what z-scores and evidence are measured against."""

    channels: tuple[str, ...]
    asset_types: tuple[str, ...]
    """Index 0 is GLOBAL."""
    mean: np.ndarray
    """(types, channels, stats) float64."""
    std: np.ndarray
    """(types, channels, stats) float64, > 0."""
    known: np.ndarray
    """(types, channels) bool: assets of this type have this channel."""

    def __post_init__(self) -> None:
        shape = (len(self.asset_types), len(self.channels), len(STATS))
        assert self.asset_types and self.asset_types[0] == GLOBAL, "the first baseline must be the global one"
        assert self.mean.shape == shape and self.std.shape == shape, f"baseline arrays must be {shape}"
        assert self.known.shape == shape[:2], f"known must be {shape[:2]}"
        assert (self.std > 0).all(), "baseline std must be positive"

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
        min_values: int = 10,
    ) -> Normaliser:
        """Fit from windows: stats (N, steps, C, 4), counts (N, steps, C), one type per window, healthy (N,) bool."""
        n, _, c, k = stats.shape
        assert counts.shape == stats.shape[:3] and len(asset_types) == n and healthy.shape == (n,), "inconsistent arrays"
        names = (GLOBAL, *sorted({t for t in asset_types if t}))
        type_of = np.array([names.index(t) if t else 0 for t in asset_types])
        mean = np.zeros((len(names), c, k))
        std = np.ones((len(names), c, k))
        known = np.zeros((len(names), c), dtype=bool)
        done = np.zeros((len(names), c), dtype=bool)
        for ti, name in enumerate(names):
            rows = np.ones(n, dtype=bool) if name == GLOBAL else type_of == ti
            known[ti] = (counts[rows] > 0).any(axis=(0, 1))
            for subset in (rows & healthy, rows):  # healthy windows when there are enough, else all of them
                m, s, enough = _moments(stats[subset], counts[subset], min_values)
                fill = enough & ~done[ti]
                mean[ti][fill], std[ti][fill] = m[fill], s[fill]
                done[ti] |= fill
        for ti in range(1, len(names)):  # channels with too few values borrow the global baseline
            unset = ~done[ti]
            mean[ti][unset], std[ti][unset] = mean[0][unset], std[0][unset]
        std = np.maximum(std, 1e-3 + 1e-3 * np.abs(mean))
        return cls(tuple(channels), names, mean, std, known)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "stats": list(STATS),
            "asset_types": list(self.asset_types),
            "mean": np.round(self.mean, 6).tolist(),
            "std": np.round(self.std, 6).tolist(),
            "known": self.known.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normaliser:
        assert list(data["stats"]) == list(STATS), f"baseline statistics {data['stats']} are not {list(STATS)}"
        return cls(
            channels=tuple(data["channels"]),
            asset_types=tuple(data["asset_types"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.asarray(data["std"], dtype=np.float64),
            known=np.asarray(data["known"], dtype=bool),
        )


def _moments(stats: np.ndarray, counts: np.ndarray, min_values: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over windows and steps of each (channel, statistic), where samples exist."""
    present = (counts > 0)[..., None] & np.isfinite(stats)  # (n, steps, C, 4)
    values = np.where(present, stats, 0.0).astype(np.float64)
    n = present.sum(axis=(0, 1))  # (C, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = values.sum(axis=(0, 1)) / n
        var = (values**2).sum(axis=(0, 1)) / n - mean**2
    enough = (n >= min_values).all(axis=-1)  # (C,)
    return np.nan_to_num(mean), np.sqrt(np.maximum(np.nan_to_num(var), 0.0)), enough


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
        self.spec = spec
        self.features = features
        self.normaliser = normaliser
        self.tokenizer = tokenizer

    def __call__(self, windows: Sequence[Window]) -> Features:
        stats = np.stack([w.stats for w in windows]) if windows else np.zeros((0, self.spec.steps, len(self.spec.channels), 4))
        counts = np.stack([w.counts for w in windows]) if windows else np.zeros(stats.shape[:3], dtype=np.int32)
        types = self.type_indices([w.asset_type for w in windows])
        tokens, line_index = self.log_tokens([w.logs for w in windows])
        return Features(self.sensors(stats, counts, types), tokens, line_index)

    def type_indices(self, asset_types: Sequence[str | None]) -> np.ndarray:
        return np.array([self.normaliser.type_index(t) for t in asset_types], dtype=np.int64)

    def _check(self, stats: np.ndarray, counts: np.ndarray) -> None:
        shape = (self.spec.steps, len(self.spec.channels), len(STATS))
        assert stats.shape[1:] == shape, f"stats must be (batch, {shape}), got {stats.shape}"
        assert counts.shape == stats.shape[:3], f"counts must be {stats.shape[:3]}, got {counts.shape}"

    def sensors(self, stats: np.ndarray, counts: np.ndarray, types: np.ndarray) -> np.ndarray:
        """stats (N, steps, C, 4), counts (N, steps, C), types (N,) -> (N, steps, C*5) float32."""
        self._check(stats, counts)
        norm = self.normaliser
        z = (stats - norm.mean[types][:, None]) / norm.std[types][:, None]  # (N, steps, C, 4)
        present = (counts > 0) & norm.known[types][:, None]  # (N, steps, C)
        z = np.where(present[..., None] & np.isfinite(z), np.clip(z, -self.features.clip, self.features.clip), 0.0)
        n, steps, c = stats.shape[:3]
        return np.concatenate([z.reshape(n, steps, c * len(STATS)), present], axis=-1).astype(np.float32)

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
