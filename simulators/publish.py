"""Live publishing to MQTT: one paho client, one network loop, paced by source time.

Messages come from a ``Plant`` (or a dataset directory, for replay) already in source-time
order. ``Pacer`` holds each one back until its source time comes due at the chosen speed
(``--speed 60`` plays a simulated hour per real minute; 0 publishes as fast as the broker
takes it). ``Publisher`` wraps paho-mqtt 2.x: ``loop_start`` runs its only network loop,
the caller's thread publishes; the number of messages handed to paho and not yet written
is bounded (``max_pending``), so a slow broker slows the simulation instead of filling
memory or overflowing Mosquitto's per-client queue. When the broker goes away paho
reconnects with backoff; QoS 0 messages published meanwhile are dropped and counted, QoS
1/2 messages wait in the client (up to ``max_pending``) and go out after the reconnect.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from forewarn.contracts import LogRecord, Telemetry, encode
from forewarn.mqtt import apply_connection_settings
from simulators.config import SimulatorSettings
from simulators.errors import PublishError

log = logging.getLogger(__name__)


@dataclass
class PublishStats:
    """Counters of a publishing run (nothing is dropped without being counted here)."""

    published: int = 0
    dropped: int = 0
    samples: int = 0
    bytes: int = 0
    connects: int = 0
    disconnects: int = 0
    source_s: float = 0.0
    """Source time covered so far."""


class Pacer:
    """Sleeps until a source timestamp is due: wall = wall0 + (source - source0) / speed."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._wall0: float | None = None
        self._source0 = 0.0

    def wait(self, source_ts: float, stop: threading.Event | None = None) -> None:
        if self.speed <= 0:
            return
        if self._wall0 is None:
            self._wall0, self._source0 = time.monotonic(), source_ts
            return
        delay = self._wall0 + (source_ts - self._source0) / self.speed - time.monotonic()
        if delay > 0:
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


def _end_time(message: Telemetry | LogRecord) -> float:
    """When a message is complete at its source: a batch is sent once its last sample is taken."""
    return message.timestamps[-1] if isinstance(message, Telemetry) else message.ts


class Publisher:
    """A connected MQTT client for Forewarn input messages. Use as a context manager, or start()/stop()."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.stats = PublishStats()
        cfg, sim = settings.mqtt, settings.simulator
        client_id = f"{sim.client_id}-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        apply_connection_settings(self.client, cfg)
        self.client.max_inflight_messages_set(max(20, min(sim.max_pending, 1000)))
        self.client.max_queued_messages_set(sim.max_pending)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.connected = threading.Event()
        self._handed = 0  # written by the publishing thread only
        self._done = 0  # written by the network thread only
        self._topics = settings.topics

    # paho callbacks run on the network thread: they only count and flag.
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        self.stats.connects += 1
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()
        self.stats.disconnects += 1
        if self.settings.simulator.qos == 0:
            self._done = self._handed  # QoS 0 messages not yet written are gone with the connection

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._done += 1

    @property
    def pending(self) -> int:
        return self._handed - self._done

    def start(self) -> Publisher:
        """Connect (waiting up to connect_timeout_s for the broker) and start the network loop."""
        cfg = self.settings.mqtt
        try:
            self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        except (OSError, ValueError) as exc:
            raise PublishError(f"cannot connect to MQTT broker {cfg.url}: {exc}") from exc
        self.client.loop_start()
        if not self.connected.wait(self.settings.simulator.connect_timeout_s):
            self.client.loop_stop()
            raise PublishError(
                f"MQTT broker {cfg.url} did not accept a connection within {self.settings.simulator.connect_timeout_s:.0f} s"
            )
        log.info("connected to %s", cfg.url)
        return self

    def stop(self, flush_timeout_s: float = 10.0) -> None:
        """Wait (bounded) for handed messages to be written, then disconnect."""
        deadline = time.monotonic() + flush_timeout_s
        while self.pending > 0 and self.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def topic(self, message: Telemetry | LogRecord) -> str:
        template = self._topics.mqtt_telemetry if isinstance(message, Telemetry) else self._topics.mqtt_log
        return template.format(site=message.site, asset=message.asset_id)

    def publish(self, message: Telemetry | LogRecord) -> bool:
        """Hand one message to the client; False (and counted) if it had to be dropped."""
        qos, limit = self.settings.simulator.qos, self.settings.simulator.max_pending
        while self.pending >= limit and self.connected.is_set():
            time.sleep(0.0005)  # backpressure: the broker is slower than the simulation
        if (qos == 0 and not self.connected.is_set()) or self.pending >= limit:
            self.stats.dropped += 1
            return False
        payload = encode(message)
        info = self.client.publish(self.topic(message), payload, qos=qos)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN) or (
            qos == 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
        ):
            self.stats.dropped += 1
            return False
        self._handed += 1
        self.stats.published += 1
        self.stats.bytes += len(payload)
        if isinstance(message, Telemetry):
            self.stats.samples += len(message.timestamps) * len(message.channels)
        return True


def publish_stream(
    messages: Iterable[Telemetry | LogRecord],
    publisher: Publisher,
    speed: float,
    stop: threading.Event | None = None,
    stats_every_s: float = 10.0,
) -> PublishStats:
    """Publish time-ordered messages at ``speed`` until they end or ``stop`` is set; return the counters."""
    pacer = Pacer(speed)
    stats = publisher.stats
    first: float | None = None
    due = float("-inf")
    next_report = time.monotonic() + stats_every_s
    for message in messages:
        if stop is not None and stop.is_set():
            break
        due = max(due, _end_time(message))
        first = due if first is None else first
        pacer.wait(due, stop)
        publisher.publish(message)
        stats.source_s = due - first
        if time.monotonic() >= next_report:
            next_report += stats_every_s
            log.info(
                "published %d messages (%d samples, %d dropped, %d pending), %.0f s of source time",
                stats.published,
                stats.samples,
                stats.dropped,
                publisher.pending,
                stats.source_s,
            )
    return stats
