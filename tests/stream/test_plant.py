"""The plant tier: escalated inputs re-scored by a bundle that reads them, and the verdict recorded on the asset's alert."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.escalate import Budget, Escalator
from edge_agent.infer import Scorer
from forewarn.contracts import Alert, Escalation, PlantVerdict, decode
from models.cascade import Policy
from models.runtime import Bundle, Predictor, default_bundle_path
from models.windowing import windows_from_messages
from stream.config import RuleParams, RuleSettings
from stream.plant import PlantScorer
from stream.rules import apply_plant_verdict, apply_prediction
from stream.state import EntityState
from stream.store import AlertStore
from stream.synthetic import prediction
from tests.edge_agent.streams import plant_stream

T0 = 1_800_000_000.0
FAULT = "bearing_outer_race"
RULES = RuleSettings(default=RuleParams(k=3, n=5, quiet_predictions=3, quiet_s=0), minor_update_s=0)


def _verdict(window_end: float, edge_fault: str = FAULT, fault: str = FAULT, outcome: str = "confirm") -> PlantVerdict:
    return PlantVerdict.model_validate(
        {
            "prediction_id": f"gw1:p1:{round(window_end * 1000)}",
            "asset_id": "p1",
            "site": "plant1",
            "window_end": window_end,
            "edge_fault": edge_fault,
            "edge_confidence": 0.55,
            "edge_model_version": "slm-edge",
            "reason": "low_confidence",
            "fault": fault,
            "confidence": 0.9,
            "outcome": outcome,
            "model_version": "slm-plant",
            "ts": window_end + 5,
        }
    )


def _open_alert(state: EntityState, start: int = 0) -> Alert:
    changes = []
    for i in range(start, start + 3):
        changes += apply_prediction(state, prediction("p1", T0 + 10 * i, FAULT, 0.9), RULES, now=T0 + 10 * i + 1)
    (opened,) = changes
    return opened


def test_escalated_inputs_scored_by_the_same_bundle_give_the_edge_verdict_back() -> None:
    """Oracle: a plant tier running the edge's own bundle must confirm every escalation with the edge's probabilities."""
    path = default_bundle_path()
    bundle = Bundle.load(path)
    windows = list(windows_from_messages(plant_stream(bundle.spec, "p1", ["a1", "a2"], minutes=20), bundle.spec))
    scorer = Scorer(path, "gw1", 1, 64)
    scorer.load()
    predictions = scorer.score(windows).predictions
    escalator = Escalator(Policy(confidence_below=1.01), Budget(rate=0.0, burst=1000), "forewarn.escalations")
    records = escalator.records(windows, predictions, Predictor(bundle), now=T0)
    assert len(records) == len(windows) > 0
    assert {r.kind for r in records} == {"escalation"} and {r.key for r in records} == {b"a1", b"a2"}
    escalations = [decode(r.value, Escalation) for r in records]
    plant = PlantScorer(path)
    assert all(plant.refusal(e) is None for e in escalations)
    verdicts = plant.score(escalations, now=T0)
    for p, v in zip(predictions, verdicts, strict=True):
        assert v.prediction_id == p.id and v.fault == p.fault and v.outcome == "confirm"
        assert v.confidence == pytest.approx(p.confidence, abs=1e-5)


def test_a_plant_bundle_reading_other_inputs_refuses_the_escalation() -> None:
    path = default_bundle_path()
    bundle = Bundle.load(path)
    windows = list(windows_from_messages(plant_stream(bundle.spec, "p1", ["a1"], minutes=12), bundle.spec))
    scorer = Scorer(path, "gw1", 1, 64)
    scorer.load()
    predictions = scorer.score(windows).predictions
    records = Escalator(Policy(1.01), Budget(0.0, 10), "t").records(windows, predictions, Predictor(bundle), now=T0)
    other = decode(records[0].value, Escalation).model_copy(update={"inputs_id": "in-000000000000"})
    assert "reads" in (PlantScorer(path).refusal(other) or "")


def test_the_budget_bounds_escalations_and_refills_with_time() -> None:
    now = [0.0]
    escalator = Escalator(Policy(confidence_below=0.6), Budget(rate=1.0, burst=2, clock=lambda: now[0]), "t")
    unsure = [prediction("p1", T0 + i, FAULT, 0.55) for i in range(5)]
    sure = [prediction("p1", T0 + 10 + i, FAULT, 0.95) for i in range(5)]
    assert [i for i, _ in escalator.choose(sure + unsure)] == [5, 6]
    assert escalator.over_budget == 3
    now[0] = 1.0
    assert len(escalator.choose(unsure)) == 1


def test_a_verdict_is_a_new_revision_of_the_open_alert_and_is_applied_once() -> None:
    state = EntityState(kind="asset", id="p1", site="plant1")
    opened = _open_alert(state)
    verdict = _verdict(T0 + 10, outcome="confirm")
    (changed,) = apply_plant_verdict(state, verdict, now=T0 + 40)
    assert changed.id == opened.id and changed.revision == opened.revision + 1
    assert changed.plant == verdict
    assert apply_plant_verdict(state, verdict, now=T0 + 41) == []  # a replay records nothing new
    clear = _verdict(T0 + 20, fault="normal", outcome="clear")
    (cleared,) = apply_plant_verdict(state, clear, now=T0 + 42)
    assert cleared.plant is not None and cleared.plant.outcome == "clear" and cleared.revision == changed.revision + 1


def test_a_verdict_before_its_alert_opens_is_recorded_when_it_opens() -> None:
    state = EntityState(kind="asset", id="p1", site="plant1")
    early = _verdict(T0, outcome="reclassify", fault="looseness")
    assert apply_plant_verdict(state, early, now=T0 + 2) == []
    assert state.plant_pending[FAULT] == early
    assert EntityState.from_bytes(state.to_bytes()).plant_pending[FAULT] == early  # survives the changelog
    opened = _open_alert(state)
    assert opened.plant == early and not state.plant_pending


def test_the_store_names_the_verdict_in_the_alert_history(tmp_path: object) -> None:
    store = AlertStore(f"sqlite:///{tmp_path}/alerts.db")
    store.create_all()
    state = EntityState(kind="asset", id="p1", site="plant1")
    opened = _open_alert(state)
    (changed,) = apply_plant_verdict(state, _verdict(T0 + 10, fault="looseness", outcome="reclassify"), now=T0 + 40)
    assert store.write([opened]) == 1 and store.write([changed]) == 1
    shown = store.get_alert(opened.id)
    assert shown is not None
    assert [h["change"] for h in shown["history"]] == ["opened", "plant_reclassify"]
    assert shown["plant"]["fault"] == "looseness"
    stored = store.stored_alert(opened.id)
    assert stored is not None and stored.plant is not None and stored.plant.outcome == "reclassify"
    assert np.isfinite(stored.plant.confidence)
