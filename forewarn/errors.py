"""Errors of the shared core; each part keeps its own ``errors.py`` deriving from these.

    ForewarnError                 anything Forewarn raises on purpose
    ├── ContractError             a message broke a wire contract (field and reason in .problems)
    ├── ConfigError               settings that cannot work (bad file, bad value, missing secret)
    ├── DatasetError              a dataset directory that is missing, malformed or inconsistent
    └── ServiceUnavailable        an outside system (broker, database) could not be reached

Library errors are translated into these at the boundary (``raise ... from exc``), so
callers handle one family and the CLI maps each to a clear message and exit code.
"""

from __future__ import annotations


class ForewarnError(Exception):
    """Base of every error Forewarn raises on purpose."""


class ContractError(ForewarnError):
    """A payload is not a valid wire message. ``problems`` lists (field path, reason) pairs."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems: list[tuple[str, str]] = problems or []


class ConfigError(ForewarnError):
    """The settings cannot work: a bad file, a bad value, a missing secret."""


class DatasetError(ForewarnError):
    """A dataset directory is missing, malformed or inconsistent."""


class ServiceUnavailable(ForewarnError):
    """An outside system (MQTT broker, Kafka, database) could not be reached."""
