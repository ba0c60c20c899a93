"""What every importer shares: contract-safe names, the import report, and writing the directory.

Real sources name things freely (``Accelerometer1RMS``, ``T24``, ``Volume Flow RateRMS``); the
contract wants channel and fault names in lowercase snake case of at most 48 characters and ids
without spaces or slashes. ``channel_name`` and ``asset_id`` make such names, unique within one
import, and the importer keeps the original in meta.json (``ChannelInfo.original_name``,
``meta.extra["names"]``) so nothing is lost on the way in.

A row an importer cannot use is never dropped silently: it is counted in the ``Report`` with its
file, line and reason, printed by the command and kept in meta.json (``meta.extra["import"]``).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forewarn.contracts import DatasetMeta, FaultEpisode, LogRecord, Telemetry
from forewarn.dataset import META, DatasetWriter, message_time
from forewarn.errors import DatasetError

START = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
"""Where importers put time zero of a source that has no clock (cycles, sample indices, sessions)."""

MAX_BAD_ROWS_KEPT = 200
"""Bad rows listed one by one in the report and meta.json; beyond this they are only counted."""

_NAME_LIMIT = 48
_ID_LIMIT = 64


class ImportRefused(DatasetError):
    """The source cannot become a dataset directory as asked (missing files, ambiguous rate, bad mapping)."""


def snake(text: str) -> str:
    """``Accelerometer1RMS`` -> ``accelerometer1_rms``, ``Volume Flow RateRMS`` -> ``volume_flow_rate_rms``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.strip())  # camelCase boundary
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)  # ABCWord -> ABC_Word
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return re.sub(r"_+", "_", text)


def _unique(base: str, taken: set[str], limit: int) -> str:
    name, n = base[:limit].rstrip("_"), 2
    while name in taken:
        suffix = f"_{n}"
        name = base[: limit - len(suffix)].rstrip("_") + suffix
        n += 1
    taken.add(name)
    return name


def channel_name(original: str, taken: set[str], prefix: str = "c") -> str:
    """A contract-safe channel (or fault) name for ``original``, not in ``taken`` (which it joins)."""
    base = snake(original) or prefix
    if not base[0].isalpha():
        base = f"{prefix}_{base}"
    return _unique(base, taken, _NAME_LIMIT)


def asset_id(original: str, taken: set[str]) -> str:
    """A contract-safe asset id for ``original`` (letters, digits, ``_.-``), not in ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_.\-]+", "_", original.strip()).strip("_.-") or "asset"
    if not base[0].isalnum():
        base = f"a{base}"
    return _unique(base, taken, _ID_LIMIT)


@dataclass
class Report:
    """What one import read, wrote and could not use."""

    source: str
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)
    """output directory -> counts (assets, messages, samples, log_records, episodes)."""
    bad_rows: list[tuple[str, int, str]] = field(default_factory=list)
    """(file, line, reason) of the first MAX_BAD_ROWS_KEPT rows refused."""
    bad_count: int = 0
    notes: list[str] = field(default_factory=list)

    def bad(self, file: str, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad_rows) < MAX_BAD_ROWS_KEPT:
            self.bad_rows.append((file, line, reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "outputs": self.outputs,
            "bad_rows": self.bad_count,
            "bad_row_list": [{"file": f, "line": n, "reason": r} for f, n, r in self.bad_rows],
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        out = [f"imported {self.source}"]
        for directory, counts in self.outputs.items():
            out.append(f"  {directory}: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in counts.items()))
        out += [f"  note: {note}" for note in self.notes]
        if self.bad_count:
            out.append(f"  {self.bad_count:,} bad rows refused (not imported):")
            out += [f"    {f}:{n}: {r}" for f, n, r in self.bad_rows[:20]]
            if self.bad_count > 20:
                out.append(
                    f"    ... {self.bad_count - 20:,} more (all listed up to {MAX_BAD_ROWS_KEPT} in meta.json extra.import)"
                )
        else:
            out.append("  no bad rows")
        return out


def merged(streams: Iterable[Iterable[Telemetry | LogRecord]]) -> Iterator[Telemetry | LogRecord]:
    """Time-ordered streams (one per asset) merged into one time-ordered stream, ties in stream order."""
    return heapq.merge(*streams, key=message_time)


def write_dataset(
    directory: Path,
    meta: DatasetMeta,
    messages: Iterable[Telemetry | LogRecord],
    episodes: Iterable[FaultEpisode],
    report: Report,
    *,
    overwrite: bool = False,
) -> dict[str, int]:
    """Write one dataset directory (messages in time order) and record its counts in ``report``.

    meta.extra["import"] gets the report as it stands once the messages are written, so the
    directory says what was refused on the way in.
    """
    counts = {"assets": 0, "messages": 0, "samples": 0, "log_records": 0, "episodes": 0}
    assets: set[str] = set()
    episodes = list(episodes)
    writer = DatasetWriter(directory, meta, overwrite=overwrite)
    done = False
    try:
        for message in messages:
            writer.write(message)
            assets.add(message.asset_id)
            if isinstance(message, Telemetry):
                counts["samples"] += len(message.timestamps) * len(message.channels)
            else:
                counts["log_records"] += 1
        for episode in episodes:
            writer.label(episode)
        counts.update(assets=len(assets), messages=writer.count, episodes=len(episodes))
        report.outputs[str(directory)] = counts
        extra = {**meta.extra, "import": {**report.as_dict(), "counts": counts}}
        writer.meta = meta.model_copy(update={"extra": extra})
        done = True
    finally:
        writer.close()
        if not done:  # a half-written directory must not read as a dataset
            (Path(directory) / META).unlink(missing_ok=True)
    return counts
