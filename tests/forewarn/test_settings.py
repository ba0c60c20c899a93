"""An operator's settings resolve as documented: CLI override > FOREWARN_* env > TOML file > defaults, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.errors import ConfigError
from forewarn.settings import CommonSettings, load_settings, masked_dump


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("FOREWARN_CONFIG", "FOREWARN_KAFKA_BOOTSTRAP", "FOREWARN_STATE_DIR", "FOREWARN_SITE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _toml(path: Path) -> Path:
    path.write_text(
        'site = "file-site"\n'
        "[kafka]\n"
        'bootstrap = "file:9092"\n'
        "partitions = 8\n"
        "[mqtt]\n"
        'url = "mqtts://broker.plant:8883"\n'
        'password = "hunter2"\n'
        "[database]\n"
        'url = "postgresql+psycopg://ops:s3cret@db.plant/forewarn"\n'
    )
    return path


def test_defaults_run_on_one_machine(clean_env: Path) -> None:
    settings = load_settings(CommonSettings)
    assert settings.mqtt.host == "127.0.0.1" and settings.mqtt.port == 1883
    assert settings.kafka.bootstrap == ""
    assert settings.database_url().startswith("sqlite:///")


def test_precedence_override_env_file_default(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _toml(clean_env / "plant.toml")
    from_file = load_settings(CommonSettings, config)
    assert (from_file.site, from_file.kafka.bootstrap, from_file.kafka.partitions) == ("file-site", "file:9092", 8)
    assert from_file.mqtt.tls and from_file.mqtt.port == 8883

    monkeypatch.setenv("FOREWARN_KAFKA_BOOTSTRAP", "env:9092")
    monkeypatch.setenv("FOREWARN_STATE_DIR", str(clean_env / "state"))
    from_env = load_settings(CommonSettings, config)
    assert from_env.kafka.bootstrap == "env:9092"
    assert from_env.kafka.partitions == 8, "env overrides one field, not the whole section"
    assert from_env.state_dir == clean_env / "state"

    overridden = load_settings(CommonSettings, config, site="cli-site")
    assert overridden.site == "cli-site"


def test_config_file_found_by_env_and_cwd(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(clean_env / "forewarn.toml")
    assert load_settings(CommonSettings).site == "file-site"
    other = clean_env / "other.toml"
    other.write_text('site = "other"\n')
    monkeypatch.setenv("FOREWARN_CONFIG", str(other))
    assert load_settings(CommonSettings).site == "other"


def test_bad_settings_name_the_field(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREWARN_MQTT_URL", "http://nope")
    with pytest.raises(ConfigError, match="mqtt.url"):
        load_settings(CommonSettings)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(CommonSettings, clean_env / "missing.toml")
    broken = clean_env / "broken.toml"
    broken.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(CommonSettings, broken)


def test_secrets_are_masked(clean_env: Path) -> None:
    settings = load_settings(CommonSettings, _toml(clean_env / "plant.toml"))
    dumped = masked_dump(settings)
    assert dumped["mqtt"]["password"] == "********"
    assert dumped["database"]["url"] == "postgresql+psycopg://ops:********@db.plant/forewarn"
    assert "hunter2" not in json.dumps(dumped) and "s3cret" not in json.dumps(dumped)


def test_config_show_prints_effective_settings(clean_env: Path) -> None:
    config = _toml(clean_env / "plant.toml")
    result = CliRunner().invoke(main, ["config", "show", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["kafka"]["bootstrap"] == "file:9092"
    assert "hunter2" not in result.output and "s3cret" not in result.output
    text = CliRunner().invoke(main, ["config", "show", "--config", str(config)])
    assert text.exit_code == 0 and "[kafka]" in text.output and 'bootstrap = "file:9092"' in text.output


def test_config_show_reports_bad_settings_clearly(clean_env: Path) -> None:
    result = CliRunner().invoke(main, ["config", "show", "--config", str(clean_env / "missing.toml")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_unknown_sections_and_keys_are_refused_with_the_nearest_name(clean_env: Path) -> None:
    typo = clean_env / "typo.toml"
    typo.write_text('[mqqt]\nurl = "mqtt://broker:1883"\n[kafka]\nbootstrp = "k:9092"\n')
    with pytest.raises(ConfigError, match=r"unknown section \[mqqt\]; did you mean \[mqtt\]\?") as caught:
        load_settings(CommonSettings, typo)
    assert "unknown key bootstrp in [kafka]; did you mean bootstrap?" in str(caught.value)


def test_another_parts_section_is_known_but_its_typos_are_not(clean_env: Path) -> None:
    from edge_agent.config import EdgeSettings

    shared = clean_env / "forewarn.toml"
    shared.write_text('[edge]\ngateway_id = "gw9"\n[stream]\nweb_port = 7000\n')
    assert load_settings(CommonSettings, shared).site == "plant1", "one file configures every part"
    assert load_settings(EdgeSettings, shared).edge.gateway_id == "gw9"
    shared.write_text("[edge]\nbatchsize = 16\n")
    with pytest.raises(ConfigError, match=r"unknown key batchsize in \[edge\]; did you mean batch_size\?"):
        load_settings(EdgeSettings, shared)
    with pytest.raises(ConfigError, match="batchsize"):
        load_settings(CommonSettings, shared)


def test_read_only_commands_refuse_a_state_dir_that_does_not_exist(clean_env: Path) -> None:
    from forewarn.settings import require_state_dir

    assert require_state_dir(clean_env) == clean_env
    with pytest.raises(ConfigError, match="does not exist"):
        require_state_dir(clean_env / "stat")
    assert not (clean_env / "stat").exists()
