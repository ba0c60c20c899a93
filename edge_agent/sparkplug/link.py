"""The Sparkplug B MQTT connection: its own client beside the gateway's, because Sparkplug needs its own will.

An MQTT connection has one will. The gateway's connection already uses it for the
retained ``offline`` status, and Sparkplug wants the node's ``NDEATH`` there, on a clean
session (the Sparkplug rule; the gateway's own connection keeps a persistent session). So
this link connects as ``<client id>-spb`` with the same broker, credentials and TLS:

- before each connect the will is the ``NDEATH`` of the coming session's ``bdSeq``;
- on connect it subscribes (its node's ``NCMD``; the ingest groups' node and device
  messages) and publishes the births; a clean stop publishes ``NDEATH`` itself (the broker
  sends no will after a DISCONNECT);
- messages are handled on the paho thread, in arrival order (Sparkplug sequence numbers
  depend on it): an ``NCMD`` may rebirth the node; device data becomes ``Telemetry`` put in
  the daemon's ``Inbox`` like MQTT telemetry, and a refused payload goes there as a
  ``Rejected`` delivery (counted by reason and dead-lettered by the daemon). Sparkplug data
  is QoS 0, so nothing waits for an acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import EdgeSettings
from edge_agent.errors import Rejected
from edge_agent.health import Vitals
from edge_agent.ingest import Delivery, Inbox
from edge_agent.metrics import EdgeMetrics
from edge_agent.sparkplug.codec import SpTopic, parse_topic
from edge_agent.sparkplug.host import SparkplugHost
from edge_agent.sparkplug.node import SparkplugNode
from forewarn.contracts import FaultPrediction
from forewarn.mqtt import apply_connection_settings

log = logging.getLogger(__name__)


class SparkplugLink:
    """One Sparkplug B connection: the edge node (if ``publish``) and the host ingest (if ``ingest_groups``)."""

    def __init__(self, settings: EdgeSettings, inbox: Inbox, metrics: EdgeMetrics, vitals: Callable[[], Vitals]) -> None:
        sp, edge = settings.sparkplug, settings.edge
        self.settings = settings
        self.inbox = inbox
        self.limit = edge.max_payload_bytes
        self.node_id = sp.edge_node_id or edge.gateway_id
        self.node = SparkplugNode(sp.namespace, sp.group_id, self.node_id, self._send, vitals) if sp.publish else None
        self.host = (
            SparkplugHost(
                settings.site, sp.channels, self._request, limit=self.limit,
                ignore_node=(sp.group_id, self.node_id), rebirth_interval_s=sp.rebirth_interval_s,
            )
            if sp.ingest_groups else None
        )  # fmt: skip
        self._connected = threading.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._v5 = edge.mqtt_protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{settings.client_id()}-spb",
            clean_session=None if self._v5 else True,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        metrics.watch(self._levels)

    # ------------------------------------------------------------------ lifecycle (event loop)

    def start(self) -> None:
        mq = self.settings.mqtt
        apply_connection_settings(self.client, mq)
        self._set_will()
        if self._v5:
            self.client.connect_async(mq.host, mq.port, keepalive=mq.keepalive_s, clean_start=True)
        else:
            self.client.connect_async(mq.host, mq.port, keepalive=mq.keepalive_s)
        self.client.loop_start()
        if self.node is not None:
            self._task = asyncio.get_running_loop().create_task(self._health(), name="sparkplug-health")

    async def stop(self, timeout: float = 2.0) -> None:
        """Say NDEATH (a clean DISCONNECT sends no will), then disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._close, timeout)

    def _close(self, timeout: float) -> None:
        self._stopping = True
        if self.node is not None and self._connected.is_set():
            topic, payload = self.node.will()
            info = self.client.publish(topic, payload, qos=1)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def predictions(self, predictions: list[FaultPrediction]) -> None:
        if self.node is not None:
            self.node.predictions(predictions)

    async def _health(self) -> None:
        assert self.node is not None
        while True:
            await asyncio.sleep(self.settings.edge.status_interval_s)
            self.node.health()

    # ------------------------------------------------------------------ paho thread

    def _set_will(self) -> None:
        if self.node is not None:
            topic, payload = self.node.will()
            self.client.will_set(topic, payload, qos=1, retain=False)

    def _subscriptions(self) -> list[tuple[str, int]]:
        sp = self.settings.sparkplug
        out: list[tuple[str, int]] = []
        if self.node is not None:
            out.append((self.node.topic("NCMD"), 0))
        for group in sp.ingest_groups:
            out += [(f"{sp.namespace}/{group}/{kind}/+", 1 if kind == "NDEATH" else 0) for kind in ("NBIRTH", "NDEATH", "NDATA")]
            out += [(f"{sp.namespace}/{group}/{kind}/+/+", 0) for kind in ("DBIRTH", "DDEATH", "DDATA")]
        return out

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("Sparkplug: MQTT broker %s refused the connection: %s", self.settings.mqtt.url, reason_code)
            return
        client.subscribe(self._subscriptions())
        self._connected.set()
        if self.node is not None:
            self.node.birth()
        log.info("Sparkplug connected to %s as edge node %s/%s (bdSeq %s)", self.settings.mqtt.url,
                 self.settings.sparkplug.group_id, self.node_id, self.node.bd_seq if self.node else "-")  # fmt: skip

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connected.is_set() and not self._stopping:
            log.warning("Sparkplug connection to %s lost (%s); reconnecting", self.settings.mqtt.url, reason_code)
        self._connected.clear()
        if self.node is not None:
            self.node.session_ended()
            self._set_will()  # the next session's NDEATH, with the next bdSeq

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        arrived = time.perf_counter()
        payload = bytes(message.payload)
        topic = parse_topic(message.topic, self.settings.sparkplug.namespace)
        deliveries: list[Delivery] = []
        try:
            if topic is None:
                raise Rejected("sparkplug_bad_topic", f"{message.topic!r} is not a Sparkplug B node or device topic")
            if self.node is not None and topic.type == "NCMD" and topic.node == self.node_id:
                self.node.command(payload, self.limit)
            elif self.host is not None:
                batches = self.host.admit(topic, payload)
                deliveries = [Delivery(message.topic, payload, message.mid, 0, arrived, message=t) for t in batches]
        except Rejected as exc:
            deliveries = [Delivery(message.topic, payload[:8192], message.mid, 0, arrived, rejected=exc)]
        except Exception as exc:  # a hostile payload must never reach the network thread as an exception
            log.exception("Sparkplug: failed on a message on %s", message.topic)
            failed = Rejected("sparkplug_error", repr(exc))
            deliveries = [Delivery(message.topic, payload[:8192], message.mid, 0, arrived, rejected=failed)]
        for delivery in deliveries:
            self._enqueue(delivery)

    def _enqueue(self, delivery: Delivery) -> None:
        """Into the inbox, waiting for room; a payload that found none is refused there (counted, dead-lettered)."""
        if not self.inbox.put(delivery):
            size = len(delivery.payload)
            full = Rejected("inbox_full", f"{size:,} bytes while over {self.inbox.max_bytes:,} bytes wait")
            self.inbox.put(Delivery(delivery.topic, delivery.payload[:8192], 0, 0, delivery.arrived, rejected=full), force=True)

    def _send(self, topic: str, payload: bytes, qos: int) -> bool:
        return self.client.publish(topic, payload, qos=qos).rc == mqtt.MQTT_ERR_SUCCESS

    def _request(self, topic: SpTopic, payload: bytes) -> None:
        log.info("Sparkplug: asking edge node %s/%s for a rebirth", topic.group, topic.node)
        self.client.publish(str(topic), payload, qos=0)

    def _levels(self) -> list[tuple[str, str, float]]:
        levels = [("sparkplug_connected", "1 while the Sparkplug B connection is up", 1.0 if self._connected.is_set() else 0.0)]
        if self.host is not None:
            levels += self.host.levels()
        if self.node is not None:
            levels += self.node.levels()
        return levels
