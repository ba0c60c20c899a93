"""Edge settings run with no file, take TOML and FOREWARN_EDGE_* overrides; the example config and unit are valid."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from edge_agent.config import EdgeSection, EdgeSettings
from forewarn.errors import ConfigError
from forewarn.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "edge_agent" / "forewarn-edge.example.toml"


def test_defaults_run_on_one_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FOREWARN_CONFIG", raising=False)
    settings = load_settings(EdgeSettings, state_dir=tmp_path)
    assert settings.client_id() == "forewarn-edge-gw1"
    assert settings.outbox_file() == tmp_path / "edge" / "outbox.sqlite3"
    assert settings.model_path().name == "default"
    for name, field in EdgeSection.model_fields.items():
        assert field.description, f"edge.{name} needs a description"


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        '[edge]\ngateway_id = "from-file"\nbatch_size = 16\nnameplates = { "P-1" = { rated_current_a = 48.0 } }\n'
        '[kafka]\nbootstrap = "k:9092"\n'
    )
    monkeypatch.setenv("FOREWARN_EDGE_GATEWAY_ID", "from-env")
    monkeypatch.setenv("FOREWARN_EDGE_KNOWN_ASSETS", '["P-1", "P-2"]')
    settings = load_settings(EdgeSettings, config)
    assert (settings.edge.gateway_id, settings.edge.batch_size, settings.kafka.bootstrap) == ("from-env", 16, "k:9092")
    assert settings.edge.known_assets == ["P-1", "P-2"]
    assert settings.edge.nameplates["P-1"].rated_current_a == 48.0
    monkeypatch.setenv("FOREWARN_EDGE_NAMEPLATES", '{"P-1": {"rated_current_a": -3}}')
    with pytest.raises(ConfigError, match="edge.nameplates"):
        load_settings(EdgeSettings, config)
    monkeypatch.delenv("FOREWARN_EDGE_NAMEPLATES")
    monkeypatch.setenv("FOREWARN_EDGE_GATEWAY_ID", "bad/id")
    with pytest.raises(ConfigError, match="edge.gateway_id"):
        load_settings(EdgeSettings, config)


def test_the_example_file_is_valid_and_names_every_edge_field(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FOREWARN_")]:
        monkeypatch.delenv(key)
    settings = load_settings(EdgeSettings, EXAMPLE)
    assert settings.edge == EdgeSection(gateway_id="gw1"), "the example shows the defaults"
    assert "edge" in tomllib.loads(EXAMPLE.read_text())
    text = EXAMPLE.read_text()
    for name in EdgeSection.model_fields:
        assert f"{name} =" in text, f"edge.{name} is missing from the example config"


def test_the_systemd_unit_runs_the_daemon_and_stops_it_with_sigterm() -> None:
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(EXAMPLE.parent / "systemd" / "forewarn-edge.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("forewarn edge run --config /etc/forewarn/edge.toml")
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "always"
    assert int(service["TimeoutStopSec"]) > EdgeSection().stop_timeout_s


def test_the_operators_guide_documents_every_edge_field() -> None:
    guide = (EXAMPLE.parents[1] / "docs" / "edge.md").read_text()
    for name in EdgeSection.model_fields:
        assert f"| `{name}` |" in guide, f"edge.{name} is missing from docs/edge.md"


def test_the_example_file_listens_to_the_site_the_simulator_plays(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulators.config import SimulatorSettings
    from simulators.scenario import load_scenario

    for key in [k for k in os.environ if k.startswith("FOREWARN_")]:
        monkeypatch.delenv(key)
    gateway = load_settings(EdgeSettings, EXAMPLE)
    played = load_scenario(load_settings(SimulatorSettings, None).simulator.scenario)
    assert [site.id for site in played.sites] == [gateway.site], "edge run --config EXAMPLE beside simulate scores nothing"
