"""The window stage: per-asset sequence checks and asset policy in front of ``models.windowing``.

The windowing itself (bounded per-asset ring buffers of step aggregates, hop-aligned
windows, late samples counted) is ``models.windowing``: the same code cut the training
windows, so the gateway never feeds the model a differently built window. This stage adds
what only a live stream needs, and offline scoring runs through it too:

- duplicates: MQTT QoS 1 redelivers after a reconnect, so a (seq, first timestamp) seen
  recently is dropped, counted; folding it twice would double the step counts;
- gaps and reordering: a seq above the highest seen counts the skipped ones as missing and
  holds that message back (``ReorderHold``): a publisher's backlog after a broker restart
  arrives behind its first live message, and folding the live one first would make the
  whole backlog too late for its windows. The held messages are folded in seq order as the
  gap fills, or after ``reorder_hold_s`` without progress. A lower, unseen seq with no gap
  open is a late arrival and is used (its samples land in their steps);
- publisher restarts: a seen seq with a different first timestamp, or a seq far below
  every recent one, means the publisher started counting again: the tracker resets;
- assets: an unknown asset is accepted or refused by policy, and the number of buffered
  assets is bounded (an asset silent for ``asset_idle_s`` gives up its slot).

Memory is fixed per asset by the window spec and the dedup window, so it is bounded by
``max_assets`` whatever the message rate.
"""

from __future__ import annotations

import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import IO, Literal

from edge_agent.errors import Rejected
from edge_agent.metrics import EdgeMetrics
from forewarn.contracts import LogRecord, Telemetry
from models.history import DerivedBacklog
from models.windowing import AssetWindower, Window, WindowerCounters, WindowSpec

Verdict = Literal["new", "duplicate", "reordered", "reset"]

MAX_GAP = 10_000_000
"""A seq jump larger than this is a renumbered publisher, not that many lost messages."""


class SeqTracker:
    """Recent sequence numbers of one asset's stream, bounded by ``window`` entries."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.highest = -1
        self._seen: dict[int, float] = {}  # seq -> first timestamp of that message

    def check(self, seq: int, start: float) -> tuple[Verdict, int]:
        """Classify one message; returns the verdict and how many seq numbers it skipped."""
        seen = self._seen.get(seq)
        if seen is not None:
            if seen == start:
                return "duplicate", 0
            return self._reset(seq, start), 0
        if seq > self.highest + MAX_GAP:
            return self._reset(seq, start), 0  # a jump no outage explains: renumbered, not millions missing
        if seq > self.highest:
            skipped = seq - self.highest - 1 if self.highest >= 0 else 0
            self.highest = seq
            self._remember(seq, start)
            return "new", skipped
        if self.highest - seq > self.window:
            return self._reset(seq, start), 0
        self._remember(seq, start)
        return "reordered", 0

    def _reset(self, seq: int, start: float) -> Verdict:
        self._seen.clear()
        self.highest = seq
        self._seen[seq] = start
        return "reset"

    def _remember(self, seq: int, start: float) -> None:
        self._seen[seq] = start
        if len(self._seen) > 2 * self.window:
            floor = self.highest - self.window
            self._seen = {s: t for s, t in self._seen.items() if s >= floor}


Message = Telemetry | LogRecord


@dataclass
class ReorderHold:
    """One asset's messages of one kind held back after a seq gap, so that a backlog is folded in seq order.

    Seq order is the publisher's order, which is source-time order; the arrival order after an
    outage is not. Memory is bounded by ``max_held`` messages: beyond, everything held is folded.
    """

    hold_s: float
    max_held: int
    next_seq: int | None = None
    """The seq that continues what was folded (None before the first message)."""
    held: dict[int, Message] = field(default_factory=dict)
    deadline: float = 0.0

    def offer(self, seq: int, verdict: Verdict, skipped: int, message: Message, now: float) -> list[Message]:
        """The messages to fold now, in order: this one, a run the gap closed, or none while it is held."""
        if self.hold_s <= 0:
            return [message]
        if verdict == "reset":
            out = [*self.release(), message]
            self.next_seq = seq + 1
            return out
        if self.next_seq is not None and seq < self.next_seq:
            return [message]  # older than what was folded: a late arrival, folded as it is
        if not self.held and not skipped:
            self.next_seq = seq + 1
            return [message]
        if self.held and seq < max(self.held):
            self.deadline = now + self.hold_s  # the gap is filling: a backlog is arriving, keep waiting for it
        elif not self.held:
            self.deadline = now + self.hold_s
        self.held[seq] = message
        out = self._run()
        return out + self.release() if len(self.held) > self.max_held else out

    def expired(self, now: float) -> bool:
        return bool(self.held) and now >= self.deadline

    def release(self) -> list[Message]:
        """Everything held, in seq order (what is still missing stays missing: the tracker counted it)."""
        if not self.held:
            return []
        order = sorted(self.held)
        out = [self.held[seq] for seq in order]
        self.held.clear()
        self.next_seq = order[-1] + 1
        return out

    def _run(self) -> list[Message]:
        out: list[Message] = []
        while self.next_seq in self.held:
            out.append(self.held.pop(self.next_seq))
            self.next_seq += 1
        return out


@dataclass
class _Asset:
    windower: AssetWindower
    telemetry_seq: SeqTracker
    log_seq: SeqTracker
    telemetry_hold: ReorderHold
    log_hold: ReorderHold
    recent_logs: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=256))
    last_seen: float = 0.0  # time.monotonic() of the last message


@dataclass(frozen=True)
class _Snapshot:
    """What a checkpoint holds: the spec it was cut for, and the stage's per-asset state."""

    spec: dict[str, object]
    assets: dict[str, _Asset]
    backlog: DerivedBacklog
    retired: WindowerCounters


@dataclass(frozen=True)
class AssetPolicy:
    """Which assets a gateway buffers, and how many."""

    unknown: Literal["accept", "reject"] = "accept"
    known: frozenset[str] = frozenset()
    max_assets: int = 1_000
    idle_s: float = 3_600.0
    dedup_window: int = 1_024
    reorder_hold_s: float = 0.0
    """How long messages after a seq gap wait for the gap to fill (0: fold in arrival order). The daemon
    holds (EdgeSection.reorder_hold_s); a recording scored offline does not: its gaps are losses, not delays."""
    channel_map: Mapping[str, str] = field(default_factory=dict)
    """Plant channel -> the bundle's name for it (EdgeSection.channel_map)."""
    rated_currents: Mapping[str, float] = field(default_factory=dict)
    """asset_id -> rated current from its rating plate (EdgeSection.nameplates, a dataset's meta.json)."""


class WindowStage:
    """Messages in, ready windows out; the one front shared by the daemon and `edge score`."""

    def __init__(
        self, spec: WindowSpec, policy: AssetPolicy, metrics: EdgeMetrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.spec = spec
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self._assets: dict[str, _Asset] = {}
        self._holding: set[str] = set()  # assets with messages held back after a seq gap
        self._ready: list[tuple[Window, float]] = []
        self._retired = WindowerCounters()  # counters of assets that gave up their slot
        self._backlog = DerivedBacklog(spec)  # the assets' histories derive their features together
        # The labelled counters, looked up once: per message the lookup cost as much as the count.
        self._telemetry_messages = metrics.messages.labels("telemetry")
        self._log_messages = metrics.messages.labels("log")
        metrics.watch(self._levels)

    def add(self, message: Telemetry | LogRecord, arrived: float = 0.0) -> bool:
        """Fold one message into its asset's windows; False if it was a duplicate (counted, dropped).

        Raises ``Rejected`` for an asset the policy refuses.
        """
        asset = self._asset(message)
        now = asset.last_seen = self.clock()
        if isinstance(message, Telemetry):
            if self.policy.channel_map:
                renamed = {self.policy.channel_map.get(k, k): v for k, v in message.channels.items()}
                message = message.model_copy(update={"channels": renamed})
            verdict, skipped = asset.telemetry_seq.check(message.seq, message.timestamps[0])
            if not self._count(verdict, skipped):
                return False
            self._telemetry_messages.inc()
            self.metrics.samples.inc(len(message.timestamps) * len(message.channels))
            self._fold(asset, asset.telemetry_hold.offer(message.seq, verdict, skipped, message, now), arrived)
            return True
        if message.seq is not None:
            verdict, skipped = asset.log_seq.check(message.seq, message.ts)
            if not self._count(verdict, skipped):
                return False
            self._log_messages.inc()
            self._fold(asset, asset.log_hold.offer(message.seq, verdict, skipped, message, now), arrived)
            return True
        key = (message.ts, message.source, message.text)
        if key in asset.recent_logs:
            self.metrics.duplicates.inc()
            return False
        asset.recent_logs.append(key)
        self._log_messages.inc()
        self._fold(asset, [message], arrived)
        return True

    def release_expired(self) -> int:
        """Fold what waited ``reorder_hold_s`` for a gap that did not fill; returns how many messages."""
        now, released = self.clock(), 0
        for asset_id in list(self._holding):
            asset = self._assets[asset_id]
            for hold in (asset.telemetry_hold, asset.log_hold):
                if hold.expired(now):
                    messages = hold.release()
                    released += len(messages)
                    self._fold(asset, messages, time.perf_counter())
        return released

    def ready(self) -> list[tuple[Window, float]]:
        """Windows completed since the last call, in completion order, each with its completing message's arrival."""
        out, self._ready = self._ready, []
        return out

    def flush(self) -> list[Window]:
        """End of a finite stream: whatever is held, then every asset's windows still inside their grace period."""
        for asset in self._assets.values():
            self._fold(asset, [*asset.telemetry_hold.release(), *asset.log_hold.release()], 0.0)
        out = [window for window, _ in self.ready()]
        return out + [window for asset in self._assets.values() for window in asset.windower.flush()]

    def replace_spec(self, spec: WindowSpec) -> None:
        """A new model that cuts windows differently: start every buffer again (counted as retired).

        Call it between steps, when ``ready()`` has been drained: windows cut the old way fit no new model.
        """
        assert not self._ready, "windows of the old spec are still waiting to be scored"
        if spec == self.spec:
            return
        for asset_id in list(self._assets):
            self._retire(asset_id)
        self.spec = spec
        self._backlog = DerivedBacklog(spec)

    @property
    def asset_count(self) -> int:
        return len(self._assets)

    def save(self, out: IO[bytes]) -> None:
        """Write every asset's windows in progress, history and seq memory (``edge_agent.journal`` keeps the file)."""
        assert not self._ready, "score the ready windows before saving: a checkpoint holds windows in progress only"
        pickle.dump(_Snapshot(self.spec.to_dict(), self._assets, self._backlog, self._retired), out, protocol=5)

    def load(self, src: IO[bytes]) -> int:
        """Take over what ``save`` wrote; returns the number of assets. Refuses a snapshot cut for another spec."""
        snapshot = pickle.load(src)  # the gateway's own file in its own state directory
        if not isinstance(snapshot, _Snapshot):
            raise ValueError(f"not a window checkpoint: {type(snapshot).__name__}")
        if snapshot.spec != self.spec.to_dict():
            raise ValueError("the checkpoint's windows were cut for another window spec (a different model)")
        now = self.clock()
        for asset in snapshot.assets.values():
            asset.last_seen = now  # monotonic clocks do not survive a restart
        self._assets, self._backlog, self._retired = snapshot.assets, snapshot.backlog, snapshot.retired
        self._holding = {i for i, a in self._assets.items() if a.telemetry_hold.held or a.log_hold.held}
        for asset_id in self._holding:
            for hold in (self._assets[asset_id].telemetry_hold, self._assets[asset_id].log_hold):
                hold.deadline = now + hold.hold_s if hold.held else 0.0  # monotonic deadlines start again
        return len(self._assets)

    # ------------------------------------------------------------------ internals

    def _fold(self, asset: _Asset, messages: list[Message], arrived: float) -> None:
        for message in messages:
            if isinstance(message, Telemetry):
                asset.windower.add_telemetry(message)
            else:
                asset.windower.add_log(message)
            # Collect at once: a ring only holds one window ahead, so a fast replay folding many
            # messages of one asset before asking would overwrite windows never emitted.
            self._ready.extend((window, arrived) for window in asset.windower.ready())
        if asset.telemetry_hold.held or asset.log_hold.held:
            self._holding.add(asset.windower.asset_id)
        else:
            self._holding.discard(asset.windower.asset_id)

    def _count(self, verdict: Verdict, skipped: int) -> bool:
        if verdict == "duplicate":
            self.metrics.duplicates.inc()
            return False
        if skipped:
            self.metrics.missing.inc(skipped)
        if verdict == "reordered":
            self.metrics.reordered.inc()
        elif verdict == "reset":
            self.metrics.seq_resets.inc()
        return True

    def _asset(self, message: Telemetry | LogRecord) -> _Asset:
        asset = self._assets.get(message.asset_id)
        if asset is not None:
            return asset
        policy = self.policy
        if policy.unknown == "reject" and message.asset_id not in policy.known:
            raise Rejected("unknown_asset", f"asset {message.asset_id!r} is not in known_assets and unknown_assets=reject")
        if len(self._assets) >= policy.max_assets and not self._evict_idle():
            raise Rejected("too_many_assets", f"already buffering max_assets={policy.max_assets} active assets")
        asset_type = message.asset_type if isinstance(message, Telemetry) else None
        asset = _Asset(
            windower=AssetWindower(
                self.spec,
                message.site,
                message.asset_id,
                asset_type,
                rated_current_a=policy.rated_currents.get(message.asset_id),
                backlog=self._backlog,
            ),
            telemetry_seq=SeqTracker(policy.dedup_window),
            log_seq=SeqTracker(policy.dedup_window),
            telemetry_hold=ReorderHold(policy.reorder_hold_s, policy.dedup_window),
            log_hold=ReorderHold(policy.reorder_hold_s, policy.dedup_window),
        )
        self._assets[message.asset_id] = asset
        return asset

    def _evict_idle(self) -> bool:
        asset_id, asset = min(self._assets.items(), key=lambda item: item[1].last_seen)
        if self.clock() - asset.last_seen < self.policy.idle_s:
            return False
        self._retire(asset_id)
        return True

    def _retire(self, asset_id: str) -> None:
        asset = self._assets.pop(asset_id)
        self._holding.discard(asset_id)
        for f in fields(WindowerCounters):
            setattr(self._retired, f.name, getattr(self._retired, f.name) + getattr(asset.windower.counters, f.name))

    def _levels(self) -> Iterable[tuple[str, str, float]]:
        assets = list(self._assets.values())
        yield "assets", "assets buffered", float(len(assets))
        held = sum(len(a.telemetry_hold.held) + len(a.log_hold.held) for a in (self._assets[i] for i in self._holding))
        yield "held_messages", "messages held back after a seq gap, waiting for the gap to fill", float(held)
        helps = {
            "late_samples": "samples too late for any pending window (not used)",
            "unknown_channel_samples": "samples of channels the model does not read",
            "late_logs": "log lines older than every pending window",
            "sparse_windows": "windows skipped for too little data",
        }
        for f in fields(WindowerCounters):
            total = getattr(self._retired, f.name) + sum(getattr(a.windower.counters, f.name) for a in assets)
            yield f"{f.name}_total", helps.get(f.name, f.name), float(total)
