"""The demo's own brokers start on free ports, serve real clients, and leave no process behind when stopped."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from demo.brokers import EmbeddedMqttBroker, TansuBroker, clear_retained, port_open
from forewarn.kafka import ensure_topics
from forewarn.settings import KafkaSettings, MqttSettings


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


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_child_dies_when_its_parent_is_killed_with_sigkill() -> None:
    parent_code = textwrap.dedent(
        """
        import subprocess, sys, time
        from demo.brokers import die_with_parent
        child = subprocess.Popen(["sleep", "60"], start_new_session=True, preexec_fn=die_with_parent())
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its killed parent"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.integration
def test_clear_retained_removes_every_retained_message_under_a_filter(mqtt_url: str, unique: str) -> None:
    settings = MqttSettings(url=mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        for topic in (f"forewarn-test-{unique}/a", f"forewarn-test-{unique}/b/c"):
            client.publish(topic, b"left over", qos=1, retain=True).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    assert clear_retained(settings, f"forewarn-test-{unique}/#") == 2
    assert clear_retained(settings, f"forewarn-test-{unique}/#") == 0, "nothing retained is left"


@pytest.mark.integration
def test_the_suite_removes_the_retained_alerts_and_statuses_its_tests_leave(mqtt_url: str, unique: str) -> None:
    from tests.conftest import MOSQUITTO, RetainedWatcher

    settings = MqttSettings(url=mqtt_url)
    watcher = RetainedWatcher(*MOSQUITTO)
    left = [f"forewarn-test-{unique}/alerts/plant1/a1", f"forewarn/gateways/g{unique}/status"]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        for topic in left:
            client.publish(topic, b"left by a test", qos=1, retain=True).wait_for_publish(5)
        client.publish(f"forewarn/gateways/g{unique}x/status", b"not retained", qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    deadline = time.monotonic() + 5
    while watcher.topics != set(left) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watcher.topics == set(left)
    watcher.clear()
    assert clear_retained(settings, f"forewarn-test-{unique}/#") == 0
    assert clear_retained(settings, f"forewarn/gateways/g{unique}/status") == 0
