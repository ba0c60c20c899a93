"""Quality metrics in numpy: per-class precision/recall/F1, macro-F1, AUROC, confusion matrix.

Shared by training (teacher, student, pruned, INT8 measured on validation windows) and by
``model evaluate`` (the bundle through the runtime), so every number in the report and in
``evaluate --json`` is computed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts: rows are the truth, columns the prediction."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def classification(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and macro-F1 over the classes present in truth or prediction."""
    k = len(labels)
    m = confusion(np.asarray(y_true), np.asarray(y_pred), k)
    tp = np.diag(m).astype(np.float64)
    support, predicted = m.sum(axis=1), m.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    seen = (support > 0) | (predicted > 0)
    per_class = {
        labels[i]: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i in range(k)
        if seen[i]
    }
    return {
        "macro_f1": round(float(f1[seen].mean()) if seen.any() else 0.0, 4),
        "accuracy": round(float(tp.sum() / max(m.sum(), 1)), 4),
        "per_class": per_class,
        "confusion": m.tolist(),
        "windows": int(m.sum()),
    }


def auroc(is_positive: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None without both classes."""
    pos = np.asarray(is_positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    return round(float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)), 4)


def ttf_error(true_hours: np.ndarray, pred_hours: np.ndarray) -> dict[str, Any]:
    """MAE and median absolute error of time to failure where both are known (finite)."""
    t, p = np.asarray(true_hours, dtype=np.float64), np.asarray(pred_hours, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(p)
    if not ok.any():
        return {"ttf_mae_hours": None, "ttf_median_ae_hours": None, "ttf_windows": 0}
    err = np.abs(t[ok] - p[ok])
    return {
        "ttf_mae_hours": round(float(err.mean()), 3),
        "ttf_median_ae_hours": round(float(np.median(err)), 3),
        "ttf_windows": int(ok.sum()),
    }


def credit_any_truth(y_true: np.ndarray, y_pred: np.ndarray, truths: Sequence[Sequence[int]]) -> np.ndarray:
    """The truth to score against: a prediction naming any right answer of its window is right.

    ``truths[i]`` lists the classes that are right for window i (``models.data.Labelled.truths``:
    the label, and other faults present); with one entry or none, the label stands. A window
    with two faults has two right answers, and a single-label metric would otherwise call the
    model wrong for naming the other one.
    """
    y = np.array(y_true, copy=True)
    for i, classes in enumerate(truths):
        if len(classes) > 1 and y_pred[i] in classes:
            y[i] = y_pred[i]
    return y


def summary(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    anomaly: np.ndarray,
    true_ttf: np.ndarray,
    pred_ttf: np.ndarray,
    labels: Sequence[str],
) -> dict[str, Any]:
    """Every quality number of one model on one set of windows; label 0 is "normal"."""
    y_pred = probabilities.argmax(axis=1)
    result = classification(y_true, y_pred, labels)
    result["anomaly_auroc"] = auroc(np.asarray(y_true) != 0, anomaly)
    both = (np.asarray(y_true) != 0) & (y_pred != 0)
    result.update(ttf_error(np.where(both, true_ttf, np.nan), np.where(both, pred_ttf, np.nan)))
    return result
