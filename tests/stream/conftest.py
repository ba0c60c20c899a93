"""One real stream worker (a `forewarn stream worker` process on the session's tansu) shared by the feed, page and worker tests.

Group joins on tansu cost seconds, so the worker starts once per session; each test
uses its own asset ids. Topics, app id and state directory are unique to the session.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from demo.brokers import TansuBroker, free_port, stop_process_group
from forewarn.contracts import FaultPrediction, encode

TOKEN = "test-token"
PERSONAL_TOKEN = "olga-personal-operator-token"
T = TypeVar("T")


class RunningWorker:
    """A worker subprocess and the means to feed it predictions and ask its feed questions."""

    def __init__(self, bootstrap: str, state_dir: Path, mqtt_url: str, delivery: str = "batched") -> None:
        suffix = uuid.uuid4().hex[:8]
        self.bootstrap = bootstrap
        self.state_dir = state_dir
        self.port = free_port()
        self.predictions = f"predictions-{suffix}"
        self.alerts = f"alerts-{suffix}"
        self.deadletter = f"deadletter-{suffix}"
        self.env = dict(
            os.environ,
            FOREWARN_KAFKA_BOOTSTRAP=bootstrap,
            FOREWARN_STATE_DIR=str(state_dir),
            FOREWARN_MQTT_URL=mqtt_url,
            FOREWARN_SITE="plant1",
            FOREWARN_TOPICS_KAFKA_PREDICTIONS=self.predictions,
            FOREWARN_TOPICS_KAFKA_ALERTS=self.alerts,
            FOREWARN_TOPICS_KAFKA_DEADLETTER=self.deadletter,
            FOREWARN_TOPICS_MQTT_ALERT=f"forewarn-test-{suffix}/alerts/{{site}}/{{asset}}",
            FOREWARN_STREAM=json.dumps(
                {
                    "app_id": f"stream-test-{suffix}",
                    "control_topic": f"control-{suffix}",
                    "web_port": self.port,
                    "api_token": TOKEN,
                    "api_tokens": [{"name": "olga", "token": PERSONAL_TOKEN, "role": "operator"}],
                    "tick_s": 0.5,
                    "delivery": delivery,
                    "batch_within_s": 0.02,
                    "recovery_stall_s": 15,
                    "liveness": {"asset_silent_s": 6, "gateway_silent_s": 6},
                    "rules": {"default": {"k": 3, "n": 5}, "minor_update_s": 0.5},
                }
            ),
        )
        self.mqtt_alert_prefix = f"forewarn-test-{suffix}/alerts"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = state_dir / "worker.log"
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "forewarn.cli", "stream", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.wait_for(lambda: self.get("/api/health"), timeout, "the worker's feed")
        self.wait_for(
            lambda: "Setting newly assigned partitions" in self.log.read_text(errors="replace") or None, timeout, "a group join"
        )

    def stop(self) -> float:
        """SIGTERM; returns how long the worker took to exit."""
        assert self.process is not None
        started = time.monotonic()
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        finally:
            stop_process_group(self.process)
        return time.monotonic() - started

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def produce(self, predictions: Iterable[FaultPrediction | tuple[bytes, bytes]]) -> None:
        from aiokafka import AIOKafkaProducer

        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
            await producer.start()
            try:
                for p in predictions:
                    key, value = (p.asset_id.encode(), encode(p)) if isinstance(p, FaultPrediction) else p
                    await producer.send(self.predictions, value, key=key)
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(send())

    def read_topic(self, topic: str, enough: Callable[[list[bytes]], bool], timeout: float = 20) -> list[bytes]:
        """Values of ``topic`` from its start, read until ``enough`` says so (or the timeout)."""
        from aiokafka import AIOKafkaConsumer

        async def read() -> list[bytes]:
            consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest")
            await consumer.start()
            values: list[bytes] = []
            try:
                deadline = time.monotonic() + timeout
                while not enough(values) and time.monotonic() < deadline:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        values += [r.value or b"" for r in records]
            finally:
                await consumer.stop()
            return values

        return asyncio.run(read())

    def sibling(self, state_dir: Path, **env: str) -> RunningWorker:
        """Another worker of the same group (same app id and topics), with its own feed port and state dir."""
        other = RunningWorker(self.bootstrap, state_dir, self.env["FOREWARN_MQTT_URL"])
        stream = json.loads(self.env["FOREWARN_STREAM"]) | {"web_port": other.port}
        other.env = self.env | {"FOREWARN_STATE_DIR": str(state_dir), "FOREWARN_STREAM": json.dumps(stream)} | env
        other.predictions, other.alerts, other.deadletter = self.predictions, self.alerts, self.deadletter
        other.mqtt_alert_prefix = self.mqtt_alert_prefix
        return other

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def get(self, path: str) -> Any:
        try:
            status, data = self.request("GET", path)
        except OSError:
            return None
        return data if status == 200 else None

    def health(self) -> dict[str, Any]:
        """The health body whatever its status (503 while degraded, counters included); {} while the feed does not answer."""
        try:
            _, data = self.request("GET", "/api/health")
        except OSError:
            return {}
        return data if isinstance(data, dict) else {}

    def alerts_of(self, asset: str, state: str = "all") -> list[dict[str, Any]]:
        data = self.get(f"/api/alerts?asset={asset}&state={state}")
        return data["alerts"] if data else []

    @staticmethod
    def wait_for(check: Callable[[], T | None], timeout: float = 30, what: str = "condition") -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def agent_worker(tansu: TansuBroker, mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    """A second worker, on the agent delivery path (Faust's public stream API; stream.agents)."""
    running = RunningWorker(tansu.bootstrap, tmp_path_factory.mktemp("stream-agent-worker"), mqtt_url, delivery="agent")
    running.start()
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            running.stop()


@pytest.fixture(params=["batched", "agent"])
def either_worker(request: pytest.FixtureRequest) -> RunningWorker:
    """The shared worker on each delivery path in turn; a test taking it proves its claim on both."""
    running: RunningWorker = request.getfixturevalue("worker" if request.param == "batched" else "agent_worker")
    if running.process is None or running.process.poll() is not None:
        running.start()  # an earlier test stopped it
    assert running.health()["delivery"] == request.param
    return running


@pytest.fixture(scope="session")
def worker(tansu: TansuBroker, mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    running = RunningWorker(tansu.bootstrap, tmp_path_factory.mktemp("stream-worker"), mqtt_url)
    running.start()
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            running.stop()
