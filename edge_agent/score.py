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

A bad line (not a valid message, older than the one before it, or refused by the window
stage as the gateway would refuse it) is skipped and counted with its line number, as the
gateway counts and dead-letters bad live input; ``strict=True`` aborts at the first one.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.errors import Rejected
from edge_agent.infer import Scorer
from edge_agent.metrics import EdgeMetrics
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import LogRecord, Telemetry, decode_input, encode
from forewarn.dataset import MESSAGES, META, message_time, read_meta
from forewarn.errors import ContractError, DatasetError
from models.windowing import Window

Progress = Callable[[int, int, str], None]
"""Called now and then with (bytes of messages.jsonl read, its size, windows scored so far)."""

BAD_LINES_KEPT = 20
"""Bad lines reported one by one (the rest are counted)."""


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
    bad_lines: int = 0
    bad_examples: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of the first ``BAD_LINES_KEPT`` bad lines."""

    def bad(self, number: int, reason: str) -> None:
        self.bad_lines += 1
        if len(self.bad_examples) < BAD_LINES_KEPT:
            self.bad_examples.append((number, reason))

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
            "bad_lines": self.bad_lines,
            "bad_line_examples": [{"line": n, "reason": r} for n, r in self.bad_examples],
        }

    def describe(self, out: Path) -> str:
        """The summary for a person: counts in words, the verdicts, and the bad lines if any."""
        lines = [
            f"scored {_count(self.windows, 'window')} from {_count(self.messages, 'message')} in {self.wall_seconds:.1f} s "
            f"-> {out}",
            f"  model {self.model_version}: {1000.0 * self.model_seconds / max(self.windows, 1):.3f} ms per window",
        ]
        if self.faults:
            verdicts = ", ".join(f"{fault} {count:,}" for fault, count in self.faults.most_common())
            lines.append(f"  verdicts: {verdicts}")
        if self.bad_lines:
            shown = "; ".join(f"line {n}: {r[:120]}" for n, r in self.bad_examples[:5])
            more = f" (and {self.bad_lines - 5:,} more)" if self.bad_lines > 5 else ""
            lines.append(f"  skipped {_count(self.bad_lines, 'bad line')} of {MESSAGES}: {shown}{more}; --strict aborts instead")
        return "\n".join(lines)


def _count(count: int, word: str) -> str:
    return f"{count:,} {word if count == 1 else word + 's'}"


def score_directory(
    directory: Path,
    out: Path,
    scorer: Scorer,
    max_assets: int = 100_000,
    strict: bool = False,
    progress: Progress | None = None,
) -> ScoreSummary:
    """Score every window of a dataset directory into ``out`` (JSONL).

    Bad lines are skipped and counted in the summary; with ``strict`` the first raises DatasetError.
    """
    started = time.perf_counter()
    summary = ScoreSummary(model_version=scorer.version)
    rated = read_meta(directory).rated_currents() if (directory / META).exists() else {}
    stage = WindowStage(scorer.spec, AssetPolicy(max_assets=max_assets, rated_currents=rated), EdgeMetrics())
    tmp = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tmp.open("wb") as fh:
            for batch in _batches(directory, stage, scorer.batch_size, summary, strict, progress):
                scored = scorer.score(batch)
                summary.model_seconds += scored.seconds
                summary.batch_ms.append(1000.0 * scored.seconds)
                summary.windows += len(batch)
                for prediction in scored.predictions:
                    summary.faults[prediction.fault] += 1
                    fh.write(encode(prediction) + b"\n")
        if progress is not None:  # after the last windows, which the end of the stream flushes
            size = (directory / MESSAGES).stat().st_size
            progress(size, size, f"{summary.windows:,} windows")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _batches(
    directory: Path, stage: WindowStage, size: int, summary: ScoreSummary, strict: bool, progress: Progress | None
) -> Iterator[list[Window]]:
    """Windows in completion order, cut into full batches (the last may be short)."""
    pending: list[Window] = []
    for number, message in _messages(directory, summary, strict, progress):
        summary.messages += 1
        try:
            stage.add(message)
        except Rejected as exc:
            if strict:
                raise DatasetError(f"{directory / MESSAGES}:{number}: {exc}") from exc
            summary.bad(number, str(exc))
            continue
        pending.extend(window for window, _ in stage.ready())
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
    pending.extend(stage.flush())
    for start in range(0, len(pending), size):
        yield pending[start : start + size]


def _messages(
    directory: Path, summary: ScoreSummary, strict: bool, progress: Progress | None
) -> Iterator[tuple[int, Telemetry | LogRecord]]:
    """(line number, message) of messages.jsonl, validated as the gateway validates; bad lines counted or raised."""
    path = directory / MESSAGES
    if not path.is_file():
        raise DatasetError(f"{directory} is not a dataset directory: {MESSAGES} is missing")
    total = path.stat().st_size
    last = float("-inf")
    read = 0
    next_report = 0.0
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            read += len(line)
            if progress is not None and (now := time.monotonic()) >= next_report:
                next_report = now + 0.5
                progress(read, total, f"{summary.windows:,} windows")
            if not line.strip():
                continue
            try:
                message = decode_input(line)
                if message_time(message) < last:
                    raise ContractError(f"message at {message_time(message)} is older than the previous one ({last})")
            except ContractError as exc:
                if strict:
                    raise DatasetError(f"{path}:{number}: {exc}") from exc
                summary.bad(number, str(exc))
                continue
            last = message_time(message)
            yield number, message
