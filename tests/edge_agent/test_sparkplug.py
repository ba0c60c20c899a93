"""Sparkplug B against the real Mosquitto: a plant node feeds the gateway, a SCADA host reads its predictions.

The test's client is plain paho with the gateway's codec; it plays the plant's edge node
(births, DDATA by alias, answering rebirths) and the Ignition-style host (reads the
gateway's births and data, sends it a rebirth command, sees its NDEATH).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.sparkplug.codec import BD_SEQ, REBIRTH, AliasTable, DataType, Metric, SpPayload, decode, encode
from forewarn.contracts import Telemetry
from models.windowing import WindowSpec
from tests.conftest import PrivateMosquitto
from tests.edge_agent.streams import Agent, expected_ids, plant_stream

pytestmark = pytest.mark.integration
LIMIT = 1 << 20


def metric_name(channel: str) -> str:
    """How the plant names a channel's tag: 'vibration_rms' -> 'Vibration Rms' (the gateway maps it back)."""
    return channel.replace("_", " ").title()


class SparkplugPeer:
    """The plant's edge node ``line1`` (group ``plant``) and a host watching the gateway's group, on one connection."""

    def __init__(self, url: str, plant: str, watched: str, channels: list[str], explicit: dict[str, str]) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.plant = plant
        self.names = [next((k for k, v in explicit.items() if v == c), metric_name(c)) for c in channels]
        self.channels = channels
        self.seq = 0
        self.bd_seq = 0
        self.received: list[tuple[str, SpPayload]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self._filters = [(f"spBv1.0/{plant}/NCMD/line1", 0), (f"spBv1.0/{watched}/#", 1)]
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda client, *_: client.subscribe(self._filters)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_disconnect = lambda *_: self.subscribed.clear()
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self.subscribed.wait(5), "the test's Sparkplug client subscribes"

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, decode(bytes(message.payload), LIMIT)))

    def messages(self, kind: str) -> list[tuple[str, SpPayload]]:
        with self._lock:
            return [(t, p) for t, p in self.received if t.split("/")[2] == kind]

    def publish(self, kind: str, metrics: list[Metric], device: str | None = None, skip: int = 0) -> None:
        self.seq = (self.seq + skip) % 256
        payload = SpPayload(metrics=tuple(metrics), seq=None if kind == "NDEATH" else self.seq, timestamp_ms=1)
        if kind != "NDEATH":
            self.seq = (self.seq + 1) % 256
        topic = f"spBv1.0/{self.plant}/{kind}/line1" + (f"/{device}" if device else "")
        self.client.publish(topic, encode(payload), qos=0).wait_for_publish(5)

    def birth(self) -> None:
        self.seq = 0
        self.publish("NBIRTH", [Metric(name=BD_SEQ, datatype=DataType.UInt64, value=self.bd_seq)])
        births = [Metric(name=n, alias=i + 1, datatype=DataType.Double, value=0.0) for i, n in enumerate(self.names)]
        self.publish("DBIRTH", [*births, Metric(name="Mode", alias=99, datatype=DataType.String, value="auto")], "a1")

    def data(self, t: Telemetry, skip: int = 0) -> None:
        """One telemetry batch as a DDATA: every sample a metric by alias, with its own timestamp."""
        metrics = [
            Metric(alias=i + 1, datatype=DataType.Double, value=values[k], timestamp_ms=round(t.timestamps[k] * 1000))
            for i, values in enumerate(t.channels[c] for c in self.channels)
            for k in range(len(t.timestamps))
        ]
        self.publish("DDATA", metrics, "a1", skip)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def agent(tmp_path: Path, mqtt_url: str, unique: str) -> Iterator[Agent]:
    agent = Agent(tmp_path, mqtt_url, "", unique)  # no Kafka: predictions go to MQTT and Sparkplug
    yield agent
    agent.close()


def sparkplug_env(agent: Agent, group: str, **more: str) -> None:
    agent.env.update(FOREWARN_SPARKPLUG_ENABLED="true", FOREWARN_SPARKPLUG_GROUP_ID=group)
    agent.env.update({f"FOREWARN_SPARKPLUG_{k.upper()}": v for k, v in more.items()})


def test_a_plant_node_is_scored_and_a_scada_host_reads_the_gateway_as_an_edge_node(
    agent: Agent, mqtt_url: str, unique: str, spec: WindowSpec
) -> None:
    channels = list(spec.channels)
    explicit = {"Line/Sensor 1": channels[0]}
    group, plant = f"fw{unique}", f"plant{unique}"
    sparkplug_env(agent, group, ingest_groups=json.dumps([plant]), channels=json.dumps(explicit))
    peer = SparkplugPeer(mqtt_url, plant, group, channels, explicit)
    try:
        agent.start()
        agent.wait(lambda: len(peer.messages("NBIRTH")) == 1, 10, "the gateway's NBIRTH (its subscriptions are in place)")
        node = f"spBv1.0/{group}/NBIRTH/{agent.gateway}"
        (topic, nbirth), = peer.messages("NBIRTH")  # fmt: skip
        born = {m.name: m.value for m in nbirth.metrics}
        assert topic == node and nbirth.seq == 0 and born[REBIRTH] is False and "Gateway/Windows Scored" in born

        # The plant feeds the gateway: births, then a DDATA per minute, by alias.
        stream = [m for m in plant_stream(spec, agent.site, ["a1"], minutes=16) if isinstance(m, Telemetry)]
        expected = expected_ids(stream, spec, agent.gateway)
        assert len(expected) >= 5
        peer.birth()
        for t in stream:
            peer.data(t)
        agent.wait(lambda: agent.metric("forewarn_edge_windows_scored_total") == len(expected), 60, "every window scored")

        # The host reads the gateway's device a1: DBIRTH once, then DDATA by alias, one per prediction.
        agent.wait(lambda: len(peer.messages("DDATA")) == len(expected) - 1, 10, "a DDATA per later prediction")
        (_, dbirth), = peer.messages("DBIRTH")  # fmt: skip
        table = AliasTable(dbirth.metrics)
        ends = {m.value for m in dbirth.metrics if m.name == "Window End"}
        for topic, data in peer.messages("DDATA"):
            assert topic == f"spBv1.0/{group}/DDATA/{agent.gateway}/a1"
            values = {m.name: m.value for m in map(table.resolve, data.metrics)}
            score = values["Anomaly Score"]
            assert isinstance(score, float) and 0.0 <= score <= 1.0 and values["Fault"] and values["Model Version"]
            ends.add(values["Window End"])
        assert {f"{agent.gateway}:a1:{end!r}" for end in ends} == expected
        seqs = [p.seq for t, p in peer.received if t.startswith(f"spBv1.0/{group}/") and p.seq is not None]
        assert seqs == [i % 256 for i in range(len(seqs))], "one sequence across NBIRTH, DBIRTH and DDATA"

        # A payload that is no Sparkplug B is refused by reason; a lost message makes the gateway ask for a rebirth.
        peer.client.publish(f"spBv1.0/{plant}/DDATA/line1/a1", b"\xff\xff not protobuf", qos=0).wait_for_publish(5)
        agent.wait(lambda: agent.metric("forewarn_edge_bad_messages_total", 'reason="sparkplug_undecodable"') == 1, 10, "refused")
        later = plant_stream(spec, agent.site, ["a1"], minutes=1, t0=stream[-1].end + 1)[0]
        assert isinstance(later, Telemetry)
        peer.data(later, skip=1)
        agent.wait(lambda: len(peer.messages("NCMD")) == 1, 10, "a rebirth request")
        (topic, command), = peer.messages("NCMD")  # fmt: skip
        assert topic == f"spBv1.0/{plant}/NCMD/line1" and [(m.name, m.value) for m in command.metrics] == [(REBIRTH, True)]
        assert agent.metric("forewarn_edge_bad_messages_total", 'reason="sparkplug_seq_gap"') == 1
        assert agent.metric("forewarn_edge_sparkplug_rebirths_requested_total") == 1
        peer.birth()  # the plant answers; its data is read again
        peer.data(later)
        agent.wait(lambda: agent.metric("forewarn_edge_sparkplug_device_data_total") == len(stream) + 3, 10, "data read again")
        assert agent.metric("forewarn_edge_bad_messages_total", 'reason="sparkplug_out_of_sync"') is None

        # The host asks the gateway for a rebirth: NBIRTH (seq 0, same bdSeq) and the device's DBIRTH again.
        ask = SpPayload(metrics=(Metric(name=REBIRTH, datatype=DataType.Boolean, value=True),), timestamp_ms=1)
        peer.client.publish(f"spBv1.0/{group}/NCMD/{agent.gateway}", encode(ask), qos=0).wait_for_publish(5)
        agent.wait(lambda: len(peer.messages("NBIRTH")) == 2 and len(peer.messages("DBIRTH")) == 2, 10, "the rebirth")
        rebirth = peer.messages("NBIRTH")[1][1]
        assert rebirth.seq == 0 and {m.name: m.value for m in rebirth.metrics}[BD_SEQ] == born[BD_SEQ]

        # The gateway dies without a goodbye: the broker publishes its NDEATH, the will, with the session's bdSeq.
        agent.kill9()
        agent.wait(lambda: len(peer.messages("NDEATH")) == 1, 10, "the NDEATH will", alive=False)
        (topic, death), = peer.messages("NDEATH")  # fmt: skip
        assert topic == f"spBv1.0/{group}/NDEATH/{agent.gateway}"
        assert [(m.name, m.value) for m in death.metrics] == [(BD_SEQ, born[BD_SEQ])]
    finally:
        peer.close()


def test_each_session_has_the_next_bdseq_and_a_clean_stop_says_ndeath(
    tmp_path: Path, private_mosquitto: Callable[..., PrivateMosquitto], unique: str
) -> None:
    broker = private_mosquitto()
    agent = Agent(tmp_path, broker.url, "", unique)
    group = f"fw{unique}"
    sparkplug_env(agent, group)
    peer = SparkplugPeer(broker.url, f"plant{unique}", group, [], {})
    try:
        agent.start()
        agent.wait(lambda: len(peer.messages("NBIRTH")) == 1, 10, "the first NBIRTH")
        first = {m.name: m.value for m in peer.messages("NBIRTH")[0][1].metrics}[BD_SEQ]
        broker.stop()
        agent.wait(lambda: agent.metric("forewarn_edge_sparkplug_connected") == 0, 10, "the agent notices")
        broker.start()
        agent.wait(lambda: agent.metric("forewarn_edge_sparkplug_connected") == 1 and peer.subscribed.is_set(), 20, "both back")
        ask = SpPayload(metrics=(Metric(name=REBIRTH, datatype=DataType.Boolean, value=True),), timestamp_ms=1)
        peer.client.publish(f"spBv1.0/{group}/NCMD/{agent.gateway}", encode(ask), qos=0).wait_for_publish(5)
        agent.wait(lambda: len(peer.messages("NBIRTH")) >= 2, 10, "the NBIRTH of the new session")
        second = peer.messages("NBIRTH")[-1][1]
        assert second.seq == 0 and {m.name: m.value for m in second.metrics}[BD_SEQ] == (first + 1) % 256  # type: ignore[operator]
        assert agent.stop() == 0

        def deaths() -> list[object]:
            return [m.value for _, p in peer.messages("NDEATH") for m in p.metrics if m.name == BD_SEQ]

        agent.wait(lambda: deaths()[-1:] == [(first + 1) % 256], 10, "the NDEATH of a clean stop", alive=False)  # type: ignore[operator]
        # Before it, at most the first session's (Mosquitto sends the wills of its clients when it shuts down).
        assert deaths()[:-1] in ([], [first])
    finally:
        peer.close()
