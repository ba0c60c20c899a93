"""Delivery: outbox -> Kafka ``forewarn.predictions`` (key = asset), and predictions to local MQTT.

Kafka is the durable path. The publisher takes rows from the outbox, sends them with
``acks=all`` and deletes exactly the rows the broker acknowledged; a failed or timed-out
send leaves them in place, drops the connection, and tries again with exponential backoff
(reconnecting re-creates the topics, because a broker may come back empty: tansu keeps
topics in memory). The producer is not idempotent (tansu refuses ``InitProducerId``):
redelivery is made harmless by the deterministic prediction ids instead.

Live first, then history: rows stored within ``historical_after_s`` go out at once;
older ones (the backlog of an outage, or of a restart) are replayed oldest first at
``replay_rate`` per second, with ``historical=true`` so consumers treat them as old news
rather than a fresh reading. MQTT ``.../prediction`` is best effort for local subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from edge_agent.errors import DeliveryError
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox, Row
from forewarn.contracts import FaultPrediction, decode, encode
from forewarn.errors import ServiceUnavailable
from forewarn.kafka import CONNECT_FAILURES, connect_failure, ensure_topics, warn_if_in_clear
from forewarn.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)

OutRecord = tuple[str, bytes | None, bytes]
"""(topic, key, value) as sent to Kafka."""


class KafkaPort(Protocol):
    """Kafka as the publisher needs it: send a batch and learn which records were acknowledged."""

    async def send(self, records: Sequence[OutRecord]) -> list[bool]:
        """Send; True per record the broker acknowledged. Raises DeliveryError when it cannot even connect."""
        ...

    async def close(self) -> None: ...


class MqttPort(Protocol):
    """MQTT as the publishing stages need it (the ingest's connection)."""

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> bool: ...


class AioKafkaPort:
    """``KafkaPort`` on aiokafka: acks=all, not idempotent, reconnects (and re-creates topics) after a failure."""

    def __init__(self, kafka: KafkaSettings, topics: Sequence[str], timeout_s: float, client_id: str) -> None:
        self.kafka = kafka
        self._options = kafka.client_options()  # a missing password or TLS file stops the start, named
        warn_if_in_clear(kafka)
        self.topics = list(topics)
        self.timeout_s = timeout_s
        self.client_id = client_id
        self._producer: Any = None  # aiokafka.AIOKafkaProducer, imported on first use
        self._warned: set[str] = set()

    async def send(self, records: Sequence[OutRecord]) -> list[bool]:
        from aiokafka.errors import KafkaError

        producer = await self._connect()
        if not records:
            return []
        futures: list[asyncio.Future[object]] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                for topic, key, value in records:
                    futures.append(await producer.send(topic, value, key=key))
        except (KafkaError, TimeoutError) as exc:
            log.debug("Kafka refused a record: %s", exc)
        results: list[object] = []
        if futures:
            done, pending = await asyncio.wait(futures, timeout=self.timeout_s)
            for f in pending:  # may still fail after we gave up on it: retrieve that quietly
                f.add_done_callback(_quiet)
            results = [f.exception() if f in done and not f.cancelled() else TimeoutError() for f in futures]
        ok = [r is None for r in results] + [False] * (len(records) - len(futures))
        if not all(ok):
            await self.close()  # a fresh connection (and fresh metadata, topics re-created) next time
        self._check_partitions(producer, {topic for topic, _, _ in records})
        return ok

    def _check_partitions(self, producer: Any, topics: set[str]) -> None:
        """Warn (once per topic) when a broker auto-created a topic with another partition count than ours.

        aiokafka's metadata requests let a broker that lost its topics (tansu keeps them in memory)
        auto-create one before we re-create it; keys then map to other partitions than elsewhere.
        """
        for topic in topics - self._warned:
            partitions = producer.client.cluster.partitions_for_topic(topic)
            if partitions is not None and len(partitions) != self.kafka.partitions:
                self._warned.add(topic)
                log.warning(
                    "Kafka topic %s has %d partitions, kafka.partitions says %d: the broker auto-created it "
                    "(disable auto-create, or match its default)",
                    topic, len(partitions), self.kafka.partitions,
                )  # fmt: skip

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # the broker may be gone: nothing left to tell it
                await asyncio.wait_for(producer.stop(), self.timeout_s)

    async def _connect(self) -> Any:
        if self._producer is not None:
            return self._producer
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        producer = AIOKafkaProducer(
            **self._options,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=False,
            request_timeout_ms=int(self.timeout_s * 1000),
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        try:
            await asyncio.wait_for(producer.start(), self.timeout_s)
            await asyncio.wait_for(ensure_topics(self.kafka, self.topics), self.timeout_s)
        except (KafkaError, ServiceUnavailable, *CONNECT_FAILURES) as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self.timeout_s)
            reason = str(exc) if isinstance(exc, ServiceUnavailable) else connect_failure(self.kafka, exc)
            raise DeliveryError(reason) from exc
        self._producer = producer
        return producer


class _TokenBucket:
    """Replay pacing: ``rate`` tokens a second, at most one second's worth saved up."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.clock = clock
        self.tokens = rate
        self.stamp = clock()

    def available(self) -> int:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return int(self.tokens)

    def spend(self, count: int) -> None:
        self.tokens -= count


class KafkaPublisher:
    """Drains the outbox into Kafka: live rows at once, the backlog paced and flagged historical."""

    def __init__(
        self,
        outbox: Outbox,
        port: KafkaPort,
        metrics: EdgeMetrics,
        *,
        batch: int,
        historical_after_s: float,
        replay_rate: float,
        backoff_max_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.port = port
        self.metrics = metrics
        self.batch = batch
        self.historical_after_s = historical_after_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock
        self._bucket = _TokenBucket(replay_rate, clock)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.uplink = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kafka-publisher")

    def wake(self) -> None:
        """New rows are in the outbox."""
        self._wake.set()

    async def stop(self, flush_timeout: float) -> None:
        """Send what can still be sent live within flush_timeout; the rest stays in the outbox for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.uplink:
            with contextlib.suppress(DeliveryError, TimeoutError):
                async with asyncio.timeout(flush_timeout):
                    while await self.step(live_only=True):
                        pass
        await self.port.close()

    async def step(self, live_only: bool = False) -> int:
        """Send one batch (live if any, else paced history); returns rows acknowledged. Raises DeliveryError."""
        cutoff = self.clock() - self.historical_after_s
        rows, historical = self.outbox.take(self.batch, since=cutoff), False
        if not rows and not live_only:
            allowed = min(self.batch, self._bucket.available())
            rows, historical = (self.outbox.take(allowed, before=cutoff), True) if allowed else ([], True)
        if not rows:
            if not self.uplink:
                await self.port.send([])  # nothing to send: still find out whether the uplink is back
            return 0
        ok = await self.port.send([_record(row, historical) for row in rows])
        acked = [row for row, good in zip(rows, ok, strict=True) if good]
        self.outbox.delete(row.seq for row in acked)
        if historical:
            self._bucket.spend(len(rows))
        for row in acked:
            self.metrics.kafka_sent.labels(
                row.kind if row.kind in ("deadletter", "escalation") else "historical" if historical else "live"
            ).inc()
        if len(acked) < len(rows):
            raise DeliveryError(f"Kafka acknowledged {len(acked)} of {len(rows)} records")
        return len(acked)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                sent = await self.step()
            except DeliveryError as exc:
                self.metrics.kafka_send_errors.inc()
                if self.uplink or backoff == 0.5:
                    log.warning("Kafka uplink down (%s); %d rows kept in the outbox, retrying", exc, self.outbox.depth)
                self._set_uplink(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if not self.uplink:
                log.info("Kafka uplink up; %d rows waiting in the outbox", self.outbox.depth)
                self._set_uplink(True)
            backoff = 0.5
            if sent:
                continue
            # Nothing sendable now: wait for new rows, or for replay tokens when a backlog waits.
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.2 if self.outbox.depth else 5.0)

    def _set_uplink(self, up: bool) -> None:
        self.uplink = up
        self.metrics.kafka_connected.set(1 if up else 0)


def _quiet(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


def _record(row: Row, historical: bool) -> OutRecord:
    value = row.value
    if historical and row.kind == "prediction":
        value = encode(decode(value, FaultPrediction).model_copy(update={"historical": True}))
    return row.topic, row.key, value


def publish_predictions(
    mqtt: MqttPort, topics: TopicSettings, predictions: Sequence[tuple[FaultPrediction, bytes]], qos: int
) -> None:
    """Best effort to MQTT ``.../prediction`` for local subscribers (SCADA, HMI); Kafka is the durable path.

    Takes each prediction with its encoding (already made for the outbox: encode once).
    """
    for p, payload in predictions:
        mqtt.publish(topics.mqtt_prediction.format(site=p.site, asset=p.asset_id, gateway=p.gateway_id), payload, qos)
