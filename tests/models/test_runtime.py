"""The gateway scores windows with a bundle through onnxruntime alone: deterministic, batch invariant, with evidence."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from forewarn.contracts import NORMAL, FaultPrediction, prediction_id
from forewarn.dataset import iter_messages
from models.runtime import Bundle, ModelOutput, Predictor
from models.windowing import Window, windows_from_messages

# The session's tiny bundle is trained in the first test that asks for it: a loaded machine needs more
# than the suite's default 300 s for that one test (the training itself is seconds on an idle one).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def windows(tiny_bundle: Path, synthetic_holdout: Path) -> list[Window]:
    return list(windows_from_messages(iter_messages(synthetic_holdout), Bundle.load(tiny_bundle).spec))


@pytest.fixture(scope="module")
def predictor(tiny_bundle: Path) -> Predictor:
    return Predictor(Bundle.load(tiny_bundle), threads=1)


def test_outputs_are_well_formed(predictor: Predictor, windows: list[Window]) -> None:
    outputs = predictor.predict(windows)
    assert len(outputs) == len(windows)
    labels = predictor.bundle.labels
    for out in outputs:
        assert isinstance(out, ModelOutput)
        assert list(out.probabilities) == list(labels)
        assert math.isclose(sum(out.probabilities.values()), 1.0, abs_tol=1e-6)
        assert out.fault == max(out.probabilities, key=out.probabilities.__getitem__)
        assert 0.0 <= out.anomaly_score <= 1.0 and 0.0 <= out.confidence <= 1.0
        assert (out.ttf_hours is None) == (out.fault == NORMAL) and (out.ttf_hours is None or out.ttf_hours >= 0)
    assert {o.fault for o in outputs} > {NORMAL}, "the synthetic faults are found"


def test_outputs_build_fault_predictions(predictor: Predictor, windows: list[Window]) -> None:
    w = windows[-1]
    out = predictor.predict([w])[0]
    FaultPrediction(
        id=prediction_id("gw", w.asset_id, w.end),
        gateway_id="gw",
        site=w.site,
        asset_id=w.asset_id,
        window_start=w.start,
        window_end=w.end,
        fault=out.fault,
        probabilities=out.probabilities,
        anomaly_score=out.anomaly_score,
        ttf_hours=out.ttf_hours,
        confidence=out.confidence,
        model_version=predictor.bundle.version,
        evidence=out.evidence,
        latency_ms=1.0,
        produced_at=w.end,
    )


def test_evidence_names_deviating_channels_and_only_the_log_lines_the_verdict_needs(
    predictor: Predictor, windows: list[Window]
) -> None:
    faulty = [(w, o) for w, o in zip(windows, predictor.predict(windows), strict=True) if o.fault == "overheating"]
    assert faulty
    window, out = faulty[-1]
    assert out.evidence.channels[0].channel == "temp_c" and out.evidence.channels[0].score > 3
    for window, out in faulty[-3:]:
        assert window.logs, "the synthetic plant logs inside its overheating windows"
        shown = {(e.ts, e.text) for e in out.evidence.logs}
        for k, line in enumerate(window.logs):
            without = dataclasses.replace(window, logs=window.logs[:k] + window.logs[k + 1 :])
            flips = predictor.predict([without])[0].fault != out.fault
            assert ((line.ts, line.text) in shown) == flips, "a line is evidence exactly when removing it changes the verdict"
    normal = [o for o in predictor.predict(windows) if o.fault == "normal"]
    assert normal and all(not o.evidence.logs for o in normal)


def test_deterministic_and_batch_invariant(predictor: Predictor, windows: list[Window]) -> None:
    together = predictor.predict(windows)
    again = predictor.predict(windows)
    assert together == again, "same windows, same batch: identical outputs"
    alone = [predictor.predict([w])[0] for w in windows[::7]]
    tolerance = 1e-6
    for a, b in zip(alone, together[::7], strict=True):
        assert a.fault == b.fault
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) <= tolerance


def test_empty_input(predictor: Predictor) -> None:
    assert predictor.predict([]) == []


def test_runtime_never_imports_torch(tiny_bundle: Path, synthetic_holdout: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any 'import torch' now raises ImportError
        from pathlib import Path
        from forewarn.dataset import iter_messages
        from models.runtime import Bundle, Predictor
        from models.windowing import windows_from_messages
        from models.evaluate import evaluate
        bundle = Bundle.load(Path({str(tiny_bundle)!r}))
        windows = list(windows_from_messages(iter_messages(Path({str(synthetic_holdout)!r})), bundle.spec))
        print(len(Predictor(bundle).predict(windows)), evaluate(bundle, [Path({str(synthetic_holdout)!r})], timed=5)["macro_f1"])
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2]
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[0]) > 0


def test_graph_shape_is_checked_against_the_config(predictor: Predictor) -> None:
    inputs = {i.name: i.shape for i in predictor.session.get_inputs()}
    assert inputs["sensors"][0] == inputs["tokens"][0] == "batch", "dynamic batch axis"
    assert np.asarray(predictor.featuriser([]).sensors).shape[0] == 0


def test_a_fault_is_named_only_on_asset_types_whose_training_showed_it(predictor: Predictor, windows: list[Window]) -> None:
    """The synthetic plant's pumps go out of balance and its motor overheats: a pump is never called overheating."""
    from dataclasses import replace

    assert predictor.bundle.fault_modes == {"pump": {"imbalance"}, "motor": {"overheating"}}
    labels = predictor.bundle.labels
    hot_motor = [w for w in windows if w.asset_id == "M-1"][-5:]
    as_motor = predictor.predict(hot_motor)
    assert {o.fault for o in as_motor} == {"overheating"}, "the motor's late windows show its fault"
    as_pump = predictor.predict([replace(w, asset_type="pump") for w in hot_motor])
    for out in as_pump:
        assert out.fault != "overheating" and out.probabilities["overheating"] == 0.0
        assert math.isclose(sum(out.probabilities.values()), 1.0, abs_tol=1e-6)
    unknown = predictor.predict([replace(w, asset_type="kiln") for w in hot_motor])
    assert [o.fault for o in unknown] == [o.fault for o in as_motor], "a type training never saw: the model's verdict stands"
    assert predictor.applicable(None).all() and predictor.applicable("pump").tolist() == [
        label in (NORMAL, "imbalance") for label in labels
    ]
