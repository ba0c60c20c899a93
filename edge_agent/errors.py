"""Errors of the edge agent, all deriving from the shared core's ``ForewarnError``.

    ForewarnError                         forewarn.errors
    └── EdgeError                         anything the edge agent raises on purpose
        ├── Rejected                      one inbound payload refused at the door (reason -> dead letter)
        ├── OutboxError                   the disk outbox cannot be opened, read or written
        ├── JournalError                  the checkpoint or journal of the windows in progress cannot be written
        ├── DeliveryError                 Kafka could not be reached or refused a batch (also ServiceUnavailable)
        └── ModelError                    the model bundle cannot be loaded, verified or run

Library errors (sqlite3, aiokafka, paho, the models runtime's ``BundleError``) are
translated into these at the stage that talks to the library (``raise ... from exc``), so
the daemon's supervisor handles one family and the CLI prints one clear message.

``Rejected`` is not a failure of the agent: it is the normal fate of a bad payload, which
is counted and dead-lettered while the loop carries on.
"""

from __future__ import annotations

from forewarn.errors import ForewarnError, ServiceUnavailable


class EdgeError(ForewarnError):
    """Base of every error the edge agent raises on purpose."""


class Rejected(EdgeError):
    """An inbound payload the agent refuses; ``reason`` is a short, stable label for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class OutboxError(EdgeError):
    """The SQLite outbox cannot be opened, read or written (disk full, corrupt file, wrong path)."""


class JournalError(EdgeError):
    """The checkpoint or journal of the windows in progress cannot be written (disk full, wrong path)."""


class DeliveryError(EdgeError, ServiceUnavailable):
    """Kafka could not be reached, or it refused or timed out a batch; the rows stay in the outbox."""


class ModelError(EdgeError):
    """The model bundle cannot be loaded or verified, or inference failed."""
