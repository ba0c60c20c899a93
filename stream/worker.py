"""Running a worker: create topics, migrate the database, then hand over to Faust until SIGTERM/SIGINT.

The worker writes ``STATE_DIR/stream-feed.json`` (feed URL, pid) once its web server
listens, so `forewarn alerts ack` and the demo find it even on a port picked at random,
and removes it on exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import threading
from pathlib import Path

from forewarn.kafka import ensure_topics
from stream.config import StreamSettings

log = logging.getLogger(__name__)

TOKEN_FILE = "stream-api-token"
FEED_FILE = "stream-feed.json"


def api_token(settings: StreamSettings) -> str:
    """The configured token, else the one generated into the state dir (created 0600 on first use)."""
    if settings.stream.api_token is not None:
        return settings.stream.api_token.get_secret_value()
    path = settings.state_dir / TOKEN_FILE
    if path.is_file():
        return path.read_text().strip()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    log.info("generated the alert feed's API token into %s", path)
    return token


def feed_file(settings: StreamSettings) -> Path:
    return settings.state_dir / FEED_FILE


def prepare(settings: StreamSettings) -> float:
    """What must exist before Faust starts: the topics (with the app's partition count) and the schema.

    Returns the recovery watchdog's stall time for this broker (``stream.recovery.effective_stall_s``).
    """
    from stream.app import topic_names
    from stream.db import upgrade
    from stream.recovery import effective_stall_s

    asyncio.run(ensure_topics(settings.kafka, topic_names(settings), settings.partitions))
    revision = upgrade(settings.database_url())
    log.info("alert database at schema revision %s", revision)
    cluster_id = asyncio.run(_cluster_id(settings)) if settings.stream.recovery_stall_s is None else None
    stall_s = effective_stall_s(settings.stream.recovery_stall_s, cluster_id)
    log.info("changelog recovery watchdog: %s", f"ends a recovery stalled {stall_s:.0f} s" if stall_s else "off")
    return stall_s


async def _cluster_id(settings: StreamSettings) -> str | None:
    """The broker's cluster id (tansu says 'tansu_cluster'); None when it cannot be asked."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**settings.kafka.client_options())
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return str(cluster.get("cluster_id") or "") or None
    except Exception as exc:  # an old broker without DescribeCluster: treat it as not tansu
        log.info("cannot read the Kafka cluster id: %s", exc)
        return None
    finally:
        await admin.close()


def _force_exit(signame: str, deadline: float, marker: Path) -> None:
    """The clean stop took too long (a broker or database call that does not return): exit anyway."""
    log.error("%s: the worker did not stop within %.0f s; exiting without finishing", signame, deadline)
    marker.unlink(missing_ok=True)
    os._exit(3)


def run_worker(settings: StreamSettings, loglevel: str = "info") -> None:
    """Run one worker in the foreground until SIGTERM or SIGINT (then stop cleanly, within seconds)."""
    import faust

    from stream.app import StreamApp

    if not settings.kafka.bootstrap:
        from forewarn.errors import ConfigError

        raise ConfigError("kafka.bootstrap is empty: set FOREWARN_KAFKA_BOOTSTRAP or [kafka] bootstrap")
    stall_s = prepare(settings)
    marker = feed_file(settings)

    def announce(url: str) -> None:
        marker.write_text(json.dumps({"url": url, "pid": os.getpid()}))

    class StreamWorker(faust.Worker):
        """Faust's worker, ended within ``stop_deadline_s`` of SIGTERM/SIGINT whatever it is waiting for."""

        def install_signal_handlers(self) -> None:
            super().install_signal_handlers()
            self.loop.add_signal_handler(signal.SIGTERM, self._stop_with_deadline, signal.SIGTERM)
            self.loop.add_signal_handler(signal.SIGINT, self._stop_with_deadline, signal.SIGINT)

        def _stop_with_deadline(self, signum: signal.Signals) -> None:
            deadline = settings.stream.stop_deadline_s
            timer = threading.Timer(deadline, _force_exit, (signum.name, deadline, marker))
            timer.daemon = True
            timer.start()
            (self._on_sigterm if signum is signal.SIGTERM else self._on_sigint)()

    stream_app = StreamApp(settings, api_token(settings), on_feed_started=announce, recovery_stall_s=stall_s)
    worker = StreamWorker(stream_app.app, loglevel=loglevel, override_logging=False, quiet=True)
    worker.spinner = None  # Faust's spinner writes terminal escape codes (cursor hide/show) even into a log file
    try:
        worker.execute_from_commandline()
    finally:
        marker.unlink(missing_ok=True)
        if stream_app.sink.writing_since is not None:
            # a database call that does not return would hold the interpreter's exit (it joins the writer thread);
            # the changes it held are in Kafka, uncommitted: the next start writes them
            log.warning("stopped with an alert write still pending on the database; it is redone at the next start")
            logging.shutdown()
            os._exit(0)
