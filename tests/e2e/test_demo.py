"""A user runs `forewarn demo` again into one state directory: it starts clean, prints a JSON summary, exits 0, leaves
no process and no retained MQTT message behind, also on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from demo.brokers import free_port
from demo.run import RUN_MARKER
from tests.e2e.procs import processes_with_marker


def _env(run_id: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
    env.update({RUN_MARKER: run_id, "PYTHONUNBUFFERED": "1", **extra})
    return env


def _assert_nothing_left(run_id: str) -> None:
    deadline = time.monotonic() + 5
    while processes_with_marker(RUN_MARKER, run_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_marker(RUN_MARKER, run_id) == [], "processes outlived the demo"


def _retained(mqtt_url: str, topic_filter: str) -> list[str]:
    """Topics holding a retained message under a filter (what a later subscriber would be told)."""
    import paho.mqtt.client as mqtt

    from forewarn.settings import MqttSettings

    broker, found, subscribed = MqttSettings(url=mqtt_url), [], []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: found.append(m.topic) if m.retain and m.payload else None
    client.on_subscribe = lambda *args: subscribed.append(True)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 5
        while not subscribed and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # retained messages follow the SUBACK at once
    finally:
        client.loop_stop()
        client.disconnect()
    return found


def test_demo_json_summary_and_clean_exit(tmp_path: Path, mqtt_url: str) -> None:
    run_id = uuid.uuid4().hex
    # what an earlier demo left: its database (here unreadable: a clean start must not even open it) and logs
    (tmp_path / "logs").mkdir()
    (tmp_path / "forewarn.db").write_bytes(b"an earlier run's alerts")
    (tmp_path / "logs" / "edge.log").write_text("earlier run\n")
    (tmp_path / "demo.json").write_text(json.dumps({"namespace": "0ldrun00", "mqtt": mqtt_url}))
    done = subprocess.run(
        [sys.executable, "-m", "forewarn.cli", "demo", "--duration", "45", "--json", "--state-dir", str(tmp_path)],
        env=_env(run_id),
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = done.stdout.decode().strip().splitlines()
    summary = json.loads(lines[-1])
    assert {"alerts", "predictions", "first_alert_s"} <= summary.keys()
    assert summary["predictions"] > 0, done.stderr.decode()[-3000:]
    assert summary["db_alerts"] == summary["alerts"]
    assert (tmp_path / "forewarn.db").is_file()
    assert summary["continued"] is False and "starting clean" in done.stderr.decode()
    assert "earlier run" not in (tmp_path / "logs" / "edge.log").read_text()
    namespace = summary["mqtt_namespace"]
    assert namespace.startswith("forewarn/demo-") and namespace != "forewarn/demo-0ldrun00"
    assert _retained(mqtt_url, f"{namespace}/#") == [], "the demo left retained messages on the broker"
    _assert_nothing_left(run_id)


def test_demo_ctrl_c_with_embedded_mqtt_stops_everything(tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex
    nobody = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens: the demo must bring its own broker
    process = subprocess.Popen(
        [sys.executable, "-m", "forewarn.cli", "demo", "--duration", "300", "--json", "--state-dir", str(tmp_path)],
        env=_env(run_id, FOREWARN_MQTT_URL=nobody),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stderr.readline().decode()
            seen.append(line)
            if "watching alerts" in line or not line:
                break
        assert any("started an embedded one" in line for line in seen), "".join(seen)
        assert any("watching alerts" in line for line in seen), "".join(seen)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-3000:]
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["interrupted"] is True
    _assert_nothing_left(run_id)
