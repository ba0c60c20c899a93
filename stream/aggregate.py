"""The aggregation step: a batch of predictions and control messages in, alert changes out.

Per batch, each entity's state is read once, folded with every message of the batch
(``stream.rules``), and written back once: one changelog record per touched entity per
batch instead of one per prediction, which is what lets one worker keep up with 10k
predictions/s on a changelog producer that manages about 2k records/s.

States live decoded in a cache of this worker's own partitions; the Faust table holds
their bytes (recovered from the changelog after a restart). The cache is dropped on
every rebalance, so a partition that moved away and back is re-read from the table.

The batches come straight from the consumer (``stream.batches``): ``handle`` returns the
delivery futures of everything a batch produced, and the batch's offsets are committed
only after they are all done.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from forewarn.contracts import Alert, AlertCommand, AssetCommand, FaultPrediction, dead_letter, decode, encode
from forewarn.errors import ContractError
from stream.batches import Record
from stream.config import StreamSettings
from stream.control import AssetControl, Command, Heartbeat, PlantReview, Tick, decode_control, encode_control
from stream.errors import DatabaseError
from stream.liveness import apply_heartbeat, check_silence
from stream.rules import (
    adopt,
    apply_asset_command,
    apply_command,
    apply_late_verdict,
    apply_plant_verdict,
    apply_prediction,
    apply_tick,
)
from stream.state import EntityState, asset_key, gateway_key

log = logging.getLogger(__name__)


class Sender(Protocol):
    """What the aggregator needs of a topic: Faust's ``Topic.send``."""

    async def send(self, *, key: Any = None, value: Any = None, partition: int | None = None) -> Any: ...


class Table(Protocol):
    """What the aggregator needs of the Faust table: its store, and changelog writes to an explicit partition."""

    data: Any

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> Any: ...


ActiveAlerts = Callable[[str], Awaitable[list[Alert]]]
"""active_alerts(entity_id): the open and acknowledged alerts the database holds whose asset_id is entity_id."""

StoredAlert = Callable[[str], Awaitable[Alert | None]]
"""stored_alert(alert_id): the alert as the database holds it (None: unknown)."""


@dataclass
class BatchOutput:
    """What one batch produced: the alert changes, and the sends the broker must acknowledge before its offsets move."""

    changes: list[Alert] = field(default_factory=list)
    deliveries: list[Awaitable[Any]] = field(default_factory=list)

    def sent(self, delivery: Any) -> None:
        if delivery is not None:  # Faust's sends return a future of the broker's acknowledgement
            self.deliveries.append(delivery)


class Aggregator:
    """Folds batches of events into entity states and publishes the resulting alert changes."""

    def __init__(
        self,
        settings: StreamSettings,
        table: Table,
        alerts: Sender,
        control: Sender,
        deadletter: Sender,
        component: str = "stream",
        active_alerts: ActiveAlerts | None = None,
        stored_alert: StoredAlert | None = None,
        on_change: Callable[[Alert], None] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = settings.stream.rules
        self.table = table
        self.alerts = alerts
        self.control = control
        self.deadletter = deadletter
        self.component = component
        self.active_alerts = active_alerts
        self.stored_alert = stored_alert
        self.on_change = on_change
        """Called with each alert change once it is sent to Kafka (MQTT: never waits for the database)."""
        self.last_batch_at: float | None = None
        self.predictions_topic = settings.topics.kafka_predictions
        self.cache: dict[str, EntityState] = {}
        self.loaded: set[int] = set()
        self.counters: Counter[str] = Counter()
        self._reasons_logged: set[str] = set()
        self.last_alert_at: float | None = None

    def forget(self) -> None:
        """A rebalance: partitions may have moved, so drop every cached state (the table has them)."""
        self.cache.clear()
        self.loaded.clear()

    def _state(self, key: str) -> EntityState | None:
        state = self.cache.get(key)
        if state is None:
            raw = self.table.data.get(key)
            if raw is not None:
                state = self.cache[key] = EntityState.from_bytes(raw)
        return state

    async def _fresh(
        self, kind: str, entity_id: str, site: str, partition: int, now: float, only_with_alerts: bool = False
    ) -> EntityState | None:
        """A state for an entity the table does not hold, continuing the active alerts the database has for it.

        That is what keeps one alert per (asset, fault) across a worker restarted with fresh
        Kafka state. With ``only_with_alerts``, None unless the database had some.
        """
        state = EntityState(kind="asset" if kind == "asset" else "gateway", id=entity_id, site=site, partition=partition)
        stored: list[Alert] = []
        if self.active_alerts is not None:
            try:
                stored = await self.active_alerts(entity_id)
            except DatabaseError as exc:  # going on may open a second alert; stalling every asset is worse
                self.counters["adoption_failures"] += 1
                log.warning("cannot look up stored alerts of %s (a second alert may open): %s", entity_id, exc)
        wanted = [a for a in stored if (a.fault == "gateway_silent") == (kind == "gateway")]
        if wanted:
            state.site = wanted[0].site
        adopted = adopt(state, wanted, now)
        if adopted:
            self.counters["alerts_adopted"] += len(adopted)
            log.info("continuing %s stored alert(s) of %s: %s", len(adopted), entity_id, ", ".join(a.id for a in adopted))
        elif only_with_alerts:
            return None
        return state

    def _load_partition(self, partition: int) -> None:
        """Before the first tick of a partition: bring every entity it holds into the cache (silent ones too)."""
        for key, raw in list(self.table.data.items()):
            if key not in self.cache:
                state = EntityState.from_bytes(raw)
                if state.partition == partition:
                    self.cache[key] = state
        self.loaded.add(partition)

    async def handle(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        """The batch route's handler (``stream.batches``): fold a batch, return what must reach the broker first."""
        return (await self.process(records)).deliveries

    async def process(self, records: Sequence[Record], now: float | None = None) -> BatchOutput:
        """One batch: fold every record, write each touched state once, then publish the alert changes."""
        now = time.time() if now is None else now
        out = BatchOutput()
        touched: dict[str, EntityState] = {}
        heartbeats: dict[str, str] = {}
        for record in records:
            raw = record.value if isinstance(record.value, bytes) else bytes(record.value or b"")
            if record.topic != self.predictions_topic:
                out.changes += await self._control(raw, record, now, touched, out)
                continue
            prediction = await self._decode_prediction(raw, record, out)
            if prediction is None:
                continue
            key = asset_key(prediction.asset_id)
            state = self._state(key) or await self._fresh("asset", prediction.asset_id, prediction.site, record.partition, now)
            assert state is not None
            state.partition = record.partition
            out.changes += apply_prediction(state, prediction, self.rules, now)
            self.cache[key] = touched[key] = state
            heartbeats[prediction.gateway_id] = prediction.site
            self.counters["predictions"] += 1
        # effects before state: if the worker dies in between, the replay re-folds and re-sends the same revisions
        for alert in out.changes:
            out.sent(await self.alerts.send(key=alert.asset_id.encode(), value=encode(alert)))
            if self.on_change is not None:
                self.on_change(alert)
        for gateway_id, site in heartbeats.items():
            beat = Heartbeat(gateway_id=gateway_id, site=site, ts=now)
            out.sent(await self.control.send(key=gateway_id.encode(), value=encode_control(beat)))
        for key, state in touched.items():
            value = state.to_bytes()
            self.table.data[key] = value
            out.sent(self.table.send_changelog(state.partition, key, value))
        if out.changes:
            self.counters["alert_changes"] += len(out.changes)
            self.last_alert_at = now
        self.last_batch_at = time.time()
        return out

    async def _decode_prediction(self, raw: bytes, record: Record, out: BatchOutput) -> FaultPrediction | None:
        try:
            prediction = decode(raw, FaultPrediction)
        except ContractError as exc:
            await self._refuse(str(exc), raw, record, out)
            return None
        key = record.key
        key_text = key.decode(errors="replace") if isinstance(key, bytes) else key
        if key_text != prediction.asset_id:
            # one writer per asset relies on the key: a wrongly keyed prediction may sit on another worker's partition
            reason = f"message key {key_text!r} is not the asset id {prediction.asset_id!r}"
            await self._refuse(reason, raw, record, out)
            return None
        return prediction

    async def _control(
        self, raw: bytes, record: Record, now: float, touched: dict[str, EntityState], out: BatchOutput
    ) -> list[Alert]:
        try:
            control = decode_control(raw)
        except ContractError as exc:
            await self._refuse(str(exc), raw, record, out)
            return []
        if isinstance(control, Tick):
            return self._tick(control.partition, control.ts, touched)  # the tick's own time: a replay decides alike
        if isinstance(control, Heartbeat):
            key = gateway_key(control.gateway_id)
            state = self._state(key) or await self._fresh("gateway", control.gateway_id, control.site, record.partition, now)
            assert state is not None
            state.partition = record.partition
            self.cache[key] = touched[key] = state
            return apply_heartbeat(state, control.site, now)
        if isinstance(control, AssetControl):
            return await self._asset_command(control.command, record.partition, now, touched)
        if isinstance(control, PlantReview):
            return await self._plant_verdict(control, record.partition, now, touched)
        return await self._command(control, record.partition, now, touched)

    async def _asset_command(
        self, command: AssetCommand, partition: int, now: float, touched: dict[str, EntityState]
    ) -> list[Alert]:
        key = asset_key(command.asset_id)
        state = self._state(key) or await self._fresh("asset", command.asset_id, "unknown", partition, now)
        assert state is not None
        if state.site == "unknown" and state.kind == "asset":
            log.info("asset %s taken %s before any prediction of it", command.asset_id, command.action)
        changes = apply_asset_command(state, command, self.rules, now)
        self.cache[key] = touched[key] = state
        self.counters["commands"] += 1
        log.info("operator %s: %s %s -> %d change(s)", command.by, command.action, command.asset_id, len(changes))
        return changes

    async def _plant_verdict(
        self, review: PlantReview, partition: int, now: float, touched: dict[str, EntityState]
    ) -> list[Alert]:
        """The plant tier's verdict on an escalated window: recorded on the asset's alert (stream.rules.apply_plant_verdict)."""
        verdict = review.verdict
        key = asset_key(verdict.asset_id)
        state = self._state(key) or await self._fresh("asset", verdict.asset_id, verdict.site, partition, now)
        assert state is not None
        changes = apply_plant_verdict(state, verdict, now)
        self.cache[key] = touched[key] = state
        self.counters["plant_verdicts"] += 1
        self.counters["plant_verdicts_recorded"] += len(changes)
        return changes

    async def _command(self, control: Command, partition: int, now: float, touched: dict[str, EntityState]) -> list[Alert]:
        command = control.command
        for key, kind in ((asset_key(command.asset_id), "asset"), (gateway_key(command.asset_id), "gateway")):
            state = self._state(key)
            if state is None:  # not seen since a fresh start: the database may still hold its alert
                state = await self._fresh(kind, command.asset_id, "unknown", partition, now, only_with_alerts=True)
                if state is not None:
                    self.cache[key] = state
            if state is not None and any(t.alert and t.alert.id == command.alert_id for t in state.tracks.values()):
                changes = apply_command(state, command, now, self.rules)
                touched[key] = state
                self.counters["commands"] += 1
                log.info("operator %s: %s %s -> %d change(s)", command.by, command.action, command.alert_id, len(changes))
                return changes
        if command.verdict is not None and command.action == "resolve" and self.stored_alert is not None:
            late = await self._late_verdict(command, now)
            if late is not None:
                return [late]
        self.counters["commands_unknown_alert"] += 1
        log.info("operator command for %s ignored: no open alert with that id on this worker", command.alert_id)
        return []

    async def _late_verdict(self, command: AlertCommand, now: float) -> Alert | None:
        """A verdict for an alert already resolved: read it from the database, publish its next revision."""
        assert self.stored_alert is not None
        try:
            stored = await self.stored_alert(command.alert_id)
        except DatabaseError as exc:
            log.warning("cannot record the verdict on %s: %s", command.alert_id, exc)
            return None
        change = apply_late_verdict(stored, command, now) if stored is not None else None
        if change is not None:
            self.counters["commands"] += 1
            log.info("operator %s: verdict %s on resolved %s", command.by, command.verdict, command.alert_id)
        return change

    def _tick(self, partition: int, now: float, touched: dict[str, EntityState]) -> list[Alert]:
        if partition not in self.loaded:
            self._load_partition(partition)
        changes: list[Alert] = []
        for key, state in list(self.cache.items()):
            if state.partition != partition:
                continue
            found = check_silence(state, self.settings.stream.liveness, now) + apply_tick(state, self.rules, now)
            if found:
                touched[key] = state
                changes += found
        return changes

    async def send_ticks(self, partitions: set[int], now: float | None = None) -> None:
        """The clock: one tick per partition this worker owns, through the control topic like everything else."""
        now = time.time() if now is None else now
        for partition in sorted(partitions):
            await self.control.send(key=b"tick", value=encode_control(Tick(partition=partition, ts=now)), partition=partition)

    async def _refuse(self, reason: str, raw: bytes, record: Record, out: BatchOutput) -> None:
        """Bad input: counted, logged once per kind of reason, sent to the dead-letter topic, never fatal."""
        self.counters["dead_letters"] += 1
        kind = reason.split(":", 2)[:2]
        if str(kind) not in self._reasons_logged:
            self._reasons_logged.add(str(kind))
            log.warning("refused a message from %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason)
        source = f"kafka:{record.topic}:{record.partition}:{record.offset}"
        letter = dead_letter(self.component, reason, raw, source, time.time())
        out.sent(await self.deadletter.send(key=None, value=encode(letter)))
