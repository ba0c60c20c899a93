"""Alert changes to MQTT, for SCADA/HMI and other subscribers: ``forewarn/alerts/<site>/<asset>``.

Published QoS 1 and **retained**: a subscriber that connects later immediately gets the
latest alert change of each asset (resolved ones included, so a stale "open" never
lingers on the broker). The topic is per asset, as the contract fixes, so the retained
message is the asset's latest change of any fault; the full list of open alerts is the
REST API's job. paho runs its own network thread and reconnects by itself; publishing
only enqueues, so a broker outage never blocks the worker (paho keeps QoS 1 messages
queued until it reconnects).
"""

from __future__ import annotations

import logging
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.contracts import Alert, encode
from forewarn.mqtt import apply_connection_settings
from forewarn.settings import MqttSettings, TopicSettings

log = logging.getLogger(__name__)


class MqttAlertPublisher:
    """start(), publish(alert), stop(); never raises on a broker outage."""

    def __init__(self, settings: MqttSettings, topics: TopicSettings, client_id: str | None = None) -> None:
        self.settings = settings
        self.topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"forewarn-stream-{uuid.uuid4().hex[:8]}")
        self.client.max_queued_messages_set(100_000)
        apply_connection_settings(self.client, settings)
        self.client.on_connect = self._on_connect
        self.published = 0

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        log.info("alert publisher connected to MQTT %s (%s)", self.settings.url, reason)

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        self.client.loop_start()

    def topic(self, alert: Alert) -> str:
        return self.topics.mqtt_alert.format(site=alert.site, asset=alert.asset_id, gateway=alert.gateway_id or "")

    def publish(self, alert: Alert) -> None:
        self.client.publish(self.topic(alert), encode(alert), qos=1, retain=True)
        self.published += 1

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
