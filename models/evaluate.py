"""`forewarn model evaluate`: a bundle's quality, latency and size on dataset directories, through the runtime.

Windows are cut by the bundle's own WindowSpec with the shared windowing, scored by the same
``Predictor`` the gateway runs (featurisation, ONNX Runtime, evidence), and compared with
ground truth from labels.jsonl. No torch.

Quality is scored on the windows where the machine ran (``ModelOutput.running``): a stopped
machine carries no fault signature in its sensors, so a fault labelled during a stop cannot
be seen by any model and would only measure the duty cycle. ``idle_windows`` counts the
windows left out, and ``all_windows`` repeats the quality figures over every window.

Latency is measured on real windows of the dataset after a warm-up, one thread:
``latency_ms_p50``/``p99`` is ``Predictor.predict([window])`` per window (featurisation, graph
and evidence: what the gateway pays per window), ``onnx_latency_ms_p50`` the graph alone at
batch 1, ``windows_per_s`` the whole predict path on batches of 64.

``errors`` says where the misses are: wrong running windows grouped by dataset, asset, truth and
prediction, most windows first, the largest with the inputs their verdict rests on
(``rests_on``: masked in turn, models.explain). A macro-F1 moves by whole classes, and a class's F1 is usually
held down by one or two machines (a slow winding, a pump on the flat of its curve), which the
per-class table cannot show and the reliability engineer has to look at first.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.bundle import bundle_bytes
from models.data import labelled_windows
from models.explain import explain
from models.metrics import credit_any_truth, summary
from models.runtime import Bundle, Predictor
from models.windowing import Window

TIMED_WINDOWS = 200
ERROR_GROUPS = 20
"""How many (dataset, asset, truth, prediction) groups ``errors`` lists."""
EXPLAINED_GROUPS = 5
RESTS_ON = 3
"""The largest EXPLAINED_GROUPS error groups name the RESTS_ON inputs their verdict rests on most."""


def _truth(
    directories: Sequence[Path], bundle: Bundle, limit: int | None
) -> tuple[list[Window], list[str], list[tuple[str, ...]], np.ndarray, np.ndarray]:
    windows, labels, truths, ttf, source = [], [], [], [], []
    for d, directory in enumerate(directories):
        for window, label, hours, right in labelled_windows(Path(directory), bundle.spec):
            windows.append(window)
            labels.append(label)
            truths.append(right)
            ttf.append(np.nan if hours is None else hours)
            source.append(d)
            if limit is not None and len(windows) >= limit:
                return windows, labels, truths, np.asarray(ttf), np.asarray(source, dtype=np.int64)
    return windows, labels, truths, np.asarray(ttf), np.asarray(source, dtype=np.int64)


def evaluate(
    bundle: Bundle, directories: Sequence[Path], threads: int = 1, limit: int | None = None, timed: int = TIMED_WINDOWS
) -> dict[str, Any]:
    """Every number `model evaluate --json` prints."""
    predictor = Predictor(bundle, threads=threads)
    windows, truth, right, true_ttf, source = _truth(directories, bundle, limit)
    labels = list(bundle.labels) + sorted(
        {t for ts in right for t in ts if t not in bundle.labels}
    )  # unknown faults count as misses
    k = len(labels)
    probs = np.zeros((len(windows), k))
    anomaly = np.zeros(len(windows))
    pred_ttf = np.full(len(windows), np.nan)
    ran = np.ones(len(windows), dtype=bool)
    for at in range(0, len(windows), 256):
        for i, out in enumerate(predictor.predict(windows[at : at + 256]), start=at):
            probs[i, : len(bundle.labels)] = [out.probabilities[label] for label in bundle.labels]
            anomaly[i] = out.anomaly_score
            pred_ttf[i] = np.nan if out.ttf_hours is None else out.ttf_hours
            ran[i] = out.running
    y = credit_any_truth(
        np.array([labels.index(t) for t in truth], dtype=np.int64),
        probs.argmax(axis=1),
        [[labels.index(t) for t in ts] for ts in right],
    )
    result: dict[str, Any] = {"model_version": bundle.version, "datasets": [str(d) for d in directories], "labels": labels}
    result.update(summary(y[ran], probs[ran], anomaly[ran], true_ttf[ran], pred_ttf[ran], labels))
    everything = summary(y, probs, anomaly, true_ttf, pred_ttf, labels)
    result["idle_windows"] = int((~ran).sum())
    if len(directories) > 1:
        result["by_dataset"] = {}
        for d, directory in enumerate(directories):
            s = ran & (source == d)
            one = summary(y[s], probs[s], anomaly[s], true_ttf[s], pred_ttf[s], labels)
            result["by_dataset"][str(directory)] = {
                k: one[k] for k in ("macro_f1", "accuracy", "anomaly_auroc", "ttf_mae_hours", "windows")
            }
    result["errors"] = error_groups(y, probs.argmax(axis=1), ran, windows, source, directories, labels, predictor=predictor)
    result["all_windows"] = {
        k: everything[k] for k in ("macro_f1", "accuracy", "anomaly_auroc", "ttf_mae_hours", "per_class", "windows")
    }
    result.update(timing(predictor, windows, timed))
    result["bundle_bytes"] = bundle_bytes(bundle.path)
    return result


def error_groups(
    y: np.ndarray,
    predicted: np.ndarray,
    ran: np.ndarray,
    windows: Sequence[Window],
    source: np.ndarray,
    directories: Sequence[Path],
    labels: Sequence[str],
    top: int = ERROR_GROUPS,
    predictor: Predictor | None = None,
) -> list[dict[str, Any]]:
    """The wrong running windows, grouped by (dataset, asset, truth, prediction), the largest ``top`` groups.

    With the ``predictor`` that scored them, the largest EXPLAINED_GROUPS also say which inputs
    their verdict rests on (``rests_on``, models.explain): the first thing to look at in a miss.
    """
    groups: dict[tuple[int, str, int, int], list[int]] = {}
    for i in map(int, np.flatnonzero(ran & (y != predicted))):
        groups.setdefault((int(source[i]), windows[i].asset_id, int(y[i]), int(predicted[i])), []).append(i)
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))[:top]
    rows = []
    for rank, ((d, asset, t, p), members) in enumerate(ranked):
        ends = [windows[i].end for i in members]
        row: dict[str, Any] = {
            "dataset": Path(directories[d]).name,
            "asset_id": asset,
            "truth": labels[t],
            "predicted": labels[p],
            "windows": len(members),
            "first_end": min(ends),
            "last_end": max(ends),
        }
        if predictor is not None and rank < EXPLAINED_GROUPS:
            why = explain(predictor, [windows[i] for i in members], called=labels[p])
            row["rests_on"] = [{"input": g["group"], "flips": g["flipped"]} for g in why["groups"][:RESTS_ON]]  # type: ignore[index]
        rows.append(row)
    return rows


def timing(predictor: Predictor, windows: Sequence[Window], timed: int = TIMED_WINDOWS) -> dict[str, Any]:
    """Per-window latency of the whole predict path (batch 1), of the graph alone, and batched throughput."""
    if not windows:
        return {"latency_ms_p50": None, "latency_ms_p99": None, "onnx_latency_ms_p50": None, "windows_per_s": None}
    rng = np.random.default_rng(0)
    sample = [windows[i] for i in rng.choice(len(windows), size=min(timed, len(windows)), replace=False)]
    for w in sample[:20]:  # warm-up: sessions, caches, tokenizer
        predictor.predict([w])
    per_window = []
    for w in sample:
        t0 = time.perf_counter()
        predictor.predict([w])
        per_window.append(time.perf_counter() - t0)
    features = predictor.featuriser(sample)
    graph = []
    for i in range(len(sample)):
        one = type(features)(features.sensors[i : i + 1], features.tokens[i : i + 1], features.line_index[i : i + 1])
        t0 = time.perf_counter()
        predictor.run(one)
        graph.append(time.perf_counter() - t0)
    batch = (sample * (1 + 64 // len(sample)))[:64]
    predictor.predict(batch)
    batched = []
    for _ in range(5):
        t0 = time.perf_counter()
        predictor.predict(batch)
        batched.append(time.perf_counter() - t0)
    return {
        "latency_ms_p50": round(statistics.median(per_window) * 1e3, 3),
        "latency_ms_p99": round(float(np.percentile(per_window, 99)) * 1e3, 3),
        "onnx_latency_ms_p50": round(statistics.median(graph) * 1e3, 3),
        "windows_per_s": round(64 / statistics.median(batched), 1),
        "timed_windows": len(sample),
        "threads": predictor.session.get_session_options().intra_op_num_threads,
    }
