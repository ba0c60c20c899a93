"""Faust's aiokafka transport with a short fetch wait and batch delivery of the input topics.

Batch delivery (``stream.batches``): the predictions and control topics reach the
aggregator a fetch at a time instead of through Faust's per-event machinery.

The fetch wait: the difference between 1.4 s and ~0.2 s alerts.

Faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. On brokers that
do not answer a long-poll fetch as soon as data arrives (tansu, measured), every hop
then costs up to 1.5 s, and an alert takes two hops (predictions, then alerts to the
sink). A 100 ms wait keeps the alert-row latency well inside the 2 s bar and costs
only a few idle fetches per second.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.sensors.monitor import Monitor
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport

from stream.batches import BatchHandler, BatchingConsumer, BatchRoute

FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by aiokafka when the consumer starts
        return consumer


class _Consumer(BatchingConsumer, Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(Transport):
    Consumer = _Consumer


class StreamFaustApp(faust.App):
    """A Faust app whose consumer uses the short fetch wait and can deliver a topic in batches."""

    batch_route: BatchRoute | None = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def route_batches(self, topic: Any, handler: BatchHandler, size: int, within_s: float) -> None:
        """Deliver ``topic``'s messages to ``handler`` in batches (see ``stream.batches``); call before the worker starts.

        The topic is subscribed as an agent's would be, so the group assignment (and the
        table's co-partitioning with it) is the same as with an agent.
        """
        self.topics.add(topic)
        self.batch_route = BatchRoute(frozenset(topic.topics), handler, size, within_s)


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
