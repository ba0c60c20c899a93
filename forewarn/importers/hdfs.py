"""HDFS block sessions of log templates (JSON lines) -> log-only dataset directories.

    SRC  one JSON object per line: {"BlockId": "blk_...", "label": 0|1, "split": "train"|"test",
         "templates": ["Receiving block <*> src: /<*> dest: /<*>", ...]}   (a file, or a folder of *.jsonl)

Each block is an asset whose templates, in order, are its log records, one every ``line_s``
seconds from START (the sessions carry no clock of their own; every block starts at START). The
templates keep no level, so every record is INFO: the text alone tells. An anomalous block (label 1)
has one ``anomaly`` episode from its first line on. The file's own split is kept: OUT/train and
OUT/test (a file without splits gives one directory, OUT).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from forewarn.contracts import MAX_LOG_TEXT, DatasetMeta, FaultEpisode, LogRecord
from forewarn.importers.common import START, ImportRefused, Report, asset_id, merged, write_dataset

FAULT = "anomaly"


def _records(site: str, asset: str, templates: list[str], line_s: float) -> Iterator[LogRecord]:
    for seq, text in enumerate(templates):
        yield LogRecord(site=site, asset_id=asset, ts=START + seq * line_s, source="hdfs", text=text, seq=seq)


def import_hdfs(src: Path, out: Path, *, line_s: float = 1.0, site: str = "hdfs", overwrite: bool = False) -> Report:
    """Write OUT/train and OUT/test (or OUT) from HDFS block sessions."""
    if line_s <= 0:
        raise ImportRefused("--line-s must be positive")
    src = Path(src)
    files = sorted(src.glob("*.jsonl")) if src.is_dir() else [src]
    if not files:
        raise ImportRefused(f"{src} holds no .jsonl session files")
    report = Report(source=f"HDFS block sessions from {src}")
    sessions: dict[str, list[tuple[str, list[str], bool]]] = {}
    taken: set[str] = set()
    truncated = 0
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    block, label, templates = row["BlockId"], row["label"], row["templates"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    report.bad(path.name, number, f"not a session object with BlockId, label, templates ({exc})")
                    continue
                split = row.get("split", "")
                if label not in (0, 1) or split not in ("train", "test", ""):
                    report.bad(path.name, number, f"label must be 0 or 1 and split train or test (got {label!r}, {split!r})")
                    continue
                if (
                    not isinstance(templates, list)
                    or not templates
                    or not all(isinstance(t, str) and t.strip() for t in templates)
                ):
                    report.bad(path.name, number, "templates must be a non-empty list of non-empty strings")
                    continue
                if not isinstance(block, str) or not block.strip():
                    report.bad(path.name, number, "BlockId must be a non-empty string")
                    continue
                asset = asset_id(block, taken)
                if asset != block:
                    report.notes.append(f"block {block[:80]!r} is asset {asset!r}")
                truncated += sum(len(t) > MAX_LOG_TEXT for t in templates)
                sessions.setdefault(split, []).append((asset, [t[:MAX_LOG_TEXT] for t in templates], bool(label)))
    if not sessions:
        raise ImportRefused(f"{src} holds no usable session")
    if "" in sessions and len(sessions) > 1:
        raise ImportRefused("some sessions name a split and some do not; give every session a split or none")
    if truncated:
        report.notes.append(f"{truncated} template(s) longer than {MAX_LOG_TEXT} characters cut to that length")
    for split, rows in sorted(sessions.items()):
        episodes = [FaultEpisode(site=site, asset_id=a, fault=FAULT, onset=START) for a, _, anomalous in rows if anomalous]
        distinct = len({t for _, ts, _ in rows for t in ts})
        meta = DatasetMeta(
            source=f"HDFS_v1 block sessions (Loghub, Zhu et al. ISSRE 2023){' ' + split if split else ''}",
            licence="Loghub data: research use, cite Zhu et al., Loghub, ISSRE 2023",
            assets=dict.fromkeys((a for a, _, _ in rows), "hdfs_block"),
            split=split,
            start=START,
            end=START + max(len(ts) - 1 for _, ts, _ in rows) * line_s,
            extra={
                "line_s": line_s,
                "blocks": len(rows),
                "anomalous_blocks": len(episodes),
                "distinct_templates": distinct,
                "faults": {FAULT: "block labelled anomalous (label 1)"},
            },
        )
        streams = (_records(site, a, ts, line_s) for a, ts, _ in rows)
        write_dataset(out / split if split else out, meta, merged(streams), episodes, report, overwrite=overwrite)
    return report
