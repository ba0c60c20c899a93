"""An operator drives the simulators from the command line: a dataset directory, live publishing, replay, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.dataset import iter_messages, read_labels, read_meta


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_simulate_out_writes_a_dataset_directory(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    code, output = _invoke("simulate", "--scenario", "test", "--duration", "30m", "--seed", "3", "--out", str(out), "--json")
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["assets"] == 3 and summary["messages"] > 500
    assert read_meta(out).seed == 3
    assert sum(1 for _ in iter_messages(out)) == summary["messages"]
    assert len(read_labels(out)) == summary["episodes"]


def test_simulate_assets_expands_the_plant_deterministically(tmp_path: Path) -> None:
    for name in ("a", "b"):
        code, output = _invoke(
            "simulate",
            "--scenario",
            "plant200",
            "--assets",
            "7",
            "--duration",
            "600",
            "--seed",
            "1",
            "--start",
            "2025-03-01T00:00:00Z",
            "--out",
            str(tmp_path / name),
        )
        assert code == 0, output
    assert (tmp_path / "a" / "messages.jsonl").read_bytes() == (tmp_path / "b" / "messages.jsonl").read_bytes()
    assert len(read_meta(tmp_path / "a").assets) == 7


def test_a_broken_scenario_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[assets]]\nid = "P1"\ntype = "pump"\n')
    result = CliRunner().invoke(main, ["simulate", "--scenario", str(bad), "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "assets[0].type" in result.output and "unknown asset type 'pump'" in result.output


def test_bad_duration_is_rejected(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--duration", "soon", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not a duration" in result.output


@pytest.mark.integration
def test_simulate_live_and_replay_publish_to_mosquitto(mqtt_url: str, tmp_path: Path) -> None:
    env = {"FOREWARN_MQTT_URL": mqtt_url, "FOREWARN_SIMULATOR_QOS": "1"}
    code, output = _invoke("simulate", "--scenario", "test", "--duration", "120", "--speed", "0", "--json", env=env)
    assert code == 0, output
    live = json.loads(output.strip().splitlines()[-1])
    assert live["published"] > 30 and live["dropped"] == 0
    out = tmp_path / "ds"
    assert _invoke("simulate", "--scenario", "test", "--duration", "120", "--out", str(out))[0] == 0
    code, output = _invoke("replay", str(out), "--speed", "0", "--retime", "--json", env=env)
    assert code == 0, output
    replayed = json.loads(output.strip().splitlines()[-1])
    assert replayed["published"] == sum(1 for _ in iter_messages(out))


def test_unreachable_broker_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "forewarn.toml"
    config.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:9"\n[simulator]\nconnect_timeout_s = 1\n')
    result = CliRunner().invoke(main, ["simulate", "--scenario", "test", "--duration", "60", "--config", str(config)])
    assert result.exit_code != 0
    assert "127.0.0.1:9" in result.output


def test_simulate_out_counts_in_words_and_names_the_overwrite_flag(tmp_path: Path) -> None:
    out = tmp_path / "one"
    code, output = _invoke("simulate", "--scenario", "test", "--assets", "1", "--duration", "10m", "--out", str(out))
    assert code == 0, output
    assert " for 1 asset (" in output and "1 assets" not in output
    result = CliRunner().invoke(main, ["simulate", "--scenario", "test", "--duration", "10m", "--out", str(out)])
    assert result.exit_code == 1 and "add --overwrite to replace it" in result.output and "overwrite=True" not in result.output
