"""Errors of the simulators, translated from library errors at the boundary.

ForewarnError (forewarn.errors)
├── ConfigError
│   └── ScenarioError        a scenario file that cannot be run; the message names the field
└── ServiceUnavailable
    └── PublishError         the MQTT broker could not be reached for live publishing
"""

from __future__ import annotations

from forewarn.errors import ConfigError, ServiceUnavailable


class ScenarioError(ConfigError):
    """A scenario (file or name) is missing, not TOML, or has a bad field: the message says which."""


class PublishError(ServiceUnavailable):
    """Live publishing could not start (broker unreachable, bad credentials)."""
