"""Database schema (SQLAlchemy 2): alerts, their history, and the assets and gateways they concern.

One row per alert holds its latest revision; ``alert_events`` keeps every revision (the
history an operator reads to see why and when it changed). Writes are upserts keyed by
alert id and guarded by ``revision``, so replays and redeliveries change nothing.
Times are Unix epoch seconds, like the wire contracts. The same models serve SQLite and
PostgreSQL; Alembic (``stream/migrations``) owns the DDL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AlertRow(Base):
    """The latest revision of one alert."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    asset_id: Mapped[str] = mapped_column(String(64), index=True)
    asset_type: Mapped[str | None] = mapped_column(String(64))
    gateway_id: Mapped[str | None] = mapped_column(String(64))
    fault: Mapped[str] = mapped_column(String(48), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    severity_rank: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    occurrences: Mapped[int] = mapped_column(Integer)
    peak_probability: Mapped[float] = mapped_column(Float)
    last_probability: Mapped[float] = mapped_column(Float)
    ttf_hours: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_version: Mapped[str | None] = mapped_column(String(80))
    deciding_prediction_id: Mapped[str | None] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float, index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[float | None] = mapped_column(Float)
    resolution: Mapped[str | None] = mapped_column(String(16))
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    verdict: Mapped[str | None] = mapped_column(String(16), index=True)
    verdict_fault: Mapped[str | None] = mapped_column(String(48))
    verdict_by: Mapped[str | None] = mapped_column(String(64))
    verdict_at: Mapped[float | None] = mapped_column(Float)
    verdict_note: Mapped[str | None] = mapped_column(String(500))
    operator_note: Mapped[str | None] = mapped_column(String(500))
    suppression: Mapped[str | None] = mapped_column(String(16))
    suppression_reason: Mapped[str | None] = mapped_column(String(500))
    shelved_by: Mapped[str | None] = mapped_column(String(64))
    shelved_until: Mapped[float | None] = mapped_column(Float)
    latched: Mapped[bool] = mapped_column(Boolean, default=False)
    chattering: Mapped[bool] = mapped_column(Boolean, default=False)
    plant: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The plant tier's verdict on an escalated window of the alert (forewarn.contracts.PlantVerdict)."""
    written_at: Mapped[float] = mapped_column(Float)
    """When this worker wrote the row (latency measurements: written_at - prediction produced_at)."""


class AlertEventRow(Base):
    """One revision of one alert: the audit trail of every state change."""

    __tablename__ = "alert_events"
    __table_args__ = (UniqueConstraint("alert_id", "revision", name="uq_alert_events_alert_id_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(200), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    ts: Mapped[float] = mapped_column(Float)
    alert: Mapped[dict[str, Any]] = mapped_column(JSON)
    written_at: Mapped[float] = mapped_column(Float)


class AssetRow(Base):
    """An asset the stream has raised alerts for."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    asset_type: Mapped[str | None] = mapped_column(String(64))
    gateway_id: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


class GatewayRow(Base):
    """A gateway whose assets (or whose own silence) raised alerts."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


Index("ix_alerts_state_severity", AlertRow.state, AlertRow.severity_rank)
