"""Shared fixtures: the real services every integration test talks to.

Mosquitto (127.0.0.1:1883) and PostgreSQL (127.0.0.1:5432, database ``test``) are the
machine's own services, started by ``scripts/services`` before the suite; a test that needs
one and finds it down fails with a message saying how to start it (never skips silently).
Kafka is a tansu broker started once per test session on a free port. A test that must
kill and restart a broker gets a private Mosquitto from ``private_mosquitto``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.brokers import TansuBroker, free_port, port_open, stop_process_group, wait_for_port

MOSQUITTO = ("127.0.0.1", 1883)
POSTGRES = ("127.0.0.1", 5432)
POSTGRES_URL = os.environ.get("FOREWARN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """The machine's Mosquitto; run scripts/services to start it."""
    if not port_open(*MOSQUITTO):
        pytest.fail("Mosquitto is not running on 127.0.0.1:1883: run scripts/services (or see ../shared/SERVICES.md)")
    return f"mqtt://{MOSQUITTO[0]}:{MOSQUITTO[1]}"


class RetainedWatcher:
    """Notes the retained messages tests leave on the shared Mosquitto, so the session can remove them.

    Watches alerts (``forewarn-test-*/alerts/...``, ``forewarn/alerts/...``) and gateway
    statuses (``forewarn/gateways/<id>/status``) with MQTT 5's retain-as-published, so a live
    publish shows whether it was retained. A gateway status counts only if published during
    the session; an alert under ``forewarn-test-*`` always does (its name says it is a test's).
    """

    FILTERS = ("+/alerts/#", "forewarn/gateways/+/status")

    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.subscribeoptions import SubscribeOptions

        self.host, self.port = host, port
        self.topics: set[str] = set()
        self._lock = threading.Lock()
        self._since = float("inf")  # what arrives with the SUBACK was there before the session
        subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"forewarn-test-retained-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(f, options) for f in self.FILTERS])
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        subscribed.wait(5)
        time.sleep(0.3)  # the retained messages follow the SUBACK at once
        self._since = time.monotonic()

    def _on_message(self, client: object, userdata: object, message: object) -> None:
        topic, retained, payload = message.topic, message.retain, message.payload  # type: ignore[attr-defined]
        ours = topic.startswith("forewarn-test-") or time.monotonic() >= self._since
        if retained and ours:
            with self._lock:
                if payload:
                    self.topics.add(topic)
                else:
                    self.topics.discard(topic)  # already cleared by the test

    def clear(self) -> None:
        """Stop watching and delete every retained message noted."""
        self.client.unsubscribe(list(self.FILTERS))
        with self._lock:
            topics = sorted(self.topics)
        infos = [self.client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        for info in infos:
            info.wait_for_publish(5)
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(scope="session", autouse=True)
def _retained_messages_removed() -> Iterator[None]:
    """The suite leaves no retained alert or gateway status on the machine's Mosquitto."""
    if not port_open(*MOSQUITTO, timeout=0.2):
        yield
        return
    watcher = RetainedWatcher(*MOSQUITTO)
    try:
        yield
    finally:
        watcher.clear()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The machine's PostgreSQL database ``test``; run scripts/services to start it."""
    if not port_open(*POSTGRES):
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432: run scripts/services (or see ../shared/SERVICES.md)")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """One in-memory tansu Kafka broker for the whole test session (topics: use unique names)."""
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    broker = TansuBroker(log_file=log)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_bootstrap(tansu: TansuBroker) -> str:
    return tansu.bootstrap


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic names, client ids and database schemas."""
    return uuid.uuid4().hex[:10]


class PrivateMosquitto:
    """A Mosquitto of the test's own, on a free port, that the test may stop and start again."""

    def __init__(self, directory: Path, extra_config: str = "") -> None:
        self.port = free_port()
        self.directory = directory
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            "max_queued_messages 100000\n"
            f"{extra_config}"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([binary, "-c", str(self.config)], stdout=log, stderr=log, start_new_session=True)
        log.close()
        wait_for_port("127.0.0.1", self.port, 10, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[Callable[..., PrivateMosquitto]]:
    """Factory: ``private_mosquitto(extra_config="")`` starts a Mosquitto owned by this test."""
    started: list[PrivateMosquitto] = []

    def make(extra_config: str = "") -> PrivateMosquitto:
        directory = tmp_path / f"mosquitto{len(started)}"
        directory.mkdir()
        broker = PrivateMosquitto(directory, extra_config)
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()
