"""A new bundle passes its self-test only with finite outputs and few flipped verdicts; failing on a batch rolls back to N-1."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import EdgeSettings
from edge_agent.daemon import EdgeDaemon
from edge_agent.rollout import Candidate, self_test
from forewarn.contracts import Evidence
from models.runtime import ModelOutput
from models.signing import PackageError, Statement, keygen
from models.windowing import Window, Windower, WindowSpec
from tests.edge_agent.streams import plant_stream


@dataclass
class FakeBundle:
    spec: object
    version: str = "slm-fake"


class FakePredictor:
    """Says ``fault`` for the first ``faults`` windows, normal for the rest."""

    def __init__(self, faults: int = 0, value: float = 0.5) -> None:
        self.faults, self.value = faults, value

    def predict(self, windows: list[Any]) -> list[ModelOutput]:
        return [
            ModelOutput(
                probabilities={"normal": self.value, "imbalance": 1 - self.value},
                fault="imbalance" if i < self.faults else "normal",
                anomaly_score=0.1,
                ttf_hours=None,
                confidence=self.value,
                evidence=Evidence(channels=[], logs=[]),
            )
            for i in range(len(windows))
        ]


def _loaded(spec: object = "spec", faults: int = 0, value: float = 0.5) -> Any:
    return FakeBundle(spec), FakePredictor(faults, value)


def test_verdicts_flipped_on_more_than_the_allowed_share_refuse_the_bundle() -> None:
    windows = [object()] * 10
    assert "20.0% of verdicts changed" in self_test(_loaded(), _loaded(faults=2), windows, 10, 0.25)  # type: ignore[arg-type]
    with pytest.raises(PackageError, match="3 of 10") as refused:
        self_test(_loaded(), _loaded(faults=3), windows, 10, 0.25)  # type: ignore[arg-type]
    assert refused.value.reason == "selftest"
    assert "flip check needs 11" in self_test(_loaded(), _loaded(faults=9), windows, 11, 0.25)  # type: ignore[arg-type]


def test_non_finite_outputs_or_another_window_refuse_the_bundle() -> None:
    windows = [object()] * 3
    with pytest.raises(PackageError, match="non-finite"):
        self_test(_loaded(), _loaded(value=math.nan), windows, 0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(PackageError, match="cuts windows differently"):
        self_test(_loaded(), _loaded(spec="other"), windows, 0, 1.0)  # type: ignore[arg-type]


def _windows(spec: WindowSpec, site: str) -> list[Window]:
    windower = Windower(spec)
    return [w for m in plant_stream(spec, site, ["a1"], minutes=14) for w in windower.add(m).ready()]


def test_a_batch_the_new_bundle_fails_on_is_scored_by_the_previous_one(tmp_path: Path, bundle: Path, spec: WindowSpec) -> None:
    _, public = keygen(tmp_path / "keys")
    settings = EdgeSettings(site="s1", state_dir=tmp_path / "state", rollout={"public_key_file": public})
    daemon = EdgeDaemon(settings)
    rollout = daemon.rollout
    assert rollout is not None
    rollout.load()
    old = daemon.scorer.version
    loaded = daemon.scorer.open(bundle)  # the same model under another name: the failure below is the test's
    statement = Statement(site="s1", version="slm-new", manifest_sha256="", published_at=1.0, key_id="")
    rollout._install(Candidate(statement, bundle, loaded, "self-test: stubbed"))
    assert rollout.previous_version == old

    def broken(windows: list[Window]) -> list[ModelOutput]:
        raise RuntimeError("ORT: out of memory")

    loaded[1].predict = broken  # type: ignore[method-assign,assignment]
    windows = _windows(spec, "s1")
    scored = asyncio.run(daemon._score(windows, [0.0] * len(windows)))
    assert len(scored.predictions) == len(windows) > 0, "the batch is scored, not lost"
    assert daemon.scorer.loaded[1] is not loaded[1] and rollout.previous is None
    assert (
        rollout.state.outcome is not None
        and rollout.state.outcome.startswith("rolled back")
        and "out of memory" in rollout.state.outcome
    )
    daemon.metrics.close()
