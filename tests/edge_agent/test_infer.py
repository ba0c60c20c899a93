"""The shipped bundle gives valid, evidenced predictions; a bundle dropped in place is verified before it is swapped in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_agent.errors import ModelError
from edge_agent.infer import Scorer
from forewarn.contracts import prediction_id
from models.bundle import write_manifest
from models.windowing import Window, WindowSpec, windows_from_messages
from tests.edge_agent.streams import plant_stream


@pytest.fixture(scope="module")
def windows(spec: WindowSpec) -> list[Window]:
    return list(windows_from_messages(plant_stream(spec, "p1", ["a1", "a2"], minutes=20), spec))


def test_predictions_carry_the_window_the_model_and_the_evidence(bundle: Path, windows: list[Window]) -> None:
    scorer = Scorer(bundle, "gw1", threads=1, batch_size=8)
    scorer.load()
    scored = scorer.score(windows)
    assert len(scored.predictions) == len(windows) and scored.seconds > 0
    for window, p in zip(windows, scored.predictions, strict=True):
        assert p.id == prediction_id("gw1", window.asset_id, window.end)
        assert (p.window_start, p.window_end, p.asset_type) == (window.start, window.end, "pump")
        assert p.model_version == scorer.version and p.fault in p.probabilities
        assert p.produced_at == window.end and p.latency_ms == 0.0, "deterministic clock"
    assert any(p.evidence.channels for p in scored.predictions)
    for window, p in zip(windows, scored.predictions, strict=True):  # lines shown are the window's own, only for faults
        assert {e.text for e in p.evidence.logs} <= {r.text for r in window.logs}
        assert p.fault != "normal" or not p.evidence.logs
    again = scorer.score(windows)
    assert again.predictions == scored.predictions, "same windows, same predictions"


def test_the_live_clock_reports_added_latency(bundle: Path, windows: list[Window]) -> None:
    import time

    scorer = Scorer(bundle, "gw1")
    scorer.load()
    arrived = time.perf_counter() - 0.010
    (p,) = scorer.score(windows[:1], [arrived]).predictions
    assert p.latency_ms >= 10.0 and p.produced_at > windows[0].end


def test_a_bundle_dropped_in_place_is_verified_before_it_is_swapped_in(
    bundle: Path, windows: list[Window], tmp_path: Path
) -> None:
    live = tmp_path / "bundle"
    shutil.copytree(bundle, live)
    scorer = Scorer(live, "gw1")
    scorer.load()
    first = scorer.version
    assert scorer.check_reload() is False, "nothing changed"

    (live / "model.onnx").write_bytes((live / "model.onnx").read_bytes() + b"tampered")
    with pytest.raises(ModelError, match="does not match its manifest"):
        scorer.check_reload()
    assert scorer.version == first and scorer.score(windows[:2]).predictions, "the running model carries on"
    assert scorer.check_reload() is False, "a refused bundle is not retried until its files change again"

    shutil.copy2(bundle / "model.onnx", live / "model.onnx")
    config = json.loads((live / "config.json").read_text())
    config["note"] = "re-released"
    (live / "config.json").write_text(json.dumps(config))
    write_manifest(live)
    assert scorer.check_reload() is True
    assert scorer.version != first
    assert {p.model_version for p in scorer.score(windows[:2]).predictions} == {scorer.version}


def test_a_missing_bundle_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="refused"):
        Scorer(tmp_path / "nothing", "gw1").load()
