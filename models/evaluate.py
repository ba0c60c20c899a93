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

Where failures are known, ``lead_time`` says how long before each failure the verdict turned
non-normal and stayed so for a few windows (models.leadtime), for the bundle and, with
``--baselines``, for the unsupervised baselines: an anomaly bundle's early warning.

``errors`` says where the misses are: wrong running windows grouped by dataset, asset, truth and
prediction, most windows first, the largest with the inputs their verdict rests on
(``rests_on``: masked in turn, models.explain). A macro-F1 moves by whole classes, and a class's F1 is usually
held down by one or two machines (a slow winding, a pump on the flat of its curve), which the
per-class table cannot show and the reliability engineer has to look at first.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from forewarn.contracts import NORMAL
from forewarn.dataset import read_labels
from models.bundle import bundle_bytes
from models.cascade import Policy, inputs_id, operating_point, point, sweep
from models.data import labelled_windows, load_tables, rul_cap
from models.errors import BundleError
from models.explain import explain
from models.leadtime import lead_times
from models.metrics import auroc, credit_any_truth, summary
from models.runtime import Bundle, Predictor
from models.windowing import Window

ANOMALY = "anomaly"
"""The one fault class of an anomaly bundle (models.unlabelled)."""
TIMED_WINDOWS = 200
DEFAULT_FALSE_ALARM_RATE = 0.01
"""The baselines' alarm threshold for a lead time, when the bundle was not calibrated to a rate (labelled bundles)."""
ERROR_GROUPS = 20
"""How many (dataset, asset, truth, prediction) groups ``errors`` lists."""
EXPLAINED_GROUPS = 5
RESTS_ON = 3
"""The largest EXPLAINED_GROUPS error groups name the RESTS_ON inputs their verdict rests on most."""


Progress = Callable[[int, int, str], None]
"""progress(done, total, note): total 0 while unknown (forewarn.progress.Progress)."""


def _truth(
    directories: Sequence[Path],
    bundle: Bundle,
    limit: int | None,
    bad_lines: list[str] | None = None,
    progress: Progress | None = None,
) -> tuple[list[Window], list[str], list[tuple[str, ...]], np.ndarray, np.ndarray]:
    """The windows with their ground truth; ``bad_lines``: skip invalid lines and list them there (else raise)."""
    windows: list[Window] = []
    labels: list[str] = []
    truths: list[tuple[str, ...]] = []
    ttf: list[float] = []
    source: list[int] = []
    for d, directory in enumerate(directories):

        def bad(number: int, reason: str, directory: Path = Path(directory)) -> None:
            assert bad_lines is not None
            bad_lines.append(f"{directory / 'messages.jsonl'}:{number}: {reason.splitlines()[0]}")

        on_bad = bad if bad_lines is not None else None
        for window, label, hours, right in labelled_windows(Path(directory), bundle.spec, on_bad=on_bad):
            if progress is not None and len(windows) % 1000 == 0:
                progress(len(windows), 0, "windows cut")
            windows.append(window)
            labels.append(label)
            truths.append(right)
            ttf.append(np.nan if hours is None else hours)
            source.append(d)
            if limit is not None and len(windows) >= limit:
                return windows, labels, truths, np.asarray(ttf), np.asarray(source, dtype=np.int64)
    return windows, labels, truths, np.asarray(ttf), np.asarray(source, dtype=np.int64)


ABLATIONS = ("logs", "sensors")


def ablated(windows: Sequence[Window], modality: str) -> list[Window]:
    """The windows with one modality removed: every log line, or every sensor sample."""
    if modality == "logs":
        return [replace(w, logs=()) for w in windows]
    if modality == "sensors":
        return [
            replace(w, stats=np.full_like(w.stats, np.nan), counts=np.zeros_like(w.counts), waveforms=(), spectra=None)
            for w in windows
        ]
    raise ValueError(f"unknown modality {modality!r}; choose one of {', '.join(ABLATIONS)}")


def _score(
    predictor: Predictor, windows: Sequence[Window], labels: Sequence[str], progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """probabilities (N, len(labels)), anomaly, ttf (NaN when normal), remaining life (NaN without a head), running."""
    own = predictor.bundle.labels
    probs = np.zeros((len(windows), len(labels)))
    anomaly = np.zeros(len(windows))
    pred_ttf = np.full(len(windows), np.nan)
    rul = np.full(len(windows), np.nan)
    ran = np.ones(len(windows), dtype=bool)
    for at in range(0, len(windows), 256):
        for i, out in enumerate(predictor.predict(windows[at : at + 256]), start=at):
            probs[i, : len(own)] = [out.probabilities[label] for label in own]
            anomaly[i] = out.anomaly_score
            pred_ttf[i] = np.nan if out.ttf_hours is None else out.ttf_hours
            rul[i] = np.nan if out.rul_hours is None else out.rul_hours
            ran[i] = out.running
        if progress is not None:
            progress(min(at + 256, len(windows)), len(windows), "windows scored")
    return probs, anomaly, pred_ttf, rul, ran


def anomaly_only(bundle: Bundle) -> bool:
    """True for a bundle trained without labels (labels normal and anomaly)."""
    return bundle.config.get("mode") == "unlabelled"


def rul_rmse(windows: Sequence[Window], true_ttf: np.ndarray, predicted: np.ndarray, cap_hours: float | None) -> dict[str, Any]:
    """RMSE of the remaining life at each asset's last window, where its failure is known, both capped at ``cap_hours``.

    The C-MAPSS convention: one figure per test unit, at its last cycle, with the target capped
    (a healthy unit's "remaining life" beyond the cap is not predictable from its sensors).
    """
    last: dict[str, int] = {}
    for i, w in enumerate(windows):
        if np.isfinite(true_ttf[i]) and (w.asset_id not in last or w.end >= windows[last[w.asset_id]].end):
            last[w.asset_id] = i
    rows = [i for i in last.values() if np.isfinite(predicted[i])]
    if not rows:
        return {"rul_rmse": None, "rul_units": 0, "rul_cap_hours": cap_hours}
    cap = np.inf if cap_hours is None else cap_hours
    error = np.minimum(predicted[rows], cap) - np.minimum(true_ttf[rows], cap)
    return {"rul_rmse": round(float(np.sqrt(np.mean(error**2))), 3), "rul_units": len(rows), "rul_cap_hours": cap_hours}


def _life_hours(directories: Sequence[Path], windows: Sequence[Window], source: np.ndarray) -> np.ndarray:
    """(N,) hours from each window's end to its asset's next known failure (NaN where none is known)."""
    failures: list[dict[str, list[float]]] = []
    for d in directories:
        mine: dict[str, list[float]] = {}
        for episode in read_labels(Path(d)):
            if episode.failure is not None:
                mine.setdefault(episode.asset_id, []).append(episode.failure)
        failures.append(mine)
    life = np.full(len(windows), np.nan)
    for i, w in enumerate(windows):
        ahead = [f for f in failures[int(source[i])].get(w.asset_id, []) if f >= w.end]
        if ahead:
            life[i] = (min(ahead) - w.end) / 3600.0
    return life


def auroc_macro(y: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> float | None:
    """Mean one-vs-rest AUROC of the classes present with both positives and negatives."""
    scores = [auroc(y == k, probs[:, k]) for k in range(len(labels))]
    known = [a for a in scores if a is not None]
    return round(float(np.mean(known)), 4) if known else None


def evaluate(
    bundle: Bundle,
    directories: Sequence[Path],
    threads: int = 1,
    limit: int | None = None,
    timed: int = TIMED_WINDOWS,
    ablate: Sequence[str] = (),
    baseline_dirs: Sequence[Path] = (),
    rul_cap_hours: float | None = None,
    strict: bool = True,
    progress: Progress | None = None,
    cascade: Bundle | None = None,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """Every number `model evaluate --json` prints.

    ``cascade``: the plant tier's bundle (models.cascade): its verdict replaces the bundle's on
    the windows ``policy`` escalates; adds escalated_fraction and macro_f1_edge/_plant/_cascade
    at ``policy`` and the ``cascade`` curve over confidence thresholds.
    ``ablate``: also score with each named modality removed (ABLATIONS). ``baseline_dirs``: fit the
    simple baselines (models.baselines) on these training directories' windows, cut by the bundle's
    spec, and score them on the same windows as the bundle. ``rul_cap_hours``: the cap of ``rul_rmse``
    (default: the horizon the datasets declare, models.data.rul_cap). ``strict=False``: lines of
    messages.jsonl that are not valid messages are skipped and listed in ``bad_lines`` (else the
    first raises DatasetError).
    """
    predictor = Predictor(bundle, threads=threads)
    bad_lines: list[str] | None = None if strict else []
    windows, truth, right, true_ttf, source = _truth(directories, bundle, limit, bad_lines, progress)
    if anomaly_only(bundle):  # an anomaly bundle (models.unlabelled): every labelled fault is an anomaly
        truth = [t if t == NORMAL else ANOMALY for t in truth]
        right = [tuple(dict.fromkeys(t if t == NORMAL else ANOMALY for t in ts)) for ts in right]
    labels = list(bundle.labels) + sorted(
        {t for ts in right for t in ts if t not in bundle.labels}
    )  # unknown faults count as misses
    probs, anomaly, pred_ttf, rul, ran = _score(predictor, windows, labels, progress)
    first = np.array([labels.index(t) for t in truth], dtype=np.int64)
    rights = [[labels.index(t) for t in ts] for ts in right]
    y = credit_any_truth(first, probs.argmax(axis=1), rights)
    result: dict[str, Any] = {"model_version": bundle.version, "datasets": [str(d) for d in directories], "labels": labels}
    result["bad_lines"] = len(bad_lines or [])
    result["bad_line_examples"] = (bad_lines or [])[:5]
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
    result["auroc_macro"] = auroc_macro(y[ran], probs[ran], labels)
    cap = rul_cap_hours if rul_cap_hours is not None else next(filter(None, (rul_cap(Path(d)) for d in directories)), None)
    life = _life_hours(directories, windows, source)
    result.update(rul_rmse(windows, life, rul, cap))
    normal = labels.index(NORMAL) if NORMAL in labels else 0
    if np.isfinite(life).any():
        result["lead_time"] = lead_times(windows, probs.argmax(axis=1) != normal, life, first == normal)
    if cascade is not None:
        result.update(
            cascade_figures(predictor, cascade, windows, labels, first, rights, probs, anomaly, ran, policy or Policy())
        )
    result["ablate"] = {}
    for modality in ablate:
        a_probs, a_anomaly, a_ttf, _, _ = _score(predictor, ablated(windows, modality), labels)
        a_y = credit_any_truth(first, a_probs.argmax(axis=1), rights)
        without = summary(a_y, a_probs, a_anomaly, true_ttf, a_ttf, labels)
        result["ablate"][modality] = {
            "macro_f1_all": without["macro_f1"],
            "macro_f1_all_with": everything["macro_f1"],
            "anomaly_auroc_all": without["anomaly_auroc"],
        }
    if baseline_dirs:
        result["baselines"] = _baselines(
            bundle, baseline_dirs, directories, labels, y, ran, limit, windows, life, cap, first == normal
        )
    result["errors"] = error_groups(y, probs.argmax(axis=1), ran, windows, source, directories, labels, predictor=predictor)
    result["all_windows"] = {
        k: everything[k] for k in ("macro_f1", "accuracy", "anomaly_auroc", "ttf_mae_hours", "per_class", "windows")
    }
    result.update(timing(predictor, windows, timed))
    result["bundle_bytes"] = bundle_bytes(bundle.path)
    return result


def plant_probabilities(edge: Predictor, plant: Predictor, windows: Sequence[Window], labels: Sequence[str]) -> np.ndarray:
    """(N, len(labels)) the plant model's probabilities on the inputs the edge bundle builds (what an escalation carries)."""
    own = [labels.index(label) for label in plant.bundle.labels]
    out = np.zeros((len(windows), len(labels)))
    for at in range(0, len(windows), 256):
        chunk = windows[at : at + 256]
        features = edge.featuriser(chunk)
        out[at : at + len(chunk), own] = plant.probabilities(features, [w.asset_type for w in chunk])
    return out


def cascade_figures(
    edge: Predictor,
    plant_bundle: Bundle,
    windows: Sequence[Window],
    labels: list[str],
    first: np.ndarray,
    rights: Sequence[Sequence[int]],
    probs: np.ndarray,
    anomaly: np.ndarray,
    ran: np.ndarray,
    policy: Policy,
) -> dict[str, Any]:
    """The cascade at ``policy`` and over a sweep of thresholds, on the running windows (models.cascade).

    Refuses a plant bundle that reads other inputs than the edge's (``inputs_id``): the gateway
    sends the inputs it built, so a plant model has to agree with it on them.
    """
    mine = inputs_id(edge.bundle.manifest, edge.bundle.config)
    theirs = inputs_id(plant_bundle.manifest, plant_bundle.config)
    if mine != theirs:
        raise BundleError(
            f"plant bundle {plant_bundle.path} reads other inputs ({theirs}) than {edge.bundle.path} ({mine}): "
            "a plant-tier bundle must share the edge bundle's window spec, features, tokenizer, baseline and labels"
        )
    plant_probs = plant_probabilities(edge, Predictor(plant_bundle, threads=1), windows, labels)
    rows = np.flatnonzero(ran)
    y, credit = first[rows], [rights[int(i)] for i in rows]
    curve = sweep(y, probs[rows], plant_probs[rows], anomaly[rows], policy.anomaly_above, credit=credit)
    here = point(y, probs[rows], plant_probs[rows], anomaly[rows], policy, credit)
    return {
        **{k: here[k] for k in ("escalated_fraction", "macro_f1_edge", "macro_f1_plant", "macro_f1_cascade")},
        "cascade": {
            "plant_model_version": plant_bundle.version,
            "inputs_id": mine,
            "at": here,
            "curve": curve,
            "best_within_5pct": operating_point(curve, 0.05),
        },
    }


def _baselines(
    bundle: Bundle,
    train_dirs: Sequence[Path],
    directories: Sequence[Path],
    labels: list[str],
    y: np.ndarray,
    ran: np.ndarray,
    limit: int | None,
    windows: Sequence[Window],
    life: np.ndarray,
    cap: float | None,
    labelled_normal: np.ndarray,
) -> dict[str, Any]:
    """The simple baselines fitted on ``train_dirs`` and scored on the evaluated windows (running ones, as the bundle).

    Where failures are known, the unsupervised ones also get a ``lead_time`` (models.leadtime), each
    alarming above its training normal windows' (1 - false-alarm rate) quantile: the rate an anomaly
    bundle was calibrated to, else DEFAULT_FALSE_ALARM_RATE.
    """
    from models.baselines import fit_baselines

    train = load_tables(train_dirs, bundle.spec, None)
    if anomaly_only(bundle):  # unsupervised yardsticks only: the bundle never read the labels
        train = replace(train, labels=[NORMAL] * len(train))
    held = load_tables(directories, bundle.spec, None)
    if limit is not None:
        held = held.take(np.arange(min(limit, len(held))))
    assert len(held) == len(y), "the baselines must see the windows the bundle saw"
    for label in dict.fromkeys(train.labels):
        if label not in labels:
            labels.append(label)
    fitted = fit_baselines(train, np.array([labels.index(x) for x in train.labels]), labels)
    scores = fitted.score(held.take(np.flatnonzero(ran)), y[ran])
    life_estimate = fitted.remaining_life(held)
    if life_estimate is not None:
        scores["gradient_boosting"].update(rul_rmse(windows[: len(held)], life, life_estimate, cap))
    if np.isfinite(life).any():
        rate = float(bundle.config.get("anomaly", {}).get("false_alarm_rate", DEFAULT_FALSE_ALARM_RATE))
        normal_train = fitted.anomaly_scores(train.take(np.flatnonzero(np.asarray(train.labels) == NORMAL)))
        for name, anomaly in fitted.anomaly_scores(held).items():
            threshold = float(np.quantile(normal_train[name], 1.0 - rate))
            scores[name]["lead_time"] = lead_times(windows[: len(held)], anomaly > threshold, life, labelled_normal)
    return scores


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
