"""ISA-18.2 alarm states hold for any sequence of predictions, operator actions and time: shelving returns on time,
suppressed and out-of-service alerts are recorded but never annunciated, critical alerts latch, chattering is damped."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.contracts import Alert, AlertCommand, AlertState, AssetCommand, FaultPrediction, Severity
from stream.config import RuleParams, RuleSettings
from stream.rules import apply_asset_command, apply_command, apply_prediction, apply_tick
from stream.state import EntityState
from stream.synthetic import prediction

T0 = 1_800_000_000.0
CAUSE, SYMPTOM = "lubrication_loss", "overheating"
RULES = RuleSettings(
    default=RuleParams(
        k=2,
        n=3,
        quiet_predictions=2,
        quiet_s=0,
        renotify_s=300,
        escalate_after_s=600,
        realarm_s=1200,
        chatter_opens_per_hour=2,
        chatter_quiet_s=120,
    ),
    symptoms={CAUSE: [SYMPTOM]},
    max_shelve_minutes=60,
    minor_update_s=0,
)


def both(end: float, cause: float, symptom: float, ttf: float | None = None) -> FaultPrediction:
    """A prediction with a probability for each of the two faults (the rest normal)."""
    base = prediction("p1", end, CAUSE, 0.9, ttf_hours=ttf)
    probabilities = {CAUSE: cause, SYMPTOM: symptom, "normal": round(max(0.0, 1 - cause - symptom), 6)}
    return base.model_copy(update={"probabilities": probabilities})


@dataclass
class Run:
    """One asset driven by a sequence of operations; every published change, and what each tick published."""

    state: EntityState = field(default_factory=lambda: EntityState(kind="asset", id="p1", site="plant1"))
    now: float = T0
    end: float = T0
    changes: list[Alert] = field(default_factory=list)
    opened_while_oos: list[Alert] = field(default_factory=list)
    n: int = 0

    def active(self) -> list[Alert]:
        return self.state.open_alerts()

    def command(self, action: str, **extra: object) -> None:
        for alert in self.active():
            self.n += 1
            command = AlertCommand(id=f"c{self.n}", alert_id=alert.id, action=action, by="ana", ts=self.now, **extra)  # type: ignore[arg-type]
            self.changes += apply_command(self.state, command, self.now, RULES)

    def step(self, op: tuple[str, float, float, bool]) -> None:
        kind, a, b, flag = op
        if kind == "predict":
            self.end += 10
            self.now = max(self.now, self.end + 1)
            oos = self.state.out_of_service is not None
            out = apply_prediction(self.state, both(self.end, a, b, 2.0 if flag else None), RULES, self.now)
            self.opened_while_oos += [c for c in out if c.revision == 1 and oos]
            self.changes += out
        elif kind == "tick":
            self.now += a
            before = {a.id: a for a in self.active()}
            out = apply_tick(self.state, RULES, self.now)
            for change in out:  # a suppressed alert publishes nothing on a tick but its return from the shelf
                held = before[change.id]
                if held.suppression is not None:
                    assert held.suppression == "shelved" and held.shelved_until is not None
                    assert held.shelved_until <= self.now and change.suppression != "shelved"
            assert not [x for x in self.active() if x.suppression == "shelved" and (x.shelved_until or 0) <= self.now]
            self.changes += out
        elif kind == "shelve":
            self.command("shelve", minutes=a, note="valve work")
        elif kind in ("acknowledge", "resolve", "unshelve"):
            self.command(kind)
        else:
            self.n += 1
            command = AssetCommand(id=f"a{self.n}", asset_id="p1", action=kind, by="bo", note="overhaul", ts=self.now)  # type: ignore[arg-type]
            self.changes += apply_asset_command(self.state, command, RULES, self.now)


probability = st.sampled_from([0.0, 0.2, 0.45, 0.75, 0.95])
ops = st.lists(
    st.one_of(
        st.tuples(st.just("predict"), probability, probability, st.booleans()).filter(lambda t: t[1] + t[2] <= 1.0),
        st.tuples(st.just("tick"), st.sampled_from([30.0, 300.0, 1300.0, 4000.0]), st.just(0.0), st.just(False)),
        st.tuples(st.just("shelve"), st.sampled_from([1.0, 30.0, 600.0]), st.just(0.0), st.just(False)),
        st.tuples(st.sampled_from(["acknowledge", "resolve", "unshelve"]), st.just(0.0), st.just(0.0), st.just(False)),
        st.tuples(st.sampled_from(["out_of_service", "in_service"]), st.just(0.0), st.just(0.0), st.just(False)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_alarm_states_hold_for_any_sequence(sequence: list[tuple[str, float, float, bool]]) -> None:
    run = Run()
    for op in sequence:
        run.step(op)
        faults = [a.fault for a in run.active()]
        assert len(faults) == len(set(faults))  # never two active alerts for one fault
    revisions: dict[str, int] = {}
    for change in run.changes:
        assert change.revision == revisions.get(change.id, 0) + 1  # one revision at a time, none lost, none repeated
        revisions[change.id] = change.revision
        if change.suppression == "shelved":
            assert change.shelved_until is not None and change.shelved_until - change.updated_at <= 60 * 60 + 1e-6
            assert change.shelved_by == "ana" and change.suppression_reason == "valve work"  # the audit trail
        if change.state is AlertState.RESOLVED and change.resolution == "auto":
            assert change.severity is not Severity.CRITICAL  # critical alerts latch: only an operator resolves them
    assert all(a.suppression == "out_of_service" for a in run.opened_while_oos)
    for change in run.changes:
        if change.revision == 1 and change.fault == SYMPTOM and change.suppression is None:
            causes = [c for c in run.changes if c.fault == CAUSE and c.revision == 1 and c.first_seen <= change.first_seen]
            assert all(  # annunciated: its cause was not open (resolved before it opened) when it opened
                any(r.id == c.id and r.state is AlertState.RESOLVED and r.updated_at <= change.updated_at for r in run.changes)
                for c in causes
            )


def test_a_symptom_of_an_open_cause_is_suppressed_by_design_and_an_out_of_service_asset_is_recorded_silently() -> None:
    run = Run()
    for a, b in ((0.9, 0.0), (0.9, 0.0), (0.25, 0.75), (0.45, 0.55), (0.25, 0.75)):
        run.step(("predict", a, b, False))
    cause, symptom = sorted(run.active(), key=lambda x: x.fault)
    assert cause.suppression is None and symptom.suppression == "suppressed" and cause.id in (symptom.suppression_reason or "")
    run.step(("out_of_service", 0, 0, False))
    assert {a.suppression for a in run.active()} == {"out_of_service"}
    before = len(run.changes)
    run.step(("tick", 4000.0, 0, False))
    assert len(run.changes) == before  # no re-notification or escalation while out of service
    run.step(("in_service", 0, 0, False))
    assert [a.suppression for a in sorted(run.active(), key=lambda x: x.fault)] == [None, "suppressed"]


def test_on_delay_re_alarm_latching_and_chattering() -> None:
    delayed = RuleSettings(default=RuleParams(k=2, n=3, on_delay_s=25, quiet_predictions=2, quiet_s=0), minor_update_s=0)
    state = EntityState(kind="asset", id="p1", site="plant1")
    opened = [apply_prediction(state, both(T0 + 10 * i, 0.9, 0.0), delayed, T0 + 10 * i) for i in range(4)]
    assert [bool(o) for o in opened] == [False, False, False, True]  # k=2 held at the second, the on-delay at the fourth

    run = Run()
    for _ in range(3):
        run.step(("predict", 0.95, 0.0, True))  # critical: 2 h to failure
    (alert,) = run.active()
    assert alert.severity is Severity.CRITICAL
    for _ in range(4):
        run.step(("predict", 0.0, 0.0, False))
    (latched,) = run.active()
    assert latched.latched and latched.state is AlertState.OPEN  # the condition cleared; the alert waits for a person
    run.command("acknowledge")
    run.step(("tick", 1300.0, 0, False))
    assert run.active()[0].state is AlertState.OPEN  # re-alarmed: acknowledged but still active past realarm_s
    run.command("resolve")
    assert not run.active()

    chatter = Run()
    for _ in range(4):  # open, clear, open, clear, ...: the third opening within the hour is chattering
        chatter.step(("predict", 0.95, 0.0, False))
        chatter.step(("predict", 0.95, 0.0, False))
        chatter.step(("predict", 0.0, 0.0, False))
        chatter.step(("predict", 0.0, 0.0, False))
    opened_flags = [c.chattering for c in chatter.changes if c.revision == 1]
    assert opened_flags[:2] == [False, False] and opened_flags[2] is True
    assert len(opened_flags) == 3  # damped: the chattering alert holds for chatter_quiet_s instead of clearing at once
