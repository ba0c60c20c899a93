"""models.cascade: the escalation criterion, the verdict outcome, and the offline curve, against oracles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from forewarn.cli import main
from models.bundle import write_manifest
from models.cascade import Policy, combine, inputs_id, macro_f1, operating_point, outcome, point, sweep
from models.metrics import classification
from models.runtime import default_bundle_path


def _probs(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def test_escalates_low_confidence_and_unexplained_anomaly_only() -> None:
    probs = _probs(
        [
            [0.9, 0.05, 0.05],  # sure normal, low anomaly: stays
            [0.4, 0.35, 0.25],  # unsure: escalated
            [0.95, 0.03, 0.02],  # normal but very anomalous: no known fault explains it
            [0.05, 0.9, 0.05],  # sure fault, anomalous: the fault explains it, stays
        ]
    )
    anomaly = np.array([0.1, 0.2, 0.97, 0.99])
    policy = Policy(confidence_below=0.6, anomaly_above=0.9)
    assert policy.reasons(probs, anomaly) == [None, "low_confidence", "unknown_anomaly", None]
    assert policy.escalate(probs, anomaly).tolist() == [False, True, True, False]


def test_reason_reads_a_prediction_whatever_the_order_of_its_labels() -> None:
    policy = Policy(confidence_below=0.6, anomaly_above=0.9)
    assert policy.reason({"imbalance": 0.02, "normal": 0.98}, 0.95) == "unknown_anomaly"
    assert policy.reason({"imbalance": 0.98, "normal": 0.02}, 0.95) is None
    assert policy.reason({"imbalance": 0.55, "normal": 0.45}, 0.1) == "low_confidence"


def test_outcome_names_what_the_plant_verdict_does() -> None:
    assert outcome("imbalance", "imbalance") == "confirm"
    assert outcome("imbalance", "normal") == "clear"
    assert outcome("imbalance", "looseness") == "reclassify"
    assert outcome("normal", "looseness") == "reclassify"
    assert outcome("normal", "normal") == "confirm"


def test_macro_f1_agrees_with_the_metrics_module() -> None:
    rng = np.random.default_rng(3)
    y, pred = rng.integers(0, 5, 400), rng.integers(0, 5, 400)
    pred[:200] = y[:200]
    labels = [f"c{i}" for i in range(6)]
    assert round(macro_f1(y, pred, 6), 4) == classification(y, pred, labels)["macro_f1"]


def test_cascade_takes_the_plant_verdict_exactly_where_escalated() -> None:
    rng = np.random.default_rng(0)
    n, k = 500, 4
    y = rng.integers(0, k, n)
    edge = rng.dirichlet(np.ones(k), n)
    plant = np.eye(k)[y] * 0.9 + 0.1 / k  # an oracle plant model: always right
    anomaly = rng.random(n)
    policy = Policy(0.5, 0.95)
    escalated = policy.escalate(edge, anomaly)
    assert escalated.any() and not escalated.all()
    cascade = combine(edge.argmax(axis=1), plant.argmax(axis=1), escalated)
    assert (cascade[escalated] == y[escalated]).all()
    assert (cascade[~escalated] == edge.argmax(axis=1)[~escalated]).all()
    figures = point(y, edge, plant, anomaly, policy)
    assert figures["escalated_fraction"] == pytest.approx(escalated.mean(), abs=1e-4)
    assert figures["macro_f1_plant"] == 1.0
    assert figures["macro_f1_cascade"] == round(macro_f1(y, cascade, k), 4)
    assert figures["macro_f1_edge"] < figures["macro_f1_cascade"] <= 1.0


def test_sweep_escalates_more_as_the_threshold_rises_and_picks_the_best_point_within_budget() -> None:
    rng = np.random.default_rng(1)
    n, k = 1000, 3
    y = rng.integers(0, k, n)
    # an edge that is right when confident: confidence carries the information the cascade uses
    right = rng.random(n) < 0.8
    guess = np.where(right, y, (y + 1) % k)
    top = np.where(right, rng.uniform(0.7, 1.0, n), rng.uniform(0.34, 0.6, n))
    edge = np.tile(((1 - top) / (k - 1))[:, None], (1, k))
    edge[np.arange(n), guess] = top
    plant = np.eye(k)[y]
    curve = sweep(y, edge, plant, np.zeros(n), thresholds=(0.4, 0.5, 0.6, 0.7, 0.9))
    fractions = [p["escalated_fraction"] for p in curve]
    assert fractions == sorted(fractions) and fractions[0] < fractions[-1]
    assert curve[3]["macro_f1_cascade"] == 1.0  # every wrong edge verdict sits below 0.6 < 0.7
    best = operating_point(curve, max_fraction=0.25)
    assert best is not None and best["escalated_fraction"] <= 0.25
    assert best["macro_f1_cascade"] == max(p["macro_f1_cascade"] for p in curve if p["escalated_fraction"] <= 0.25)
    assert operating_point(curve, max_fraction=0.0) is None or operating_point(curve, 0.0)["escalated"] == 0  # type: ignore[index]


def test_credit_any_truth_applies_to_every_model_alike() -> None:
    y = np.array([1, 2])
    edge = _probs([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # window 0 has faults 1 and 2: naming 2 is right
    figures = point(y, edge, edge, np.zeros(2), Policy(0.5, 1.0), credit=[[1, 2], [2]])
    assert figures["macro_f1_edge"] == 1.0 and figures["macro_f1_cascade"] == 1.0


def test_inputs_id_changes_with_what_decides_the_inputs_only() -> None:
    files = {n: {"sha256": n * 3, "bytes": 1} for n in ("tokenizer.json", "normalisation.json", "labels.json", "model.onnx")}
    config = {"spec": {"steps": 20}, "features": {"log_tokens": 40}, "model": {"d_model": 192}}
    base = inputs_id({"files": files}, config)
    bigger = inputs_id({"files": {**files, "model.onnx": {"sha256": "other", "bytes": 9}}}, {**config, "model": {"d_model": 384}})
    assert bigger == base  # another graph on the same inputs: a plant model for this edge
    assert inputs_id({"files": files}, {**config, "spec": {"steps": 10}}) != base
    assert inputs_id({"files": {**files, "tokenizer.json": {"sha256": "x", "bytes": 1}}}, config) != base


def test_shapes_must_agree() -> None:
    with pytest.raises(ValueError, match="same windows"):
        Policy().escalate(np.ones((3, 2)) / 2, np.zeros(2))


# ----------------------------------------------------------------- `model evaluate --cascade`


@pytest.fixture(scope="module")
def plant_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated hours of the demo plant (the shipped bundle's channels)."""
    out = tmp_path_factory.mktemp("cascade") / "demo"
    result = CliRunner().invoke(
        main, ["simulate", "--scenario", "demo", "--duration", "3h", "--seed", "7", "--start", "1796067545", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def _evaluate(data: Path, plant: Path, *flags: str) -> Any:
    args = ["model", "evaluate", str(data), "--cascade", str(plant), "--json", "--limit", "300", *flags]
    return CliRunner().invoke(main, args)


def test_evaluate_cascade_with_the_edge_bundle_as_plant_changes_nothing(plant_day: Path) -> None:
    """Oracle: a plant model that is the edge model gives the edge's figures, whatever is escalated."""
    result = _evaluate(plant_day, default_bundle_path(), "--confidence-below", "0.99")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["macro_f1_edge"] == figures["macro_f1_plant"] == figures["macro_f1_cascade"] == figures["macro_f1"]
    assert figures["cascade"]["at"]["confidence_below"] == 0.99
    assert figures["escalated_fraction"] == figures["cascade"]["at"]["escalated_fraction"]
    curve = figures["cascade"]["curve"]
    assert [p["escalated_fraction"] for p in curve] == sorted(p["escalated_fraction"] for p in curve)


def test_evaluate_cascade_refuses_a_plant_bundle_reading_other_inputs(plant_day: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(default_bundle_path(), other)
    config = json.loads((other / "config.json").read_text())
    config["spec"]["max_log_lines"] = 8
    (other / "config.json").write_text(json.dumps(config))
    write_manifest(other)
    result = _evaluate(plant_day, other)
    assert result.exit_code != 0
    assert "reads other inputs" in result.output


def test_the_shipped_plant_bundle_reads_the_default_bundles_inputs() -> None:
    """A fresh install runs the cascade: models/bundles/plant loads, and its inputs are the default bundle's."""
    from models.runtime import Bundle

    edge = Bundle.load(default_bundle_path())
    plant = Bundle.load(default_bundle_path().parent / "plant")
    assert plant.config["tier"] == "plant" and plant.config["plant"]["edge_model_version"] == edge.version
    assert inputs_id(plant.manifest, plant.config) == inputs_id(edge.manifest, edge.config)
    assert plant.labels == edge.labels and plant.version != edge.version
