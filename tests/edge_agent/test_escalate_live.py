"""Uplink down: a gateway's verdicts still go out on MQTT, its escalations wait in the outbox and reach Kafka later."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.brokers import free_port
from forewarn.contracts import Escalation, decode
from models.windowing import WindowSpec
from tests.edge_agent.streams import Agent, KafkaReader, Publisher, expected_ids, plant_stream
from tests.edge_agent.test_daemon import Listener

pytestmark = pytest.mark.integration

CASCADE = {"cascade_confidence_below": 1.0, "cascade_anomaly_above": 0.0, "cascade_rate": 1000, "cascade_burst": 1000}
"""Escalate (nearly) every window: any fault verdict short of certainty, every normal one."""


def _escalations(agent: Agent) -> set[str]:
    with contextlib.closing(sqlite3.connect(agent.state / "edge" / "outbox.sqlite3")) as db:
        return {row[0] for row in db.execute("SELECT id FROM outbox WHERE kind = 'escalation'")}


@pytest.fixture
def started() -> Iterator[list[Agent]]:
    agents: list[Agent] = []
    yield agents
    for agent in agents:
        agent.close()


def test_escalations_wait_in_the_outbox_while_the_uplink_is_down_and_go_when_it_is_back(
    tmp_path: Path, mqtt_url: str, kafka_bootstrap: str, unique: str, spec: WindowSpec, started: list[Agent]
) -> None:
    topic = f"escalations-{unique}"
    offline = Agent(tmp_path, mqtt_url, f"127.0.0.1:{free_port()}", unique, **CASCADE)
    offline.env["FOREWARN_TOPICS_KAFKA_ESCALATIONS"] = topic
    started.append(offline)
    listener = Listener(mqtt_url, f"forewarn/{offline.site}/+/prediction")
    publisher = Publisher(mqtt_url)
    messages = plant_stream(spec, offline.site, ["a1", "a2"], minutes=16)
    expected = expected_ids(messages, spec, offline.gateway)
    try:
        offline.start()
        publisher.send(messages)
        offline.wait(lambda: listener.prediction_ids == expected, 30, "every edge verdict on MQTT with no uplink")
        offline.wait(lambda: len(_escalations(offline)) >= 1, 10, "escalations stored in the outbox")
        offline.wait(
            lambda: offline.metric("forewarn_edge_escalations_total") == len(_escalations(offline)), 10, "all escalated stored"
        )
        waiting = _escalations(offline)
        assert {e.removeprefix("esc:") for e in waiting} <= expected
        assert offline.stop() == 0
    finally:
        publisher.close()
        listener.close()
    back = Agent(tmp_path, mqtt_url, kafka_bootstrap, unique, **CASCADE)
    back.env["FOREWARN_TOPICS_KAFKA_ESCALATIONS"] = topic
    started.append(back)
    reader = KafkaReader(kafka_bootstrap, topic, predictions=False)
    try:
        back.start()
        back.wait(lambda: len(reader.values) >= len(waiting), 30, "the stored escalations delivered once the uplink is up")
    finally:
        reader.close()
    delivered = [decode(v, Escalation) for v in reader.values]
    assert {f"esc:{e.prediction.id}" for e in delivered} == waiting
    first = delivered[0]
    assert first.inputs_id.startswith("in-") and first.steps == spec.steps and len(first.tokens) <= 64
    assert _escalations(back) == set()
