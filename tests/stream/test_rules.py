"""One alert per real problem: k-of-n, hysteresis, severity, escalation and idempotency hold for any input."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.contracts import SEVERITY_ORDER, Alert, AlertCommand, AlertState, Severity
from stream.config import LivenessSettings, RuleOverride, RuleParams, RuleSettings
from stream.liveness import apply_heartbeat, check_silence
from stream.rules import apply_command, apply_prediction, apply_tick, severity_for
from stream.state import EntityState
from stream.synthetic import prediction

T0 = 1_800_000_000.0
FAULT = "bearing_outer_race"
RULES = RuleSettings(default=RuleParams(k=3, n=5, quiet_predictions=3, quiet_s=0), minor_update_s=0)


def fresh() -> EntityState:
    return EntityState(kind="asset", id="p1", site="plant1")


def run(
    probabilities: list[float], rules: RuleSettings = RULES, order: list[int] | None = None, state: EntityState | None = None
) -> tuple[EntityState, list[Alert]]:
    """Feed one prediction per probability (window i ends at T0 + 10 i), in ``order``; returns all alert changes."""
    state = state or fresh()
    changes: list[Alert] = []
    for i in order if order is not None else range(len(probabilities)):
        p = probabilities[i]
        pred = prediction("p1", T0 + 10 * i, FAULT if p >= 0.5 else "normal", p if p >= 0.5 else 1 - p)
        changes += apply_prediction(state, pred, rules, now=T0 + 10 * i + 1)
    return state, changes


probabilities = st.lists(st.sampled_from([0.05, 0.3, 0.75, 0.95]), min_size=1, max_size=40)


@given(probabilities)
def test_an_alert_opens_exactly_when_k_of_the_last_n_predictions_are_hits(ps: list[float]) -> None:
    _, changes = run(ps)
    opened = [c for c in changes if c.revision == 1]
    hits = [p >= 0.7 for p in ps]
    first_decidable = next((i for i in range(len(ps)) if hits[i] and sum(hits[max(0, i - 4) : i + 1]) >= 3), None)
    if first_decidable is None:
        assert not opened
    else:
        assert (opened[0].deciding_prediction_id or "").endswith(str(round((T0 + 10 * first_decidable) * 1000)))
        assert opened[0].occurrences >= 3


@given(probabilities)
def test_never_two_active_alerts_for_one_fault_and_revisions_only_grow(ps: list[float]) -> None:
    _, changes = run(ps)
    active: set[str] = set()
    revisions: dict[str, int] = {}
    for change in changes:
        assert change.revision > revisions.get(change.id, 0)
        revisions[change.id] = change.revision
        if change.state is AlertState.RESOLVED:
            active.discard(change.id)
        else:
            active.add(change.id)
        assert len(active) <= 1


@given(probabilities, st.data())
def test_duplicated_predictions_change_nothing(ps: list[float], data: st.DataObject) -> None:
    _state, changes = run(ps)
    order = list(range(len(ps)))
    dups = data.draw(st.lists(st.integers(0, len(ps) - 1), max_size=10))
    for d in dups:  # redeliveries: each duplicate arrives again, later than its original
        order.insert(data.draw(st.integers(order.index(d) + 1, len(order))), d)
    state2, changes2 = run(ps, order=order)
    assert [(c.id, c.revision, c.state, c.occurrences) for c in changes2] == [
        (c.id, c.revision, c.state, c.occurrences) for c in changes
    ]
    assert state2.duplicates + state2.late == len(dups)


@given(probabilities, st.randoms(use_true_random=False))
def test_reordered_predictions_never_double_count(ps: list[float], rnd: random.Random) -> None:
    order = list(range(len(ps)))
    for start in range(0, len(order), 3):  # shuffle inside small blocks: realistic reordering
        block = order[start : start + 3]
        rnd.shuffle(block)
        order[start : start + 3] = block
    order += order[: len(order) // 2]  # and replay half of it
    _, changes = run(ps, order=order)
    hits = sum(p >= 0.7 for p in ps)
    assert sum(1 for c in changes if c.revision == 1) <= max(1, hits // 3)
    for change in changes:
        assert change.occurrences <= hits


def test_replay_from_any_point_converges_to_the_same_alerts() -> None:
    ps = [0.05, 0.95, 0.95, 0.3, 0.95, 0.95, 0.05, 0.05, 0.05, 0.05, 0.95, 0.95, 0.95]
    _state, changes = run(ps)
    for cut in range(len(ps)):  # a crash after `cut` predictions, state recovered, replay from the start
        replayed, _ = run(ps, order=list(range(cut)))
        _, again = run(ps, order=list(range(len(ps))), state=replayed)
        ids = {c.id for c in changes}
        assert {c.id for c in again} <= ids


def test_hysteresis_resolves_only_after_quiet_and_rearms_after() -> None:
    _, changes = run([0.95, 0.95, 0.95, 0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.95])
    states = [(c.revision, c.state) for c in changes if c.revision == 1 or c.state is AlertState.RESOLVED]
    assert states == [
        (1, AlertState.OPEN),
        (changes[-1].revision, AlertState.RESOLVED),
    ]  # 0.5 is not quiet; one hit later is not enough


@given(st.floats(0, 1), st.floats(0, 1), st.one_of(st.none(), st.floats(0, 500)), st.integers(1, 50))
def test_severity_is_monotone_in_probability(p1: float, p2: float, ttf: float | None, n: int) -> None:
    params = RuleParams()
    low, high = sorted((p1, p2))
    assert SEVERITY_ORDER[severity_for(low, ttf, n, params)] <= SEVERITY_ORDER[severity_for(high, ttf, n, params)]
    assert SEVERITY_ORDER[severity_for(high, None, n, params)] <= SEVERITY_ORDER[severity_for(high, 1.0, n, params)]


def test_overrides_apply_by_specificity() -> None:
    rules = RuleSettings(
        overrides=[
            RuleOverride(asset_type="pump", k=4, n=6),
            RuleOverride(fault="cavitation", threshold=0.8),
            RuleOverride(fault="cavitation", asset_type="pump", k=5),
        ]
    )
    assert rules.params("cavitation", "pump").model_dump() == RuleParams(threshold=0.8, k=5, n=6).model_dump()
    assert rules.params("imbalance", "fan") == RuleParams()
    assert rules.window == 6


@settings(max_examples=30)
@given(st.integers(0, 5))
def test_operator_commands_apply_once_and_unacknowledged_alerts_escalate(repeats: int) -> None:
    rules = RuleSettings(default=RuleParams(k=1, n=1, escalate_after_s=100, renotify_s=50), minor_update_s=0)
    state, (opened,) = run([0.75], rules)
    assert opened.severity is Severity.LOW
    (renotified,) = apply_tick(state, rules, now=opened.updated_at + 60)
    assert renotified.revision == 2 and renotified.severity is Severity.LOW
    (escalated,) = apply_tick(state, rules, now=opened.updated_at + 101)
    assert escalated.severity is Severity.MEDIUM and escalated.escalations == 1
    ack = AlertCommand(id="c1", alert_id=opened.id, action="acknowledge", by="ana", ts=T0 + 200)
    (acked,) = apply_command(state, ack, now=T0 + 200)
    assert acked.state is AlertState.ACKNOWLEDGED and acked.acknowledged_by == "ana"
    for _ in range(repeats):
        assert apply_command(state, ack, now=T0 + 300) == []
    assert apply_tick(state, rules, now=T0 + 10_000) == []  # acknowledged: no escalation, no re-notify
    (resolved,) = apply_command(state, AlertCommand(id="c2", alert_id=opened.id, action="resolve", ts=T0 + 400), now=T0 + 400)
    assert resolved.state is AlertState.RESOLVED and resolved.resolution == "operator"


def test_silent_assets_and_gateways_raise_one_alert_per_silence() -> None:
    liveness = LivenessSettings(asset_silent_s=30, gateway_silent_s=60)
    state, _ = run([0.05])
    heard = state.last_heard
    assert check_silence(state, liveness, heard + 29) == []
    (silent,) = check_silence(state, liveness, heard + 31)
    assert silent.fault == "asset_silent" and silent.state is AlertState.OPEN
    assert check_silence(state, liveness, heard + 100) == []  # one alert per silence
    changes = apply_prediction(state, prediction("p1", T0 + 500, "normal", 0.99), RULES, now=heard + 200)
    assert [(c.id, c.state) for c in changes] == [(silent.id, AlertState.RESOLVED)]

    gateway = EntityState(kind="gateway", id="gw1", site="plant1")
    assert apply_heartbeat(gateway, "plant1", T0) == []
    (gw_silent,) = check_silence(gateway, liveness, T0 + 61)
    assert gw_silent.fault == "gateway_silent" and gw_silent.asset_id == "gw1"
    (back,) = apply_heartbeat(gateway, "plant1", T0 + 90)
    assert back.state is AlertState.RESOLVED and back.resolution == "auto"


def test_state_round_trips_through_bytes() -> None:
    state, _ = run([0.95, 0.95, 0.95, 0.95])
    assert EntityState.from_bytes(state.to_bytes()) == state
