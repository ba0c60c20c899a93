"""The demo's gateway knows the rating plates of the plant its simulator plays, as a plant's asset register would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo.run import simulated_nameplates
from edge_agent.config import EdgeSettings
from forewarn.settings import load_settings
from simulators.plant import Plant
from simulators.scenario import load_scenario


def test_the_demo_passes_the_simulated_plants_rated_currents_to_its_gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FOREWARN_CONFIG", raising=False)
    plates = simulated_nameplates("demo", None)
    expected = Plant(load_scenario("demo"), seed=0, start=1_750_000_000.0).meta().nameplates
    assert plates == {a: {"rated_current_a": p.rated_current_a} for a, p in expected.items()} and len(plates) == 5
    monkeypatch.setenv("FOREWARN_EDGE_NAMEPLATES", json.dumps(plates))
    edge = load_settings(EdgeSettings, None, state_dir=tmp_path).edge
    assert {a: p.rated_current_a for a, p in edge.nameplates.items()} == {a: p["rated_current_a"] for a, p in plates.items()}
