"""The verdict benchmark judges alerts as an operator would and writes them through `alerts export-labels`' writer."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.bench_alerts import Episode
from benchmarks.bench_verdicts import alerts, at_recall, verdict, verdict_directory
from forewarn.contracts import DatasetMeta
from forewarn.dataset import DatasetWriter, read_labels
from stream.config import RuleSettings
from stream.synthetic import prediction

T0 = 1_800_000_000.0


def test_alerts_get_the_verdict_of_the_fault_found_or_false_alarm(tmp_path: Path) -> None:
    preds = [prediction("p1", T0 + 60 * i, "imbalance", 0.9) for i in range(6)]  # p1 misaligned, called imbalance
    preds += [prediction("p2", T0 + 60 * i, "overheating", 0.9) for i in range(6)]  # p2 healthy
    episodes = [Episode("p1", "misalignment", T0 - 3600, T0 + 7200, labelled=True)]
    raised = alerts(preds, RuleSettings())
    assert [(a.asset_id, a.fault) for a in raised] == [("p1", "imbalance"), ("p2", "overheating")]
    rows = {r["asset_id"]: r for r in (verdict(a, episodes, 600.0) for a in raised)}
    assert rows["p1"]["verdict"] == "confirmed" and rows["p1"]["verdict_fault"] == "misalignment"
    assert rows["p1"]["resolved_at"] == T0 + 7200, "the technician repaired it at the failure"
    assert rows["p2"]["verdict"] == "false_alarm"

    week = tmp_path / "week1"
    with DatasetWriter(week, DatasetMeta(source="test", assets={"p1": "pump", "p2": "pump"}, extra={"episodes": [1]})):
        pass
    added, given = verdict_directory(week, tmp_path / "verdicts", list(rows.values()))
    assert (added, given) == (2, 2)
    labels = {e.asset_id: e for e in read_labels(tmp_path / "verdicts")}
    assert labels["p1"].fault == "misalignment" and labels["p2"].fault == "normal"
    assert "episodes" not in json.loads((tmp_path / "verdicts" / "meta.json").read_text())["extra"], "no ground truth leaks"


def test_equal_recall_takes_the_fewest_false_alerts_that_reach_it() -> None:
    points = [
        {"threshold": 0.5, "recall": 0.8, "false_alerts": 9},
        {"threshold": 0.7, "recall": 0.6, "false_alerts": 4},
        {"threshold": 0.9, "recall": 0.4, "false_alerts": 1},
    ]
    assert at_recall(points, 0.6) == points[1]
    assert at_recall(points, 0.9) is None
