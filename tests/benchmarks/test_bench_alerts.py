"""An operator's alerts are matched to fault episodes: right fault in time is true, early detection counts, the rest is false."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.contracts import DatasetMeta, FaultEpisode
from forewarn.dataset import DatasetWriter
from stream.config import RuleSettings
from stream.synthetic import prediction

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_alerts.py"
T0 = 1_800_000_000.0
H = 3600.0


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_alerts", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_alerts"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_the_stream_rules_decide_when_an_alert_opens(bench: ModuleType) -> None:
    # p1: 2 hits, a gap, then 3 hits in a row (k=3 of n=5 opens on the 3rd); p2: always normal
    probs = [0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9]
    preds = [prediction("p1", T0 + 60 * i, "imbalance", p) for i, p in enumerate(probs)]
    preds += [prediction("p2", T0 + 60 * i) for i in range(10)]
    openings = bench.alert_openings(reversed(preds), RuleSettings())  # folded per asset in window order whatever the input order
    assert openings == [bench.Opening("p1", "imbalance", T0 + 60 * 8)]


def test_matching_verdicts_detection_and_lead_time(bench: ModuleType) -> None:
    E, Op = bench.Episode, bench.Opening
    episodes = [
        E("p1", "imbalance", T0, T0 + 10 * H, labelled=True),  # started (initiation) at T0
        E("p2", "looseness", T0, None, labelled=True),  # failure unknown: open-ended
        E("p3", "cavitation", T0 + 5 * H, T0 + 6 * H, labelled=True),  # only alerted after its failure
        E("p4", "overheating", T0, None, labelled=False),  # begun, never labelled in the data
    ]
    openings = [
        Op("p1", "imbalance", T0 + 2 * H),  # true, first: lead 8 h
        Op("p1", "imbalance", T0 + 4 * H),  # true again (a re-opened alert), lead still from the first
        Op("p1", "looseness", T0 + 3 * H),  # right asset, wrong fault
        Op("p2", "looseness", T0 + 30 * H),  # true, detected (no failure known), no lead time
        Op("p3", "cavitation", T0 + 6 * H + 300),  # within failure + one window: true, but not a detection
        Op("p3", "cavitation", T0 + 7 * H),  # after failure + window: false
        Op("p4", "overheating", T0 + 1 * H),  # true (incipient), not an episode for recall
        Op("p5", "imbalance", T0),  # healthy asset: false
    ]
    outcome = bench.match(openings, episodes, window_s=600.0)
    outcome.asset_days = 5.0
    row = bench.summary(outcome)
    assert row["alerts"] == 8
    assert (row["true_alerts"], row["true_incipient"], row["false_alerts"], row["wrong_fault"]) == (5, 1, 3, 1)
    assert row["precision"] == 0.625
    assert (row["episodes"], row["detected"], row["recall"]) == (3, 2, 0.667)
    assert row["lead_h_median"] == 8.0 and row["lead_h_p10"] == 8.0
    assert row["false_per_asset_day"] == 0.6
    per_fault = bench.summary(outcome, "cavitation")
    assert (per_fault["alerts"], per_fault["true_alerts"], per_fault["detected"], per_fault["recall"]) == (2, 1, 0, 0.0)


def test_meta_initiation_moves_an_episode_start_back(bench: ModuleType, tmp_path: Path) -> None:
    meta = DatasetMeta(
        source="test",
        extra={
            "episodes": [
                {"asset_id": "p1", "fault": "imbalance", "initiation": T0 - H, "detectable": T0, "failure": T0 + H},
                {"asset_id": "p1", "fault": "looseness", "initiation": T0 + 2 * H, "detectable": T0 + 9 * H, "failure": None},
            ]
        },
    )
    with DatasetWriter(tmp_path, meta) as writer:
        writer.label(FaultEpisode(asset_id="p1", fault="imbalance", onset=T0, failure=T0 + H))
        writer.label(FaultEpisode(asset_id="p2", fault="cavitation", onset=T0, failure=None))
    assert sorted(bench.load_episodes(tmp_path), key=lambda e: e.fault) == [
        bench.Episode("p2", "cavitation", T0, None, labelled=True),
        bench.Episode("p1", "imbalance", T0 - H, T0 + H, labelled=True),
        bench.Episode("p1", "looseness", T0 + 2 * H, None, labelled=False),
    ]


def test_a_missing_dataset_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "is not a dataset directory" in done.stderr and "Traceback" not in done.stderr


def test_a_simulated_plant_goes_through_scoring_and_rules_to_one_json_report(tmp_path: Path) -> None:
    data = tmp_path / "tiny"
    made = CliRunner().invoke(main, ["simulate", "--scenario", "demo", "--assets", "2", "--duration", "20m", "--out", str(data)])
    assert made.exit_code == 0, made.output
    done = subprocess.run([sys.executable, str(SCRIPT), str(data), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["datasets"]["tiny"]["windows"] > 0 and report["datasets"]["tiny"]["episodes"] == 1
    assert report["datasets"]["pooled"]["alerts"] == report["datasets"]["tiny"]["alerts"]
