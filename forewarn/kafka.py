"""Kafka helpers every Kafka client of Forewarn shares (the gateway's publisher, the stream worker, the demo).

aiokafka is imported inside the functions: it is a base dependency, but a process that
never talks to Kafka (``forewarn edge score``, the simulators) need not load it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from forewarn.errors import ServiceUnavailable
from forewarn.settings import KafkaSettings


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
    except KafkaError as exc:
        raise ServiceUnavailable(f"cannot reach Kafka at {kafka.bootstrap}: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, count, kafka.replication_factor) for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another process: fine
                await admin.create_topics(missing)
    finally:
        await admin.close()
