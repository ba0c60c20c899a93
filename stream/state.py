"""Per-entity aggregation state: what the worker remembers about one asset (or one gateway).

One value per Faust table key, written once per batch, so a prediction costs no table
write of its own. Everything here is bounded: the window holds the last few predictions
(enough for every rule), the command-id list the last few operator actions. Bounded
state is also the dedup set: a prediction id already in the window, or older than the
whole (full) window, changes nothing, so replays and redeliveries never double count.
"""

from __future__ import annotations

import bisect
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from forewarn.contracts import Alert, AlertState, PlantVerdict

MAX_COMMAND_IDS = 64
"""Operator command ids remembered per entity (commands are rare; 64 covers any redelivery)."""

ASSET_PREFIX = "a:"
GATEWAY_PREFIX = "g:"


def asset_key(asset_id: str) -> str:
    """Table key of an asset (ids never hold ':', so asset and gateway keys cannot collide)."""
    return ASSET_PREFIX + asset_id


def gateway_key(gateway_id: str) -> str:
    return GATEWAY_PREFIX + gateway_id


class WindowEntry(BaseModel):
    """One recent prediction, reduced to what the rules read: fault probabilities above the lowest clear threshold."""

    model_config = ConfigDict(frozen=True)

    end: float
    id: str
    probs: dict[str, float] = Field(default_factory=dict)
    ttf_hours: float | None = None

    def p(self, fault: str) -> float:
        return self.probs.get(fault, 0.0)


class FaultTrack(BaseModel):
    """One fault on one entity: its open (or acknowledged) alert, and when a new one may open."""

    alert: Alert | None = None
    last_hit: float | None = None
    """Event time (window end) of the newest hit of the open alert."""
    last_emit: float = 0.0
    """Wall time the alert was last published (re-notify and minor-update pacing)."""
    last_escalation: float = 0.0
    """Wall time of opening, acknowledgement or the last escalation (escalation pacing)."""
    dirty: bool = False
    """The open alert changed in minor ways (occurrences, last seen) not yet published."""
    rearm_after: float = 0.0
    """Only predictions with a window end after this count towards a new alert (after a resolution)."""
    hit_since: float | None = None
    """Window end of the first hit since the fault was last quiet (the on-delay counts from it)."""
    opens: list[float] = Field(default_factory=list)
    """Window ends at which alerts of this fault opened within the last hour (chattering)."""

    @property
    def is_open(self) -> bool:
        return self.alert is not None and self.alert.state is not AlertState.RESOLVED


class OutOfService(BaseModel):
    """Who took an asset out of service, when and why."""

    by: str
    since: float
    reason: str | None = None


class EntityState(BaseModel):
    """Everything the worker keeps about one asset or one gateway."""

    kind: Literal["asset", "gateway"]
    id: str
    partition: int = 0
    """The Kafka partition this entity's messages arrive on: the worker's own view and ticks use it."""
    site: str
    asset_type: str | None = None
    gateway_id: str | None = None
    last_heard: float = 0.0
    """Wall time of the last prediction (asset) or heartbeat (gateway): liveness."""
    silence_reported: float | None = None
    """The ``last_heard`` for which a silent alert was already raised (one alert per silence)."""
    window: list[WindowEntry] = Field(default_factory=list)
    tracks: dict[str, FaultTrack] = Field(default_factory=dict)
    commands: list[str] = Field(default_factory=list)
    out_of_service: OutOfService | None = None
    """Set while an operator has the asset out of service: its alerts are recorded, not annunciated."""
    late: int = 0
    duplicates: int = 0
    plant_pending: dict[str, PlantVerdict] = Field(default_factory=dict)
    """Plant-tier verdicts per edge fault that came before that fault's alert opened: the alert takes it when it opens."""

    def has_prediction(self, prediction_id: str) -> bool:
        return any(entry.id == prediction_id for entry in self.window)

    def insert(self, entry: WindowEntry, size: int) -> bool:
        """Insert in window-end order, keeping the newest ``size``; False when it was a duplicate or too late."""
        if self.has_prediction(entry.id):
            self.duplicates += 1
            return False
        if len(self.window) >= size and entry.end <= self.window[0].end:
            self.late += 1  # older than everything the rules still look at: it cannot matter any more
            return False
        index = bisect.bisect_right([e.end for e in self.window], entry.end)
        self.window.insert(index, entry)
        del self.window[:-size]
        return True

    @property
    def newest_end(self) -> float:
        return self.window[-1].end if self.window else 0.0

    def remember_command(self, command_id: str) -> bool:
        """Record an operator command id; False when it was already applied."""
        if command_id in self.commands:
            return False
        self.commands.append(command_id)
        del self.commands[:-MAX_COMMAND_IDS]
        return True

    def open_alerts(self) -> list[Alert]:
        return [track.alert for track in self.tracks.values() if track.alert is not None and track.is_open]

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_defaults=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> EntityState:
        return cls.model_validate_json(raw)
