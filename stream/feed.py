"""The live side of the alert feed: every alert change, fanned out to Server-Sent-Events clients.

The feed tails ``forewarn.alerts`` with its own consumer (no group, every partition,
from the end), so each worker's page shows every alert whichever worker decided it.
Each SSE client gets a bounded queue; a client too slow to keep up is disconnected
(it reconnects and reloads the list) rather than holding memory or slowing the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from forewarn.contracts import Alert, decode
from forewarn.errors import ContractError
from forewarn.settings import KafkaSettings

log = logging.getLogger(__name__)

CLIENT_QUEUE = 1000


class AlertHub:
    """Fan-out of alert changes to subscribers (SSE connections)."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.published = 0

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(CLIENT_QUEUE)
        self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, alert: Alert) -> None:
        data = alert.model_dump(mode="json")
        self.published += 1
        for queue in list(self._clients):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                self._clients.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)  # tells the SSE handler to close: the client reconnects and resyncs

    def close(self) -> None:
        for queue in list(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._clients.clear()


class AlertTail:
    """Reads ``forewarn.alerts`` from its end into the hub; reconnects on its own (aiokafka does)."""

    def __init__(self, kafka: KafkaSettings, topic: str, hub: AlertHub) -> None:
        self.kafka = kafka
        self.topic = topic
        self.hub = hub
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="forewarn-alert-tail")

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            self.topic, auto_offset_reset="latest", enable_auto_commit=False, **self.kafka.client_options()
        )
        await consumer.start()
        try:
            self.ready.set()
            async for message in consumer:
                try:
                    self.hub.publish(decode(message.value or b"", Alert))
                except ContractError as exc:  # the aggregation wrote it, so this is a bug: say so, carry on
                    log.warning("alert feed skipped an invalid alert at offset %s: %s", message.offset, exc)
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
