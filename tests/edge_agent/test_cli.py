"""`forewarn edge score` is deterministic and matches the windowing, and user mistakes end in clear messages, not tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.contracts import DatasetMeta, FaultPrediction, decode
from forewarn.dataset import DatasetWriter
from models.windowing import WindowSpec, windows_from_messages
from tests.edge_agent.streams import plant_stream


@pytest.fixture
def dataset(tmp_path: Path, spec: WindowSpec) -> Path:
    directory = tmp_path / "data"
    with DatasetWriter(directory, DatasetMeta(source="edge tests")) as writer:
        writer.write_many(plant_stream(spec, "p1", ["a1", "a2", "a3"], minutes=25))
    return directory


def test_score_is_deterministic_and_scores_every_window(dataset: Path, tmp_path: Path, spec: WindowSpec) -> None:
    runner = CliRunner()
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    result = runner.invoke(main, ["edge", "score", str(dataset), "--out", str(first), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert runner.invoke(main, ["edge", "score", str(dataset), "--out", str(second)]).exit_code == 0
    assert first.read_bytes() == second.read_bytes(), "same input, bundle and batch size: same bytes"
    predictions = [decode(line, FaultPrediction) for line in first.read_bytes().splitlines()]
    third = tmp_path / "three.jsonl"
    assert runner.invoke(main, ["edge", "score", str(dataset), "--out", str(third), "--batch-size", "7"]).exit_code == 0
    rebatched = [decode(line, FaultPrediction) for line in third.read_bytes().splitlines()]
    # INT8 activations are quantized per batch, so other batch mates move probabilities in the third decimal.
    for p, q in zip(predictions, rebatched, strict=True):
        assert p.id == q.id and max(abs(p.probabilities[k] - q.probabilities[k]) for k in p.probabilities) < 0.02
    from forewarn.dataset import iter_messages

    windows = list(windows_from_messages(iter_messages(dataset), spec))
    assert [(p.asset_id, p.window_end) for p in predictions] == [(w.asset_id, w.end) for w in windows]
    assert all(p.produced_at == p.window_end and p.latency_ms == 0 for p in predictions)
    assert summary["windows"] == len(windows) and summary["model_ms_per_window"] > 0
    assert not list(tmp_path.glob("*.partial"))


def test_score_refuses_a_tampered_bundle_with_a_message(dataset: Path, tmp_path: Path, bundle: Path) -> None:
    broken = tmp_path / "bundle"
    shutil.copytree(bundle, broken)
    (broken / "labels.json").write_text('{"labels": ["normal", "x"]}')
    result = CliRunner().invoke(main, ["edge", "score", str(dataset), "--model", str(broken), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and "labels.json does not match its manifest" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_score_skips_and_reports_the_bad_lines_of_a_dataset_or_aborts_with_strict(tmp_path: Path, dataset: Path) -> None:
    runner = CliRunner()
    clean = runner.invoke(main, ["edge", "score", str(dataset), "--out", str(tmp_path / "clean.jsonl"), "--json"])
    lines = (dataset / "messages.jsonl").read_bytes().splitlines(keepends=True)
    lines.insert(10, b'{"kind": "telemetry", "site": "p1"}\n')  # line 11: a contract violation
    lines.insert(20, lines[30][: len(lines[30]) // 2] + b"\n")  # line 21: a line cut short by a crash
    (dataset / "messages.jsonl").write_bytes(b"".join(lines))

    result = runner.invoke(main, ["edge", "score", str(dataset), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0, result.output
    assert "skipped 2 bad lines of messages.jsonl: line 11: " in result.stdout and "; line 21: " in result.stdout
    assert result.stdout.startswith("scored ") and "{" not in result.stdout, "a summary for people, not a dict"
    summary = json.loads(
        runner.invoke(main, ["edge", "score", str(dataset), "--out", str(tmp_path / "j.jsonl"), "--json"]).stdout
    )
    assert summary["bad_lines"] == 2 and [e["line"] for e in summary["bad_line_examples"]] == [11, 21]
    assert summary["windows"] == json.loads(clean.stdout)["windows"], "every good line still scored"

    strict = runner.invoke(main, ["edge", "score", str(dataset), "--out", str(tmp_path / "s.jsonl"), "--strict"])
    assert strict.exit_code == 1 and "messages.jsonl:11:" in strict.output and "Traceback" not in strict.output
    assert not (tmp_path / "s.jsonl").exists()


def test_score_reports_progress_on_stderr(tmp_path: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent import cli

    monkeypatch.setattr(cli._Progress, "EVERY_S", 0.0)
    result = CliRunner().invoke(main, ["edge", "score", str(dataset), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0 and "edge score: 100% of messages.jsonl read" in result.stderr


def test_run_takes_state_dir_and_log_level_flags_above_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent import cli

    seen = []

    async def serve(settings: object) -> None:
        seen.append(settings)

    monkeypatch.setattr(cli, "_serve", serve)
    monkeypatch.setattr(cli, "setup_logging", lambda logging: None)
    config = tmp_path / "edge.toml"
    config.write_text('state_dir = "/from/file"\n[logging]\nlevel = "ERROR"\nformat = "json"\n')
    env = {"FOREWARN_STATE_DIR": "/from/env"}
    flags = ["edge", "run", "--config", str(config), "--state-dir", str(tmp_path / "s"), "--log-level", "debug"]
    result = CliRunner().invoke(main, flags, env=env)
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert settings.state_dir == tmp_path / "s" and settings.logging.level == "DEBUG" and settings.logging.format == "json"


def test_run_refuses_a_broken_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "edge.toml"
    bad.write_text("[edge\n")
    result = CliRunner().invoke(main, ["edge", "run", "--config", str(bad)])
    assert result.exit_code == 1 and "not valid TOML" in result.output
    bad.write_text("[edge]\nbatch_size = 0\n")
    result = CliRunner().invoke(main, ["edge", "run", "--config", str(bad)])
    assert result.exit_code == 1 and "edge.batch_size" in result.output


def test_help_and_config_show(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["edge", "--help"])
    assert result.exit_code == 0 and "run" in result.output and "score" in result.output
    result = runner.invoke(main, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["edge"]["gateway_id"] == "gw1"


def test_run_without_a_usable_model_exits_with_the_reason(tmp_path: Path) -> None:
    env = {
        "FOREWARN_EDGE_MODEL": str(tmp_path / "nothing"),
        "FOREWARN_STATE_DIR": str(tmp_path),
        "FOREWARN_EDGE_METRICS_ENABLED": "false",
    }
    result = CliRunner().invoke(main, ["edge", "run"], env=env)
    assert result.exit_code == 1 and "does not exist" in result.output
