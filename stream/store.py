"""The alert store: idempotent writes of alert revisions, and the queries the feed and CLI need.

Synchronous SQLAlchemy, called from worker threads (see ``stream.sink``), never from the
event loop. A revision is applied only if it is newer than the one stored, so a replay,
a redelivery or an out-of-order update never moves an alert backwards and never creates
a second row or a second history entry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from forewarn.contracts import SEVERITY_ORDER, Alert, AlertState
from stream.db import make_engine
from stream.errors import DatabaseError
from stream.models import AlertEventRow, AlertRow, AssetRow, Base, GatewayRow

ALERT_COLUMNS = [c.name for c in AlertRow.__table__.columns]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertQuery:
    """Filters and paging of the alert list (REST and CLI)."""

    states: tuple[str, ...] = ()
    asset_id: str | None = None
    site: str | None = None
    fault: str | None = None
    severity: str | None = None
    verdict_only: bool = False
    limit: int = 100
    offset: int = 0


def _change(previous: dict[str, Any] | None, alert: Alert) -> str:
    """Name the change a revision made, for the history an operator reads."""
    if previous is None:
        return "opened" if alert.state is not AlertState.RESOLVED else "resolved"
    if previous["state"] != alert.state.value:
        return alert.state.value
    if previous.get("verdict") != alert.verdict:
        return "verdict"
    if alert.plant is not None and previous.get("plant") != alert.plant.prediction_id:
        return f"plant_{alert.plant.outcome}"  # the plant tier confirmed, reclassified or cleared it
    if previous.get("suppression") != alert.suppression:
        return alert.suppression or ("unshelved" if previous.get("suppression") == "shelved" else "annunciated")
    if not previous.get("latched") and alert.latched:
        return "latched"
    if previous["severity"] != alert.severity.value:
        return "escalated" if SEVERITY_ORDER[alert.severity] > SEVERITY_ORDER[previous["severity"]] else "updated"
    return "updated" if alert.occurrences != previous["occurrences"] else "renotified"


def _channels(alert: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The deviating channels a revision's evidence names: value, baseline (the asset's normal) and score (sigma)."""
    channels = (alert.get("evidence") or {}).get("channels") or []
    return {c["channel"]: {"value": c.get("value"), "baseline": c.get("baseline"), "score": c.get("score")} for c in channels}


def _note(change: str, alert: dict[str, Any]) -> str | None:
    """The reason or finding given with a change, as far as the revision says."""
    if change == "verdict":
        return alert.get("verdict_note")
    if change in ("acknowledged", "resolved"):
        return alert.get("operator_note")
    if change in ("shelved", "out_of_service", "suppressed"):
        return alert.get("suppression_reason")
    return None


def _by(change: str, alert: dict[str, Any]) -> str | None:
    """Who made a change, as far as the revision says."""
    if change == "verdict":
        return alert.get("verdict_by")
    if change == "shelved":
        return alert.get("shelved_by")
    if change == "resolved":
        return alert.get("resolved_by") or (alert.get("acknowledged_by") if alert.get("resolution") == "operator" else None)
    return alert.get("acknowledged_by")


def alert_row(alert: Alert, written_at: float) -> dict[str, Any]:
    data = alert.model_dump(mode="json", exclude={"schema_version"})
    data["severity_rank"] = SEVERITY_ORDER[alert.severity]
    data["written_at"] = written_at
    return data


def row_to_alert(row: AlertRow) -> dict[str, Any]:
    """A row as the feed shows it: the Alert fields (plus when it was written)."""
    return {name: getattr(row, name) for name in ALERT_COLUMNS if name != "severity_rank"}


def row_alert(row: AlertRow) -> Alert:
    """A row back as the Alert revision it stores."""
    return Alert.model_validate({name: getattr(row, name) for name in Alert.model_fields if name != "schema_version"})


class AlertStore:
    """Alerts in SQLite or PostgreSQL; every method is blocking (run it in a thread)."""

    def __init__(self, url: str, echo: bool = False, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(url, echo)
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def create_all(self) -> None:
        """Tables without Alembic (tests of the store only; the product runs migrations)."""
        Base.metadata.create_all(self.engine)

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def write(self, alerts: Sequence[Alert], now: float | None = None) -> int:
        """Apply alert revisions; returns how many were newer than what the database had."""
        if not alerts:
            return 0
        now = time.time() if now is None else now
        ordered = sorted(alerts, key=lambda a: (a.id, a.revision))
        try:
            with Session(self.engine) as session, session.begin():
                ids = sorted({a.id for a in ordered})
                columns = (
                    AlertRow.id,
                    AlertRow.revision,
                    AlertRow.state,
                    AlertRow.severity,
                    AlertRow.occurrences,
                    AlertRow.verdict,
                    AlertRow.plant,
                )
                held = {
                    r.id: {"revision": r.revision, "state": r.state, "severity": r.severity}
                    | {"occurrences": r.occurrences, "verdict": r.verdict}
                    | {"plant": (r.plant or {}).get("prediction_id")}
                    for r in session.execute(select(*columns).where(AlertRow.id.in_(ids)))
                }
                events, latest = [], {}
                for alert in ordered:
                    previous = held.get(alert.id)
                    if previous is not None and previous["revision"] >= alert.revision:
                        continue
                    events.append(
                        {
                            "alert_id": alert.id,
                            "revision": alert.revision,
                            "change": _change(previous, alert),
                            "state": alert.state.value,
                            "severity": alert.severity.value,
                            "ts": alert.updated_at,
                            "alert": alert.model_dump(mode="json"),
                            "written_at": now,
                        }
                    )
                    held[alert.id] = {
                        "revision": alert.revision,
                        "state": alert.state.value,
                        "severity": alert.severity.value,
                        "occurrences": alert.occurrences,
                        "verdict": alert.verdict,
                        "suppression": alert.suppression,
                        "latched": alert.latched,
                        "plant": alert.plant.prediction_id if alert.plant is not None else None,
                    }
                    latest[alert.id] = alert
                if not latest:
                    return 0
                session.execute(self._insert(AlertEventRow).values(events).on_conflict_do_nothing())
                self._upsert_alerts(session, list(latest.values()), now)
                self._upsert_entities(session, list(latest.values()))
            return len(events)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot write alerts: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc

    def _upsert_alerts(self, session: Session, alerts: list[Alert], now: float) -> None:
        statement = self._insert(AlertRow).values([alert_row(a, now) for a in alerts])
        updated = {c: statement.excluded[c] for c in ALERT_COLUMNS if c != "id"}
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[AlertRow.id], set_=updated, where=AlertRow.revision < statement.excluded.revision
            )
        )

    def _upsert_entities(self, session: Session, alerts: list[Alert]) -> None:
        assets: dict[str, dict[str, Any]] = {}
        gateways: dict[str, dict[str, Any]] = {}
        for a in alerts:
            if a.fault != "gateway_silent":
                seen = assets.setdefault(
                    a.asset_id,
                    {"id": a.asset_id, "site": a.site, "asset_type": a.asset_type, "gateway_id": a.gateway_id}
                    | {"first_seen": a.first_seen, "last_seen": a.last_seen},
                )
                seen["first_seen"], seen["last_seen"] = min(seen["first_seen"], a.first_seen), max(seen["last_seen"], a.last_seen)
            if a.gateway_id:
                gw = gateways.setdefault(
                    a.gateway_id, {"id": a.gateway_id, "site": a.site, "first_seen": a.first_seen, "last_seen": a.last_seen}
                )
                gw["first_seen"], gw["last_seen"] = min(gw["first_seen"], a.first_seen), max(gw["last_seen"], a.last_seen)
        for table, rows in ((AssetRow, assets), (GatewayRow, gateways)):
            if not rows:
                continue
            statement = self._insert(table).values(sorted(rows.values(), key=lambda r: r["id"]))
            columns = table.__table__.columns
            update = {c.name: statement.excluded[c.name] for c in columns if c.name not in ("id", "first_seen", "last_seen")}
            update["first_seen"] = func.min(columns["first_seen"], statement.excluded.first_seen)
            update["last_seen"] = func.max(columns["last_seen"], statement.excluded.last_seen)
            if self.dialect == "postgresql":
                update["first_seen"] = func.least(columns["first_seen"], statement.excluded.first_seen)
                update["last_seen"] = func.greatest(columns["last_seen"], statement.excluded.last_seen)
            session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=update))

    # ----------------------------------------------------------------------------- queries

    def list_alerts(self, query: AlertQuery) -> tuple[list[dict[str, Any]], int]:
        """A page of alerts (worst and newest first) and the total that match."""
        conditions: list[Any] = []
        if query.states:
            conditions.append(AlertRow.state.in_(query.states))
        if query.verdict_only:
            conditions.append(AlertRow.verdict.is_not(None))
        for column, value in (
            (AlertRow.asset_id, query.asset_id),
            (AlertRow.site, query.site),
            (AlertRow.fault, query.fault),
            (AlertRow.severity, query.severity),
        ):
            if value is not None:
                conditions.append(column == value)
        try:
            with Session(self.engine) as session:
                total = session.scalar(select(func.count()).select_from(AlertRow).where(*conditions)) or 0
                rows = session.scalars(
                    select(AlertRow)
                    .where(*conditions)
                    .order_by(AlertRow.severity_rank.desc(), AlertRow.last_seen.desc(), AlertRow.id)
                    .limit(query.limit)
                    .offset(query.offset)
                ).all()
                return [row_to_alert(r) for r in rows], total
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read alerts: {str(exc).splitlines()[0]}") from exc

    def active_alerts(self, entity_id: str) -> list[Alert]:
        """The open and acknowledged alerts of one asset (or gateway), as the wire contract has them."""
        try:
            with Session(self.engine) as session:
                rows = session.scalars(
                    select(AlertRow).where(AlertRow.asset_id == entity_id, AlertRow.state != AlertState.RESOLVED.value)
                ).all()
                alerts = []
                for row in rows:
                    try:
                        alerts.append(row_alert(row))
                    except ValidationError as exc:  # a row this version cannot read back: not continued, said so
                        log.warning("stored alert %s is not a valid Alert, not continued: %s", row.id, exc)
                return alerts
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read the alerts of {entity_id}: {str(exc).splitlines()[0]}") from exc

    def stored_alert(self, alert_id: str) -> Alert | None:
        """One alert as the wire contract has it (None: unknown)."""
        try:
            with Session(self.engine) as session:
                row = session.get(AlertRow, alert_id)
                return row_alert(row) if row is not None else None
        except ValidationError as exc:
            raise DatabaseError(f"stored alert {alert_id} is not a valid Alert: {exc}") from exc
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read alert {alert_id}: {str(exc).splitlines()[0]}") from exc

    def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        """One alert with its history (every revision, oldest first)."""
        try:
            with Session(self.engine) as session:
                row = session.get(AlertRow, alert_id)
                if row is None:
                    return None
                events = session.scalars(
                    select(AlertEventRow).where(AlertEventRow.alert_id == alert_id).order_by(AlertEventRow.revision)
                ).all()
                result = row_to_alert(row)
                result["history"] = [
                    {"revision": e.revision, "change": e.change, "state": e.state, "severity": e.severity, "ts": e.ts}
                    | {"occurrences": e.alert.get("occurrences"), "by": _by(e.change, e.alert)}
                    | {"probability": e.alert.get("last_probability")}
                    | {"channels": _channels(e.alert)}
                    | {"verdict": e.alert.get("verdict"), "verdict_fault": e.alert.get("verdict_fault")}
                    | {"note": _note(e.change, e.alert)}
                    | {"suppression": e.alert.get("suppression"), "shelved_until": e.alert.get("shelved_until")}
                    for e in events
                ]
                return result
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read alert {alert_id}: {str(exc).splitlines()[0]}") from exc

    def kpi_inputs(self, since: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """What the KPIs are computed from: every alert's first revision since ``since``, and the active alerts."""
        try:
            with Session(self.engine) as session:
                openings = [
                    e.alert
                    for e in session.scalars(select(AlertEventRow).where(AlertEventRow.revision == 1, AlertEventRow.ts >= since))
                ]
                active = [
                    {"id": r.id, "site": r.site, "first_seen": r.first_seen}
                    for r in session.execute(
                        select(AlertRow.id, AlertRow.site, AlertRow.first_seen).where(AlertRow.state != AlertState.RESOLVED.value)
                    )
                ]
                return openings, active
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read the alert history: {str(exc).splitlines()[0]}") from exc

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            return {state: n for state, n in session.execute(select(AlertRow.state, func.count()).group_by(AlertRow.state))}

    def event_count(self, alert_ids: Iterable[str] | None = None) -> int:
        with Session(self.engine) as session:
            statement = select(func.count()).select_from(AlertEventRow)
            if alert_ids is not None:
                statement = statement.where(AlertEventRow.alert_id.in_(list(alert_ids)))
            return session.scalar(statement) or 0
