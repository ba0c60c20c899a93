"""Operating point of every asset over time: running or not, speed, load, and why they change.

Real machines are rarely at a steady state: they start and stop with production shifts or
on demand, drives follow speed references, loads wander and step at shift handovers,
protection trips them at functional failure and they restart after repair. Each of these
moves the channels (a load increase raises current and temperature with no fault at
all), so the operating point is simulated as carefully as the faults.

Changes come from one event queue (start, stop, speed and load setpoints, trips, repairs,
preventive maintenance, shift handovers). Events are rare, so they are handled one by one
in Python; within a batch the per-sample targets are arrays, and speed and load follow
their targets through first-order lags, vectorised across assets.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from simulators.assets import AssetParams
from simulators.dynamics import lowpass
from simulators.scenario import AssetSpec, Site

DAY = 86400.0


@dataclass(frozen=True)
class OpEvent:
    """Something that happened to an asset's operation, for the log generator."""

    ts: float
    asset: int
    kind: str  # start | stop | speed | load | trip | repaired | pm | shift
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class OpBatch:
    """The operating point of every asset at every sample of one batch, (A, N) each."""

    run: np.ndarray
    speed: np.ndarray
    load: np.ndarray
    since_start: np.ndarray
    events: list[OpEvent]


def _minutes(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return int(h) * 60.0 + int(m)


class Operation:
    """The operating-point state machine of a whole plant."""

    def __init__(
        self,
        assets: tuple[AssetSpec, ...],
        sites: tuple[Site, ...],
        params: AssetParams,
        rng: np.random.Generator,
        start: float,
    ) -> None:
        self.assets = assets
        self.params = params
        self.rng = rng
        self.site_of = np.array([[s.id for s in sites].index(a.site or sites[0].id) for a in assets])
        self.sites = sites
        n = len(assets)
        self._queue: list[tuple[float, int, int, str, dict[str, Any]]] = []
        self._counter = 0
        self.token = np.zeros(n, dtype=np.int64)  # invalidates pending run events after a trip
        self.locked_until = np.full(n, -math.inf)
        self.duty = [a.duty for a in assets]
        self.speed_sp = params.rated_rpm * np.where(params.vfd, rng.uniform(0.75, 1.0, n), 1.0)
        self.load_sp = np.clip(params.load_mean + rng.normal(0, 0.05, n), 0.1, 1.05)
        self.load = self.load_sp.copy()
        self.running = np.array([self._should_run(a, start) for a in range(n)])
        self.last_start = np.where(self.running, start - DAY, -math.inf)
        self.speed = np.where(self.running, self._speed_target(self.speed_sp, self.load), 0.0)
        for a in range(n):
            self._schedule_run(a, start)
            if params.vfd[a]:
                self._push(start + rng.exponential(3 * 3600.0), a, "speed")
            self._push(start + rng.exponential(2.5 * 3600.0), a, "load")
            self._push(start + rng.uniform(0.2, 10.0) * DAY, a, "pm")
        for s, site in enumerate(sites):
            self._push(self._next_local(start, site, [_minutes(x) for x in site.shifts]), -1 - s, "shift")

    # ------------------------------------------------------------------ schedule

    def _push(self, ts: float, asset: int, kind: str, **data: Any) -> None:
        self._counter += 1
        heapq.heappush(self._queue, (ts, self._counter, asset, kind, data))

    def schedule_trip(self, asset: int, ts: float, repair_s: float, fault: str) -> None:
        """Protection trips the asset at functional failure; it may not run again until repaired."""
        self._push(ts, asset, "trip", fault=fault, repair_s=repair_s)

    def _local_minutes(self, ts: float, site: Site) -> tuple[float, int]:
        local = datetime.fromtimestamp(ts + site.utc_offset_h * 3600.0, UTC)
        return local.hour * 60.0 + local.minute + local.second / 60.0, local.weekday()

    def _next_local(self, ts: float, site: Site, minutes: list[float]) -> float:
        """The next instant after ``ts`` whose local clock time is one of ``minutes``."""
        now, _ = self._local_minutes(ts, site)
        ahead = min(((m - now) % 1440.0) or 1440.0 for m in minutes)
        return ts + ahead * 60.0

    def _in_production(self, a: int, ts: float) -> bool:
        site = self.sites[self.site_of[a]]
        now, weekday = self._local_minutes(ts, site)
        lo, hi = (_minutes(x) for x in site.production)
        inside = lo <= now < hi if lo < hi else (now >= lo or now < hi)
        return inside and not (site.weekend_off and weekday >= 5)

    def _should_run(self, a: int, ts: float) -> bool:
        duty = self.duty[a]
        if duty == "shift":
            return self._in_production(a, ts)
        if duty == "cyclic":
            return bool(self.rng.random() < 0.6)
        return duty == "continuous"

    def _schedule_run(self, a: int, ts: float) -> None:
        """Queue the asset's next start or stop according to its duty."""
        rng, duty, running = self.rng, self.duty[a], self.running[a]
        if duty == "continuous":
            delay = rng.exponential(4 * DAY) if running else rng.uniform(600.0, 5400.0)
        elif duty == "cyclic":
            delay = rng.uniform(600.0, 3600.0) if running else rng.uniform(300.0, 2400.0)
        elif duty == "standby":
            delay = rng.uniform(1800.0, 3 * 3600.0) if running else rng.exponential(1.5 * DAY)
        else:
            site = self.sites[self.site_of[a]]
            edge = site.production[1] if running else site.production[0]
            target = self._next_local(ts, site, [_minutes(edge)])
            delay = max(60.0, target - ts + rng.normal(0.0, 420.0))
        self._push(ts + delay, a, "stop" if running else "start", token=int(self.token[a]))

    # ------------------------------------------------------------------ batch

    def _speed_target(self, sp: np.ndarray, load: np.ndarray) -> np.ndarray:
        slip = self.params.slip if sp.ndim == 1 else self.params.slip[:, None]
        return sp * (1.0 + slip * (1.0 - load))

    def step(self, t1: float, ts: np.ndarray) -> OpBatch:
        """Advance to ``t1``: apply due events, return per-sample run/speed/load for sample times ``ts`` (A, N)."""
        n_assets, n = ts.shape
        run = np.repeat(self.running[:, None].astype(np.float64), n, axis=1)
        speed_sp = np.repeat(self.speed_sp[:, None], n, axis=1)
        load_sp = np.repeat(self.load_sp[:, None], n, axis=1)
        last_start = np.repeat(self.last_start[:, None], n, axis=1)
        events: list[OpEvent] = []
        while self._queue and self._queue[0][0] < t1:
            te, _, a, kind, data = heapq.heappop(self._queue)
            if a < 0:
                events.extend(self._shift(-1 - a, te, load_sp, ts))
                continue
            after = ts[a] >= te
            event = self._apply(a, te, kind, data)
            if event is None:
                continue
            events.append(event)
            if kind in ("start", "stop", "trip", "repaired"):
                run[a, after] = float(self.running[a])
                if kind in ("start", "repaired") and self.running[a]:
                    last_start[a, after] = te  # a restart after repair draws inrush current too
            elif kind == "speed":
                speed_sp[a, after] = self.speed_sp[a]
            elif kind == "load":
                load_sp[a, after] = self.load_sp[a]
        self.last_start = last_start[:, -1].copy()

        p = self.params
        # Load wanders around its setpoint (Ornstein-Uhlenbeck, ~2 min correlation).
        alpha_load = np.full(n_assets, math.exp(-1.0 / 120.0))
        wander = load_sp + self.rng.normal(0.0, 0.6, (n_assets, n))  # stationary spread about 0.04 of rated
        load = np.clip(lowpass(wander, self.load, alpha_load), 0.05, 1.15)
        self.load = load[:, -1].copy()
        target = run * self._speed_target(speed_sp, load)
        tau_up = np.where(p.vfd, 10.0, 1.5)[:, None]
        tau = np.where(target >= np.concatenate([self.speed[:, None], target[:, :-1]], axis=1), tau_up, 25.0)
        speed = lowpass(target, self.speed, np.exp(-1.0 / tau))
        self.speed = speed[:, -1].copy()
        since = np.where(np.isfinite(last_start), ts - last_start, np.inf)
        return OpBatch(run=run, speed=speed, load=load * run, since_start=since, events=events)

    def _apply(self, a: int, te: float, kind: str, data: dict[str, Any]) -> OpEvent | None:
        rng = self.rng
        if kind in ("start", "stop"):
            if data.get("token") != self.token[a]:
                return None  # superseded by a trip
            if te < self.locked_until[a]:
                return None
            self.running[a] = kind == "start"
            self._schedule_run(a, te)
            return OpEvent(te, a, kind, {"speed": float(self.speed_sp[a]), "vfd": bool(self.params.vfd[a])})
        if kind == "speed":
            self._push(te + rng.exponential(3 * 3600.0), a, "speed")
            old = float(self.speed_sp[a])
            self.speed_sp[a] = round(float(self.params.rated_rpm[a] * rng.uniform(0.6, 1.0)), -1)
            return OpEvent(te, a, "speed", {"from": old, "to": float(self.speed_sp[a]), "rated": float(self.params.rated_rpm[a])})
        if kind == "load":
            self._push(te + rng.exponential(2.5 * 3600.0), a, "load")
            return self._new_load(a, te)
        if kind == "pm":
            self._push(te + rng.uniform(5.0, 14.0) * DAY, a, "pm")
            return OpEvent(te, a, "pm", {"running": bool(self.running[a])})
        if kind == "trip":
            was_running = bool(self.running[a])
            self.running[a] = False
            self.token[a] += 1
            self.locked_until[a] = max(self.locked_until[a], te + data["repair_s"])
            self._push(self.locked_until[a], a, "repaired", fault=data["fault"])
            return OpEvent(te, a, "trip", {"fault": data["fault"], "was_running": was_running})
        if kind == "repaired":
            if te < self.locked_until[a]:
                return None  # a later trip extended the outage
            self.token[a] += 1
            self.running[a] = self._should_run(a, te) or self.duty[a] == "continuous"
            self._schedule_run(a, te)
            return OpEvent(te, a, "repaired", {"fault": data["fault"], "restarted": bool(self.running[a])})
        raise AssertionError(f"unknown operation event {kind!r}")

    def _new_load(self, a: int, te: float) -> OpEvent:
        old = float(self.load_sp[a])
        self.load_sp[a] = float(np.clip(self.params.load_mean[a] + self.rng.normal(0.0, 0.13), 0.15, 1.05))
        return OpEvent(te, a, "load", {"from": old, "to": float(self.load_sp[a])})

    def _shift(self, s: int, te: float, load_sp: np.ndarray, ts: np.ndarray) -> list[OpEvent]:
        """A shift handover at site ``s``: new crew, new load targets on the running assets."""
        site = self.sites[s]
        self._push(self._next_local(te + 60.0, site, [_minutes(x) for x in site.shifts]), -1 - s, "shift")
        now, _ = self._local_minutes(te, site)
        crew = "ABCD"[int(te // (8 * 3600.0)) % 4]
        events = []
        for a in np.flatnonzero(self.site_of == s).tolist():
            if self.running[a] and self.rng.random() < 0.5:
                event = self._new_load(a, te)
                load_sp[a, ts[a] >= te] = self.load_sp[a]
                events.append(event)
            events.append(OpEvent(te, a, "shift", {"crew": crew, "hour": int(now // 60)}))
        return events
