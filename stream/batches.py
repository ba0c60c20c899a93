"""Batch delivery of the input topics: the aggregator gets a fetch at a time, not an event at a time.

Faust hands every message through its conductor, a channel queue, an ``Event``, the
stream iterator, the ``take_events`` buffer and a per-event ack, and its fetch loop
starts two tasks per message (``wait_first``). Profiled on this machine that is about
100 µs per message, three times what decoding and the rules cost: it is what held one
worker near 7k predictions/s. So messages of the *routed* topics (predictions,
control) skip all of that: the consumer's fetch loop collects them and hands them to
one handler as a list.

What stays Faust's: the consumer group and the co-partitioned assignment (the routed
topic is subscribed like an agent's), the table (store, changelog, recovery, standbys),
offset bookkeeping and commits (every ``broker_commit_interval``), the rebalance protocol
(stop the flow, wait until every tracked message is acked, commit, then the revoke
signal), and every other topic (the sink agent's alerts, changelogs during recovery),
which keeps the per-event path.

Faust has no public hook for any of this: the fetch loop is its private
``Consumer._drain_messages``, and keeping its read-offset check means reading
``_read_offset`` and calling ``_add_gap``. ``stream.transport.BATCH_HOOKS`` lists them; a
worker whose Faust lacks one runs the agent path instead (``stream.agents``), which does
the same aggregation through Faust's public stream API.

The contract, at-least-once:

* the handler gets the messages (raw key and value bytes) in fetch order: ``size`` of
  them, or what arrived until ``within_s`` after the previous batch;
* it returns the delivery futures of everything it produced (alert changes, dead
  letters, heartbeats, changelog records);
* the messages are acked (their offsets become committable) only when all of those
  futures are done, i.e. the broker holds the batch's output;
* a handler (or a delivery) that fails crashes the worker with nothing of the batch
  acked, so the batch is consumed again after the restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faust.transport.consumer import Consumer
from mode import ServiceT

IDLE_FETCH_S = 1.0
"""How long one fetch may wait when no batch is pending (Faust's own fetch loop uses 1 s)."""


class Record(Protocol):
    """What a handler reads of a message: Faust's ``ConsumerMessage`` has all of it."""

    key: Any
    value: Any
    topic: str
    partition: int
    offset: int


BatchHandler = Callable[[Sequence[Any]], Awaitable[Sequence[Awaitable[Any]]]]
"""Takes a batch of messages; returns the deliveries that must complete before they are acked."""


@dataclass(frozen=True)
class BatchRoute:
    """Which topics go to the batch handler, and how big and how old a batch may grow."""

    topics: frozenset[str]
    handler: BatchHandler
    size: int
    within_s: float


@dataclass
class PendingBatch:
    """Messages collected for the handler since its last batch.

    A batch is due when it is full or ``within_s`` after the previous one was taken (like
    Faust's ``take_events``): under load batches stay large, so a state costs one
    changelog record per batch rather than per prediction; after a quiet spell the first
    message goes through at once.
    """

    size: int
    within_s: float
    messages: list[Any] = field(default_factory=list)
    last_taken: float = 0.0

    def add(self, message: Any) -> None:
        self.messages.append(message)

    def due(self) -> bool:
        return len(self.messages) >= self.size or time.monotonic() - self.last_taken >= self.within_s

    def wait_s(self) -> float:
        """How long the next fetch may wait: until this batch is due, or the idle wait."""
        if not self.messages:
            return IDLE_FETCH_S
        return max(0.0, self.last_taken + self.within_s - time.monotonic())

    def take(self) -> list[Any]:
        messages, self.messages = self.messages, []
        self.last_taken = time.monotonic()
        return messages


class BatchingConsumer(Consumer):
    """Faust's consumer whose fetch loop hands the routed topics to a batch handler.

    The route is the app's ``batch_route`` (set before the worker starts); an app without
    one gets Faust's own fetch loop.
    """

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        route: BatchRoute | None = getattr(self.app, "batch_route", None)
        if route is None:
            await super()._drain_messages(fetcher)
            return
        pending = PendingBatch(route.size, route.within_s)
        while not (self.should_stop or fetcher.should_stop):
            if pending.messages and (pending.due() or not self.flow_active):
                # also when the flow stopped: a rebalance waits until every tracked message is acked
                await self._deliver(route, pending.take())
            await self._fetch_once(route, pending)

    async def _fetch_once(self, route: BatchRoute, pending: PendingBatch) -> None:
        """One fetch: routed messages join the pending batch, the others take Faust's per-event path."""
        await asyncio.sleep(0)  # a fetch that returns at once must not starve the loop's other tasks
        async for tp, message in self.getmany(timeout=pending.wait_s()):
            if not await self._in_order(tp, message):
                continue
            if message.topic in route.topics:
                self.track_message(message)
                pending.add(message)
            else:
                await self.wait_first(self.callback(message), self.suspend_flow.wait())

    async def _in_order(self, tp: Any, message: Any) -> bool:
        """Faust's read-offset check: skip what a seek delivers again, record skipped offsets as a gap."""
        offset, read = message.offset, self._read_offset[tp]
        if read is not None and offset < read:
            return False
        if read and offset - read > 1 and self.app.topics.acks_enabled_for(message.topic):
            await self._add_gap(tp, read + 1, offset)
        self._read_offset[tp] = offset
        return True

    async def _deliver(self, route: BatchRoute, messages: list[Any]) -> None:
        await self.app.producer.buffer.wait_until_ebb()  # the conductor's backpressure, once per batch
        await deliver(route.handler, messages, self.ack)


async def deliver(handler: BatchHandler, messages: Sequence[Any], ack: Callable[[Any], object]) -> None:
    """Handle a batch, wait until the broker holds its output, and only then ack its messages.

    Faust commits only acked offsets, so until the acks nothing of the batch is committed:
    a failure anywhere on the way leaves the whole batch to be consumed again. Both
    delivery paths (this consumer's, and the agent's in ``stream.agents``) go through here.
    """
    deliveries = await handler(messages)
    if deliveries:
        await asyncio.gather(*deliveries)
    for message in messages:
        ack(message)
