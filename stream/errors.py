"""Errors of the stream part.

    ForewarnError (forewarn.errors)
    └── StreamError               anything the stream part raises on purpose
        ├── DatabaseError         the alert database cannot be reached, migrated or written
        ├── FeedError             the alert feed (web server) cannot start or a request to it failed
        └── CommandRejected       an operator command that cannot be accepted (unknown alert, bad token)

Library errors (SQLAlchemy, aiohttp, aiokafka) are wrapped with ``raise ... from exc``.
"""

from __future__ import annotations

from forewarn.errors import ForewarnError


class StreamError(ForewarnError):
    """Base of the stream part's errors."""


class DatabaseError(StreamError):
    """The alert database cannot be reached, migrated or written."""


class FeedError(StreamError):
    """The alert feed cannot start, or a request to it failed."""


class CommandRejected(StreamError):
    """An operator command that cannot be accepted."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
