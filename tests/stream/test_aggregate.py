"""Batches of predictions, duplicated, reordered or broken, yield each alert once; bad input becomes a dead letter."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from forewarn.contracts import Alert, AlertCommand, DeadLetter, decode, encode
from stream.aggregate import Aggregator
from stream.config import LivenessSettings, RuleParams, RuleSettings, StreamSection, StreamSettings
from stream.control import Command, decode_control, encode_control
from stream.synthetic import prediction

T0 = 1_800_000_000.0
PREDICTIONS = "forewarn.predictions"
CONTROL = "forewarn.stream.control"


@dataclass
class Event:
    """A consumed message as the batch route hands it over (Faust's ConsumerMessage has these fields)."""

    key: Any
    value: Any
    topic: str
    partition: int
    offset: int


@dataclass
class FakeTopic:
    sent: list[tuple[Any, bytes, int | None]] = field(default_factory=list)

    async def send(self, *, key: Any = None, value: Any = None, partition: int | None = None) -> None:
        self.sent.append((key, value, partition))


@dataclass
class FakeTable:
    data: dict[str, bytes] = field(default_factory=dict)
    changelog: list[tuple[int | None, str]] = field(default_factory=list)

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> None:
        self.changelog.append((partition, key))


def make(settings: StreamSettings | None = None) -> tuple[Aggregator, FakeTable, FakeTopic, FakeTopic, FakeTopic]:
    settings = settings or StreamSettings(
        stream=StreamSection(
            rules=RuleSettings(default=RuleParams(k=3, n=5), minor_update_s=3600),
            liveness=LivenessSettings(asset_silent_s=60, gateway_silent_s=60),
        )
    )
    table, alerts, control, dead = FakeTable(), FakeTopic(), FakeTopic(), FakeTopic()
    return Aggregator(settings, table, alerts, control, dead), table, alerts, control, dead


def events(n_assets: int = 20, n: int = 12) -> list[Event]:
    out = []
    for a in range(n_assets):
        for i in range(n):
            fault = "imbalance" if (a % 2 == 0 and i >= 4) else "normal"
            pred = prediction(f"asset{a}", T0 + 10 * i, fault, 0.93)
            out.append(Event(pred.asset_id.encode(), encode(pred), PREDICTIONS, a % 4, i))
    return out


def published(topic: FakeTopic) -> list[Alert]:
    return [decode(value, Alert) for _, value, _ in topic.sent]


def batches(items: list[Event], size: int) -> list[list[Event]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def test_batches_write_each_state_once_and_open_one_alert_per_faulty_asset() -> None:
    agg, table, alerts, control, _ = make()
    for batch in batches(events(), 100):
        asyncio.run(agg.process(batch, now=T0 + 200))
    opened = {a.id for a in published(alerts) if a.revision == 1}
    assert len(opened) == 10 and len(published(alerts)) == 10
    assert len(table.changelog) <= 20 * 3  # one write per touched asset per batch, not per prediction
    assert {p for p, _ in table.changelog} <= {0, 1, 2, 3}
    assert all(decode_control(v).kind == "heartbeat" for _, v, _ in control.sent)


def test_duplicates_and_reordering_yield_the_same_alerts() -> None:
    reference, *_ = make()
    ref_topic = reference.alerts
    asyncio.run(reference.process(events(), now=T0 + 200))
    rnd = random.Random(7)
    noisy = events() + rnd.sample(events(), 80)  # redeliveries
    for start in range(0, len(noisy), 4):  # local reordering
        block = noisy[start : start + 4]
        rnd.shuffle(block)
        noisy[start : start + 4] = block
    agg, _, alerts, _, _ = make()
    for batch in batches(noisy, 37):
        asyncio.run(agg.process(batch, now=T0 + 200))
    # one alert per faulty asset either way (which prediction decides may differ when arrival order does)
    assert {a.asset_id for a in published(alerts)} == {a.asset_id for a in published(ref_topic)}  # type: ignore[arg-type]
    assert len({a.id for a in published(alerts)}) == len([a for a in published(alerts) if a.revision == 1]) == 10
    assert agg.cache["a:asset0"].duplicates + agg.cache["a:asset0"].late > 0


def test_state_survives_a_restart_from_the_table_alone() -> None:
    agg, table, alerts, _, _ = make()
    first = events()
    asyncio.run(agg.process(first[: len(first) // 2], now=T0 + 100))
    restarted, _, alerts2, _, _ = make()
    restarted.table = table  # a new worker, same (recovered) table, replaying everything
    asyncio.run(restarted.process(first, now=T0 + 200))
    ids = {a.id for a in published(alerts)} | {a.id for a in published(alerts2)}
    assert len(ids) == 10
    assert all(a.revision > 1 or a.id not in {b.id for b in published(alerts)} for a in published(alerts2))


def test_bad_input_is_a_dead_letter_and_never_stops_the_batch() -> None:
    agg, _, alerts, _, dead = make()
    good = events(2, 8)
    wrong_key = prediction("asset9", T0, "normal", 0.9)
    bad = [
        Event(b"x", b"not json", PREDICTIONS, 0, 100),
        Event(b"asset8", encode(wrong_key), PREDICTIONS, 0, 101),
        Event(b"x", b'{"kind": "nope"}', CONTROL, 0, 5),
    ]
    asyncio.run(agg.process(bad[:2] + good + bad[2:], now=T0 + 100))
    letters = [decode(v, DeadLetter) for _, v, _ in dead.sent]
    assert len(letters) == 3 and agg.counters["dead_letters"] == 3
    assert "not the asset id" in letters[1].reason and letters[0].source == f"kafka:{PREDICTIONS}:0:100"
    assert len(published(alerts)) == 1


def test_commands_ticks_and_liveness_flow_through_the_control_topic() -> None:
    agg, _, alerts, _, _ = make()
    asyncio.run(agg.process(events(2, 8), now=T0 + 100))
    (opened,) = published(alerts)
    command = AlertCommand(id="cmd1", alert_id=opened.id, action="acknowledge", by="ana", ts=T0 + 110)
    ack = Event(b"asset0", encode_control(Command(command=command)), CONTROL, 0, 1)
    asyncio.run(agg.process([ack, ack], now=T0 + 110))
    assert [a.state.value for a in published(alerts)] == ["open", "acknowledged"]
    asyncio.run(agg.send_ticks({0, 1, 2, 3}, now=T0 + 1000))
    ticks = [Event(b"tick", v, CONTROL, p or 0, 9) for _, v, p in agg.control.sent[-4:]]  # type: ignore[attr-defined]
    restarted, *_ = make()
    restarted.table = agg.table
    asyncio.run(restarted.process(ticks, now=T0 + 1000))
    silent = published(restarted.alerts)  # type: ignore[arg-type]
    assert sorted(a.asset_id for a in silent if a.fault == "asset_silent") == ["asset0", "asset1"]


def test_a_fresh_start_continues_the_alerts_the_database_holds() -> None:
    """A worker with empty Kafka state (new broker, new app id) must not open a second alert for an open problem."""
    first, _, alerts, _, _ = make()
    asyncio.run(first.process(events(2, 8), now=T0 + 100))
    (stored,) = published(alerts)  # what the database holds after the first run
    database = {stored.asset_id: [stored]}
    asked: list[str] = []

    async def active_alerts(entity_id: str) -> list[Alert]:
        asked.append(entity_id)
        return database.get(entity_id, [])

    eager = StreamSettings(stream=StreamSection(rules=RuleSettings(default=RuleParams(k=3, n=5), minor_update_s=0)))
    fresh, _, alerts2, _, _ = make(eager)
    fresh.active_alerts = active_alerts
    later = [prediction("asset0", T0 + 1000 + 10 * i, "imbalance", 0.95) for i in range(8)]
    asyncio.run(fresh.process([Event(b"asset0", encode(p), PREDICTIONS, 0, i) for i, p in enumerate(later)], now=T0 + 1100))
    continued = published(alerts2)
    assert continued and {a.id for a in continued} == {stored.id}  # the same alert, no second one opened
    assert min(a.revision for a in continued) == stored.revision + 1 and continued[-1].occurrences > stored.occurrences
    assert asked == ["asset0"] and fresh.counters["alerts_adopted"] == 1

    # an operator acting on it after yet another fresh start: the command finds it in the database too
    other, _, alerts3, _, _ = make()
    other.active_alerts = active_alerts
    command = AlertCommand(id="cmd2", alert_id=stored.id, action="resolve", by="ana", ts=T0 + 1300)
    asyncio.run(other.process([Event(b"asset0", encode_control(Command(command=command)), CONTROL, 0, 1)], now=T0 + 1300))
    (resolved,) = published(alerts3)
    assert resolved.id == stored.id and resolved.state.value == "resolved" and resolved.revision == stored.revision + 1
