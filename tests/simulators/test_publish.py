"""An integrator runs the simulator against the real Mosquitto: every message arrives, and publishing survives a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.contracts import LogRecord, Telemetry, decode_input
from forewarn.settings import MqttSettings
from simulators.config import SimulatorSection, SimulatorSettings
from simulators.plant import Plant
from simulators.publish import Pacer, Publisher, publish_stream
from simulators.scenario import load_scenario

pytestmark = pytest.mark.integration


class Collector:
    """A plain paho subscriber that decodes everything under a topic prefix."""

    def __init__(self, url: str, topic: str) -> None:
        settings = MqttSettings(url=url)
        self.messages: list[Telemetry | LogRecord] = []
        self.topics: set[str] = set()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, clean_session=True)
        self.topic = topic
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        assert self.ready.wait(5)
        time.sleep(0.2)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe(self.topic, qos=1)
        self.ready.set()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.topics.add(message.topic)
        self.messages.append(decode_input(bytes(message.payload)))

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def collector_factory() -> Iterator[Callable[[str, str], Collector]]:
    made: list[Collector] = []

    def make(url: str, topic: str) -> Collector:
        made.append(Collector(url, topic))
        return made[-1]

    yield make
    for c in made:
        c.close()


def _settings(url: str, site: str, qos: int = 0) -> SimulatorSettings:
    return SimulatorSettings(
        mqtt=MqttSettings(url=url, reconnect_min_s=0.2, reconnect_max_s=1.0),
        simulator=SimulatorSection(qos=qos, connect_timeout_s=5),
        site=site,
    )


def test_every_message_of_a_run_arrives_on_its_topic(
    mqtt_url: str, unique: str, collector_factory: Callable[[str, str], Collector]
) -> None:
    scenario = load_scenario("demo").model_copy(
        update={"sites": [load_scenario("demo").sites[0].model_copy(update={"id": unique})]}
    )
    plant = Plant(scenario, seed=1, start=1_750_000_000.0)
    expected = list(plant.messages(1800))
    collector = collector_factory(mqtt_url, f"forewarn/{unique}/#")
    with Publisher(_settings(mqtt_url, unique, qos=1)) as publisher:
        stats = publish_stream(iter(expected), publisher, speed=0)
    collector.wait_for(len(expected))
    assert stats.published == len(expected) and stats.dropped == 0
    assert sorted(
        collector.messages, key=lambda m: (m.asset_id, m.kind, getattr(m, "seq", 0) or 0, getattr(m, "ts", 0))
    ) == sorted(expected, key=lambda m: (m.asset_id, m.kind, getattr(m, "seq", 0) or 0, getattr(m, "ts", 0)))
    assert f"forewarn/{unique}/P-101/telemetry" in collector.topics and f"forewarn/{unique}/P-101/log" in collector.topics


def test_pacing_follows_source_time_at_the_chosen_speed() -> None:
    pacer = Pacer(speed=100.0)
    began = time.monotonic()
    for t in (0.0, 10.0, 20.0, 30.0):
        pacer.wait(1_750_000_000.0 + t)
    assert 0.28 < time.monotonic() - began < 0.6


def test_publishing_survives_a_broker_restart(
    private_mosquitto: Callable[..., Any], collector_factory: Callable[[str, str], Collector]
) -> None:
    broker = private_mosquitto()
    plant = Plant(load_scenario("test"), seed=0)
    settings = _settings(broker.url, "test-site", qos=1)
    stop = threading.Event()
    publisher = Publisher(settings).start()
    result: dict[str, Any] = {}

    def run() -> None:
        result["stats"] = publish_stream(plant.messages(float("inf")), publisher, speed=600.0, stop=stop)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        time.sleep(1.0)
        before = publisher.stats.published
        assert before > 0
        broker.stop()
        time.sleep(1.0)
        broker.start()
        assert publisher.connected.wait(15), "the publisher did not reconnect"
        collector = collector_factory(broker.url, "forewarn/#")
        time.sleep(1.5)
    finally:
        stop.set()
        worker.join(10)
        publisher.stop()
    assert publisher.stats.connects >= 2 and publisher.stats.disconnects >= 1
    arrived = [m for m in collector.messages if isinstance(m, Telemetry)]
    assert arrived, "nothing arrived after the broker came back"
    assert max(m.end for m in arrived) > plant.start + 600  # source time kept moving through the outage
