"""The worker's processing: aggregation (predictions + control -> alert changes, to Kafka and MQTT) and the sink (-> DB).

The aggregation (``Aggregator.handle``) runs on one of two delivery paths, chosen by
``stream.delivery`` (``stream.transport.choose_delivery``):

* **batched** (default): a batch route (``stream.batches``), not a Faust agent: the
  consumer hands it the predictions and control messages a fetch at a time, which is what
  lets one worker fold well over 10k predictions/s (Faust's per-event path costs about
  100 µs a message). It overrides Faust internals.
* **agent**: a plain Faust agent over the same topics, batching with
  ``stream.noack_take`` and acking each event itself: Faust's public API only, about a
  third of the throughput (docs/stream.md), and what runs when an installed Faust lacks
  the batched path's internals.

The sink is an agent on both, one ``async for`` loop over batches (``take_events``);
alert changes are few. Either way a message is acked (its offset committable) only after
its whole batch has been processed (for the aggregation: and its output acknowledged by
the broker), so a crash replays from the last committed offset, which the rules and the
database's revision check make harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from forewarn.contracts import Alert, decode
from forewarn.errors import ContractError
from stream.batches import BatchHandler, deliver

if TYPE_CHECKING:
    from stream.app import StreamApp

log = logging.getLogger(__name__)

SINK_BATCH = 500
SINK_WITHIN_S = 0.05


def register(s: StreamApp) -> None:
    """Attach the aggregation route, the sink agent, the clock and the rebalance hook to the app."""
    from stream.app import AGGREGATE_AGENT, SINK_AGENT

    app, settings, aggregator = s.app, s.settings, s.aggregator
    # predictions, commands, heartbeats and ticks, folded into entity state a batch at a time
    size, within_s = settings.stream.batch_size, settings.stream.batch_within_s
    if s.delivery == "batched":
        app.route_batches(s.inputs, aggregator.handle, size, within_s)
    else:
        app.agent(s.inputs, name=AGGREGATE_AGENT)(aggregate_agent(app, aggregator.handle, size, within_s))

    @app.agent(s.alerts, name=SINK_AGENT)
    async def sink(stream: Any) -> None:
        """Write alert changes to the database, retried through outages (MQTT got them from the aggregation already)."""
        async for events in stream.take_events(SINK_BATCH, SINK_WITHIN_S):
            await s.sink.write(_decode_alerts(events))

    async def tick() -> None:
        """The clock of liveness, re-notify and escalation: a tick per owned partition, via the control topic."""
        control = settings.stream.control_topic
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == control}
        await aggregator.send_ticks(owned)

    def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        aggregator.forget()

    app.timer(settings.stream.tick_s)(tick)
    app.on_partitions_revoked.connect(on_revoked)


def aggregate_agent(app: Any, handler: BatchHandler, size: int, within_s: float) -> Callable[[Any], Coroutine[Any, Any, None]]:
    """The agent path's aggregation: Faust's public stream API, the same handler and ack rule as the batched path.

    ``noack_take`` leaves acking to us, so a batch is acked only after the broker holds its
    output (``stream.batches.deliver``). A handler or delivery that fails crashes the app
    with nothing of the batch acked: were the agent merely restarted (Faust's supervisor),
    it would go on past the batch, and the committed offset would stay behind it until the
    next start.
    """

    async def aggregate(stream: Any) -> None:
        async for events in stream.noack_take(size, within_s):
            try:
                await deliver(handler, [event.message for event in events], lambda message: message.ack(app.consumer))
            except Exception as exc:
                log.exception("aggregation failed; stopping the worker with the batch unacknowledged")
                await app.crash(exc)
                raise

    return aggregate


def _decode_alerts(events: Any) -> list[Alert]:
    alerts = []
    for event in events:
        try:
            alerts.append(decode(event.value or b"", Alert))
        except ContractError as exc:  # only our own agent writes here: a bad one is a bug, logged and skipped
            log.error(
                "sink skipped an invalid alert at %s[%s]@%s: %s",
                event.message.topic,
                event.message.partition,
                event.message.offset,
                exc,
            )
    return alerts
