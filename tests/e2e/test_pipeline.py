"""A bearing defect injected by the simulator goes MQTT -> gateway -> tansu -> Faust and lands as an alert row in PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from demo.brokers import TansuBroker, free_port, stop_process_group
from simulators.scenario import scenario_path

FAULTY_ASSET, FAULT = "P-101", "bearing_outer_race"  # injected in the shipped demo scenario


@pytest.fixture
def schema_url(postgres_url: str, unique: str) -> Iterator[str]:
    engine = create_engine(postgres_url)
    schema = f"fw_e2e_{unique}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def _scenario(tmp_path: Path, site: str) -> Path:
    """The demo plant under a site id of this test's own, so nothing else on the shared broker interferes."""
    source = scenario_path("demo").read_text()
    assert 'id = "demo-plant"' in source
    path = tmp_path / "scenario.toml"
    path.write_text(source.replace('id = "demo-plant"', f'id = "{site}"'))
    return path


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "forewarn.cli", *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _alert_rows(url: str, asset: str) -> list[dict[str, object]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT to_regclass('alerts')")).scalar():
                return []
            rows = conn.execute(text("SELECT id, fault, state, severity FROM alerts WHERE asset_id = :a"), {"a": asset})
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


def test_simulated_fault_becomes_an_alert_row(
    tmp_path: Path, mqtt_url: str, tansu: TansuBroker, schema_url: str, unique: str
) -> None:
    site, gateway = f"e2e-{unique}", f"gw-{unique}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
    env.update(
        PYTHONUNBUFFERED="1",
        FOREWARN_STATE_DIR=str(tmp_path / "state"),
        FOREWARN_SITE=site,
        FOREWARN_MQTT_URL=mqtt_url,
        FOREWARN_KAFKA_BOOTSTRAP=tansu.bootstrap,
        FOREWARN_DATABASE_URL=schema_url,
        FOREWARN_TOPICS_KAFKA_PREDICTIONS=f"predictions-{unique}",
        FOREWARN_TOPICS_KAFKA_ALERTS=f"alerts-{unique}",
        FOREWARN_TOPICS_KAFKA_DEADLETTER=f"deadletter-{unique}",
        FOREWARN_EDGE=json.dumps({"gateway_id": gateway, "metrics_port": free_port()}),
        FOREWARN_STREAM=json.dumps(
            {"app_id": f"e2e-{unique}", "control_topic": f"control-{unique}", "web_port": free_port(), "mqtt_publish": False}
        ),
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    children = [
        _spawn(["stream", "worker"], env, logs / "stream.log"),
        _spawn(["edge", "run"], env, logs / "edge.log"),
    ]
    try:
        time.sleep(3)  # the gateway subscribes within a second; the worker joins its group meanwhile
        scenario = _scenario(tmp_path, site)
        children.append(
            _spawn(["simulate", "--scenario", str(scenario), "--speed", "240", "--duration", "3h"], env, logs / "sim.log")
        )
        deadline = time.monotonic() + 150
        rows: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            rows = _alert_rows(schema_url, FAULTY_ASSET)
            if any(row["fault"] == FAULT for row in rows):
                break
            for child in children[:2]:
                assert child.poll() is None, (logs / "edge.log").read_text()[-2000:] + (logs / "stream.log").read_text()[-2000:]
            time.sleep(1)
        assert any(row["fault"] == FAULT for row in rows), f"no {FAULT} alert for {FAULTY_ASSET}; rows: {rows}"
    finally:
        for child in reversed(children):
            stop_process_group(child, timeout=15)
