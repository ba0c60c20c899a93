"""Helpers for the edge agent's integration tests: plant streams, the agent as a child process, Kafka and MQTT at the edges.

The streams are plain numbers on the shipped bundle's channels: these tests check the
plumbing (every window scored once, delivered once, nothing lost), not model quality.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer
from paho.mqtt.enums import CallbackAPIVersion

from demo.brokers import free_port, stop_process_group
from edge_agent.infer import Scorer
from forewarn.contracts import FaultPrediction, LogRecord, Telemetry, decode, encode, prediction_id
from models.runtime import Bundle
from models.windowing import Windower, WindowSpec

T0 = 1_767_225_600.0  # a multiple of every hop
ROOT = Path(__file__).resolve().parents[2]

Message = Telemetry | LogRecord


def plant_stream(
    spec: WindowSpec, site: str, assets: Iterable[str], minutes: int, seed: int = 0, t0: float = T0
) -> list[Message]:
    """One telemetry message per asset and minute (1 Hz, every channel), a log line now and then; time order."""
    rng = np.random.default_rng(seed)
    names = list(assets)
    out: list[Message] = []
    for minute in range(minutes):
        start = t0 + 60 * minute
        for asset in names:
            base = rng.normal(50.0, 5.0, size=len(spec.channels))
            values = base[:, None] + rng.normal(0.0, 1.0, size=(len(spec.channels), 60))
            out.append(
                Telemetry(
                    site=site, asset_id=asset, asset_type="pump", seq=minute,
                    timestamps=[start + i for i in range(60)],
                    channels={c: [round(float(v), 4) for v in values[k]] for k, c in enumerate(spec.channels)},
                )
            )  # fmt: skip
        if minute % 7 == 3:  # after the minute's telemetry, which starts earlier: the stream stays in time order
            out += [
                LogRecord(site=site, asset_id=a, ts=start + 30, level="WARN", text="bearing noise rising on drive end")
                for a in names
            ]
    return out


def expected_ids(messages: Iterable[Message], spec: WindowSpec, gateway: str) -> set[str]:
    """Ids of the windows a live gateway completes from these messages (no end-of-stream flush)."""
    windower = Windower(spec)
    return {prediction_id(gateway, w.asset_id, w.end) for m in messages for w in windower.add(m).ready()}


def score_offline(messages: Iterable[Message], bundle: Path, gateway: str) -> list[FaultPrediction]:
    """What `edge score` makes of the same messages with no crash: the windows a live gateway completes, scored."""
    windower = Windower(Bundle.load(bundle).spec)
    windows = [w for m in messages for w in windower.add(m).ready()]
    scorer = Scorer(bundle, gateway, 1, 64)
    scorer.load()
    return scorer.score(windows).predictions


def topic_of(message: Message) -> str:
    kind = "telemetry" if isinstance(message, Telemetry) else "log"
    return f"forewarn/{message.site}/{message.asset_id}/{kind}"


class Publisher:
    """A paced QoS 1 publisher (the shared Mosquitto drops beyond 1000 messages queued per client)."""

    def __init__(self, url: str, rate: float = 400.0) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.connect(host, int(port))
        self.client.loop_start()
        self.rate = rate

    def send(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.client.publish(topic_of(message), encode(message), qos=1).wait_for_publish(10)
            time.sleep(1.0 / self.rate)

    def raw(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Agent:
    """`forewarn edge run` as a child process, configured through FOREWARN_* variables only."""

    def __init__(self, state: Path, mqtt_url: str, kafka: str, unique: str, **edge: object) -> None:
        self.state = state
        self.gateway = f"g{unique}"
        self.site = f"s{unique}"
        self.topic = f"predictions-{unique}"
        self.metrics_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
        self.env.update(
            FOREWARN_SITE=self.site, FOREWARN_STATE_DIR=str(state), FOREWARN_MQTT_URL=mqtt_url,
            FOREWARN_MQTT_RECONNECT_MIN_S="0.5", FOREWARN_MQTT_RECONNECT_MAX_S="1",
            FOREWARN_KAFKA_BOOTSTRAP=kafka,
            FOREWARN_TOPICS_KAFKA_PREDICTIONS=self.topic, FOREWARN_TOPICS_KAFKA_DEADLETTER=f"deadletter-{unique}",
            FOREWARN_EDGE_GATEWAY_ID=self.gateway, FOREWARN_EDGE_METRICS_PORT=str(self.metrics_port),
            FOREWARN_EDGE_KAFKA_TIMEOUT_S="3", FOREWARN_EDGE_KAFKA_BACKOFF_MAX_S="1", FOREWARN_EDGE_STATUS_INTERVAL_S="1",
        )  # fmt: skip
        self.env.update({f"FOREWARN_EDGE_{k.upper()}": str(v) for k, v in edge.items()})
        self.env["FOREWARN_LOGGING_LEVEL"] = os.environ.get("EDGE_TEST_LOG_LEVEL", "INFO")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = state / "agent.log"

    def start(self, timeout: float = 30.0) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "forewarn.cli", "edge", "run"],
                env=self.env, cwd=self.state, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        self.wait(lambda: self.metric("forewarn_edge_mqtt_connected") == 1.0, timeout, "the agent connects to MQTT")
        time.sleep(0.3)  # SUBACK

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, as the demo and systemd stop it; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            stop_process_group(self.process)

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)

    def metric(self, name: str, labels: str = "") -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return None
        key = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(key + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def outbox_predictions(self) -> dict[str, FaultPrediction]:
        with contextlib.closing(sqlite3.connect(self.state / "edge" / "outbox.sqlite3")) as db:
            rows = db.execute("SELECT value FROM outbox WHERE kind = 'prediction'")
            return {p.id: p for p in (decode(value, FaultPrediction) for (value,) in rows)}

    def outbox_ids(self) -> set[str]:
        with contextlib.closing(sqlite3.connect(self.state / "edge" / "outbox.sqlite3")) as db:
            return {row[0] for row in db.execute("SELECT id FROM outbox WHERE kind = 'prediction'")}

    def wait(self, condition: Callable[[], bool], timeout: float, what: str, alive: bool = True) -> None:
        """Poll until condition(); fail with the agent's log on timeout, or as soon as it died (unless alive=False)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if alive and self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the agent exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out: {what}\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)


class KafkaReader:
    """Collects every FaultPrediction on a topic in a background thread, riding out broker restarts."""

    def __init__(self, bootstrap: str, topic: str, predictions: bool = True) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.decode = predictions
        self.values: list[bytes] = []
        self.predictions: dict[str, FaultPrediction] = {}
        self.records = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    @property
    def ids(self) -> set[str]:
        return set(self.predictions)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def restart(self) -> None:
        """Read again from the start: after a memory-only broker came back empty, old offsets mean nothing."""
        self._restart.set()

    async def _run(self) -> None:
        while not self._stop.is_set():
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                auto_offset_reset="earliest",
                group_id=None,
                metadata_max_age_ms=1000,
            )
            try:
                await consumer.start()
                self._restart.clear()
                while not self._stop.is_set() and not self._restart.is_set():
                    for messages in (await consumer.getmany(timeout_ms=200)).values():
                        for m in messages:
                            self.values.append(m.value or b"")
                            if not self.decode:
                                continue
                            p = decode(m.value or b"", FaultPrediction)
                            if m.key is None or m.key.decode() != p.asset_id:
                                self.errors.append(f"{p.id}: key {m.key!r} is not the asset id")
                            self.records += 1
                            self.predictions[p.id] = p
            except (Exception, asyncio.CancelledError):  # broker away (or topic not there yet): start over
                await asyncio.sleep(0.3)
            finally:
                with contextlib.suppress(Exception, asyncio.CancelledError):  # aiokafka's stop may re-raise a cancel
                    await consumer.stop()
