"""What every Forewarn MQTT client shares: credentials, TLS and reconnect back-off from MqttSettings.

The simulator, the gateway and the stream worker each own their client (their sessions,
callbacks and queues differ); how a client authenticates and secures its connection is
one decision, made here.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from forewarn.settings import MqttSettings


def apply_connection_settings(client: mqtt.Client, settings: MqttSettings) -> None:
    """Set username/password, TLS (mqtts:// URLs; certificates verified) and the reconnect back-off."""
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    client.reconnect_delay_set(
        min_delay=max(1, round(settings.reconnect_min_s)), max_delay=max(1, round(settings.reconnect_max_s))
    )
