"""Kafka helpers every Kafka client of Forewarn shares (the gateway's publisher, the stream worker, the demo).

Connection settings (bootstrap, TLS, SASL) come from one place, ``KafkaSettings.client_options``;
this module adds what every client does with them: create the topics, and turn a failed
connection into one sentence an operator can act on.

aiokafka is imported inside the functions: it is a base dependency, but a process that
never talks to Kafka (``forewarn edge score``, the simulators) need not load it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from forewarn.errors import ServiceUnavailable
from forewarn.settings import KafkaSettings

log = logging.getLogger(__name__)

CONNECT_FAILURES: tuple[type[BaseException], ...] = (OSError, TimeoutError, KeyError, ValueError)
"""Besides ``KafkaError``: what aiokafka's ``start()`` raises when a broker refuses us.

A broker that rejects a SCRAM login answers ``e=...`` where aiokafka expects ``v=...``:
aiokafka then raises ``KeyError('v')`` (or ``ValueError`` for a bad server signature)
rather than a Kafka error. Catch these too, or a wrong password crashes the caller.
"""


def warn_if_in_clear(kafka: KafkaSettings) -> None:
    """Say so when a password crosses the network without TLS (SASL_PLAINTEXT with PLAIN sends it as is).

    Allowed (a broker on localhost, a lab), but a plant should use SASL_SSL: called once per process.
    """
    if kafka.security_protocol == "SASL_PLAINTEXT":
        log.warning(
            "Kafka user %r logs in to %s with SASL_PLAINTEXT: no TLS, %s; use SASL_SSL",
            kafka.sasl_username,
            kafka.bootstrap,
            "the password crosses the network in clear" if kafka.sasl_mechanism == "PLAIN" else "records travel in clear",
        )
    elif not kafka.tls and (kafka.ca_file or kafka.cert_file):
        log.warning("kafka.ca_file / kafka.cert_file are set but kafka.security_protocol is %s: TLS is not used",
                    kafka.security_protocol)  # fmt: skip


def connect_failure(kafka: KafkaSettings, exc: BaseException) -> str:
    """Why a client could not start against ``kafka``, in one line that names the setting to check.

    Never includes the password: only the mechanism, the user and the files.
    """
    detail = str(exc) or type(exc).__name__
    where = f"Kafka at {kafka.bootstrap} ({kafka.security_protocol}"
    where += f", SASL {kafka.sasl_mechanism} as {kafka.sasl_username!r})" if kafka.sasl_mechanism else ")"
    if isinstance(exc, KeyError | ValueError) or "SaslAuthenticat" in detail:
        return f"{where} refused the login: wrong password or unknown user (check kafka.sasl_username and the password)"
    if "UnsupportedSaslMechanism" in detail or "IllegalSaslState" in detail:
        return f"{where} does not offer SASL mechanism {kafka.sasl_mechanism} (check kafka.sasl_mechanism)"
    hint = (
        "the broker closed the connection or the TLS handshake failed: check kafka.security_protocol "
        "(a broker that requires TLS or SASL drops clients without)"
        + (", kafka.sasl_mechanism (one the broker offers)" if kafka.sasl_mechanism else "")
        + ", kafka.ca_file and the broker's certificate"
    )
    return f"cannot reach {where}: {detail}; {hint}"


async def ensure_topics(kafka: KafkaSettings, topics: Iterable[str], partitions: int | None = None) -> None:
    """Create the topics that do not exist yet, with the app's partition count.

    Faust refuses a table whose changelog's partition count differs from its source topic,
    and brokers that auto-create topics pick their own count: create them first, explicitly.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    count = partitions or kafka.partitions
    admin = AIOKafkaAdminClient(**kafka.client_options())
    try:
        await admin.start()
    except (KafkaError, *CONNECT_FAILURES) as exc:
        with contextlib.suppress(Exception):
            await admin.close()
        raise ServiceUnavailable(connect_failure(kafka, exc)) from exc
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, count, kafka.replication_factor) for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another process: fine
                await admin.create_topics(missing)
    finally:
        await admin.close()
