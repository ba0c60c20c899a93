"""The ``[sparkplug]`` config section: off by default, shown whole in the example file, loadable from TOML and env."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_agent.config import EdgeSettings
from edge_agent.sparkplug.config import SparkplugSection
from forewarn.errors import ConfigError
from forewarn.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "edge_agent" / "forewarn-edge.example.toml"


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("FOREWARN_")]:
        monkeypatch.delenv(key)


def test_the_example_shows_every_field_at_its_default_and_sparkplug_is_off() -> None:
    settings = load_settings(EdgeSettings, EXAMPLE)
    assert settings.sparkplug == SparkplugSection() and not settings.sparkplug.enabled
    text = EXAMPLE.read_text()
    for name in SparkplugSection.model_fields:
        assert f"{name} =" in text, f"sparkplug.{name} is missing from the example config"


def test_a_sparkplug_table_and_the_environment_configure_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        '[sparkplug]\nenabled = true\ngroup_id = "Site A"\ningest_groups = ["plant", "+"]\n'
        'channels = { "Motor/Current" = "current" }\n'
    )
    monkeypatch.setenv("FOREWARN_SPARKPLUG_EDGE_NODE_ID", "gw-north")
    sp = load_settings(EdgeSettings, config).sparkplug
    assert sp.enabled and sp.group_id == "Site A" and sp.edge_node_id == "gw-north"
    assert sp.ingest_groups == ["plant", "+"] and sp.channels == {"Motor/Current": "current"}


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('group_id = "a/b"', "sparkplug.group_id"),
        ('ingest_groups = ["#"]', "sparkplug.ingest_groups"),
        ('channels = { "X" = "Not A Channel" }', "sparkplug.channels"),
        ('namespace = "spAv1.0"', "sparkplug.namespace"),
        ("enabled = true\npublish = false", "does nothing"),
    ],
)
def test_a_wrong_value_is_refused_naming_it(tmp_path: Path, table: str, field: str) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(f"[sparkplug]\n{table}\n")
    with pytest.raises(ConfigError, match=field):
        load_settings(EdgeSettings, config)
