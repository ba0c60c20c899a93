"""Offline scoring: a dataset directory through the daemon's own window and inference stages.

`forewarn edge score DIR --out FILE` is backtesting for users and evaluation for us, so it
must see exactly what a gateway would: the same validation (``iter_messages`` decodes each
line as the edge does), the same sequence checks and windowing (``WindowStage`` over
``models.windowing``), the same batched ``Scorer``. Only the clock differs: predictions are
deterministic (``produced_at`` = window end, ``latency_ms`` = 0), so the same input, bundle
and batch size give the same bytes; the measured model time is in the returned summary. (The
INT8 graph quantizes activations per batch, so another batch size moves probabilities in the
third decimal; ids, windows and verdicts stay put.)

The output is JSONL, one ``FaultPrediction`` per window in the order windows complete,
written to a temporary file and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.errors import Rejected
from edge_agent.infer import Scorer
from edge_agent.metrics import EdgeMetrics
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import encode
from forewarn.dataset import META, iter_messages, read_meta
from forewarn.errors import DatasetError
from models.windowing import Window


@dataclass
class ScoreSummary:
    """What a scoring run did, for the CLI's report (kept out of the deterministic output)."""

    messages: int = 0
    windows: int = 0
    model_seconds: float = 0.0
    wall_seconds: float = 0.0
    model_version: str = ""
    faults: Counter[str] = field(default_factory=Counter)
    batch_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        per_window = 1000.0 * self.model_seconds / self.windows if self.windows else 0.0
        return {
            "messages": self.messages,
            "windows": self.windows,
            "model_version": self.model_version,
            "faults": dict(sorted(self.faults.items())),
            "model_ms_per_window": round(per_window, 4),
            "windows_per_s": round(self.windows / self.model_seconds, 1) if self.model_seconds else None,
            "batch_ms_p50": round(statistics.median(self.batch_ms), 3) if self.batch_ms else None,
            "wall_s": round(self.wall_seconds, 3),
        }


def score_directory(directory: Path, out: Path, scorer: Scorer, max_assets: int = 100_000) -> ScoreSummary:
    """Score every window of a dataset directory into ``out`` (JSONL); raises DatasetError on a bad input line."""
    started = time.perf_counter()
    summary = ScoreSummary(model_version=scorer.version)
    rated = read_meta(directory).rated_currents() if (directory / META).exists() else {}
    stage = WindowStage(scorer.spec, AssetPolicy(max_assets=max_assets, rated_currents=rated), EdgeMetrics())
    tmp = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tmp.open("wb") as fh:
            for batch in _batches(directory, stage, scorer.batch_size, summary):
                scored = scorer.score(batch)
                summary.model_seconds += scored.seconds
                summary.batch_ms.append(1000.0 * scored.seconds)
                summary.windows += len(batch)
                for prediction in scored.predictions:
                    summary.faults[prediction.fault] += 1
                    fh.write(encode(prediction) + b"\n")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _batches(directory: Path, stage: WindowStage, size: int, summary: ScoreSummary) -> Iterator[list[Window]]:
    """Windows in completion order, cut into full batches (the last may be short)."""
    pending: list[Window] = []
    for number, message in enumerate(iter_messages(directory), start=1):
        summary.messages += 1
        try:
            stage.add(message)
        except Rejected as exc:
            raise DatasetError(f"{directory}: message {number}: {exc}") from exc
        pending.extend(window for window, _ in stage.ready())
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
    pending.extend(stage.flush())
    for start in range(0, len(pending), size):
        yield pending[start : start + size]
