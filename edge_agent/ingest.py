"""MQTT ingest: one paho-mqtt connection that receives the site's telemetry and logs.

The paho network thread runs the callbacks, and they only decode and enqueue (they never
block): ``on_message`` turns a payload into a typed record (or a ``Rejected`` reason) and
puts it in the ``Inbox``; the daemon's pipeline drains the inbox on the event loop.

Reliability comes from the MQTT session, not from our memory:
- a fixed client id and ``clean_session=False`` (MQTT 5: ``clean_start=False`` with a
  session expiry) make the broker keep our subscriptions and queue QoS 1 messages while
  the gateway is away;
- ``manual_ack``: a message is acknowledged only after the pipeline has folded it into
  its window and stored whatever predictions it completed; a burst is held back at the
  broker by a bounded ``Inbox`` whose ``put`` waits for room (the one wait a callback
  makes: it is what pushes back through TCP to the broker);
- subscribing in ``on_connect`` renews the subscriptions after every reconnect; paho's
  own loop reconnects with exponential backoff (``reconnect_min_s`` .. ``reconnect_max_s``).

The same connection publishes predictions and the retained gateway status, and carries
the last-will that announces the gateway offline if it vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import EdgeSettings
from edge_agent.errors import Rejected
from edge_agent.metrics import EdgeMetrics
from forewarn.contracts import LogRecord, Telemetry, decode_input
from forewarn.errors import ContractError
from forewarn.mqtt import apply_connection_settings
from forewarn.settings import TopicSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One inbound MQTT message after decoding: a typed record, or the reason it was refused."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    arrived: float
    """time.perf_counter() when the payload reached the callback (for the added-latency histogram)."""
    message: Telemetry | LogRecord | None = None
    rejected: Rejected | None = None


class TopicRouter:
    """Reads (kind, site, asset) out of a topic built from the configured templates."""

    def __init__(self, topics: TopicSettings) -> None:
        self._templates = {"telemetry": topics.mqtt_telemetry.split("/"), "log": topics.mqtt_log.split("/")}

    def parse(self, topic: str) -> tuple[str, str, str] | None:
        levels = topic.split("/")
        for kind, template in self._templates.items():
            if len(levels) != len(template):
                continue
            found: dict[str, str] = {}
            for level, pattern in zip(levels, template, strict=True):
                if pattern in ("{site}", "{asset}"):
                    found[pattern] = level
                elif pattern != level:
                    break
            else:
                return kind, found["{site}"], found["{asset}"]
        return None


def admit(topic: str, payload: bytes, router: TopicRouter, limit: int) -> Telemetry | LogRecord:
    """Turn one payload into a typed record, or raise ``Rejected`` with a stable reason label.

    Checks, in order: the topic is one of ours, the size, the contract, and that the
    payload speaks for the asset (and kind) its topic names: a publisher must not be
    able to feed one asset's window from another asset's topic.
    """
    route = router.parse(topic)
    if route is None:
        raise Rejected("unknown_topic", f"topic {topic!r} matches no telemetry or log template")
    if len(payload) > limit:
        raise Rejected("oversized", f"payload is {len(payload):,} bytes, over the {limit:,} byte limit")
    try:
        message = decode_input(payload, limit=limit)
    except ContractError as exc:
        raise Rejected("invalid", str(exc)) from exc
    except Exception as exc:  # a hostile payload must never reach the network thread as an exception
        raise Rejected("undecodable", f"{type(exc).__name__}: {exc}") from exc
    kind, site, asset = route
    if message.kind != kind:
        raise Rejected("wrong_topic", f"a {message.kind} message on {kind} topic {topic!r}")
    if message.site != site or message.asset_id != asset:
        raise Rejected(
            "asset_mismatch", f"payload names {message.site}/{message.asset_id} but arrived on {topic!r} ({site}/{asset})"
        )
    return message


class Inbox:
    """Thread-safe, byte-bounded hand-over from the paho thread to the event loop.

    A full inbox makes ``put`` wait (up to ``wait_s``) for the pipeline to drain: while the
    paho network thread waits it reads nothing from its socket, so a burst backs up into TCP
    and the broker's session queue instead of our RAM. The broker's in-flight limit cannot do
    this alone: Mosquitto 2.0 was measured holding 158 QoS 1 messages unacknowledged at a
    client with ``max_inflight_messages`` 20. Only a pipeline stalled past ``wait_s`` gets
    payloads refused (``inbox_full``), and the wait stays well under the keepalive.
    """

    def __init__(self, max_bytes: int, wait_s: float = 0.0) -> None:
        self.max_bytes = max_bytes
        self.wait_s = wait_s
        self._items: deque[Delivery] = deque()
        self._bytes = 0
        self.peak_bytes = 0
        """The most payload bytes ever waiting: how close a burst came to ``max_bytes``."""
        self.waits = 0
        """Payloads that had to wait for room: how often backpressure reached the broker."""
        self._closed = False
        self._room = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake this loop when something arrives (call from the loop's thread before start)."""
        self._loop = loop
        self._ready = asyncio.Event()

    def close(self) -> None:
        """The pipeline stops draining: a waiting ``put`` returns at once (what it holds is never acked)."""
        with self._room:
            self._closed = True
            self._room.notify_all()

    def put(self, delivery: Delivery, force: bool = False) -> bool:
        """Enqueue, waiting up to ``wait_s`` for room; False (nothing enqueued) if the inbox stayed full."""
        size = len(delivery.payload)
        deadline = time.monotonic() + self.wait_s
        with self._room:
            if not force and self._over(size):
                self.waits += 1
                while self._over(size) and not self._closed and (left := deadline - time.monotonic()) > 0:
                    self._room.wait(left)
                if self._over(size) and not self._closed:
                    return False
            was_empty = not self._items
            self._items.append(delivery)
            self._bytes += size
            self.peak_bytes = max(self.peak_bytes, self._bytes)
        if was_empty and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown: nobody waits any more
                self._loop.call_soon_threadsafe(self._ready.set)
        return True

    def _over(self, size: int) -> bool:
        """Would ``size`` more bytes overflow? (One payload is always let into an empty inbox.)"""
        return bool(self._items) and self._bytes + size > self.max_bytes

    def drain(self, max_items: int) -> list[Delivery]:
        with self._room:
            count = min(max_items, len(self._items))
            batch = [self._items.popleft() for _ in range(count)]
            self._bytes -= sum(len(d.payload) for d in batch)
            if batch:
                self._room.notify_all()
        return batch

    async def get(self, max_items: int, timeout: float) -> list[Delivery]:
        """Up to max_items deliveries; waits up to timeout for the first (returns [] on timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = self.drain(max_items)
            remaining = deadline - loop.time()
            if batch or remaining <= 0:
                return batch
            self._ready.clear()  # a wake-up scheduled before this clear may still arrive: the loop absorbs it
            if not self.depth[0]:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), remaining)

    @property
    def depth(self) -> tuple[int, int]:
        """(messages, payload bytes) waiting."""
        with self._room:
            return len(self._items), self._bytes

    def levels(self) -> list[tuple[str, str, float]]:
        """The inbox's levels for the metrics endpoint."""
        messages, size = self.depth
        return [
            ("inbox_messages", "inbound messages waiting for the pipeline", messages),
            ("inbox_bytes", "payload bytes waiting for the pipeline", size),
            ("inbox_peak_bytes", "the most payload bytes ever waiting (inbox_max_bytes refuses beyond)", self.peak_bytes),
            ("inbox_waits_total", "inbound payloads that waited for room in a full inbox (backpressure)", self.waits),
        ]


class ConnectionLosses:
    """Words for a lost MQTT connection, naming a client-id takeover when that is what it is.

    A broker closes the older connection when another client connects with the same client
    id. MQTT 5 says so (reason code 142, "Session taken over"); MQTT 3.1.1 just closes the
    socket, so connections lost again and again within a minute are reported as a likely
    takeover: two gateways (or two demos) sharing one ``edge.client_id`` knock each other off.
    """

    TAKEN_OVER = 142
    FLAPPING = 3
    """Losses within a minute that point at another client with our id."""

    def __init__(self, url: str, client_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.client_id = client_id
        self.clock = clock
        self._recent: deque[float] = deque(maxlen=self.FLAPPING)

    def lost(self, reason: ReasonCode | int | str) -> str:
        now = self.clock()
        self._recent.append(now)
        code = getattr(reason, "value", None)
        if code == self.TAKEN_OVER:
            return (
                f"MQTT session taken over: another client connected to {self.url} with this gateway's client id "
                f"{self.client_id!r}; give each gateway its own edge.gateway_id / edge.client_id (reconnecting)"
            )
        flapping = len(self._recent) == self.FLAPPING and now - self._recent[0] <= 60.0
        if flapping:
            return (
                f"MQTT connection to {self.url} lost {self.FLAPPING} times within a minute ({reason}): another client "
                f"is probably using this gateway's client id {self.client_id!r} (the broker drops the older connection "
                "of a client id); give each gateway its own edge.gateway_id / edge.client_id (reconnecting)"
            )
        return f"MQTT connection to {self.url} lost ({reason}); reconnecting with backoff"


class MqttLink:
    """The gateway's one MQTT connection: subscriptions, manual acks, local publishing, last-will."""

    def __init__(
        self,
        settings: EdgeSettings,
        inbox: Inbox,
        metrics: EdgeMetrics,
        will: tuple[str, bytes],
        birth: Callable[[], bytes],
    ) -> None:
        self.settings = settings
        self.inbox = inbox
        self.metrics = metrics
        self.router = TopicRouter(settings.topics)
        self._will = will
        self._birth = birth
        self._connected = threading.Event()
        self._stopping = False
        self._losses = ConnectionLosses(settings.mqtt.url, settings.client_id())
        edge = settings.edge
        self._v5 = edge.mqtt_protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id(),
            clean_session=None if self._v5 else False,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            manual_ack=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; the gateway runs (and scores nothing) until the broker answers."""
        mq, client = self.settings.mqtt, self.client
        apply_connection_settings(client, mq)
        client.will_set(self._will[0], self._will[1], qos=1, retain=True)
        client.max_queued_messages_set(self.settings.edge.mqtt_queue_max)
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.settings.edge.session_expiry_s
            props.ReceiveMaximum = 100
            client.connect_async(mq.host, mq.port, keepalive=mq.keepalive_s, clean_start=False, properties=props)
        else:
            client.connect_async(mq.host, mq.port, keepalive=mq.keepalive_s)
        client.loop_start()

    def stop(self, farewell: tuple[str, bytes] | None = None, timeout: float = 2.0) -> None:
        """Publish a last retained message (the offline status) if connected, then disconnect cleanly.

        Unacknowledged messages stay with the broker's session and come back on the next start.
        """
        if farewell is not None and self._connected.is_set():
            info = self.client.publish(farewell[0], farewell[1], qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # lost the connection meanwhile: the will covers it
                info.wait_for_publish(timeout)
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()
        self.metrics.mqtt_connected.set(0)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ------------------------------------------------------------------ used by the pipeline

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge a QoS 1 message once its effects are stored (a no-op for QoS 0)."""
        if delivery.qos > 0:
            self.client.ack(delivery.mid, delivery.qos)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> bool:
        """Queue a publish; False (counted) when the broker is away and the local queue is full."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        queued = info.rc == mqtt.MQTT_ERR_NO_CONN and qos > 0  # held by paho until the broker is back
        if info.rc != mqtt.MQTT_ERR_SUCCESS and not queued:
            self.metrics.mqtt_dropped.inc()
            return False
        return True

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.settings.mqtt.url, reason_code)
            return
        # Subscribing here means a reconnect renews the subscriptions (a persistent session keeps them too).
        topics, qos, site = self.settings.topics, int(self.settings.edge.subscribe_qos), self.settings.site
        filters: list[tuple[str, int]] = [
            (topics.subscription(topics.mqtt_telemetry, site), qos),
            (topics.subscription(topics.mqtt_log, site), qos),
        ]
        client.subscribe(filters)
        client.publish(self._will[0], self._birth(), qos=1, retain=True)
        self._connected.set()
        self.metrics.mqtt_connected.set(1)
        log.info("MQTT connected to %s (session present: %s)", self.settings.mqtt.url, flags.session_present)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connected.is_set() and not self._stopping:
            log.warning("%s", self._losses.lost(reason_code))
        self._connected.clear()
        self.metrics.mqtt_connected.set(0)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        arrived = time.perf_counter()
        payload = bytes(message.payload)
        try:
            record = admit(message.topic, payload, self.router, self.settings.edge.max_payload_bytes)
            delivery = Delivery(message.topic, payload, message.mid, message.qos, arrived, message=record)
        except Rejected as exc:
            delivery = Delivery(message.topic, payload, message.mid, message.qos, arrived, rejected=exc)
        if not self.inbox.put(delivery):
            full = Rejected("inbox_full", f"{len(payload):,} bytes while over {self.inbox.max_bytes:,} bytes wait")
            # Always enqueued (and acked later): a refusal keeps only the 8 KiB its dead letter carries.
            refused = Delivery(message.topic, payload[:8192], message.mid, message.qos, arrived, rejected=full)
            self.inbox.put(refused, force=True)
