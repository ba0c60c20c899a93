"""The demo's own brokers start on free ports, serve real clients, and leave no process behind when stopped."""

from __future__ import annotations

import asyncio
import queue

import paho.mqtt.client as mqtt
from aiokafka.admin import AIOKafkaAdminClient

from forewarn.localbrokers import EmbeddedMqttBroker, TansuBroker, ensure_topics, port_open
from forewarn.settings import KafkaSettings


def test_tansu_serves_topics_and_stops(unique: str) -> None:
    with TansuBroker() as broker:
        kafka = KafkaSettings(bootstrap=broker.bootstrap, partitions=3)
        topic = f"t-{unique}"

        async def created() -> dict[str, int]:
            await ensure_topics(kafka, [topic])
            await ensure_topics(kafka, [topic])  # idempotent
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
            await admin.start()
            try:
                (description,) = await admin.describe_topics([topic])
                return {description["topic"]: len(description["partitions"])}
            finally:
                await admin.close()

        assert asyncio.run(created()) == {topic: 3}
        process = broker.process
    assert process is not None and process.poll() is not None
    assert not port_open("127.0.0.1", broker.port)


def test_embedded_mqtt_broker_relays_messages() -> None:
    with EmbeddedMqttBroker() as broker:
        received: queue.Queue[bytes] = queue.Queue()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.on_message = lambda c, u, msg: received.put(msg.payload)
        client.connect("127.0.0.1", broker.port)
        client.subscribe("t/#", qos=1)
        client.loop_start()
        try:
            client.publish("t/x", b"hello", qos=1).wait_for_publish(5)
            assert received.get(timeout=5) == b"hello"
        finally:
            client.loop_stop()
            client.disconnect()
    assert not port_open("127.0.0.1", broker.port)
