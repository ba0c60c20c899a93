"""Demo runs one after another or side by side: each starts clean or says it continues; a closed pipe stops it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from demo.run import DEMO_FILE, Console, Demo, OutputClosed, _Duration, demo, summary_line
from edge_agent.config import EdgeSettings
from forewarn.errors import ConfigError
from forewarn.settings import CommonSettings, TopicSettings, load_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CommonSettings:
    for key in [k for k in os.environ if k.startswith("FOREWARN_")]:
        monkeypatch.delenv(key)
    return load_settings(CommonSettings, None, state_dir=tmp_path / "state")


def _demo(settings: CommonSettings, said: list[str], keep: bool = False) -> Demo:
    return Demo(settings, 30, 60, "demo", said.append, None, keep=keep)


def _leave_an_earlier_run(state: Path, namespace: str = "abc12345") -> None:
    (state / "edge").mkdir(parents=True)
    (state / "logs").mkdir()
    for name in ("forewarn.db", "edge/outbox.sqlite3", "edge/outbox.sqlite3-wal", "logs/edge.log", "stream-api-token"):
        (state / name).write_text("earlier")
    (state / DEMO_FILE).write_text(json.dumps({"namespace": namespace, "mqtt": "mqtt://127.0.0.1:1883"}))


def test_a_run_starts_clean_and_says_so(settings: CommonSettings) -> None:
    state = settings.state_dir
    _leave_an_earlier_run(state)
    said: list[str] = []
    run = _demo(settings, said)
    run._check_state_dir()
    run._claim_state_dir()
    left = sorted(str(p.relative_to(state)) for p in state.rglob("*") if p.is_file())
    assert left == [DEMO_FILE, "stream-api-token"], "the database, outbox and logs of the earlier run are gone"
    assert any("starting clean" in line and "--continue keeps them" in line for line in said), said
    assert run.namespace != "abc12345", "a fresh run has a namespace of its own"


def test_continue_keeps_the_earlier_run_and_its_namespace(settings: CommonSettings) -> None:
    state = settings.state_dir
    _leave_an_earlier_run(state)
    said: list[str] = []
    run = _demo(settings, said, keep=True)
    run._check_state_dir()
    run._claim_state_dir()
    assert (state / "forewarn.db").read_text() == "earlier" and (state / "edge" / "outbox.sqlite3").exists()
    assert any("continuing the earlier run" in line for line in said), said
    assert run.namespace == "abc12345" and run.result.summary()["continued"] is True


def test_a_database_no_demo_wrote_is_never_wiped(settings: CommonSettings) -> None:
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / "forewarn.db").write_text("a worker's alerts")
    with pytest.raises(ConfigError, match="no demo wrote: pass --continue"):
        _demo(settings, [])._check_state_dir()
    assert (settings.state_dir / "forewarn.db").read_text() == "a worker's alerts"
    (settings.state_dir / "logs").mkdir()
    (settings.state_dir / "logs" / "simulator.log").write_text("a demo before demo.json existed")
    _demo(settings, [])._check_state_dir()  # a demo's after all: cleared


def test_two_demos_share_no_topic_and_no_client_id(settings: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = _demo(settings, []), _demo(settings, [])
    env_one, env_two = (d._child_env("127.0.0.1:9092", "mqtt://127.0.0.1:1883") for d in (one, two))
    topics = [k for k in env_one if k.startswith("FOREWARN_TOPICS_")]
    assert len(topics) == len(TopicSettings.model_fields)  # every topic is namespaced
    for key in [*topics, "FOREWARN_EDGE_CLIENT_ID", "FOREWARN_STREAM_APP_ID", "FOREWARN_STREAM_CONTROL_TOPIC"]:
        assert env_one[key] != env_two[key], key
    assert env_one["FOREWARN_TOPICS_MQTT_TELEMETRY"] == f"forewarn/demo-{one.namespace}/{{site}}/{{asset}}/telemetry"
    # the gateway child really reads them
    for key, value in env_one.items():
        if key.startswith("FOREWARN_"):
            monkeypatch.setenv(key, value)
    child = load_settings(EdgeSettings, None)
    assert child.client_id() == env_one["FOREWARN_EDGE_CLIENT_ID"] != "forewarn-edge-demo-gateway"
    assert child.topics.mqtt_gateway_status.startswith(f"forewarn/demo-{one.namespace}/")


def test_a_closed_output_pipe_stops_the_demo_once_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    read, write = os.pipe()
    os.close(read)
    stream = io.TextIOWrapper(os.fdopen(write, "wb"), write_through=True)
    console = Console(to_stderr=False)
    saved = sys.stdout
    sys.stdout = stream
    try:
        with pytest.raises(OutputClosed):
            console("[  20.1 s] NEW  high  P-101: bearing_outer_race")
        console("demo: stopped edge (exit 0)")  # what is left to say goes to stderr, without raising again
    finally:
        sys.stdout = saved
        stream.close()
    err = capsys.readouterr().err
    assert "output pipe closed; stopping every part" in err and "stopped edge" in err


def test_every_child_is_stopped_even_when_the_output_is_gone(settings: CommonSettings) -> None:
    def closed(text: str) -> None:
        raise OutputClosed

    run = Demo(settings, 30, 60, "demo", closed, None)
    children = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(3)]
    run.children = [(f"child{i}", p) for i, p in enumerate(children)]
    try:
        run._stop_children()
        assert all(p.poll() is not None for p in children)
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()


def test_duration_takes_units_like_simulate() -> None:
    assert _Duration().convert("2m", None, None) == 120.0
    assert _Duration().convert("90", None, None) == 90.0
    with pytest.raises(click.BadParameter, match="10 s minimum"):
        _Duration().convert("5s", None, None)
    result = CliRunner().invoke(demo, ["--duration", "soon"])
    assert result.exit_code == 2 and "--duration" in result.output


def test_the_summary_line_counts_in_words() -> None:
    summary = {"alerts": 1, "open_alerts": 1, "predictions": 1, "duration_s": 95.8, "first_alert_s": 20.15}
    line = summary_line({**summary, "db_alerts": 1, "continued": False}, "/tmp/s/forewarn.db")
    assert "1 alert (1 open) from 1 prediction in" in line and "1 alert row in" in line and "started clean" in line
    two = summary_line({**summary, "alerts": 2, "predictions": 363, "db_alerts": 2, "continued": True}, "x")
    assert "2 alerts" in two and "363 predictions" in two and "2 alert rows" in two and "continued" in two


def test_an_alert_line_counts_in_words() -> None:
    from demo.run import _describe
    from forewarn.contracts import Alert

    alert = Alert.model_validate(
        {
            "id": "P-101:bearing_outer_race:1", "site": "demo-plant", "asset_id": "P-101", "fault": "bearing_outer_race",
            "severity": "high", "state": "open", "first_seen": 1.8e9, "last_seen": 1.8e9, "occurrences": 1,
            "peak_probability": 0.95, "last_probability": 0.95, "revision": 1, "updated_at": 1.8e9,
        }
    )  # fmt: skip
    assert "(p=0.95, 1 prediction)" in _describe(alert, 20.1, new=True)
