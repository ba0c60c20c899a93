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
from pathlib import Path

from forewarn.localbrokers import ensure_topics
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


def prepare(settings: StreamSettings) -> None:
    """What must exist before Faust starts: the topics (with the app's partition count) and the schema."""
    from stream.app import topic_names
    from stream.db import upgrade

    asyncio.run(ensure_topics(settings.kafka, topic_names(settings), settings.partitions))
    revision = upgrade(settings.database_url())
    log.info("alert database at schema revision %s", revision)


def run_worker(settings: StreamSettings, loglevel: str = "info") -> None:
    """Run one worker in the foreground until SIGTERM or SIGINT (then stop cleanly, within seconds)."""
    import faust

    from stream.app import StreamApp

    if not settings.kafka.bootstrap:
        from forewarn.errors import ConfigError

        raise ConfigError("kafka.bootstrap is empty: set FOREWARN_KAFKA_BOOTSTRAP or [kafka] bootstrap")
    prepare(settings)
    marker = feed_file(settings)

    def announce(url: str) -> None:
        marker.write_text(json.dumps({"url": url, "pid": os.getpid()}))

    stream_app = StreamApp(settings, api_token(settings), on_feed_started=announce)
    worker = faust.Worker(stream_app.app, loglevel=loglevel, override_logging=False, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        marker.unlink(missing_ok=True)
