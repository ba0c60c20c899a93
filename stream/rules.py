"""Alert rules: deterministic functions of (state, input, now) that return the alert changes to publish.

Nothing here does I/O, so the rules are property-tested directly and a replay of the
same inputs on the same state yields the same alerts (same ids, same revisions).

Lifecycle of one (asset, fault) alert::

                k of last n predictions >= threshold
      (none) ──────────────────────────────────────> OPEN ──acknowledge──> ACKNOWLEDGED
        ^                                           │  ^ worsens (severity up)  │
        │                                           │  └────────────────────────┘
        │      quiet: last m predictions < clear_threshold and quiet_s since the last hit,
        │      or an operator resolves it
        └──────────────────────────── RESOLVED <────┴──────────────────────────┘

While OPEN: re-published every ``renotify_s``; one severity level up every
``escalate_after_s`` without acknowledgement. After a resolution only predictions newer
than it count towards the next alert (hysteresis across episodes).
"""

from __future__ import annotations

from forewarn.contracts import (
    LIVENESS_FAULTS,
    NORMAL,
    SEVERITY_ORDER,
    Alert,
    AlertCommand,
    AlertState,
    AssetCommand,
    FaultPrediction,
    PlantVerdict,
    Severity,
    alert_id,
)
from stream.config import RuleParams, RuleSettings
from stream.state import EntityState, FaultTrack, OutOfService, WindowEntry

SEVERITIES: list[Severity] = list(Severity)
HOUR = 3600.0


def severity_for(peak_probability: float, ttf_hours: float | None, occurrences: int, params: RuleParams) -> Severity:
    """Severity from how sure the model is, how soon the machine fails, and how long the fault has persisted."""
    level = 0
    if peak_probability >= params.high_probability:
        level = 2
    elif peak_probability >= params.medium_probability:
        level = 1
    if ttf_hours is not None:
        if ttf_hours <= params.critical_ttf_hours:
            level = 3
        elif ttf_hours <= params.high_ttf_hours:
            level = max(level, 2)
        elif ttf_hours <= params.medium_ttf_hours:
            level = max(level, 1)
    if occurrences >= params.persistent_occurrences:
        level = min(3, level + 1)
    return SEVERITIES[level]


def hits(window: list[WindowEntry], fault: str, params: RuleParams, after: float = 0.0) -> list[WindowEntry]:
    """The predictions among the last n whose probability for ``fault`` reaches the threshold (newer than ``after``)."""
    return [e for e in window[-params.n :] if e.end > after and e.p(fault) >= params.threshold]


def is_quiet(window: list[WindowEntry], fault: str, params: RuleParams, last_hit: float | None, chattering: bool = False) -> bool:
    """Hysteresis (the off-delay): the last m predictions are all below the clear threshold, and quiet_s has passed
    since the last hit (chatter_quiet_s for a chattering alert: it is damped)."""
    recent = window[-params.quiet_predictions :]
    if len(recent) < params.quiet_predictions or any(e.p(fault) >= params.clear_threshold for e in recent):
        return False
    hold = max(params.quiet_s, params.chatter_quiet_s) if chattering else params.quiet_s
    return last_hit is None or recent[-1].end - last_hit >= hold


def base_suppression(state: EntityState, fault: str, rules: RuleSettings) -> tuple[str | None, str | None]:
    """Whether a (new or returning) alert of ``fault`` is annunciated: (suppression, reason); (None, None) when it is."""
    if state.out_of_service is not None:
        return "out_of_service", state.out_of_service.reason
    for cause, track in state.tracks.items():
        cause_alert = track.alert if track.is_open and cause != fault else None
        # a symptom of a symptom is not a cause
        if cause_alert is not None and fault in rules.symptoms.get(cause, ()) and cause_alert.suppression != "suppressed":
            return "suppressed", f"symptom of {cause} ({cause_alert.id})"
    return None, None


def publish(track: FaultTrack, now: float, **changes: object) -> Alert:
    """A new revision of the track's alert (with ``changes``), remembered as published at ``now``."""
    assert track.alert is not None, "publish needs an alert"
    alert = track.alert.model_copy(update={**changes, "revision": track.alert.revision + 1, "updated_at": now})
    track.alert = Alert.model_validate(alert.model_dump())  # re-validated: a rule bug must not reach the wire
    track.last_emit = now
    track.dirty = False
    return track.alert


def _open(
    state: EntityState,
    fault: str,
    found: list[WindowEntry],
    prediction: FaultPrediction,
    params: RuleParams,
    rules: RuleSettings,
    now: float,
) -> Alert:
    decider = found[-1] if found[-1].id == prediction.id else next(e for e in found if e.id == prediction.id)
    peak = max(e.p(fault) for e in found)
    track = state.tracks.setdefault(fault, FaultTrack())
    track.opens = [t for t in track.opens if decider.end - t < HOUR] + [decider.end]
    suppression, reason = base_suppression(state, fault, rules)
    alert = Alert(
        id=alert_id(state.id, fault, decider.end),
        site=state.site,
        asset_id=state.id,
        asset_type=state.asset_type,
        gateway_id=state.gateway_id,
        fault=fault,
        severity=severity_for(peak, decider.ttf_hours, len(found), params),
        state=AlertState.OPEN,
        first_seen=found[0].end,
        last_seen=found[-1].end,
        occurrences=len(found),
        peak_probability=peak,
        last_probability=decider.p(fault),
        ttf_hours=decider.ttf_hours,
        evidence=prediction.evidence,
        model_version=prediction.model_version,
        deciding_prediction_id=decider.id,
        revision=1,
        updated_at=now,
        suppression=suppression,
        suppression_reason=reason,
        chattering=len(track.opens) > params.chatter_opens_per_hour,
        plant=_pending_verdict(state, fault, found[0].end),
    )
    track.alert, track.last_hit, track.last_emit, track.last_escalation, track.dirty = alert, found[-1].end, now, now, False
    return alert


PLANT_PENDING_S = 3600.0
"""A plant verdict waits this long (window time) for its fault's alert to open; older ones are dropped."""


def _pending_verdict(state: EntityState, fault: str, first_seen: float) -> PlantVerdict | None:
    """The plant verdict on a window of this alert that came before the alert opened (its on-delay), if any."""
    verdict = state.plant_pending.pop(fault, None)
    return verdict if verdict is not None and verdict.window_end >= first_seen - PLANT_PENDING_S else None


def apply_plant_verdict(state: EntityState, verdict: PlantVerdict, now: float) -> list[Alert]:
    """Record the plant tier's verdict on the asset's alert for the edge's fault (a new revision).

    The alert of the edge's fault takes it; for an edge verdict of normal, the alert of the
    fault the plant model names, if one is open. Without an open alert the verdict waits in
    the state for that fault's alert to open (``plant_pending``), and the newest one wins.
    A verdict already recorded is not applied twice (a replay).
    """
    for fault in dict.fromkeys((verdict.edge_fault, verdict.fault)):
        track = state.tracks.get(fault)
        if track is not None and track.is_open and track.alert is not None:
            if track.alert.plant is not None and track.alert.plant.prediction_id == verdict.prediction_id:
                return []
            return [publish(track, now, plant=verdict)]
        if fault == verdict.edge_fault and fault != NORMAL:
            break
    key = verdict.edge_fault if verdict.edge_fault != NORMAL else verdict.fault
    if key != NORMAL:
        state.plant_pending[key] = verdict
        for stale in [f for f, v in state.plant_pending.items() if v.window_end < verdict.window_end - PLANT_PENDING_S]:
            del state.plant_pending[stale]
    return []


def _resolve(state: EntityState, fault: str, now: float, how: str) -> Alert:
    track = state.tracks[fault]
    alert = publish(track, now, state=AlertState.RESOLVED, resolved_at=now, resolution=how)
    track.alert = None
    track.last_hit = None
    track.rearm_after = state.newest_end
    return alert


def apply_prediction(state: EntityState, prediction: FaultPrediction, rules: RuleSettings, now: float) -> list[Alert]:
    """Fold one prediction into an asset's state; returns the alert changes to publish (often none)."""
    changes: list[Alert] = []
    state.site, state.gateway_id = prediction.site, prediction.gateway_id
    state.asset_type = prediction.asset_type or state.asset_type
    state.last_heard = max(state.last_heard, now)
    silent = state.tracks.get("asset_silent")
    if silent is not None and silent.is_open:
        changes.append(_resolve(state, "asset_silent", now, "auto"))

    floor = rules.lowest_clear_threshold
    probs = {f: p for f, p in prediction.probabilities.items() if p >= floor and f != NORMAL and f not in LIVENESS_FAULTS}
    entry = WindowEntry(end=prediction.window_end, id=prediction.id, probs=probs, ttf_hours=prediction.ttf_hours)
    if not state.insert(entry, rules.window):
        return changes
    newest = state.window[-1] is entry

    for fault in sorted(set(probs) | {f for f, t in state.tracks.items() if t.is_open and f not in LIVENESS_FAULTS}):
        params = rules.params(fault, state.asset_type)
        track = state.tracks.get(fault)
        p = entry.p(fault)
        if newest and p >= params.threshold:
            track = state.tracks.setdefault(fault, FaultTrack())
            track.hit_since = entry.end if track.hit_since is None else track.hit_since
        elif newest and track is not None and p < params.clear_threshold:
            track.hit_since = None  # quiet again: the on-delay starts over
        if track is not None and track.is_open:
            changes += _update_open(state, fault, track, entry, newest, prediction, params, now)
        elif p >= params.threshold:
            found = hits(state.window, fault, params, after=track.rearm_after if track else 0.0)
            since = track.hit_since if track is not None and track.hit_since is not None else entry.end
            if len(found) >= params.k and entry in found and entry.end - since >= params.on_delay_s:
                changes.append(_open(state, fault, found, prediction, params, rules, now))
    changes += flush_minor(state, rules, now)
    _forget_stale_tracks(state)
    return changes


def _update_open(
    state: EntityState,
    fault: str,
    track: FaultTrack,
    entry: WindowEntry,
    newest: bool,
    prediction: FaultPrediction,
    params: RuleParams,
    now: float,
) -> list[Alert]:
    assert track.alert is not None
    alert, p = track.alert, entry.p(fault)
    if p < params.threshold:
        if not is_quiet(state.window, fault, params, track.last_hit, alert.chattering):
            return []
        if alert.severity is Severity.CRITICAL and params.latch_critical:
            # latched: the condition cleared, the alert waits for an operator's resolve
            return [] if alert.latched else [publish(track, now, latched=True)]
        return [_resolve(state, fault, now, "auto")]
    peak = max(alert.peak_probability, p)
    update: dict[str, object] = {
        "occurrences": alert.occurrences + 1,
        "last_seen": max(alert.last_seen, entry.end),
        "peak_probability": peak,
        "latched": False,
    }
    if newest:
        update |= {
            "last_probability": p,
            "ttf_hours": entry.ttf_hours,
            "evidence": prediction.evidence,
            "model_version": prediction.model_version,
        }
    track.last_hit = max(track.last_hit or entry.end, entry.end)
    ttf = update.get("ttf_hours", alert.ttf_hours)
    worse = severity_for(peak, ttf if isinstance(ttf, float) else None, alert.occurrences + 1, params)
    if SEVERITY_ORDER[worse] > SEVERITY_ORDER[alert.severity]:
        # it got worse: publish at once, and an acknowledged alert needs a new acknowledgement
        track.last_escalation = now
        changes = {"severity": worse, "escalations": alert.escalations + 1, "state": AlertState.OPEN}
        return [publish(track, now, **update, **changes)]
    track.alert = alert.model_copy(update=update)
    track.dirty = True
    return []


def flush_minor(state: EntityState, rules: RuleSettings, now: float) -> list[Alert]:
    """Publish alerts whose only changes are new occurrences, at most every ``minor_update_s``."""
    return [
        publish(track, now)
        for track in state.tracks.values()
        if track.dirty and track.is_open and now - track.last_emit >= rules.minor_update_s
    ]


def _forget_stale_tracks(state: EntityState) -> None:
    """Drop closed tracks whose re-arm point fell out of the window: they can no longer matter (bounded state)."""
    oldest = state.window[0].end if state.window else 0.0
    newest = state.newest_end
    for fault, track in list(state.tracks.items()):
        track.opens = [t for t in track.opens if newest - t < HOUR]
        if track.alert is None and track.rearm_after < oldest and track.hit_since is None and not track.opens:
            del state.tracks[fault]


def verdict_fields(command: AlertCommand, now: float) -> dict[str, object]:
    """The alert fields an operator's verdict sets (none without a verdict)."""
    if command.verdict is None:
        return {}
    return {
        "verdict": command.verdict,
        "verdict_fault": command.found_fault,
        "verdict_by": command.by,
        "verdict_at": now,
        "verdict_note": command.note,
    }


def apply_command(state: EntityState, command: AlertCommand, now: float, rules: RuleSettings | None = None) -> list[Alert]:
    """An operator acknowledges, resolves (with a verdict or not), shelves or unshelves an alert; each command id
    takes effect at most once."""
    if not state.remember_command(command.id):
        return []
    rules = rules or RuleSettings()
    verdict = verdict_fields(command, now) | ({"operator_note": command.note} if command.note else {})
    for fault, track in state.tracks.items():
        if track.alert is None or track.alert.id != command.alert_id or not track.is_open:
            continue
        if command.action == "shelve":
            minutes = min(command.minutes or 0.0, rules.max_shelve_minutes)
            shelf = {"suppression": "shelved", "suppression_reason": command.note, "shelved_by": command.by}
            return [publish(track, now, **shelf, shelved_until=now + 60 * minutes)]
        if command.action == "unshelve":
            return [_unshelve(state, fault, track, rules, now)] if track.alert.suppression == "shelved" else []
        if command.action == "resolve":
            update = {"acknowledged_by": track.alert.acknowledged_by or command.by, "resolved_by": command.by} | verdict
            track.alert = track.alert.model_copy(update=update)
            return [_resolve(state, fault, now, "operator")]
        if track.alert.state is AlertState.OPEN:
            track.last_escalation = now
            return [
                publish(track, now, state=AlertState.ACKNOWLEDGED, acknowledged_by=command.by, acknowledged_at=now, **verdict)
            ]
        if verdict:  # acknowledged already: the verdict alone is news
            return [publish(track, now, **verdict)]
    return []


def _unshelve(state: EntityState, fault: str, track: FaultTrack, rules: RuleSettings, now: float) -> Alert:
    """A shelved alert returns: annunciated again, unless its asset is out of service or it is a symptom."""
    suppression, reason = base_suppression(state, fault, rules)
    return publish(track, now, suppression=suppression, suppression_reason=reason, shelved_by=None, shelved_until=None)


def apply_asset_command(state: EntityState, command: AssetCommand, rules: RuleSettings, now: float) -> list[Alert]:
    """An asset goes out of service (its active alerts stop being annunciated, new ones open suppressed) or back."""
    if not state.remember_command(command.id):
        return []
    changes = []
    if command.action == "out_of_service":
        state.out_of_service = OutOfService(by=command.by, since=now, reason=command.note)
        for track in state.tracks.values():
            if track.is_open and track.alert is not None and track.alert.suppression in (None, "suppressed"):
                changes.append(publish(track, now, suppression="out_of_service", suppression_reason=command.note))
        return changes
    if state.out_of_service is None:
        return []
    state.out_of_service = None
    for fault, track in state.tracks.items():
        if track.is_open and track.alert is not None and track.alert.suppression == "out_of_service":
            suppression, reason = base_suppression(state, fault, rules)
            changes.append(publish(track, now, suppression=suppression, suppression_reason=reason))
    return changes


def apply_late_verdict(alert: Alert, command: AlertCommand, now: float) -> Alert | None:
    """A verdict on an alert that is already resolved (the technician reported after it cleared): its next revision."""
    if alert.state is not AlertState.RESOLVED or command.verdict is None:
        return None
    update = verdict_fields(command, now) | {"revision": alert.revision + 1, "updated_at": now}
    return Alert.model_validate(alert.model_copy(update=update).model_dump())


def apply_tick(state: EntityState, rules: RuleSettings, now: float) -> list[Alert]:
    """Time passes: re-notify and escalate unacknowledged alerts, publish pending minor updates."""
    changes: list[Alert] = []
    for fault, track in state.tracks.items():
        if not track.is_open or track.alert is None:
            continue
        params = rules.params(fault, state.asset_type)
        alert = track.alert
        if alert.suppression == "shelved" and alert.shelved_until is not None and now >= alert.shelved_until:
            track.last_escalation = now
            changes.append(_unshelve(state, fault, track, rules, now))
            continue
        if alert.suppression is not None:
            continue  # recorded, not annunciated: no re-notification, no escalation, no re-alarm
        acked_at = alert.acknowledged_at
        if alert.state is AlertState.ACKNOWLEDGED and params.realarm_s > 0 and acked_at and now - acked_at >= params.realarm_s:
            track.last_escalation = now  # re-alarm: still active long after its acknowledgement, annunciated again
            changes.append(publish(track, now, state=AlertState.OPEN))
            continue
        if alert.state is AlertState.OPEN and now - track.last_escalation >= params.escalate_after_s:
            track.last_escalation = now
            if alert.severity is not Severity.CRITICAL:
                level = SEVERITIES[SEVERITY_ORDER[alert.severity] + 1]
                changes.append(publish(track, now, severity=level, escalations=alert.escalations + 1))
                continue
        if alert.state is AlertState.OPEN and now - track.last_emit >= params.renotify_s:
            changes.append(publish(track, now))
    return changes + flush_minor(state, rules, now)


def adopt(state: EntityState, alerts: list[Alert], now: float) -> list[Alert]:
    """Continue the active alerts the database holds for an entity this worker has no state for.

    A worker that starts with fresh Kafka state (a new broker, a new app id, a changelog
    lost) against an existing database must not open a second alert for a problem that
    is already open: it takes the stored alert over, same id, next revision. Returns the
    alerts it adopted.
    """
    adopted = []
    for alert in sorted(alerts, key=lambda a: a.updated_at):
        track = state.tracks.get(alert.fault)
        if alert.state is AlertState.RESOLVED or (track is not None and track.is_open):
            continue
        state.tracks[alert.fault] = FaultTrack(alert=alert, last_hit=alert.last_seen, last_emit=now, last_escalation=now)
        adopted.append(alert)
    return adopted


def open_liveness_alert(state: EntityState, fault: str, silent_since: float, severity: Severity, now: float) -> Alert:
    """Raise ``asset_silent`` / ``gateway_silent``; its id is fixed by when the silence began, so replays agree."""
    opened = max(silent_since, state.last_heard)
    alert = Alert(
        id=alert_id(state.id, fault, opened),
        site=state.site,
        asset_id=state.id,
        asset_type=state.asset_type if state.kind == "asset" else None,
        gateway_id=state.gateway_id if state.kind == "asset" else state.id,
        fault=fault,
        severity=severity,
        state=AlertState.OPEN,
        first_seen=opened,
        last_seen=opened,
        occurrences=1,
        peak_probability=1.0,
        last_probability=1.0,
        revision=1,
        updated_at=now,
        suppression="out_of_service" if state.out_of_service is not None else None,
        suppression_reason=state.out_of_service.reason if state.out_of_service is not None else None,
    )
    track = state.tracks.setdefault(fault, FaultTrack())
    track.alert, track.last_emit, track.last_escalation, track.dirty = alert, now, now, False
    state.silence_reported = state.last_heard
    return alert


def resolve_liveness(state: EntityState, fault: str, now: float) -> list[Alert]:
    """The asset or gateway reports again: its silent alert resolves itself."""
    track = state.tracks.get(fault)
    return [_resolve(state, fault, now, "auto")] if track is not None and track.is_open else []
