"""The worker's processing: aggregation (predictions + control -> alert changes, to Kafka and MQTT) and the sink (-> DB).

Aggregation is a batch route (``stream.batches``), not a Faust agent: the consumer hands
it the predictions and control messages a fetch at a time, which is what lets one worker
fold well over 10k predictions/s (Faust's per-event path cost ~100 µs a message). The
sink is an agent, one ``async for`` loop over batches (``take_events``); alert changes
are few. Either way a message is acked (its offset committable) only after its whole
batch has been processed (for the aggregation: and its output acknowledged by the
broker), so a crash replays from the last committed offset, which the rules and the
database's revision check make harmless.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from forewarn.contracts import Alert, decode
from forewarn.errors import ContractError

if TYPE_CHECKING:
    from stream.app import StreamApp

log = logging.getLogger(__name__)

SINK_BATCH = 500
SINK_WITHIN_S = 0.05


def register(s: StreamApp) -> None:
    """Attach the aggregation route, the sink agent, the clock and the rebalance hook to the app."""
    from stream.app import SINK_AGENT

    app, settings, aggregator = s.app, s.settings, s.aggregator
    # predictions, commands, heartbeats and ticks, folded into entity state a batch at a time
    app.route_batches(s.inputs, aggregator.handle, settings.stream.batch_size, settings.stream.batch_within_s)

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
