"""The topic keeper: re-creates the worker's topics when the broker lost them, so the worker resumes on its own.

The worker creates its topics (with the app's partition count) before Faust starts. A
broker that comes back empty (tansu keeps everything in memory; a Kafka cluster rebuilt
or a topic deleted by mistake) would leave it committing offsets to topics that no longer
exist, or let a producer auto-create them with the broker's partition count, which Faust
refuses for a table. The keeper checks every ``stream.topic_check_s`` and re-creates what
is missing with the right count, logging what it did.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from mode import Service

from forewarn.settings import KafkaSettings

log = logging.getLogger(__name__)


class TopicKeeper(Service):
    """Runs beside the app's agents; ``recreated`` counts the topics it had to create again."""

    def __init__(self, kafka: KafkaSettings, topics: list[str], partitions: int, every_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka = kafka
        self.topics = topics
        self.partitions = partitions
        self.every_s = every_s
        self.recreated = 0

    async def check(self) -> list[str]:
        """Create the missing topics; returns them."""
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        admin = AIOKafkaAdminClient(**self.kafka.client_options())
        await admin.start()
        try:
            missing = [t for t in self.topics if t not in set(await admin.list_topics())]
            if missing:
                # created meanwhile (another worker, or the broker's auto-creation): fine
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(t, self.partitions, self.kafka.replication_factor) for t in missing])
                log.warning("re-created topics the broker no longer had: %s", ", ".join(missing))
                self.recreated += len(missing)
            return missing
        finally:
            await admin.close()

    @Service.task
    async def _keep(self) -> None:
        while not self.should_stop:
            await self.sleep(self.every_s)
            try:
                await self.check()
            except Exception as exc:  # the broker is down: the next check tries again; never stop the worker
                log.debug("topic check failed: %s", exc)
