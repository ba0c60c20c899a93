"""Training data preparation: windows -> split by asset -> baseline, trimmed vocabulary, features.

Everything the later stages need is derived from the training split only (the healthy
baseline, the trimmed vocabulary), so validation windows are as unseen as a new plant's.
Featurised arrays are cached in the run directory (``features-<key>.npz``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forewarn.contracts import NORMAL, SIMULATED_FAULTS
from forewarn.dataset import read_labels
from models.baselines import fit_baselines
from models.data import (
    WindowTable,
    channel_infos,
    channel_rates,
    dataset_rate,
    load_tables,
    speed_channel,
    window_channels,
)
from models.derived import COOLING, DERIVED, LAGGED_CHANNELS, derive, running
from models.errors import TrainingError
from models.features import Features, FeatureSpec, Featuriser, Normaliser
from models.profiles import Profile
from models.tokenizer import LogTokenizer, base_tokenizer_path, log_text, trim_vocabulary
from models.train import Arrays
from models.windowing import LOG_RATE_CHANNEL, WindowSpec


@dataclass
class Prepared:
    spec: WindowSpec
    features: FeatureSpec
    labels: tuple[str, ...]
    normaliser: Normaliser
    tokenizer_json: str
    full_ids: np.ndarray  # (V_student,) MiniLM id of each trimmed id
    train: Arrays
    val: Arrays
    val_features: Features
    train_features: Features
    val_running: np.ndarray  # (N_val,) bool: the machine ran in most of the window
    val_truths: list[list[int]]  # every right class of each validation window, the label first
    facts: dict[str, object]
    fault_modes: dict[str, list[str]]
    """Asset type -> the faults its training windows show (runtime.Bundle.fault_modes)."""


def window_spec(
    prof: Profile,
    channels: tuple[str, ...],
    rate_hz: float | None = None,
    speed: str | None = None,
    rates: dict[str, float] | None = None,
) -> WindowSpec:
    """The profile's window, stretched to one sample per step when the data is slower than its steps.

    ``rate_hz``: the fastest declared channel's rate; ``rates``: each channel's, whose waveform channels
    (prof.spectral_min_samples or more samples per step) get band spectra; ``speed``: the channel declared with role "speed",
    whose standstill leaves a window out of fault training and scoring (models.derived.running).
    A 600 s window of 20 steps over hourly or per-cycle data would hold no complete window; the
    stretched one keeps the profile's step count, hops one step and scales the asset reference's
    time constant with it.
    """
    length, hop, reference = prof.length_s, prof.hop_s, prof.reference_s
    step = length / prof.steps
    if prof.window_follows_rate and rate_hz is not None and rate_hz * step < 1.0:
        stretch = (1.0 / rate_hz) / step
        step = 1.0 / rate_hz
        length, hop, reference = step * prof.steps, step, reference * stretch
    try:
        return WindowSpec(
            channels=channels,
            length_s=length,
            hop_s=hop,
            steps=prof.steps,
            max_log_lines=prof.max_log_lines,
            grace_s=step,
            reference_s=reference,
            reference_average_start=prof.reference_average_start,
            running_channel=speed if speed in channels else None,
            reference_derived=derived_names(prof) if prof.derived_reference and prof.reference_s > 0 else (),
            lagged=tuple(c for c in LAGGED_CHANNELS if c in channels) if prof.derived and prof.lag_s > 0 else (),
            lag_s=prof.lag_s if prof.lag_s > 0 else 900.0,
            lag_standstill=prof.lag_standstill,
            lag_fit=prof.lag_fit if prof.lag_s else (),
            flatline_samples=prof.flatline_samples,
            pump_fit=prof.pump_fit,
            **_spectral(prof, channels, step, rates or {}),
        )
    except AssertionError as exc:  # a --set that makes no window (hop not a multiple of the step)
        raise TrainingError(f"window: {exc}") from exc


def _spectral(prof: Profile, channels: tuple[str, ...], step_s: float, rates: dict[str, float]) -> dict[str, Any]:
    """WindowSpec fields of the profile's band spectra: the channels fast enough to resolve them, if any."""
    fast = tuple(c for c in channels if rates.get(c, 0.0) * step_s >= prof.spectral_min_samples)
    if not prof.spectral_bands or not fast:
        return {}
    return {"spectral_bands": prof.spectral_bands, "spectral_channels": fast, "spectral_min_samples": prof.spectral_min_samples}


def channel_coverage(channels: Sequence[str], counts: np.ndarray) -> dict[str, float]:
    """Per channel, the share of window steps that hold at least one sample; counts (N, steps, C)."""
    if counts.size == 0:
        return dict.fromkeys(channels, 0.0)
    share = (counts > 0).mean(axis=(0, 1))
    return {c: round(float(v), 4) for c, v in zip(channels, share, strict=True)}


def derived_names(prof: Profile) -> tuple[str, ...]:
    """The derived features a profile reads: all of them, but one pump curve (the pump's own where the
    history fits it, else the fixed slope's, which reads a pump off 65 % of design flow as leaking)
    and one of each cooling feature's two forms (every step's, or the turning steps' alone)."""
    if not prof.derived:
        return ()
    unread = {"log_pump_curve" if prof.pump_fit else "log_pump_curve_own"}
    unread |= set(COOLING) if prof.cooling_turning else {f"{name}_turning" for name in COOLING}
    return tuple(name for name in DERIVED if name not in unread)


def label_map(seen: set[str]) -> tuple[str, ...]:
    """normal first, then the simulator's faults in catalogue order, then any other fault, sorted."""
    faults = [f for f in SIMULATED_FAULTS if f in seen] + sorted(seen - set(SIMULATED_FAULTS) - {NORMAL})
    return (NORMAL, *faults)


def split(table: WindowTable, fraction: float, seed: int, length_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, str]:
    """Hold out whole assets, about ``fraction`` of the windows, with every fault that two or more assets share.

    Assets are taken in a seeded hash order: first one asset for each fault (rarest first) so
    validation measures every class it can, then more until the fraction is reached. When
    holding out whole assets would starve training of a class, fall back to the last part of
    each asset's timeline, leaving out of training the windows (of ``length_s``) that overlap
    the first held-out one: no sample is on both sides.
    """
    keys = np.array([f"{table.sources[s]}|{a}" for s, a in zip(table.source, table.asset_ids, strict=True)])
    labels = np.array(table.labels)
    order = sorted(set(keys.tolist()), key=lambda k: zlib.crc32(f"{seed}|{k}".encode()))
    classes = {k: set(labels[keys == k].tolist()) for k in order}
    windows = {k: int((keys == k).sum()) for k in order}
    held: list[str] = []
    for fault in sorted(set(labels.tolist()) - {NORMAL}, key=lambda f: sum(f in c for c in classes.values())):
        having = [k for k in order if fault in classes[k]]
        if len(having) >= 2 and not any(k in held for k in having):
            held.append(having[0])
    for k in order:
        if sum(windows[h] for h in held) >= fraction * len(keys):
            break
        if k not in held:
            held.append(k)
    val = np.isin(keys, held)
    if set(labels[~val].tolist()) == set(labels.tolist()) and 0 < val.mean() < 0.5:
        return np.flatnonzero(~val), np.flatnonzero(val), f"by asset ({len(held)} of {len(order)} assets held out)"
    val = np.zeros(len(keys), dtype=bool)
    overlap = np.zeros(len(keys), dtype=bool)
    for key in order:
        rows = np.flatnonzero(keys == key)
        rows = rows[np.argsort(table.ends[rows])]
        held_rows = rows[int(len(rows) * (1 - fraction)) :]
        val[held_rows] = True
        if len(held_rows):
            first_start = table.ends[held_rows[0]] - length_s
            overlap[rows[(table.ends[rows] > first_start) & ~val[rows]]] = True
    how = "by time within each asset (too few assets to hold some out), overlapping windows left out"
    return np.flatnonzero(~val & ~overlap), np.flatnonzero(val), how


def episode_ids(table: WindowTable) -> np.ndarray:
    """(N,) int: the labelled episode each window's label comes from (its dataset's labels.jsonl), -1 for normal.

    A window belongs to the episode of its asset and fault with the latest onset at or before its end.
    """
    out = np.full(len(table), -1, dtype=np.int64)
    episodes = {s: read_labels(Path(d)) for s, d in enumerate(table.sources)}
    offsets = np.cumsum([0, *(len(episodes[s]) for s in range(len(table.sources)))])
    for i, (s, asset, label, end) in enumerate(zip(table.source, table.asset_ids, table.labels, table.ends, strict=True)):
        if label == NORMAL:
            continue
        mine = [
            (e.onset, j) for j, e in enumerate(episodes[int(s)]) if e.asset_id == asset and e.fault == label and e.onset <= end
        ]
        if mine:
            out[i] = offsets[int(s)] + max(mine)[1]
    return out


def limit_episodes(table: WindowTable, per_fault: int, seed: int) -> tuple[WindowTable, dict[str, list[int]]]:
    """Few-shot training: keep at most ``per_fault`` labelled episodes of each fault, chosen by seed.

    The windows of the other episodes are left out altogether: calling them normal would teach
    the model that the fault is health, and a plant with one recorded failure has no label on
    the rest. Returns the table and, per fault, [episodes kept, episodes labelled].
    """
    ids = episode_ids(table)
    labels = np.array(table.labels)
    rng = np.random.default_rng((seed, 24))
    keep = labels == NORMAL
    counts: dict[str, list[int]] = {}
    for fault in sorted(set(table.labels) - {NORMAL}):
        mine = np.unique(ids[(labels == fault) & (ids >= 0)])
        chosen = rng.choice(mine, size=min(per_fault, len(mine)), replace=False) if len(mine) else mine
        keep |= (labels == fault) & np.isin(ids, chosen)
        counts[fault] = [len(chosen), len(mine)]
    return table.take(np.flatnonzero(keep)), counts


def _mean_std(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(K,) columns of values (rows, K) where keep (rows, K) -> (K, 2) [mean, std], NaN where nothing is kept."""
    n = keep.sum(axis=0)
    x = np.where(keep, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=0) / n
        var = np.maximum((x * x).sum(axis=0) / n - mean * mean, 0.0)
    return np.stack([mean, np.sqrt(var)], axis=-1).astype(np.float32)


def fault_modes(table: WindowTable, labels: tuple[str, ...]) -> dict[str, list[str]]:
    """Asset type -> the faults labelled on assets of that type, in label order: the type's failure modes.

    A motor has no mechanical seal and a fan does not cavitate; the runtime never names a fault
    its asset type has not shown in training (an FMEA's applicability table, learnt from the data).
    """
    seen: dict[str, set[str]] = {}
    for asset_type, label in zip(table.asset_types, table.labels, strict=True):
        if asset_type:
            seen.setdefault(asset_type, set()).add(label)
    return {t: [label for label in labels if label in faults and label != NORMAL] for t, faults in sorted(seen.items())}


def absorb_references(
    table: WindowTable, spec: WindowSpec, fraction: float, rng: np.random.Generator, eligible: np.ndarray | None = None
) -> tuple[WindowTable, int]:
    """Give ``fraction`` of the fault windows a reference that already holds their fault.

    A gateway fitted to an ailing machine, or a fault older than the asset's history, leaves the
    asset's own reference faulty: its deviations from itself are nil and only the asset type's
    baseline shows the fault (plant200's east.CV-301 ran hot from its first minute and was called
    normal once its reference had formed). Simulator runs start healthy, so without this a model
    learns to trust the asset's own history alone. The reference given is the mean and spread of
    the running steps of every window of that asset with that label: an asset that has always
    been like this. Only ``eligible`` windows (default all) change: a fault the type's baseline
    cannot show would become a healthy-looking window labelled faulty, noise the model would
    learn as false alarms. Returns the table and how many windows changed.
    """
    if fraction <= 0 or not spec.reference_s or len(table) == 0:
        return table, 0
    keys = np.array([f"{s}|{a}|{label}" for s, a, label in zip(table.source, table.asset_ids, table.labels, strict=True)])
    chosen = np.array([label != NORMAL for label in table.labels]) & (rng.random(len(table)) < fraction)
    if eligible is not None:
        chosen &= eligible
    reference, reference_derived = table.reference.copy(), table.reference_derived.copy()
    c = len(spec.channels)
    _, group = np.unique(keys, return_inverse=True)
    for g in np.unique(group[chosen]):
        rows = np.flatnonzero(group == g)
        stats, counts = table.stats[rows], table.counts[rows]  # (r, steps, C, 4), (r, steps, C)
        ran = counts > 0
        if spec.running_channel in spec.channels:
            k = spec.channels.index(spec.running_channel)
            ran = ran & (ran[:, :, k] & (stats[:, :, k, 0] > spec.running_min))[:, :, None]
        target = rows[chosen[rows]]
        reference[target] = _mean_std(stats[..., 0].reshape(-1, c), ran.reshape(-1, c))
        if spec.reference_derived:
            lagged = table.lagged[rows] if spec.lagged else None
            ran_counts = np.where(ran, counts, 0)
            d = derive(
                spec.reference_derived,
                spec.channels,
                stats,
                ran_counts,
                lagged,
                spec.lagged,
                table.rated_current[rows],
                table.pump_slope[rows],
            )
            flat = d.reshape(-1, d.shape[-1])
            reference_derived[target] = _mean_std(np.nan_to_num(flat), np.isfinite(flat))
    changed = int(chosen.sum())
    return dataclasses.replace(table, reference=reference, reference_derived=reference_derived), changed


def visible_against_type(
    table: WindowTable, spec: WindowSpec, normaliser: Normaliser, min_z: float, chunk: int = 8192
) -> np.ndarray:
    """(N,) bool: some derived feature's window mean sits at least ``min_z`` type spreads from the type's healthy mean.

    Derived features are load- and ambient-normalised, so a window beyond a few spreads on one
    of them shows its state without the asset's own history; a window that does not needs that
    history to be told from health.
    """
    out = np.zeros(len(table), dtype=bool)
    if not normaliser.derived:
        return out
    for at in range(0, len(table), chunk):
        rows = slice(at, min(at + chunk, len(table)))
        types = np.array([normaliser.type_index(t) for t in table.asset_types[rows]])
        d = derive(
            normaliser.derived,
            spec.channels,
            table.stats[rows],
            table.counts[rows],
            table.lagged[rows],
            spec.lagged,
            table.rated_current[rows],
            table.pump_slope[rows],
        )
        with np.errstate(invalid="ignore"):
            z = _step_mean(d) - normaliser.derived_mean[types]
            z = np.abs(z) / normaliser.derived_std[types]
        out[rows] = (np.where(np.isfinite(z) & normaliser.derived_known[types], z, 0.0) >= min_z).any(axis=1)
    return out


def _step_mean(d: np.ndarray) -> np.ndarray:
    """(N, steps, D) -> (N, D) mean over the steps where a value is defined, NaN where none is."""
    defined = np.isfinite(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(defined, d, 0.0).sum(axis=1) / defined.sum(axis=1))


def drop_references(
    table: WindowTable, fraction: float, rng: np.random.Generator, eligible: np.ndarray | None = None
) -> tuple[WindowTable, int]:
    """Take the reference away from ``fraction`` of all windows, healthy and faulty alike.

    An asset's first running hour (a gateway just fitted, a new machine) has no reference yet,
    and in simulator runs those hours are nearly all healthy: the model would learn the
    no-reference regime from a handful of windows and call a warm healthy pump overheating
    there. Dropping references across the whole table teaches that regime at the data's own
    mix of classes. Only ``eligible`` windows (default all) change (see absorb_references).
    Returns the table and how many windows changed.
    """
    if fraction <= 0 or len(table) == 0:
        return table, 0
    chosen = rng.random(len(table)) < fraction
    if eligible is not None:
        chosen &= eligible
    reference, reference_derived = table.reference.copy(), table.reference_derived.copy()
    reference[chosen], reference_derived[chosen] = np.nan, np.nan
    return dataclasses.replace(table, reference=reference, reference_derived=reference_derived), int(chosen.sum())


def prepare(
    directories: Sequence[Path], prof: Profile, run_dir: Path, echo: Callable[[str], None] = print, unlabelled: bool = False
) -> Prepared:
    """Windows, split, normaliser, tokenizer and features of a training run.

    ``unlabelled``: every window is taken as normal behaviour (fault episodes, if any, are not read)
    and the labels are ``normal`` and ``anomaly`` (models.unlabelled).
    """
    channels = window_channels(directories)
    if not channels:
        raise TrainingError("the datasets' meta.json files declare no channels and their messages hold no log records")
    if channels == (LOG_RATE_CHANNEL,):
        echo(f"log-only data (no channels declared): windows read the log lines per step ({LOG_RATE_CHANNEL}) and their text")
    spec = window_spec(prof, channels, dataset_rate(directories), speed_channel(directories), channel_rates(directories))
    if spec.length_s != prof.length_s:
        echo(f"window: {spec.steps} steps of {spec.step_s:g} s, one sample per step at the data's rate (hop {spec.hop_s:g} s)")
    feats = FeatureSpec(
        log_tokens=prof.log_tokens,
        line_tokens=prof.line_tokens,
        derived=derived_names(prof),
        relative=prof.reference_s > 0,
        context=tuple(c for c in prof.context_channels if c in channels),
    )
    table = load_tables(directories, spec, run_dir / "cache", every=prof.train_every)
    if len(table) == 0:
        raise TrainingError(f"no complete windows of {spec.length_s:g} s in {', '.join(map(str, directories))}")
    coverage = channel_coverage(channels, table.counts)
    echo("channel coverage (share of window steps with a sample): " + ", ".join(f"{c} {v:.0%}" for c, v in coverage.items()))
    seen = np.array([coverage[c] > 0 for c in channels])
    if not seen.all():
        unused = [c for c, s in zip(channels, seen, strict=True) if not s]
        echo(f"not used: {', '.join(unused)}: declared in meta.json but no window holds a sample of them")
        kept = {c for c, s in zip(channels, seen, strict=True) if s}
        table = table.select_channels(seen, np.array([c in kept for c in spec.spectral_channels], dtype=bool))
        spectral = tuple(c for c in spec.spectral_channels if c in kept)
        spec = dataclasses.replace(
            spec,
            channels=tuple(c for c in channels if c in kept),
            spectral_channels=spectral,
            spectral_bands=spec.spectral_bands if spectral else 0,
        )
        channels = spec.channels
    if unlabelled:
        table = dataclasses.replace(table, labels=[NORMAL] * len(table), truths=[(NORMAL,)] * len(table))
    few_shot: dict[str, list[int]] | None = None
    if prof.episodes_per_fault > 0 and not unlabelled:
        table, few_shot = limit_episodes(table, prof.episodes_per_fault, prof.seed)
        echo(
            f"few-shot: at most {prof.episodes_per_fault} labelled episode(s) per fault: "
            + ", ".join(f"{f} {k} of {n}" for f, (k, n) in few_shot.items())
        )
    labels = (NORMAL, "anomaly") if unlabelled else label_map(set(table.labels))
    if len(labels) < 2:
        raise TrainingError("the datasets hold a single class: training needs normal and faulty windows")
    echo(f"windows: {len(table):,} from {len(directories)} dataset(s), {len(channels)} channels, {len(labels)} classes")
    train_idx, val_idx, how = split(table, prof.val_fraction, prof.seed, spec.length_s)
    # A stopped machine shows no fault signature: its fault windows would teach noise. Idle
    # normal windows stay, so the model learns that a stopped machine looks normal.
    ran = running(spec.channels, table.stats, table.counts, spec.running_channel)
    labelled_normal = np.array([x == NORMAL for x in table.labels])
    idle_faults = int((~ran[train_idx] & ~labelled_normal[train_idx]).sum())
    train_idx = train_idx[ran[train_idx] | labelled_normal[train_idx]]
    rng = np.random.default_rng(prof.seed)
    if len(train_idx) > prof.max_windows:
        train_idx = np.sort(rng.choice(train_idx, prof.max_windows, replace=False))
    train_t, val_t = table.take(train_idx), table.take(val_idx)
    y_train = np.array([labels.index(x) for x in train_t.labels])
    normaliser = Normaliser.fit(
        channels,
        train_t.stats,
        train_t.counts,
        train_t.asset_types,
        y_train == 0,
        feats.derived,
        lagged=train_t.lagged,
        lagged_channels=spec.lagged,
        rated_current=train_t.rated_current,
        pump_slope=train_t.pump_slope,
        spectra=train_t.spectra,
    )
    if spec.spectral_channels:
        echo(f"spectra: {spec.spectral_bands} octave bands per step of {', '.join(spec.spectral_channels)}")
    visible = visible_against_type(train_t, spec, normaliser, prof.visible_z)
    train_t, absorbed = absorb_references(train_t, spec, prof.absorbed_reference, rng, visible)
    train_t, dropped = drop_references(train_t, prof.dropped_reference, rng, visible | (y_train == 0))
    texts = [log_text(r.level, r.text) for lines in train_t.logs for r in lines]
    tokenizer_json, full_ids = trim_vocabulary(base_tokenizer_path().read_text(), texts)
    tok_path = run_dir / "tokenizer.json"
    tok_path.write_text(tokenizer_json)
    featuriser = Featuriser(spec, feats, normaliser, LogTokenizer.from_file(tok_path))
    key = hashlib.sha256(
        json.dumps([table.sources, spec.to_dict(), feats.to_dict(), prof.to_dict(), labels]).encode()
    ).hexdigest()[:16]
    train_a, train_f = _featurise(featuriser, train_t, labels, run_dir / f"features-train-{key}.npz")
    val_a, val_f = _featurise(featuriser, val_t, labels, run_dir / f"features-val-{key}.npz")
    echo(f"split {how}: {len(train_a):,} training, {len(val_a):,} validation windows; vocabulary {len(full_ids):,} pieces")
    facts = {
        "datasets": table.sources,
        "windows": len(table),
        "train_windows": len(train_a),
        "val_windows": len(val_a),
        "split": how,
        "idle_fault_windows_dropped": idle_faults,
        "absorbed_reference_windows": absorbed,
        "dropped_reference_windows": dropped,
        "class_counts": {label: int((y_train == i).sum()) for i, label in enumerate(labels)},
        "vocabulary": len(full_ids),
        "channel_coverage": coverage,
        "channels": {c: info for c, info in channel_infos(directories).items() if c in spec.channels},
    }
    if few_shot is not None:
        facts["episodes_per_fault"] = few_shot
    val_running = running(spec.channels, val_t.stats, val_t.counts, spec.running_channel)
    y_val = np.array([labels.index(x) for x in val_t.labels])
    if prof.baselines:
        echo("baselines: logistic regression, gradient boosting, Isolation Forest on the same windows")
        baselines = fit_baselines(table.take(train_idx), y_train, labels, prof.seed)
        facts["baselines"] = baselines.score(val_t.take(np.flatnonzero(val_running)), y_val[val_running])
    val_truths = [[labels.index(t) for t in ts if t in labels] for ts in val_t.truths]
    return Prepared(
        spec,
        feats,
        labels,
        normaliser,
        tokenizer_json,
        full_ids,
        train_a,
        val_a,
        val_f,
        train_f,
        val_running,
        val_truths,
        facts,
        fault_modes(table, labels),
    )


def _featurise(featuriser: Featuriser, table: WindowTable, labels: tuple[str, ...], path: Path) -> tuple[Arrays, Features]:
    if path.exists():
        with np.load(path) as z:
            f = Features(z["sensors"], z["tokens"], z["line_index"])
            return Arrays(f.sensors, f.tokens, z["y"], z["ttf"]), f
    types = featuriser.type_indices(table.asset_types)
    sensors = featuriser.sensors(
        table.stats,
        table.counts,
        types,
        table.reference,
        table.reference_derived,
        table.lagged,
        table.rated_current,
        table.pump_slope,
        table.spectra,
    )
    tokens, line_index = featuriser.log_tokens(table.logs)
    y = np.array([labels.index(x) for x in table.labels], dtype=np.int64)
    ttf = np.log1p(table.ttf_hours.astype(np.float32))
    np.savez(path, sensors=sensors, tokens=tokens, line_index=line_index, y=y, ttf=ttf)
    return Arrays(sensors, tokens, y, ttf), Features(sensors, tokens, line_index)
