"""A retraining engineer asks what a verdict rests on: `model explain` masks each input group and rescores."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.dataset import iter_messages
from models.explain import LOGS, _masked, explain, groups, running_windows
from models.runtime import Bundle, Predictor
from models.windowing import Window, windows_from_messages

# The session's tiny bundle is trained in the first test that asks for it: a loaded machine needs more
# than the suite's default 300 s for that one test (the training itself is seconds on an idle one).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def predictor(tiny_bundle: Path) -> Predictor:
    return Predictor(Bundle.load(tiny_bundle), threads=1)


@pytest.fixture(scope="module")
def windows(predictor: Predictor, synthetic_holdout: Path) -> list[Window]:
    return list(windows_from_messages(iter_messages(synthetic_holdout), predictor.bundle.spec))[-40:]


def test_the_groups_own_every_sensor_column_once(predictor: Predictor) -> None:
    columns = [c for g in groups(predictor) for c in g.columns]
    width = predictor.bundle.features.sensor_features(len(predictor.bundle.spec.channels))
    assert sorted(columns) == list(range(width))
    assert [g.name for g in groups(predictor) if g.kind == "channel"] == list(predictor.bundle.spec.channels)
    assert groups(predictor)[-1].name == LOGS


def test_masking_a_channel_is_what_the_featuriser_makes_of_a_channel_that_sent_nothing(
    predictor: Predictor, windows: list[Window]
) -> None:
    derived = {c for g in groups(predictor) if g.kind == "derived" for c in g.columns}
    original = predictor.featuriser(windows).sensors
    for k, group in enumerate(g for g in groups(predictor) if g.kind == "channel"):
        silent = []
        for w in windows:
            stats, counts = w.stats.copy(), w.counts.copy()
            stats[:, k], counts[:, k] = np.nan, 0
            reference = None if w.reference is None else w.reference.copy()
            if reference is not None:
                reference[k] = np.nan
            silent.append(replace(w, stats=stats, counts=counts, reference=reference))
        absent = predictor.featuriser(silent).sensors
        changed = set(np.flatnonzero((absent != original).any(axis=(0, 1)))) - derived
        assert changed == set(group.columns), group.name
        masked = _masked(predictor.featuriser(windows), group).sensors
        assert np.array_equal(masked[..., list(group.columns)], absent[..., list(group.columns)])
        others = [c for c in range(original.shape[-1]) if c not in group.columns]
        assert np.array_equal(masked[..., others], original[..., others])


def test_explain_reports_each_groups_drop_in_the_verdicts_probability(predictor: Predictor, windows: list[Window]) -> None:
    result = explain(predictor, windows)
    features = predictor.featuriser(windows)
    types = [w.asset_type for w in windows]
    base = predictor.probabilities(features, types)
    target = list(predictor.bundle.labels).index(str(result["fault"]))
    called_faults = {k: v for k, v in result["verdicts"].items() if k != "normal"}  # type: ignore[attr-defined]
    assert called_faults, "the synthetic windows include faulty ones"
    assert result["fault"] == max(called_faults, key=called_faults.get), "the most called fault, not normal"
    rows = {r["group"]: r for r in result["groups"]}  # type: ignore[attr-defined]
    assert set(rows) == {g.name for g in groups(predictor)}
    for g in groups(predictor)[:3]:
        drop = base[:, target] - predictor.probabilities(_masked(features, g), types)[:, target]
        assert rows[g.name]["drop"] == pytest.approx(float(drop.mean()), abs=1e-4)
    drops = [r["drop"] for r in result["groups"]]  # type: ignore[attr-defined]
    assert drops == sorted(drops, reverse=True)


def test_explain_on_the_command_line(tiny_bundle: Path, synthetic_holdout: Path, predictor: Predictor) -> None:
    asset = "M-1"
    assert running_windows(synthetic_holdout, predictor, asset), "the motor runs in the synthetic data"
    args = ["model", "explain", str(synthetic_holdout), "--asset", asset, "--model", str(tiny_bundle)]
    result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["windows"] == len(running_windows(synthetic_holdout, predictor, asset)) and data["groups"]
    text = CliRunner().invoke(main, [*args, "--fault", "overheating", "--top", "3"], catch_exceptions=False)
    assert "explaining overheating" in text.stdout and len(text.stdout.strip().splitlines()) == 2 + 3
    wrong = CliRunner().invoke(main, [*args, "--fault", "melting"])
    assert wrong.exit_code != 0 and "not a class" in wrong.output
    called = CliRunner().invoke(main, [*args, "--called", data["fault"], "--json"], catch_exceptions=False)
    only = json.loads(called.stdout)
    assert only["verdicts"] == {data["fault"]: data["verdicts"][data["fault"]]} and only["fault"] == data["fault"]
    never = next(label for label in predictor.bundle.labels if label not in data["verdicts"])
    refused = CliRunner().invoke(main, [*args, "--called", never])
    assert refused.exit_code != 0 and f"none is called {never}" in refused.output
    none = CliRunner().invoke(main, [*args, "--to", "0"])
    assert none.exit_code != 0 and "no running windows" in none.output


def test_the_largest_error_groups_say_what_their_verdict_rests_on(predictor: Predictor, windows: list[Window]) -> None:
    from models.evaluate import error_groups

    labels = list(predictor.bundle.labels)
    types = [w.asset_type for w in windows]
    predicted = predictor.probabilities(predictor.featuriser(windows), types).argmax(axis=1)
    truth = np.where(predicted == 0, 1, 0)  # every window wrong: one group per asset and verdict
    ran = np.ones(len(windows), dtype=bool)
    rows = error_groups(truth, predicted, ran, windows, np.zeros(len(windows), int), [Path("d")], labels, predictor=predictor)
    first = rows[0]
    members = [
        w for w, p in zip(windows, predicted, strict=True) if w.asset_id == first["asset_id"] and labels[p] == first["predicted"]
    ]
    why = explain(predictor, members, called=first["predicted"])
    assert first["rests_on"] == [{"input": g["group"], "flips": g["flipped"]} for g in why["groups"][:3]]  # type: ignore[index]
    assert all(("rests_on" in r) == (i < 5) for i, r in enumerate(rows))


def test_the_explain_table_never_runs_a_long_name_into_its_kind() -> None:
    from models.cli import explain_table

    long = "log_winding_rise_per_lagged_rated_current2_turning_and_more"
    rows: list[dict[str, object]] = [
        {"group": long, "kind": "derived", "drop": 0.25, "flipped": 0.5},
        {"group": "log lines", "kind": "logs", "drop": -0.01, "flipped": 0.0},
    ]
    header, first, second = explain_table(rows)
    assert first.startswith(long + "  ") and first.split()[1:] == ["derived", "0.250", "50.0%"]
    assert second.split()[-3:] == ["logs", "-0.010", "0.0%"]
    assert header.index("kind") == first.index("derived") == second.index("logs")
    (alone,) = explain_table([])  # --top 0: the header alone
    assert alone.split() == ["masked", "input", "kind", "drop", "flips"]
