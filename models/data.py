"""Dataset directories -> labelled windows as arrays, cut by the shared windowing and cached to .npz.

Training, validation and the compression report read windows through here; the runtime's
``evaluate`` reads the same directories through the same ``windows_from_messages``. A
window's label is the fault whose episode covers its end (else "normal"), and its time to
failure is known where the episode's failure is (``forewarn.dataset.label_at``).

No torch: this is numpy over the dataset format.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from forewarn.contracts import FaultEpisode, LogRecord
from forewarn.dataset import LABELS, MESSAGES, META, faults_at, iter_messages, label_at, read_labels, read_meta
from models.windowing import LOG_RATE_CHANNEL, Window, WindowSpec, windows_from_messages

CACHE_VERSION = 10


class LogRow(NamedTuple):
    """A log line as training keeps it (what featurisation reads of a LogRecord)."""

    ts: float
    level: str
    text: str


@dataclass
class WindowTable:
    """Labelled windows of one or more dataset directories, as arrays."""

    stats: np.ndarray  # (N, steps, C, 4) float32, NaN where no sample
    counts: np.ndarray  # (N, steps, C) int32
    ends: np.ndarray  # (N,) float64
    ttf_hours: np.ndarray  # (N,) float32, NaN when unknown
    labels: list[str]
    truths: list[tuple[str, ...]]  # every right answer for the window, the label first (Labelled.truths)
    asset_ids: list[str]
    asset_types: list[str | None]
    logs: list[tuple[LogRow, ...]]
    source: np.ndarray  # (N,) int32: index into sources
    sources: list[str]
    reference: np.ndarray  # (N, C, 2) float32 [mean, std] of the asset's running reference, NaN when none
    reference_derived: np.ndarray  # (N, D, 2) float32, the same for spec.reference_derived (D may be 0)
    lagged: np.ndarray  # (N, steps, L) float32 lagged mean squares of spec.lagged (L may be 0)
    rated_current: np.ndarray  # (N,) float32 the asset's rated current, NaN where its rating plate is unknown
    pump_slope: np.ndarray  # (N,) float32 the pump's own fitted curve slope (Window.pump_slope), NaN where none
    spectra: np.ndarray | None = None  # (N, steps, S, B) float32 log band shares (Window.spectra); None: the spec reads none

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> WindowTable:
        idx = [int(i) for i in index]
        return WindowTable(
            stats=self.stats[index],
            counts=self.counts[index],
            ends=self.ends[index],
            ttf_hours=self.ttf_hours[index],
            labels=[self.labels[i] for i in idx],
            truths=[self.truths[i] for i in idx],
            asset_ids=[self.asset_ids[i] for i in idx],
            asset_types=[self.asset_types[i] for i in idx],
            logs=[self.logs[i] for i in idx],
            source=self.source[index],
            sources=list(self.sources),
            reference=self.reference[index],
            reference_derived=self.reference_derived[index],
            lagged=self.lagged[index],
            rated_current=self.rated_current[index],
            pump_slope=self.pump_slope[index],
            spectra=None if self.spectra is None else self.spectra[index],
        )

    def select_channels(self, keep: np.ndarray, keep_spectral: np.ndarray | None = None) -> WindowTable:
        """The same windows with only the channels where ``keep`` (C,) is True, and of the spectral channels
        only those where ``keep_spectral`` (S,) is (default all)."""
        spectra = self.spectra
        if spectra is not None and keep_spectral is not None:
            spectra = spectra[:, :, keep_spectral]
        return replace(
            self, stats=self.stats[:, :, keep], counts=self.counts[:, :, keep], reference=self.reference[:, keep], spectra=spectra
        )

    @staticmethod
    def concat(tables: Sequence[WindowTable]) -> WindowTable:
        assert tables, "nothing to concatenate"
        sources: list[str] = []
        shifted = []
        for t in tables:
            shifted.append(t.source + len(sources))
            sources += t.sources
        return WindowTable(
            stats=np.concatenate([t.stats for t in tables]),
            counts=np.concatenate([t.counts for t in tables]),
            ends=np.concatenate([t.ends for t in tables]),
            ttf_hours=np.concatenate([t.ttf_hours for t in tables]),
            labels=[x for t in tables for x in t.labels],
            truths=[x for t in tables for x in t.truths],
            asset_ids=[x for t in tables for x in t.asset_ids],
            asset_types=[x for t in tables for x in t.asset_types],
            logs=[x for t in tables for x in t.logs],
            source=np.concatenate(shifted).astype(np.int32),
            sources=sources,
            reference=np.concatenate([t.reference for t in tables]),
            reference_derived=np.concatenate([t.reference_derived for t in tables]),
            lagged=np.concatenate([t.lagged for t in tables]),
            rated_current=np.concatenate([t.rated_current for t in tables]),
            pump_slope=np.concatenate([t.pump_slope for t in tables]),
            spectra=_concat_spectra(tables),
        )


def _concat_spectra(tables: Sequence[WindowTable]) -> np.ndarray | None:
    spectra = [t.spectra for t in tables if t.spectra is not None]
    assert len(spectra) in (0, len(tables)), "tables cut with and without spectra"
    return np.concatenate(spectra) if spectra else None


class Labelled(NamedTuple):
    window: Window
    label: str
    ttf_hours: float | None
    truths: tuple[str, ...]
    """Every answer that is right for this window, the label first. Besides the label: another fault
    covering the window's end (faults overlap), a fault that has begun but is not yet labelled
    (simulator data, whose meta.json knows when each fault started before its P point), and a
    fault that failed inside the window (its data still show it). Evaluation credits any of them."""


def labelled_windows(
    directory: Path,
    spec: WindowSpec,
    every: int = 1,
    assets: Collection[str] | None = None,
    on_bad: Callable[[int, str], None] | None = None,
) -> Iterator[Labelled]:
    """Every (``every``-th) window of a dataset directory with its label, hours to failure and every right answer;
    ``assets``: of those assets only (each asset's windows depend on its own messages alone)."""
    episodes: dict[str, list[FaultEpisode]] = defaultdict(list)
    for episode in read_labels(directory):
        episodes[episode.asset_id].append(episode)
    meta = read_meta(directory)
    types = meta.assets
    cap = rul_cap(directory)
    incipient = _incipient(meta.extra.get("episodes", []))
    messages = iter_messages(directory, on_bad)
    if assets is not None:
        messages = (m for m in messages if m.asset_id in assets)
    for window in windows_from_messages(messages, spec, every, meta.rated_currents()):
        if window.asset_type is None and types.get(window.asset_id):
            window = replace(window, asset_type=types[window.asset_id])
        mine = episodes[window.asset_id]
        label, ttf = label_at(mine, window.asset_id, window.end)
        if ttf is None:  # healthy yet, or a fault with no failure: the time to the asset's next known failure
            ahead = [e.failure for e in mine if e.failure is not None and e.failure >= window.end]
            ttf = (min(ahead) - window.end) / 3600.0 if ahead else None
        if ttf is not None and cap is not None:
            ttf = min(ttf, cap)
        truths = [label, *faults_at(mine, window.asset_id, window.end)]
        truths += [f for begun, shown, f in incipient[window.asset_id] if begun <= window.end < shown]
        truths += [e.fault for e in mine if e.failure is not None and window.start <= e.failure < window.end]
        yield Labelled(window, label, ttf, tuple(dict.fromkeys(truths)))


def rul_cap(directory: Path) -> float | None:
    """The horizon (hours) beyond which a dataset says remaining life is not predictable, if it says so.

    meta.json ``extra.rul.cap`` in cycles of ``extra.cycle_s`` (C-MAPSS: 125 cycles, the usual
    piecewise-linear target): training targets and the ``rul_rmse`` score are capped there.
    """
    extra = read_meta(directory).extra
    rul, cycle = extra.get("rul"), extra.get("cycle_s")
    if isinstance(rul, dict) and isinstance(rul.get("cap"), int | float) and isinstance(cycle, int | float):
        return float(rul["cap"]) * float(cycle) / 3600.0
    return None


def _incipient(described: list[dict[str, object]]) -> dict[str, list[tuple[float, float, str]]]:
    """Per asset, (initiation, P point, fault) of the episodes meta.json describes (the simulator's extra)."""
    out: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for e in described:
        begun, shown = e.get("initiation"), e.get("detectable")
        if isinstance(begun, int | float) and isinstance(shown, int | float):
            out[str(e["asset_id"])].append((float(begun), float(shown), str(e["fault"])))
    return out


def read_windows(directory: Path, spec: WindowSpec, every: int = 1) -> WindowTable:
    """Every ``every``-th window of each asset (windows overlap heavily; training needs fewer of them)."""
    stats, counts, ends, ttfs, labels, ids, types, logs, refs, drefs = [], [], [], [], [], [], [], [], [], []
    truths: list[tuple[str, ...]] = []
    c, d = len(spec.channels), len(spec.reference_derived)
    no_reference = np.full((c, 2), np.nan, dtype=np.float32)
    no_derived = np.full((d, 2), np.nan, dtype=np.float32)
    no_lag = np.full((spec.steps, len(spec.lagged)), np.nan, dtype=np.float32)
    lags, rated, slopes, spectra = [], [], [], []
    no_spectra = np.full((spec.steps, len(spec.spectral_channels), spec.spectral_bands), np.nan, dtype=np.float32)
    for window, label, ttf, right in labelled_windows(directory, spec, every):
        spectra.append(no_spectra if window.spectra is None else window.spectra)
        rated.append(np.nan if window.rated_current_a is None else window.rated_current_a)
        slopes.append(np.nan if window.pump_slope is None else window.pump_slope)
        refs.append(no_reference if window.reference is None else window.reference)
        drefs.append(no_derived if window.reference_derived is None else window.reference_derived)
        lags.append(no_lag if window.lagged is None else window.lagged)
        stats.append(window.stats)
        counts.append(window.counts)
        ends.append(window.end)
        ttfs.append(np.nan if ttf is None else ttf)
        labels.append(label)
        truths.append(right)
        ids.append(window.asset_id)
        types.append(window.asset_type)
        logs.append(tuple(LogRow(r.ts, r.level, r.text) for r in window.logs))
    return WindowTable(
        stats=np.stack(stats) if stats else np.zeros((0, spec.steps, c, 4), np.float32),
        counts=np.stack(counts) if counts else np.zeros((0, spec.steps, c), np.int32),
        ends=np.asarray(ends, dtype=np.float64),
        ttf_hours=np.asarray(ttfs, dtype=np.float32),
        labels=labels,
        truths=truths,
        asset_ids=ids,
        asset_types=types,
        logs=logs,
        source=np.zeros(len(labels), dtype=np.int32),
        sources=[str(Path(directory).resolve())],
        reference=np.stack(refs) if refs else np.zeros((0, c, 2), np.float32),
        reference_derived=np.stack(drefs) if drefs else np.zeros((0, d, 2), np.float32),
        lagged=np.stack(lags) if lags else np.zeros((0, spec.steps, len(spec.lagged)), np.float32),
        rated_current=np.asarray(rated, dtype=np.float32),
        pump_slope=np.asarray(slopes, dtype=np.float32),
        spectra=(np.stack(spectra) if spectra else np.zeros((0, *no_spectra.shape), np.float32))
        if spec.spectral_channels
        else None,
    )


def _cache_key(directory: Path, spec: WindowSpec, every: int) -> str:
    parts: list[object] = [CACHE_VERSION, str(Path(directory).resolve()), spec.to_dict(), every]
    for name in (MESSAGES, LABELS, META):
        stat = (Path(directory) / name).stat()
        parts.append((name, stat.st_size, stat.st_mtime_ns))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_windows(directory: Path, spec: WindowSpec, cache_dir: Path | None, every: int = 1) -> WindowTable:
    """read_windows, kept in cache_dir/windows-<key>.npz (the key covers the files' size and mtime and the spec)."""
    if cache_dir is None:
        return read_windows(directory, spec, every)
    path = _cache_path(directory, spec, cache_dir, every)
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return WindowTable(
                stats=z["stats"],
                counts=z["counts"],
                ends=z["ends"],
                ttf_hours=z["ttf_hours"],
                labels=meta["labels"],
                truths=[tuple(f) for f in meta["truths"]],
                asset_ids=meta["asset_ids"],
                asset_types=meta["asset_types"],
                logs=[tuple(LogRow(*r) for r in lines) for lines in meta["logs"]],
                source=z["source"],
                sources=meta["sources"],
                reference=z["reference"],
                reference_derived=z["reference_derived"],
                lagged=z["lagged"],
                rated_current=z["rated_current"],
                pump_slope=z["pump_slope"],
                spectra=z.get("spectra"),
            )
    table = read_windows(directory, spec, every)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: getattr(table, k) for k in ("labels", "truths", "asset_ids", "asset_types", "logs", "sources")}
    tmp = path.with_suffix(".tmp.npz")
    arrays: dict[str, Any] = {} if table.spectra is None else {"spectra": table.spectra}
    np.savez_compressed(
        tmp,
        **arrays,
        stats=table.stats,
        counts=table.counts,
        ends=table.ends,
        ttf_hours=table.ttf_hours,
        source=table.source,
        reference=table.reference,
        reference_derived=table.reference_derived,
        lagged=table.lagged,
        rated_current=table.rated_current,
        pump_slope=table.pump_slope,
        meta=np.array(json.dumps(meta)),
    )
    tmp.replace(path)
    return table


def _cache_path(directory: Path, spec: WindowSpec, cache_dir: Path, every: int) -> Path:
    return Path(cache_dir) / f"windows-{_cache_key(directory, spec, every)}.npz"


def _write_cache(directory: Path, spec: WindowSpec, cache_dir: Path, every: int) -> None:
    cached_windows(directory, spec, cache_dir, every)


def load_tables(
    directories: Sequence[Path], spec: WindowSpec, cache_dir: Path | None, every: int = 1, workers: int | None = None
) -> WindowTable:
    """Every directory's windows, concatenated in order.

    Cutting windows is per-message Python on one core (a day of a 60-asset plant takes over a
    minute), so with a cache directory the datasets not cached yet are cut in parallel, one
    process per dataset up to ``workers`` (default: the CPU count), and then read back from
    the cache like any resumed run. Spawned, not forked: the trainer has torch's threads.
    """
    if cache_dir is not None:
        missing = [Path(d) for d in directories if not _cache_path(Path(d), spec, cache_dir, every).exists()]
        n = min(len(missing), workers or os.cpu_count() or 1)
        if n > 1:
            with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
                list(pool.map(_write_cache, missing, repeat(spec), repeat(Path(cache_dir)), repeat(every)))
    return WindowTable.concat([cached_windows(Path(d), spec, cache_dir, every) for d in directories])


def dataset_channels(directories: Sequence[Path]) -> tuple[str, ...]:
    """The union of the channels the datasets' meta.json files declare, sorted."""
    names: set[str] = set()
    for d in directories:
        names |= set(read_meta(Path(d)).channels)
    return tuple(sorted(names))


def channel_infos(directories: Sequence[Path]) -> dict[str, dict[str, object]]:
    """What the datasets' meta.json say of each channel (unit, description, original name, role), the first that declares it."""
    infos: dict[str, dict[str, object]] = {}
    for d in directories:
        for name, info in read_meta(Path(d)).channels.items():
            infos.setdefault(name, info.model_dump(mode="json", exclude={"rate_hz"}))
    return infos


def window_channels(directories: Sequence[Path]) -> tuple[str, ...]:
    """The channels windows of the datasets read: the declared ones; for log-only data (none declared,
    log records present) the log rate alone (LOG_RATE_CHANNEL); empty when there is neither."""
    declared = dataset_channels(directories)
    if declared or not any(holds_logs(Path(d)) for d in directories):
        return declared
    return (LOG_RATE_CHANNEL,)


def holds_logs(directory: Path) -> bool:
    """Whether the dataset's messages include a log record (read up to the first one)."""
    return any(isinstance(m, LogRecord) for m in iter_messages(directory))


def speed_channel(directories: Sequence[Path]) -> str | None:
    """The channel the datasets declare with role "speed" (the first, by name); None when none does."""
    named = sorted(name for d in directories for name, info in read_meta(Path(d)).channels.items() if info.role == "speed")
    return named[0] if named else None


def channel_rates(directories: Sequence[Path]) -> dict[str, float]:
    """Each channel's declared sampling rate (Hz), the fastest where datasets differ."""
    rates: dict[str, float] = {}
    for d in directories:
        for name, info in read_meta(Path(d)).channels.items():
            rates[name] = max(rates.get(name, 0.0), float(info.rate_hz))
    return rates


def dataset_rate(directories: Sequence[Path]) -> float | None:
    """The fastest sampling rate any channel of the datasets declares (Hz); None when none declares one."""
    rates = [info.rate_hz for d in directories for info in read_meta(Path(d)).channels.values()]
    return max(rates) if rates else None
