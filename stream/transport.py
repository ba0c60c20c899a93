"""Faust's aiokafka transport with a short fetch wait and, on the batched path, batch delivery of the input topics.

Batch delivery (``stream.batches``): the predictions and control topics reach the
aggregator a fetch at a time instead of through Faust's per-event machinery. It needs
Faust internals (``BATCH_HOOKS``); ``choose_delivery`` falls back to the agent path, which
uses Faust's public stream API only, when an installed Faust lacks them.

The fetch wait: the difference between 1.4 s and ~0.1 s alerts, on either path.

Faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer and has no setting
for it. On brokers that do not answer a long-poll fetch as soon as data arrives (tansu,
measured), every hop then costs up to 1.5 s, and an alert takes two hops (predictions,
then alerts to the sink). A 100 ms wait keeps the alert-row latency well inside the 2 s
bar and costs only a few idle fetches per second. Should Faust or aiokafka rename what
this overrides (``FETCH_WAIT_HOOKS``), the override is silently not called and the worker
runs with Faust's 1.5 s wait: slower alerts, nothing lost.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import faust
from faust.sensors.monitor import Monitor
from faust.transport import consumer as faust_consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport

from stream.batches import BatchHandler, BatchingConsumer, BatchRoute

log = logging.getLogger(__name__)

FETCH_MAX_WAIT_MS = 100

Delivery = Literal["batched", "agent"]

BATCH_HOOKS: dict[str, tuple[Any, str]] = {
    "faust.App._new_transport": (faust.App, "_new_transport"),
    "Consumer._drain_messages": (faust_consumer.Consumer, "_drain_messages"),
    "Consumer._add_gap": (faust_consumer.Consumer, "_add_gap"),
    "Consumer._read_offset": (faust_consumer.Consumer, "_read_offset"),
}
"""Faust internals the batched path overrides or reads (owner, attribute), checked at worker start."""

FETCH_WAIT_HOOKS: dict[str, tuple[Any, str]] = {
    "aiokafka Consumer._new_consumer_thread": (Consumer, "_new_consumer_thread"),
    "AIOKafkaConsumerThread._create_worker_consumer": (AIOKafkaConsumerThread, "_create_worker_consumer"),
}
"""Where the short fetch wait is set; aiokafka's ``_fetch_max_wait_ms`` is checked on the consumer itself."""


def _has(owner: Any, name: str) -> bool:
    """An attribute or method of the class, or one it declares (Faust declares instance attributes in the class body)."""
    return hasattr(owner, name) or any(name in getattr(k, "__annotations__", {}) for k in owner.__mro__)


def missing_hooks(hooks: dict[str, tuple[Any, str]]) -> list[str]:
    """The hooks the installed Faust no longer has: a Faust upgrade renamed or removed them."""
    return [label for label, (owner, name) in hooks.items() if not _has(owner, name)]


def choose_delivery(configured: Delivery, missing: list[str]) -> Delivery:
    """The delivery path to run: the configured one, unless 'batched' needs hooks this Faust lacks."""
    if configured == "batched" and missing:
        log.warning(
            "stream.delivery = 'batched' needs Faust internals this Faust lacks (%s): using the agent path "
            "(Faust's public stream API, about a third of the throughput) instead",
            ", ".join(missing),
        )
        return "agent"
    return configured


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            log.warning("aiokafka has no _fetch_max_wait_ms: Faust's 1.5 s fetch wait stays (slower alerts on tansu)")
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by aiokafka when the consumer starts; no public setting
        return consumer


class _FetchWaitConsumer(Consumer):
    """Faust's aiokafka consumer with the short fetch wait; the agent path's consumer."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _BatchingConsumer(BatchingConsumer, _FetchWaitConsumer):
    """The batched path's consumer: its fetch loop hands the routed topics to the batch handler."""


class _Transport(Transport):
    Consumer = _FetchWaitConsumer


class _BatchingTransport(Transport):
    Consumer = _BatchingConsumer


class StreamFaustApp(faust.App):
    """A Faust app whose consumer uses the short fetch wait and can deliver a topic in batches."""

    batch_route: BatchRoute | None = None

    def _new_transport(self) -> Any:
        """Faust's transport with our consumer; the batching one only when a route is set (the batched path)."""
        transport = _BatchingTransport if self.batch_route is not None else _Transport
        return transport(self.conf.broker_consumer, self)

    def route_batches(self, topic: Any, handler: BatchHandler, size: int, within_s: float) -> None:
        """Deliver ``topic``'s messages to ``handler`` in batches (see ``stream.batches``); call before the worker starts.

        The topic is subscribed as an agent's would be, so the group assignment (and the
        table's co-partitioning with it) is the same as with an agent.
        """
        # the route first: adding the topic creates the transport, which picks the consumer by the route
        self.batch_route = BatchRoute(frozenset(topic.topics), handler, size, within_s)
        self.topics.add(topic)


class QuietMonitor(Monitor):
    """Faust's monitor without its per-message bookkeeping (this worker reports its own counters).

    The default monitor records timings for every message, event and send; at thousands
    of predictions per second that costs more than the rules themselves.
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> Any:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None
