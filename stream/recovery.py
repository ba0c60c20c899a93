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

The watchdog reads only the recovery service's public attributes (faust-streaming 0.15:
``in_recovery``, ``active_highwaters``, ``active_offsets``, ``active_remaining()``) and keeps
its own clock of when each partition last advanced (``RecoveryWatch``); ending a partition
writes its ``active_offsets`` entry, which is what Faust's own loop compares with the end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass
class RecoveryWatch:
    """What the watchdog has seen of the running recovery: when it first saw it, and when each partition advanced.

    A recovery is known by its end offsets: new ones (a rebalance started another
    recovery between two looks) start the clock again, so a partition is never judged by
    the silence of an earlier recovery. The clock starts at the first look, at most
    ``CHECK_S`` after Faust's own, which only lengthens the wait.
    """

    highwaters: dict[Any, int | None] = field(default_factory=dict)
    started_at: float | None = None
    offsets: dict[Any, int | None] = field(default_factory=dict)
    advanced_at: dict[Any, float] = field(default_factory=dict)

    def observe(
        self,
        in_recovery: bool,
        highwaters: Mapping[Any, int | None],
        applied: Mapping[Any, int | None],
        remaining: Mapping[Any, int],
        now: float,
    ) -> Progress | None:
        """Record one look at the recovery; its progress, or None when none is running."""
        if not in_recovery:
            self.restart({}, None, {})  # forget the finished recovery
            return None
        if self.started_at is None or dict(highwaters) != self.highwaters:
            self.restart(highwaters, now, applied)
        for tp, offset in applied.items():
            if self.offsets.get(tp) != offset:
                self.offsets[tp], self.advanced_at[tp] = offset, now
        return Progress(self.started_at, dict(remaining), dict(self.advanced_at))

    def restart(self, highwaters: Mapping[Any, int | None], now: float | None, applied: Mapping[Any, int | None]) -> None:
        """Start the clock of a new recovery (or stop it: ``now`` None)."""
        self.highwaters, self.started_at = dict(highwaters), now
        self.offsets, self.advanced_at = dict(applied), {}


def read_progress(recovery: Any, watch: RecoveryWatch, now: float) -> Progress | None:
    """The progress of Faust's recovery service from its public attributes, or None when no recovery is running."""
    return watch.observe(
        bool(recovery.in_recovery), recovery.active_highwaters, recovery.active_offsets, recovery.active_remaining(), now
    )


class RecoveryWatchdog(Service):
    """Runs beside the app's agents; ``forced`` counts the partitions whose recovery it ended."""

    def __init__(self, app: Any, stall_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.stall_s = stall_s
        self.forced = 0
        self.watch = RecoveryWatch()

    def check(self, now: float | None = None) -> list[Any]:
        """End the recovery of every stalled partition; returns them."""
        recovery = self.app.tables.recovery
        now = monotonic() if now is None else now
        progress = read_progress(recovery, self.watch, now)
        if progress is None:
            return []
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
