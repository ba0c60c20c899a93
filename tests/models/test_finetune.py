"""A site fine-tunes its bundle on new labelled data (`model train --from`), and few-shot training keeps K episodes per fault."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.contracts import FaultEpisode, encode
from forewarn.dataset import iter_messages
from models.bundle import write_manifest
from models.data import load_tables
from models.model import STUDENT_WEIGHTS
from models.prepare import episode_ids, limit_episodes
from models.runtime import Bundle, Predictor
from models.windowing import windows_from_messages
from tests.models.synthetic import T0

# The session's tiny bundle is trained in the first test that asks for it (see test_runtime.py).
pytestmark = pytest.mark.timeout(900)


def _finetune(base: Path, data: Path, root: Path, *extra: str) -> tuple[int, str]:
    args = ["model", "train", str(data), "--from", str(base), "--out", str(root / "bundle"), "--run-dir", str(root / "run")]
    result = CliRunner().invoke(main, [*args, "--profile", "quick", "--no-progress", *extra])
    return result.exit_code, result.output


def _probabilities(bundle_path: Path, data: Path) -> np.ndarray:
    bundle = Bundle.load(bundle_path)
    windows = list(windows_from_messages(iter_messages(data), bundle.spec))[:80]
    return np.array([[o.probabilities[label] for label in bundle.labels] for o in Predictor(bundle).predict(windows)])


def test_zero_fine_tuning_steps_reproduce_the_base_bundle(tiny_bundle: Path, synthetic_dir: Path, tmp_path: Path) -> None:
    assert (tiny_bundle / STUDENT_WEIGHTS).is_file(), "every labelled bundle keeps its FP32 student"
    code, output = _finetune(tiny_bundle, synthetic_dir, tmp_path, "--set", "finetune_steps=0")
    assert code == 0, output
    tuned = Bundle.load(tmp_path / "bundle")
    assert tuned.labels == Bundle.load(tiny_bundle).labels
    assert tuned.config["finetuned_from"]["version"] == Bundle.load(tiny_bundle).version
    with np.load(tiny_bundle / STUDENT_WEIGHTS) as a, np.load(tmp_path / "bundle" / STUDENT_WEIGHTS) as b:
        assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    before, after = _probabilities(tiny_bundle, synthetic_dir), _probabilities(tmp_path / "bundle", synthetic_dir)
    assert np.abs(before - after).max() < 0.02, "the fine-tuning starts from the bundle's own weights"


def test_fine_tuning_moves_the_weights_and_a_new_fault_gets_a_class(
    tiny_bundle: Path, synthetic_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "verdicts"
    shutil.copytree(synthetic_dir, data)
    found = FaultEpisode(asset_id="P-2", fault="misalignment", onset=T0 + 1200, end=T0 + 3000)  # what the technician found
    with (data / "labels.jsonl").open("ab") as fh:
        fh.write(encode(found) + b"\n")
    code, output = _finetune(tiny_bundle, data, tmp_path, "--set", "finetune_steps=30")
    assert code == 0, output
    base, tuned = Bundle.load(tiny_bundle), Bundle.load(tmp_path / "bundle")
    assert tuned.labels == (*base.labels, "misalignment"), "old classes keep their rows, the new one is appended"
    assert "misalignment" in tuned.config["fault_modes"]["pump"]
    with np.load(tiny_bundle / STUDENT_WEIGHTS) as a, np.load(tmp_path / "bundle" / STUDENT_WEIGHTS) as b:
        assert b["head_class.weight"].shape[0] == a["head_class.weight"].shape[0] + 1
        assert not np.array_equal(a["blocks.0.ffn.up.weight"], b["blocks.0.ffn.up.weight"]), "the student was trained"
        np.testing.assert_array_equal(a["tok.weight"], b["tok.weight"])  # word embeddings stay frozen
    assert "Fine-tuned from" in (tmp_path / "bundle" / "report.md").read_text()


def test_an_unknown_channel_set_is_refused(tiny_bundle: Path, synthetic_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "other_plant"
    shutil.copytree(synthetic_dir, data)
    meta = json.loads((data / "meta.json").read_text())
    meta["channels"] = {"pressure_bar": meta["channels"]["temp_c"]}
    (data / "meta.json").write_text(json.dumps(meta))
    code, output = _finetune(tiny_bundle, data, tmp_path)
    assert code != 0 and "the datasets' channels (pressure_bar) are none of the bundle's (current_a, temp_c, vib_mm_s)" in output
    assert not (tmp_path / "bundle").exists()


def test_a_bundle_without_its_fp32_student_is_refused_clearly(tiny_bundle: Path, synthetic_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old_bundle"
    shutil.copytree(tiny_bundle, old)
    (old / STUDENT_WEIGHTS).unlink()
    write_manifest(old)  # a valid bundle as written before fine-tuning existed
    code, output = _finetune(old, synthetic_dir, tmp_path)
    assert code != 0 and f"holds no FP32 student ({STUDENT_WEIGHTS})" in output, output


@pytest.mark.parametrize("k", [1, 2])
def test_few_shot_keeps_at_most_k_labelled_episodes_per_fault(
    tiny_bundle: Path, synthetic_dir: Path, tmp_path: Path, k: int
) -> None:
    data = tmp_path / "two_episodes"
    shutil.copytree(synthetic_dir, data)
    second = FaultEpisode(asset_id="P-2", fault="imbalance", onset=T0 + 600, end=T0 + 1500)
    with (data / "labels.jsonl").open("ab") as fh:
        fh.write(encode(second) + b"\n")
    table = load_tables([data], Bundle.load(tiny_bundle).spec, None)
    kept, counts = limit_episodes(table, k, seed=0)
    ids, labels = episode_ids(kept), np.array(kept.labels)
    assert counts["imbalance"] == [k, 2] and counts["overheating"] == [1, 1]
    assert len(np.unique(ids[labels == "imbalance"])) == k
    assert (labels == "normal").sum() == sum(x == "normal" for x in table.labels), "normal windows are all kept"
