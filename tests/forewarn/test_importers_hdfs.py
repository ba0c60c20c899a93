"""HDFS block sessions become one asset per block with its templates as log lines, anomalous blocks
labelled, the file's split kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forewarn.contracts import LogRecord
from forewarn.dataset import iter_messages, read_labels, read_meta
from forewarn.importers.common import START, ImportRefused
from forewarn.importers.hdfs import import_hdfs


def _session(block: str, label: int, split: str, n: int) -> str:
    templates = ["BLOCK* NameSystem.allocateBlock:<*>"] + [f"Receiving block <*> step {i}" for i in range(n - 1)]
    return json.dumps({"BlockId": block, "label": label, "split": split, "templates": templates})


def test_blocks_become_log_only_assets_in_their_own_split(tmp_path: Path) -> None:
    src = tmp_path / "sessions.jsonl"
    lines = [
        _session("blk_1", 0, "train", 3),
        _session("blk_-2", 1, "train", 2),
        "{not json",
        _session("blk_3", 1, "test", 4),
        json.dumps({"BlockId": "blk_4", "label": 1, "split": "test", "templates": []}),
    ]
    src.write_text("\n".join(lines) + "\n")
    report = import_hdfs(src, tmp_path / "out", line_s=2.0)

    assert [(f, n) for f, n, _ in report.bad_rows] == [("sessions.jsonl", 3), ("sessions.jsonl", 5)]
    train = list(iter_messages(tmp_path / "out" / "train"))
    assert all(isinstance(m, LogRecord) for m in train) and len(train) == 5
    blk1 = [m for m in train if isinstance(m, LogRecord) and m.asset_id == "blk_1"]
    assert [m.ts for m in blk1] == [START, START + 2, START + 4]
    assert blk1[0].text == "BLOCK* NameSystem.allocateBlock:<*>"
    assert [(e.asset_id, e.fault) for e in read_labels(tmp_path / "out" / "train")] == [("blk_-2", "anomaly")]
    test_meta = read_meta(tmp_path / "out" / "test")
    assert test_meta.split == "test" and set(test_meta.assets) == {"blk_3"} and test_meta.extra["anomalous_blocks"] == 1


def test_a_file_with_no_usable_session_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "s.jsonl"
    src.write_text("[]\n")
    with pytest.raises(ImportRefused, match="no usable session"):
        import_hdfs(src, tmp_path / "out")
