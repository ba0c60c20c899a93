"""What every Forewarn MQTT client shares: credentials, TLS and reconnect back-off from MqttSettings.

The simulator, the gateway and the stream worker each own their client (their sessions,
callbacks and queues differ); how a client authenticates and secures its connection is
one decision, made here:

- ``mqtts://`` URLs use TLS 1.2 or newer; the broker's certificate is verified against
  ``ca_file`` (else the system's CAs) and its name against the URL's host;
- ``cert_file`` + ``key_file`` present a client certificate (for brokers that require one);
- ``username`` + ``password`` authenticate; the password never reaches a log line.
"""

from __future__ import annotations

import logging
import ssl

import paho.mqtt.client as mqtt

from forewarn.errors import ConfigError
from forewarn.settings import MqttSettings

log = logging.getLogger(__name__)


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The TLS context of an ``mqtts://`` connection: verified server, optional client certificate.

    Raises ConfigError naming the file when a CA, certificate or key cannot be loaded.
    """
    try:
        context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if settings.cert_file is not None:
            context.load_cert_chain(str(settings.cert_file), str(settings.key_file) if settings.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(str(f) for f in (settings.ca_file, settings.cert_file, settings.key_file) if f is not None)
        raise ConfigError(f"cannot load the MQTT TLS files ({files or 'system CAs'}): {exc}") from exc
    return context


def apply_connection_settings(client: mqtt.Client, settings: MqttSettings) -> None:
    """Set username/password, TLS (mqtts:// URLs; certificates verified) and the reconnect back-off."""
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
        if not settings.tls:
            log.warning("MQTT user %r authenticates to %s without TLS: the password crosses the network in clear",
                        settings.username, settings.url)  # fmt: skip
    if settings.tls:
        client.tls_set_context(tls_context(settings))
    elif settings.ca_file or settings.cert_file:
        log.warning("mqtt.ca_file / mqtt.cert_file are set but %s is not mqtts://: TLS is not used", settings.url)
    client.reconnect_delay_set(
        min_delay=max(1, round(settings.reconnect_min_s)), max_delay=max(1, round(settings.reconnect_max_s))
    )
