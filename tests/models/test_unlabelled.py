"""A reliability engineer with months of unlabelled history trains an anomaly bundle and scores a plant with faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from models.runtime import Bundle
from tests.models.synthetic import write_dataset


@pytest.fixture(scope="module")
def anomaly_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("unlabelled")
    history = write_dataset(root / "history", seconds=3600, seed=0)
    (history / "labels.jsonl").write_text("")  # normal history: nobody labelled anything
    plant = write_dataset(root / "plant", seconds=3600, seed=1)
    args = ["model", "train", str(history), "--out", str(root / "bundle"), "--profile", "quick", "--set", "student_steps=20"]
    args += ["--run-dir", str(root / "run"), "--no-progress", "--false-alarm-rate", "0.05"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root / "bundle", plant, result.output


def test_data_without_fault_episodes_trains_a_calibrated_anomaly_bundle(anomaly_bundle: tuple[Path, Path, str]) -> None:
    bundle_path, _, output = anomaly_bundle
    assert "no fault episodes" in output and "false-alarm rate" in output
    bundle = Bundle.load(bundle_path)
    assert bundle.labels == ("normal", "anomaly") and bundle.config["mode"] == "unlabelled" and not bundle.has_ttf
    metrics = json.loads((bundle_path / "metrics.json").read_text())
    assert metrics["validation"]["false_alarm_rate"] <= 0.1, "calibrated on held-out normal windows to about 5 %"
    assert "false-alarm rate" in (bundle_path / "report.md").read_text()


def test_an_anomaly_bundle_is_scored_with_every_labelled_fault_as_an_anomaly(anomaly_bundle: tuple[Path, Path, str]) -> None:
    bundle_path, plant, _ = anomaly_bundle
    result = CliRunner().invoke(main, ["model", "evaluate", str(plant), "--model", str(bundle_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["labels"] == ["normal", "anomaly"], "fault names fold into the bundle's one fault class"
    assert set(data["per_class"]) <= {"normal", "anomaly"} and data["anomaly_auroc"] is not None
