"""A reliability engineer simulates a small plant, trains with the quick profile and evaluates the bundle, all from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from models.bundle import MODEL_FILES, verify
from models.runtime import Bundle

# This module's bundles are trained in the first test that asks for each: a loaded machine needs more
# than the suite's default 300 s for that test (about a minute on an idle one).
pytestmark = pytest.mark.timeout(900)

EVALUATE_KEYS = {"macro_f1", "per_class", "anomaly_auroc", "ttf_mae_hours", "latency_ms_p50", "bundle_bytes"}


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plant") / "train"
    result = CliRunner().invoke(
        main, ["simulate", "--scenario", "test", "--duration", "3h", "--seed", "1", "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def trained(plant: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("quick")
    bundle, run_dir = root / "bundle", root / "run"
    args = [
        "model",
        "train",
        str(plant),
        "--out",
        str(bundle),
        "--profile",
        "quick",
        "--seed",
        "3",
        "--run-dir",
        str(run_dir),
        "--no-progress",
        "--holdout",
        str(plant),
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return bundle, run_dir, result.output


def test_quick_train_writes_a_verified_bundle_with_its_report(trained: tuple[Path, Path, str]) -> None:
    bundle, run_dir, output = trained
    assert "validation macro-F1" in output
    manifest = verify(bundle)
    assert set(MODEL_FILES) <= set(manifest["files"]) and "report.md" in manifest["files"]
    assert (bundle / "confusion.png").stat().st_size > 1000 and (bundle / "compression.png").stat().st_size > 1000
    report = (bundle / "report.md").read_text()
    for stage in ("teacher", "student", "pruned", "int8_dynamic", "int8_static"):
        assert f"| {stage} |" in report
    held = json.loads((bundle / "metrics.json").read_text())["holdout"]
    assert ("Where the errors are" in report) == bool(held["errors"]), "the held-out misses are listed by asset"
    if held["errors"]:
        assert "verdict rests on" in report and f"{held['errors'][0]['rests_on'][0]['input']} " in report
    config = json.loads((bundle / "config.json").read_text())
    assert config["profile"]["name"] == "quick" and config["profile"]["seed"] == 3
    from models.report import bars

    metrics = json.loads((bundle / "metrics.json").read_text())
    missed = [bar for bar, _, _, met in bars(metrics, 0) if not met]
    assert ("warning: the bundle misses" in output) == bool(missed), "a bundle that misses its bars says so at the end"
    assert sum(f["bytes"] for f in manifest["files"].values()) < 5_000_000
    assert (run_dir / "teacher.pt").exists() and (run_dir / "stages.json").exists(), "checkpoints kept for a resume"
    stages = json.loads((run_dir / "stages.json").read_text())
    for name in ("teacher", "student", "pruned", "final_fp32", "int8_dynamic", "int8_static"):
        assert stages[name]["latency_ms_b1"] > 0 and "latency_ms_b1_first" in stages[name], (
            f"{name}: measured again, in turns with the other stages, once training was over"
        )


def test_a_rerun_resumes_from_the_checkpoints(plant: Path, trained: tuple[Path, Path, str], tmp_path: Path) -> None:
    bundle, run_dir, _ = trained
    args = [
        "model",
        "train",
        str(plant),
        "--out",
        str(tmp_path / "again"),
        "--profile",
        "quick",
        "--seed",
        "3",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert Bundle.load(tmp_path / "again").version == Bundle.load(bundle).version, "same checkpoints, same model"


def test_a_run_directory_of_another_run_is_refused(plant: Path, trained: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, run_dir, _ = trained
    args = [
        "model",
        "train",
        str(plant),
        "--out",
        str(tmp_path / "x"),
        "--profile",
        "quick",
        "--seed",
        "4",
        "--run-dir",
        str(run_dir),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "another run" in result.output


def test_evaluate_prints_the_documented_json(plant: Path, trained: tuple[Path, Path, str]) -> None:
    bundle, _, _ = trained
    result = CliRunner().invoke(main, ["model", "evaluate", str(plant), "--model", str(bundle), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= EVALUATE_KEYS
    assert 0.0 <= data["macro_f1"] <= 1.0 and data["bundle_bytes"] > 0 and data["latency_ms_p50"] > 0
    assert "normal" in data["per_class"] and {"precision", "recall", "f1", "support"} <= set(data["per_class"]["normal"])
    wrong = data["windows"] - round(data["accuracy"] * data["windows"])
    assert sum(e["windows"] for e in data["errors"]) <= wrong
    assert all(e["truth"] != e["predicted"] and e["dataset"] == plant.name for e in data["errors"])
    for e in data["errors"][:5]:  # the largest say what their verdict rests on
        assert 1 <= len(e["rests_on"]) <= 3 and all(0.0 <= r["flips"] <= 1.0 for r in e["rests_on"])
    text = CliRunner().invoke(main, ["model", "evaluate", str(plant), "--model", str(bundle)], catch_exceptions=False)
    assert "macro-F1" in text.output and "latency" in text.output


def test_evaluate_ablates_modalities_and_scores_the_baselines_on_the_same_windows(
    plant: Path, trained: tuple[Path, Path, str]
) -> None:
    bundle, _, _ = trained
    args = ["model", "evaluate", str(plant), "--model", str(bundle), "--json", "--ablate", "logs", "--ablate", "sensors"]
    result = CliRunner().invoke(main, [*args, "--baselines", str(plant)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["ablate"]) == {"logs", "sensors"}
    for row in data["ablate"].values():
        assert 0.0 <= row["macro_f1_all"] <= 1.0 and row["macro_f1_all_with"] == data["all_windows"]["macro_f1"]
    assert set(data["baselines"]) == {"logistic_regression", "gradient_boosting", "isolation_forest", "pca_reconstruction"}
    assert data["baselines"]["gradient_boosting"]["macro_f1"] > 0.5, "fitted and scored on the same plant: it must fit"
    assert data["auroc_macro"] is None or 0.0 <= data["auroc_macro"] <= 1.0


def test_evaluate_skips_and_reports_a_corrupted_line_unless_strict(
    plant: Path, trained: tuple[Path, Path, str], tmp_path: Path
) -> None:
    import shutil

    copy = Path(shutil.copytree(plant, tmp_path / "plant"))
    lines = (copy / "messages.jsonl").read_bytes().splitlines(keepends=True)
    lines.insert(3, b'{"kind": "telemetry", "oops"\n')
    (copy / "messages.jsonl").write_bytes(b"".join(lines))
    args = ["model", "evaluate", str(copy), "--model", str(trained[0]), "--limit", "50"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 bad line(s)" in result.stderr and "messages.jsonl:4" in result.stderr
    assert json.loads(result.stdout)["bad_lines"] == 1
    assert "model evaluate: " in result.stderr, "progress lines on stderr when not on a terminal"
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert strict.exit_code == 1 and "messages.jsonl:4" in strict.output


def test_evaluate_refuses_a_tampered_bundle(plant: Path, trained: tuple[Path, Path, str], tmp_path: Path) -> None:
    import shutil

    bundle = Path(shutil.copytree(trained[0], tmp_path / "b"))
    (bundle / "labels.json").write_text('{"labels": ["normal", "everything_is_fine"]}')
    result = CliRunner().invoke(main, ["model", "evaluate", str(plant), "--model", str(bundle)])
    assert result.exit_code == 1 and "labels.json" in result.output and "does not match its manifest" in result.output


def test_model_help_lists_train_and_evaluate() -> None:
    result = CliRunner().invoke(main, ["model", "--help"])
    assert result.exit_code == 0 and "train" in result.output and "evaluate" in result.output
