"""Whatever a publisher sends becomes a typed record or a reasoned refusal, and the MQTT session outlives disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from demo.brokers import clear_retained, forget_session
from edge_agent.config import EdgeSettings
from edge_agent.errors import Rejected
from edge_agent.health import Health, Vitals
from edge_agent.ingest import Delivery, Inbox, MqttLink, TopicRouter, admit
from edge_agent.metrics import EdgeMetrics
from forewarn.contracts import GatewayStatus, Telemetry, decode, encode
from forewarn.settings import TopicSettings
from tests.conftest import PrivateMosquitto

T0 = 1_767_225_600.0
ROUTER = TopicRouter(TopicSettings())
LIMIT = 1_048_576


def _telemetry(seq: int = 0, site: str = "p1", asset: str = "a1", n: int = 5) -> Telemetry:
    return Telemetry(
        site=site, asset_id=asset, seq=seq, timestamps=[T0 + i for i in range(n)], channels={"temp": [20.0 + i for i in range(n)]}
    )


# ---------------------------------------------------------------------------------------- admit


def test_admit_routes_by_topic_and_checks_the_payload_speaks_for_its_asset() -> None:
    good = encode(_telemetry())
    assert admit("forewarn/p1/a1/telemetry", good, ROUTER, LIMIT) == _telemetry()
    cases = {
        "forewarn/p1/a2/telemetry": "asset_mismatch",
        "forewarn/p9/a1/telemetry": "asset_mismatch",
        "forewarn/p1/a1/log": "wrong_topic",
        "forewarn/p1/a1/other": "unknown_topic",
        "forewarn/p1/telemetry": "unknown_topic",
    }
    for topic, reason in cases.items():
        with pytest.raises(Rejected) as caught:
            admit(topic, good, ROUTER, LIMIT)
        assert caught.value.reason == reason, topic
    with pytest.raises(Rejected) as caught:
        admit("forewarn/p1/a1/telemetry", good, ROUTER, 64)
    assert caught.value.reason == "oversized"


HOSTILE = [
    b"",
    b"\xff\xfe\x00garbage",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"kind": "telemetry"}',
    b'{"kind": "telemetry", "site": "p1", "asset_id": "a1", "seq": 0, "timestamps": [NaN], "channels": {"t": [1]}}',
    b'{"kind": "telemetry", "site": "p1", "asset_id": "a1", "seq": 0, "timestamps": [1e999], "channels": {"t": [1]}}',
    b'{"kind": "telemetry", "site": "p1", "asset_id": "a1", "seq": -1, "timestamps": [1767225600], "channels": {"t": [1]}}',
    b'{"kind": "telemetry", "site": "p1", "asset_id": "a1", "seq": 0, "timestamps": [1767225600], "channels": {"t": [1, 2]}}',
    b'{"kind": "telemetry", "site": "p1", "asset_id": "a1", "seq": 0, "timestamps": [1767225600000], "channels": {"t": [1]}}',
    b'{"kind": "log", "site": "p1", "asset_id": "a1", "ts": 1767225600, "text": "' + b"x" * 5000 + b'"}',
    b'{"kind": "telemetry", "site": "p1", "asset_id": "a1", "seq": 0, "timestamps": [1767225600], "channels": {"t": [1]}, '
    b'"__class__": "x"}',
    json.dumps(
        {
            "kind": "telemetry",
            "site": "p1",
            "asset_id": "a1",
            "seq": 0,
            "timestamps": [T0] * 10_001,
            "channels": {"t": [1.0] * 10_001},
        }
    ).encode(),
    b"x" * (LIMIT + 1),
]


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_payloads_are_refused_with_a_reason(payload: bytes) -> None:
    with pytest.raises(Rejected) as caught:
        admit("forewarn/p1/a1/telemetry", payload, ROUTER, LIMIT)
    assert caught.value.reason in {"invalid", "oversized", "undecodable"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_anything_but_a_refusal(payload: bytes) -> None:
    with contextlib.suppress(Rejected):  # anything else fails the test
        admit("forewarn/p1/a1/telemetry", payload, ROUTER, LIMIT)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["kind", "site", "asset_id", "seq", "timestamps", "channels", "asset_type", "waveform"]), _json)
def test_a_valid_message_with_any_field_replaced_is_admitted_only_if_still_valid(field: str, value: Any) -> None:
    data = json.loads(encode(_telemetry()))
    data[field] = value
    payload = json.dumps(data, allow_nan=True).encode()
    try:
        message = admit("forewarn/p1/a1/telemetry", payload, ROUTER, LIMIT)
    except Rejected:
        return
    assert isinstance(message, Telemetry) and message.asset_id == "a1" and message.site == "p1"


# ---------------------------------------------------------------------------------------- inbox


def _delivery(size: int) -> Delivery:
    return Delivery("t", b"x" * size, mid=1, qos=1, arrived=0.0)


def test_the_inbox_is_bounded_by_bytes_and_wakes_the_loop() -> None:
    async def scenario() -> None:
        inbox = Inbox(max_bytes=1000)
        inbox.bind(asyncio.get_running_loop())
        assert await inbox.get(10, timeout=0.01) == []
        assert inbox.put(_delivery(600)) and not inbox.put(_delivery(600))
        assert inbox.put(_delivery(600), force=True)
        assert inbox.depth == (2, 1200)
        assert len(await inbox.get(10, timeout=0.01)) == 2
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: loop.run_in_executor(None, inbox.put, _delivery(10)))
        started = time.perf_counter()
        assert len(await inbox.get(10, timeout=5)) == 1
        assert time.perf_counter() - started < 2, "a put from another thread wakes the waiting loop"

    asyncio.run(scenario())


def test_a_full_inbox_holds_the_mqtt_thread_until_the_pipeline_drains() -> None:
    """A burst: the producer waits for room rather than losing a payload; a stalled pipeline still refuses, in time."""
    inbox = Inbox(max_bytes=1000, wait_s=5.0)
    assert inbox.put(_delivery(600))
    threading.Timer(0.2, inbox.drain, args=(10,)).start()
    started = time.perf_counter()
    assert inbox.put(_delivery(600)), "room made by the drain"
    waited = time.perf_counter() - started
    assert 0.1 < waited < 4, f"waited {waited:.2f} s"
    assert inbox.depth == (1, 600) and inbox.waits == 1 and inbox.peak_bytes == 600

    stalled = Inbox(max_bytes=1000, wait_s=0.3)
    assert stalled.put(_delivery(600))
    started = time.perf_counter()
    assert not stalled.put(_delivery(600)), "nobody drains: refused after the wait"
    assert 0.25 < time.perf_counter() - started < 3
    assert stalled.depth == (1, 600)

    closing = Inbox(max_bytes=1000, wait_s=30.0)
    assert closing.put(_delivery(600))
    threading.Timer(0.2, closing.close).start()
    started = time.perf_counter()
    assert closing.put(_delivery(600)), "shutdown releases the wait (the payload is never acked: redelivered)"
    assert time.perf_counter() - started < 5


def test_the_inbox_wait_must_leave_the_keepalive_alive() -> None:
    with pytest.raises(ValidationError, match="keepalive"):
        EdgeSettings(mqtt={"keepalive_s": 10}, edge={"inbox_wait_s": 6})
    assert EdgeSettings(mqtt={"keepalive_s": 10}, edge={"inbox_wait_s": 5}).edge.inbox_wait_s == 5


# ---------------------------------------------------------------------------------------- real Mosquitto


def _settings(url: str, unique: str, **edge: Any) -> EdgeSettings:
    return EdgeSettings(
        site=f"s{unique}",
        mqtt={"url": url, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        edge={"gateway_id": f"g{unique}", **edge},
    )


class Running:
    """An MqttLink on its own event loop thread, as the daemon runs it."""

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.inbox = Inbox(settings.edge.inbox_max_bytes)
        self.health = Health(
            settings.edge.gateway_id, settings.site, f"forewarn/gateways/{settings.edge.gateway_id}/status", 60, _vitals
        )
        self.link = MqttLink(settings, self.inbox, EdgeMetrics(), self.health.will(), self.health.birth)

    def __enter__(self) -> Running:
        self.link.start()
        assert self.link.wait_connected(10), "the link connects"
        time.sleep(0.3)  # the SUBACK
        return self

    def __exit__(self, *exc: object) -> None:
        self.link.stop(self.health.will())

    def collect(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        got: list[Delivery] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            batch = self.inbox.drain(1000)
            for d in batch:
                self.link.ack(d)
            got += batch
            if not batch:
                time.sleep(0.02)
        return got


def _vitals() -> Vitals:
    return Vitals(model_version=None, assets=0, windows_scored=0, outbox_depth=0, uplink=False)


def _publisher(url: str) -> mqtt.Client:
    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(host, int(port))
    client.loop_start()
    return client


@pytest.fixture
def forget_sessions(mqtt_url: str) -> Iterator[list[str]]:
    """Client ids whose persistent sessions the test leaves on the shared broker; removed afterwards."""
    ids: list[str] = []
    yield ids
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    for client_id in ids:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        c.connect(host, int(port))
        c.disconnect()


def test_good_and_bad_payloads_through_mosquitto(mqtt_url: str, unique: str, forget_sessions: list[str]) -> None:
    s = _settings(mqtt_url, unique)
    forget_sessions.append(s.client_id())
    pub = _publisher(mqtt_url)
    try:
        with Running(s) as running:
            base = f"forewarn/{s.site}"
            for payload in HOSTILE[:6]:
                pub.publish(f"{base}/a1/telemetry", payload, qos=1).wait_for_publish(5)
            pub.publish(f"{base}/a2/telemetry", encode(_telemetry(site=s.site, asset="a1")), qos=1).wait_for_publish(5)
            pub.publish(f"{base}/a1/telemetry", encode(_telemetry(site=s.site)), qos=1).wait_for_publish(5)
            got = running.collect(8)
            assert [d.rejected.reason for d in got[:-1] if d.rejected] == [
                "invalid",
                "invalid",
                "invalid",
                "invalid",
                "invalid",
                "invalid",
                "asset_mismatch",
            ]
            assert got[-1].message == _telemetry(site=s.site)
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_messages_published_while_the_gateway_is_away_arrive_when_it_returns(
    mqtt_url: str, unique: str, forget_sessions: list[str]
) -> None:
    s = _settings(mqtt_url, unique)
    forget_sessions.append(s.client_id())
    with Running(s):
        pass  # the broker now holds a persistent session with our subscriptions
    pub = _publisher(mqtt_url)
    try:
        for seq in range(20):
            pub.publish(f"forewarn/{s.site}/a1/telemetry", encode(_telemetry(seq, site=s.site)), qos=1).wait_for_publish(5)
    finally:
        pub.loop_stop()
        pub.disconnect()
    with Running(s) as running:
        got = running.collect(20)
    assert sorted(d.message.seq for d in got if isinstance(d.message, Telemetry)) == list(range(20))


def test_the_link_rides_out_a_broker_restart(private_mosquitto: Callable[..., PrivateMosquitto], unique: str) -> None:
    broker = private_mosquitto()
    s = _settings(broker.url, unique)
    with Running(s) as running:
        broker.stop()
        time.sleep(0.5)
        assert not running.link.connected
        broker.start()
        assert running.link.wait_connected(15), "reconnects with backoff"
        time.sleep(0.3)
        pub = _publisher(broker.url)
        try:
            pub.publish(f"forewarn/{s.site}/a1/telemetry", encode(_telemetry(site=s.site)), qos=1).wait_for_publish(5)
        finally:
            pub.loop_stop()
            pub.disconnect()
        assert len(running.collect(1)) == 1


_VANISHING = textwrap.dedent(
    """
    import sys, time
    from tests.edge_agent.test_ingest import Running, _settings
    with Running(_settings(sys.argv[1], sys.argv[2])):
        print("up", flush=True)
        time.sleep(60)
    """
)


def test_a_killed_gateway_is_announced_offline_by_its_last_will(mqtt_url: str, unique: str, forget_sessions: list[str]) -> None:
    s = _settings(mqtt_url, unique)
    forget_sessions.append(s.client_id())
    topic = f"forewarn/gateways/{s.edge.gateway_id}/status"
    child = subprocess.Popen(
        [sys.executable, "-c", _VANISHING, mqtt_url, unique], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2], text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        assert _retained(mqtt_url, topic).state == "online"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 10
        while _retained(mqtt_url, topic).state != "offline":
            assert time.monotonic() < deadline, "the broker publishes the will once it notices the dead connection"
            time.sleep(0.2)
    finally:
        child.kill()
        child.wait()
        pub = _publisher(mqtt_url)
        pub.publish(topic, b"", retain=True).wait_for_publish(5)  # clear the retained status
        pub.loop_stop()
        pub.disconnect()


def _retained(url: str, topic: str) -> GatewayStatus:
    host, port = url.removeprefix("mqtt://").split(":")
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append(bytes(m.payload))
    client.connect(host, int(port))
    client.subscribe(topic, qos=1)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    client.loop_stop()
    client.disconnect()
    assert got, f"no retained message on {topic}"
    return decode(got[0], GatewayStatus)


def test_losses_name_a_client_id_takeover() -> None:
    from edge_agent.ingest import ConnectionLosses

    now = [0.0]
    losses = ConnectionLosses("mqtt://b:1883", "forewarn-edge-gw1", clock=lambda: now[0])
    assert (
        losses.lost("Unspecified error") == "MQTT connection to mqtt://b:1883 lost (Unspecified error); reconnecting with backoff"
    )
    now[0] = 10.0
    losses.lost("Unspecified error")
    now[0] = 20.0
    flapping = losses.lost("Unspecified error")
    assert "lost 3 times within a minute" in flapping and "client id 'forewarn-edge-gw1'" in flapping
    now[0] = 200.0
    assert "probably" not in losses.lost("Unspecified error"), "three losses spread over minutes are an unstable network"
    taken = losses.lost(ReasonCode(PacketTypes.DISCONNECT, identifier=142))
    assert taken.startswith("MQTT session taken over: another client connected") and "forewarn-edge-gw1" in taken


@pytest.mark.integration
def test_a_second_client_with_the_gateways_client_id_is_logged_as_a_takeover(
    mqtt_url: str, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(mqtt_url, unique)
    caplog.set_level(logging.WARNING, logger="edge_agent.ingest")
    with Running(settings), Running(settings) as second:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            "taken over" in r.message or "times within a minute" in r.message for r in caplog.records
        ):
            time.sleep(0.1)
        second.link.client.disconnect()
    messages = [r.message for r in caplog.records]
    expected = "probably using this gateway's client id"  # MQTT 3.1.1 gives no reason: the flapping tells
    assert any(expected in m and settings.client_id() in m for m in messages), messages
    forget_session(settings.mqtt, settings.client_id())
    clear_retained(settings.mqtt, f"forewarn/gateways/{settings.edge.gateway_id}/status")
