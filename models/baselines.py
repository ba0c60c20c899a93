"""Simple baselines fitted on the same windows as the SLM, so every figure it reports has a yardstick.

A logistic regression and a gradient-boosting classifier read one flat vector per window: per
channel, the window's mean, spread, trend and extremes of its step statistics (and the mean of its band
spectra where it is a waveform channel: models.windowing.band_energies), and for its log
lines the count per level and a hashed bag of their words (the classic "template counts"
baseline of log anomaly detection). An Isolation Forest fitted on the normal training windows
and the reconstruction error of a PCA keeping 95 % of their variance give the unsupervised anomaly
scores. Gradient boosting also regresses the time to failure,
wherever failures are known.

Training side only (scikit-learn): the gateway never loads these.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.data import WindowTable
from models.metrics import auroc, classification

LEVELS = ("DEBUG", "INFO", "NOTICE", "WARNING", "ALARM", "ERROR", "CRITICAL")
WORD_BUCKETS = 256
"""Hashed word-count columns for log text: enough to separate a few hundred templates."""
_WORD = re.compile(r"[A-Za-z_]{2,}")


def window_vectors(table: WindowTable) -> np.ndarray:
    """(N, F) float32: sensor summaries per channel (NaN where absent) and log counts per window."""
    means = table.stats[..., 0]  # (N, steps, C)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice": a channel the window lacks
        sensor = [
            np.nanmean(means, axis=1),
            np.nanstd(means, axis=1),
            np.nanmean(table.stats[..., 1], axis=1),
            np.nanmin(table.stats[..., 2], axis=1),
            np.nanmax(table.stats[..., 3], axis=1),
            _last(means) - _first(means),
        ]
        if table.spectra is not None:  # the waveform channels' band spectra the SLM reads, averaged over the window
            sensor.append(np.nanmean(table.spectra, axis=1).reshape(len(table), -1))
    logs = np.zeros((len(table), len(LEVELS) + WORD_BUCKETS), dtype=np.float32)
    for i, rows in enumerate(table.logs):
        for row in rows:
            if row.level in LEVELS:
                logs[i, LEVELS.index(row.level)] += 1
            for word in _WORD.findall(row.text.lower()):
                logs[i, len(LEVELS) + zlib.crc32(word.encode()) % WORD_BUCKETS] += 1
    return np.concatenate([*sensor, np.log1p(logs)], axis=1).astype(np.float32)


def _first(x: np.ndarray) -> np.ndarray:
    """(N, C): each channel's first step with data (NaN when none)."""
    known = np.isfinite(x)
    first = known.argmax(axis=1)
    return np.where(known.any(axis=1), np.take_along_axis(x, first[:, None, :], axis=1)[:, 0], np.nan)


def _last(x: np.ndarray) -> np.ndarray:
    return _first(x[:, ::-1])


@dataclass
class Baselines:
    """The fitted baselines and the label order they predict in."""

    labels: tuple[str, ...]
    columns: np.ndarray
    """The window_vectors columns that vary in training (a constant or empty one tells nothing)."""
    models: dict[str, Any]
    isolation: Any | None
    pca: Any | None
    """Standardiser + PCA fitted on the normal windows: the reconstruction-error baseline."""
    ttf: Any | None

    def remaining_life(self, table: WindowTable) -> np.ndarray | None:
        """(N,) gradient boosting's time to failure per window (None without failures to learn from)."""
        if self.ttf is None:
            return None
        x = window_vectors(table)[:, self.columns]
        return np.asarray(self.ttf.predict(_fill(x)), dtype=np.float64)

    def anomaly_scores(self, table: WindowTable) -> dict[str, np.ndarray]:
        """(N,) anomaly score per window of each unsupervised baseline (higher: less like the normal training windows)."""
        x = _fill(window_vectors(table)[:, self.columns])
        out: dict[str, np.ndarray] = {}
        if self.isolation is not None:
            out["isolation_forest"] = -self.isolation.score_samples(x)
        if self.pca is not None:
            scaled = self.pca[0].transform(x)
            out["pca_reconstruction"] = ((self.pca[1].inverse_transform(self.pca[1].transform(scaled)) - scaled) ** 2).mean(
                axis=1
            )
        return out

    def score(self, table: WindowTable, y: np.ndarray) -> dict[str, dict[str, Any]]:
        """Per baseline: macro-F1 and accuracy over ``table``'s windows (``y``: label indices), anomaly AUROC, TTF error."""
        x = window_vectors(table)[:, self.columns]
        out: dict[str, dict[str, Any]] = {}
        for name, model in self.models.items():
            predicted = model.predict(_fill(x) if name == "logistic_regression" else x)
            result = classification(y, predicted, self.labels)
            out[name] = {"macro_f1": round(result["macro_f1"], 4), "accuracy": round(result["accuracy"], 4)}
        for name, anomaly in self.anomaly_scores(table).items():
            score = auroc(y != 0, anomaly)
            out[name] = {"anomaly_auroc": None if score is None else round(score, 4)}
        if self.ttf is not None and "gradient_boosting" in out:
            known = np.isfinite(table.ttf_hours)
            if known.any():
                error = self.ttf.predict(_fill(x[known])) - table.ttf_hours[known]
                out["gradient_boosting"]["ttf_rmse_hours"] = round(float(np.sqrt(np.mean(error**2))), 3)
        return out


def _varying(x: np.ndarray) -> np.ndarray:
    """Indices of the columns with two or more distinct values (NaN ignored)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        return np.flatnonzero(np.nanmax(x, axis=0) > np.nanmin(x, axis=0))


def _fill(x: np.ndarray) -> np.ndarray:
    """NaN -> 0 for the models that cannot take missing values (inputs are standardised first)."""
    filled: np.ndarray = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return filled


def fit_baselines(table: WindowTable, y: np.ndarray, labels: Sequence[str], seed: int = 0) -> Baselines:
    """Fit every baseline on the training windows ``table`` with label indices ``y`` (0: normal)."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor, IsolationForest
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    columns = _varying(window_vectors(table))
    x = window_vectors(table)[:, columns]
    models: dict[str, Any] = {}
    if len(np.unique(y)) > 1:
        models["logistic_regression"] = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        models["logistic_regression"].fit(_fill(x), y)
        models["gradient_boosting"] = HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(x, y)
    normal = y == 0
    isolation = IsolationForest(n_estimators=200, random_state=seed).fit(_fill(x[normal])) if normal.sum() >= 10 else None
    pca = None
    if normal.sum() >= 10:
        scaler = StandardScaler().fit(_fill(x[normal]))
        pca = (scaler, PCA(n_components=0.95, random_state=seed).fit(scaler.transform(_fill(x[normal]))))
    known = np.isfinite(table.ttf_hours)
    ttf = None
    if known.sum() >= 10:  # a column empty in just these rows breaks the binning: zeros instead
        ttf = HistGradientBoostingRegressor(max_iter=200, random_state=seed).fit(_fill(x[known]), table.ttf_hours[known])
    return Baselines(tuple(labels), columns, models, isolation, pca, ttf)
