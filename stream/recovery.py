"""A watchdog that ends a changelog recovery waiting for records its broker will never deliver.

After a rebalance Faust reads each newly assigned changelog partition up to the end offset
the broker reported before it lets the worker fold predictions. tansu sometimes reports an
end offset past its last record (DESIGN.md), and then the recovery waits forever, warning
"No event received for active tp ..." every few seconds, while the whole worker stands still
(two of four full-suite runs of tests/stream/test_rebalance.py on 2026-12-01).

The watchdog looks every few seconds; a partition still short of its reported end that has
delivered nothing for ``stall_s`` is declared caught up (its applied offset is set to the
reported end), and Faust's own recovery loop then finishes as it would have. What the worker
then holds for that partition is what the changelog delivered: with tansu's overstated end
offsets that is everything there is. Were records really there and never delivered, the
worker would go on from the last state it received, and an alert whose revision the
database already holds is ignored (``stream.store``); a stalled worker would fold nothing for
any asset, so going on is the lesser harm, and every such ending is logged and counted.

Faust keeps the recovery's progress in attributes of ``app.tables.recovery`` (faust-streaming
0.15); ``read_progress`` is the one place that reads them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from time import monotonic
from typing import Any

from mode import Service

log = logging.getLogger(__name__)

CHECK_S = 2.0
"""How often the watchdog looks."""


@dataclass(frozen=True)
class Progress:
    """Where a changelog recovery stands, on the monotonic clock."""

    started_at: float | None
    remaining: dict[Any, int]  # partition -> records short of the reported end offset
    last_event_at: dict[Any, float]  # partition -> when it last delivered a record this recovery


def stalled(progress: Progress, now: float, stall_s: float) -> list[Any]:
    """Partitions short of their end that delivered nothing for ``stall_s`` (or since the start, if never)."""
    if progress.started_at is None:
        return []
    return [
        tp
        for tp, left in progress.remaining.items()
        if left > 0 and now - progress.last_event_at.get(tp, progress.started_at) >= stall_s
    ]


def read_progress(recovery: Any) -> Progress | None:
    """The progress of Faust's recovery service, or None when no recovery of active partitions is running."""
    if not recovery.in_recovery:
        return None
    return Progress(
        started_at=recovery._recovery_started_at,
        remaining=dict(recovery.active_remaining()),
        last_event_at=dict(recovery._active_events_received_at),
    )


class RecoveryWatchdog(Service):
    """Runs beside the app's agents; ``forced`` counts the partitions whose recovery it ended."""

    def __init__(self, app: Any, stall_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.stall_s = stall_s
        self.forced = 0

    def check(self, now: float | None = None) -> list[Any]:
        """End the recovery of every stalled partition; returns them."""
        recovery = self.app.tables.recovery
        progress = read_progress(recovery)
        if progress is None:
            return []
        now = monotonic() if now is None else now
        ended = stalled(progress, now, self.stall_s)
        for tp in ended:
            end = recovery.active_highwaters[tp]
            log.warning(
                "changelog recovery of %s ended by the watchdog: nothing delivered for %.0f s, %d records short of "
                "offset %d, the last the broker reported (tansu overstates it; see stream.recovery)",
                tp,
                now - progress.last_event_at.get(tp, progress.started_at or now),
                progress.remaining[tp],
                end,
            )
            recovery.active_offsets[tp] = end
        self.forced += len(ended)
        return ended

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            await self.sleep(CHECK_S)
            try:
                self.check()
            except Exception:  # a watchdog must never stop the worker it guards
                log.exception("recovery watchdog check failed")


TANSU_STALL_S = 60.0


def effective_stall_s(configured: float | None, cluster_id: str | None) -> float:
    """The watchdog's stall time: as configured, else on (60 s) for tansu only, whose end offsets are wrong."""
    if configured is not None:
        return configured
    return TANSU_STALL_S if (cluster_id or "").startswith("tansu") else 0.0
