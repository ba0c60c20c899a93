"""The database sink, as the event loop sees it: writes in a thread, retried until they land.

A database outage must delay alert writes, never lose them and never stall the worker's
event loop: each batch is written by one dedicated thread; while the database is down the
sink agent keeps retrying the same batch with backoff and does not move on, so the
batch's Kafka offsets are not committed and nothing is lost even if the worker dies
meanwhile. Reads (the REST API, the CLI) use their own small thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from forewarn.contracts import Alert
from stream.errors import DatabaseError
from stream.store import AlertQuery, AlertStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncSink:
    """Non-blocking access to an AlertStore: one writer thread, two reader threads."""

    def __init__(self, store: AlertStore, retry_max_s: float = 10.0) -> None:
        self.store = store
        self.retry_max_s = retry_max_s
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="forewarn-db-write")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="forewarn-db-read")
        self.written = 0
        self.retries = 0
        self.outage_since: float | None = None
        self.writing_since: float | None = None
        """When the write in progress (with its retries) began: a database that hangs shows here before it fails."""

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def write(self, alerts: Sequence[Alert]) -> int:
        """Write until it succeeds (backoff up to retry_max_s); cancellation (shutdown) is the only way out."""
        delay = 0.2
        self.writing_since = time.time()
        while True:
            try:
                applied = await self._run(self._writer, self.store.write, list(alerts))
            except DatabaseError as exc:
                self.retries += 1
                if self.outage_since is None:
                    self.outage_since = time.time()
                    log.warning("alert database unavailable, holding %d alert changes and retrying: %s", len(alerts), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            if self.outage_since is not None:
                log.warning("alert database back after %.1f s", time.time() - self.outage_since)
                self.outage_since = None
            self.written += applied
            self.writing_since = None
            return applied

    async def list_alerts(self, query: AlertQuery) -> tuple[list[dict[str, Any]], int]:
        return await self._run(self._readers, self.store.list_alerts, query)

    async def active_alerts(self, entity_id: str) -> list[Alert]:
        return await self._run(self._readers, self.store.active_alerts, entity_id)

    async def stored_alert(self, alert_id: str) -> Alert | None:
        return await self._run(self._readers, self.store.stored_alert, alert_id)

    async def kpis(self, hours: float) -> dict[str, Any]:
        from stream.kpis import compute

        now = time.time()
        openings, active = await self._run(self._readers, self.store.kpi_inputs, now - hours * 3600.0)
        return compute(openings, active, now, hours)

    async def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        return await self._run(self._readers, self.store.get_alert, alert_id)

    def close(self) -> None:
        self._writer.shutdown(wait=False, cancel_futures=True)
        self._readers.shutdown(wait=False, cancel_futures=True)
        self.store.close()
