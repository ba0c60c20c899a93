"""The log generator: which lines each asset writes, and when.

Four kinds of lines, so that no string on its own gives a fault away:

- routine: starts, stops, setpoint changes, shift handovers, preventive maintenance,
  status counters, operator rounds with nothing found (from operation events);
- fault-related: planned per episode when it is scheduled. An episode gets such lines only
  with the scenario's ``fault_log_probability``; each candidate line (an operator hearing a
  noise, a condition monitor flagging a band, a diagnosis that is sometimes wrong, a soft
  alert) appears with its own chance at a random point of the episode's life: some long
  before the sensors show anything, some long after;
- threshold alarms (``alarms.py``): the controller compares the measured values (noise,
  spikes and all) with its limits, with hysteresis; real faults raise them late, hot
  afternoons and heavy loads raise them on healthy machines too;
- nuisance: the same kinds of lines, at random, on every asset (false CMS alerts, a drip
  "within limits", comm timeouts, sensor faults), plus trips and repairs at failures.

Scenarios may switch on text that carries weight (``textual.py``): notes that announce
faults before the sensors show them, symptom notes on healthy machines, maintenance
entries for level steps, and misleading alarms on healthy machines.

Which lines each fault, nuisance and trip can produce is data, in ``logrules.py``; the
wording is ``logtext.py`` with the banks of ``phrases.py`` and ``templates.py``.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from forewarn.contracts import SIMULATED_FAULTS, LogRecord
from simulators.alarms import ThresholdAlarms
from simulators.assets import ASSET_TYPES, AssetParams
from simulators.channels import CHANNELS
from simulators.faults import Episodes
from simulators.logrules import FAULT_LOGS, LEVELS, MEASURE_CHANNEL, NUISANCE, TRIP_REASONS, ChunkView
from simulators.logtext import Renderer, record, tag_variant
from simulators.operation import OpEvent
from simulators.phrases import CONFUSED_WITH, NAMES
from simulators.scenario import AssetSpec, LogSection
from simulators.sensors import SensorEvent
from simulators.textual import MISLEADING_KINDS, MaintenanceEvent

DAY = 86400.0


class LogGenerator:
    """Produces every asset's log lines batch by batch, deterministically for its generator."""

    def __init__(
        self,
        assets: tuple[AssetSpec, ...],
        site_ids: list[str],
        params: AssetParams,
        episodes: Episodes,
        cfg: LogSection,
        rng: np.random.Generator,
        start: float,
        ambient_mean: np.ndarray,
        notes: list[tuple[float, int, str]] | None = None,
    ) -> None:
        self.assets, self.site_ids, self.p, self.cfg, self.rng = assets, site_ids, params, cfg, rng
        self.episodes = episodes
        self.r = Renderer(rng, cfg.phrasing)
        self.banks = self.r.banks
        self.styles = [a.log_style or "generic" for a in assets]
        self._queue: list[tuple[float, int, int, str, dict[str, Any]]] = []
        self._n = 0
        self._plan_faults(episodes)
        n = len(assets)
        for a in range(n):
            if cfg.nuisance_per_day > 0:
                self._push(start + rng.exponential(DAY / cfg.nuisance_per_day), a, "nuisance", {})
            if cfg.chatter > 0:
                self._push(start + rng.exponential(4 * 3600.0 / cfg.chatter), a, "status", {})
            if cfg.operators:
                self._push(start + rng.exponential(6 * 3600.0), a, "obs_ok", {})
        # Text that carries weight (simulators/textual.py): announcing notes and misleading alarms.
        for ts, a, fault in notes or []:
            self._push(ts, a, "note", {"fault": fault})
        if cfg.misleading_alarms_per_day > 0:
            for a in range(n):
                self._push(start + rng.exponential(DAY / cfg.misleading_alarms_per_day), a, "misleading", {})
        if cfg.false_notes_per_day > 0:
            for a in range(n):
                self._push(start + rng.exponential(DAY / cfg.false_notes_per_day), a, "false_note", {})
        self.alarms = ThresholdAlarms(assets, params, ambient_mean)

    # ------------------------------------------------------------------ planning

    def _push(self, ts: float, a: int, kind: str, data: dict[str, Any]) -> None:
        self._n += 1
        heapq.heappush(self._queue, (ts, self._n, a, kind, data))

    def _plan_faults(self, episodes: Episodes) -> None:
        rng = self.rng
        for e in range(len(episodes)):
            fault = SIMULATED_FAULTS[int(episodes.fault[e])]
            a = int(episodes.asset[e])
            silent = rng.random() >= episodes.log_probability[e]
            for event, (lo, hi), chance, extra in FAULT_LOGS[fault]:
                if silent or rng.random() >= chance:
                    continue
                if (event.startswith("cms") and not self.cfg.cms) or (event.startswith("obs") and not self.cfg.operators):
                    continue
                when = episodes.time_at_severity(e, float(rng.uniform(lo, hi)))
                if np.isfinite(when):
                    self._push(when, a, event, {"fault": fault, **extra})

    # ------------------------------------------------------------------ batch

    def step(
        self,
        t1: float,
        view: ChunkView,
        op_events: list[OpEvent],
        sensor_events: list[SensorEvent],
        maintenance: list[MaintenanceEvent] | None = None,
    ) -> list[LogRecord]:
        """Every log line of the batch ending at ``t1`` (unsorted)."""
        out: list[LogRecord] = []
        for done in maintenance or []:
            out.append(self._line(done.ts, done.asset, done.kind, "cmms", view, done.fields, level="INFO"))
        for ev in op_events:
            out.extend(self._operation(ev, view))
        for sev in sensor_events:
            if self.rng.random() < 0.35:
                out.append(
                    self._line(
                        sev.ts + float(self.rng.uniform(0, 5)),
                        sev.asset,
                        "sensor_fault",
                        "controller",
                        view,
                        {"chan": CHANNELS[sev.channel].name.upper().replace("_", "")[:10]},
                    )
                )
        while self._queue and self._queue[0][0] < t1:
            ts, _, a, kind, data = heapq.heappop(self._queue)
            out.extend(self._scheduled(ts, a, kind, data, view))
        for change in self.alarms.step(t1, view):
            if change.level > 0:
                level = "ALARM" if change.level == 2 else "WARNING"
                out.append(
                    self._measure_line(change.ts, change.asset, change.measure, level, change.value, change.limit, "controller")
                )
            elif change.active and self.rng.random() < 0.5:
                out.append(
                    self._measure_line(
                        change.ts, change.asset, change.measure, "WARNING", change.value, change.limit, "controller", clear=True
                    )
                )
        return out

    def _scheduled(self, ts: float, a: int, kind: str, data: dict[str, Any], view: ChunkView) -> list[LogRecord]:
        rng, cfg = self.rng, self.cfg
        if kind == "nuisance":
            self._push(ts + rng.exponential(DAY / cfg.nuisance_per_day), a, "nuisance", {})
            running = bool(view.running[a])
            names = [k for k, _ in NUISANCE if self._allowed(a, k, running)]
            weights = np.array([w for k, w in NUISANCE if self._allowed(a, k, running)])
            kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            data = {"fault": None}
        elif kind == "status":
            self._push(ts + rng.exponential(4 * 3600.0 / cfg.chatter), a, "status", {})
            if cfg.cms and rng.random() < 0.3:
                return [self._line(ts, a, "status" if view.running[a] else "cms_idle", "cms", view, {})]
            return [self._line(ts, a, "status", "controller", view, {})]
        elif kind == "obs_ok":
            self._push(ts + rng.exponential(6 * 3600.0), a, "obs_ok", {})
            return [self._line(ts, a, "obs_ok", "operator", view, {})]
        elif kind == "note":  # an announcing note: a symptom heard, seen or smelt, also at rest
            symptom = self.r.expand(self.r.pick(self.banks.note_symptoms[data["fault"]]))
            source = "cmms" if rng.random() < 0.25 else "operator"
            return [self._line(ts, a, "note", source, view, {"symptom": symptom}, level="NOTICE")]
        elif kind == "misleading":
            self._push(ts + rng.exponential(DAY / cfg.misleading_alarms_per_day), a, "misleading", {})
            return self._misleading(ts, a, view)
        elif kind == "false_note":  # the same kind of note on a healthy machine: the fault is not there
            self._push(ts + rng.exponential(DAY / cfg.false_notes_per_day), a, "false_note", {})
            if self._has_fault(a, ts):
                return []
            faults = ASSET_TYPES[self.assets[a].type].faults
            return self._scheduled(ts, a, "note", {"fault": faults[int(rng.integers(len(faults)))]}, view)
        if data.get("fault") and not view.running[a] and _needs_running(kind):
            # Nothing to measure or hear on a machine at rest: the line waits for the next run.
            tries = int(data.get("tries", 0))
            if tries < 24:
                self._push(ts + float(rng.uniform(1200.0, 5400.0)), a, kind, {**data, "tries": tries + 1})
            return []
        return [self._evidence(ts, a, kind, data.get("fault"), data, view)]

    def _allowed(self, a: int, kind: str, running: bool) -> bool:
        type_id = self.assets[a].type
        if (kind.startswith("cms") and not self.cfg.cms) or (kind.startswith("obs") and not self.cfg.operators):
            return False
        if not running and _needs_running(kind):
            return False  # nothing to measure or hear on a machine at rest
        if kind == "m:flow_low" or kind == "obs_leak":
            return type_id in ("centrifugal_pump", "compressor")
        return True

    def _evidence(self, ts: float, a: int, kind: str, fault: str | None, data: dict[str, Any], view: ChunkView) -> LogRecord:
        """A fault-related line (``fault`` set) or the same kind of line as a nuisance (``fault`` None)."""
        rng = self.rng
        fields: dict[str, Any] = {}
        if kind.startswith("m:"):
            measure = kind[2:]
            value = view.unbalance(a) if measure == "current_unbalance" else view.value(a, MEASURE_CHANNEL[measure], ts)
            # A soft (deviation) alert: the value is past a limit set tighter than the alarm's.
            factor = float(rng.uniform(1.05, 1.3))
            if fault is None:  # a transient: the value was briefly past the limit
                value = self.alarms.limit(a, measure) * (1.0 / factor if measure.endswith("_low") else factor)
            limit = value * factor if measure.endswith("_low") else value / factor
            source = "cms" if measure == "vib" and self.cfg.cms and rng.random() < 0.5 else "controller"
            return self._measure_line(ts, a, measure, "WARNING", value, limit, source)
        if kind == "cms_band":
            band = data.get("band") or str(rng.choice(["1x", "2x", "bpfo", "bpfi", "hf", "axial"]))
            channel = {
                "1x": "band_1x_mm_s",
                "2x": "band_2x_mm_s",
                "bpfo": "band_bpfo_g",
                "bpfi": "band_bpfi_g",
                "hf": "band_hf_g",
                "axial": "vib_axial_velocity_mm_s",
                "gmf": "band_gmf_g",
            }[band]
            value = view.value(a, channel, ts)
            if fault:  # the band has grown from its baseline
                base = value / float(rng.uniform(1.5, 4.0))
            else:  # a transient, or a baseline set too tight
                base, value = value, value * float(rng.uniform(1.3, 2.5))
            limit = min(base * float(rng.uniform(1.3, 2.0)), value * 0.95)
            unit = "mm/s" if channel.endswith("mm_s") else str(rng.choice(["g", "gE", "g pk"]))
            fields = {
                "band": self.r.pick(self.banks.bands[band]),
                "value": f"{value:.3g}",
                "unit": unit,
                "base": f"{base:.3g}",
                "limit": f"{limit:.3g}",
                "pct": int(100 * (value / max(base, 1e-9) - 1)),
            }
        elif kind == "cms_kurtosis":
            kurtosis = view.value(a, "vib_kurtosis", ts) if fault else float(rng.uniform(4.0, 6.5))
            fields = {"value": f"{kurtosis:.1f}"}
        elif kind == "cms_trend":
            fields = {"value": f"{view.value(a, 'vib_rms_velocity_mm_s', ts):.2f}", "pct": int(rng.uniform(15, 160))}
        elif kind == "cms_diag":
            diagnoses = self.banks.diagnoses
            cause = fault or str(rng.choice([f for f in ASSET_TYPES[self.assets[a].type].faults if f in diagnoses]))
            if rng.random() < 0.3:
                cause = str(rng.choice(CONFUSED_WITH[cause]))
            fields = {"diag": self.r.pick(diagnoses[cause]), "conf": int(rng.uniform(40, 95))}
        elif kind == "obs_noise":
            sounds = self.banks.sounds
            fields = {"sound": self.r.pick(sounds.get(fault or "healthy", sounds["healthy"]))}
        elif kind == "obs_hot":
            fields = {"value": int(view.value(a, "bearing_temp_c", ts) + rng.normal(0, 4))}
        elif kind in ("obs_power", "misc", "comm", "sensor_fault"):
            fields = {"pct": f"{rng.uniform(1.0, 4.0):.1f}", "chan": f"AI{int(rng.integers(1, 32))}"}
        source = {"cms": "cms", "obs": "operator"}.get(kind[:3], "controller")
        if kind == "obs_power" and rng.random() < 0.4:
            source = "controller"
        return self._line(ts, a, kind, source, view, fields)

    def _operation(self, ev: OpEvent, view: ChunkView) -> list[LogRecord]:
        rng, a, d = self.rng, ev.asset, ev.data
        if ev.kind in ("start", "stop"):
            drive = bool(self.p.vfd[a]) and rng.random() < 0.4
            return [self._line(ev.ts, a, ev.kind, "drive" if drive else "controller", view, {})] if rng.random() < 0.92 else []
        if ev.kind == "speed" and rng.random() < 0.7:
            drive = rng.random() < 0.4
            return [
                self._line(
                    ev.ts,
                    a,
                    "speed",
                    "drive" if drive else "controller",
                    view,
                    {
                        "from": int(d["from"]),
                        "to": int(d["to"]),
                        "pct": int(100 * d["to"] / d["rated"]),
                        "rpm": int(d["to"]),
                        "hz": f"{50.0 * d['to'] / d['rated']:.1f}",
                    },
                )
            ]
        if ev.kind == "load" and rng.random() < 0.5:
            return [
                self._line(
                    ev.ts,
                    a,
                    "load",
                    "controller",
                    view,
                    {
                        "pct": int(100 * d["to"]),
                        "from_pct": int(100 * d["from"]),
                        "process": self.r.pick(self.banks.process_words[self.assets[a].type]),
                    },
                )
            ]
        if ev.kind == "shift" and self.cfg.operators and rng.random() < 0.1:
            return [
                self._line(ev.ts + float(rng.uniform(0, 300)), a, "shift", "hmi", view, {"crew": d["crew"], "hour": d["hour"]})
            ]
        if ev.kind == "pm":
            return [self._line(ev.ts, a, "pm", "cmms", view, {})]
        if ev.kind == "trip":
            reasons = TRIP_REASONS.get(d["fault"], [("trip_vib", 0.7), ("trip_temp", 0.3)])
            event = reasons[int(rng.choice(len(reasons), p=[w for _, w in reasons]))][0]
            kind = "drive" if "drive" in self.banks.templates[event] and rng.random() < 0.4 else "controller"
            return [self._line(ev.ts, a, event, kind, view, {}, level=str(rng.choice(["ALARM", "ERROR", "CRITICAL"])))]
        if ev.kind == "repaired":
            lines = [self._line(ev.ts, a, "repaired", "cmms", view, {})]
            if rng.random() < 0.6:
                template = self.r.expand(self.r.pick(self.banks.repairs[d["fault"]]))
                text = template.format(
                    grams=int(rng.integers(5, 80)),
                    k=int(rng.integers(1, 4)),
                    noun=ASSET_TYPES[self.assets[a].type].noun,
                    wo=int(rng.integers(100000, 999999)) if "{wo}" in template else 0,
                )
                lines.append(
                    record(
                        self.site_ids[a],
                        self.assets[a].id,
                        ev.ts + float(rng.uniform(1, 600)),
                        "INFO",
                        self.r.source("generic", "cmms"),
                        self.r.finish(text, "generic", "cmms"),
                        None,
                    )
                )
            return lines
        return []

    def _has_fault(self, a: int, ts: float) -> bool:
        """Whether asset ``a`` has a fault episode between initiation and the end of its repair at ``ts``."""
        e = self.episodes
        ends = np.where(np.isfinite(e.ttf), e.failure + e.repair, np.inf)
        return bool(((e.asset == a) & (e.onset <= ts) & (ts < ends)).any())

    def _misleading(self, ts: float, a: int, view: ChunkView) -> list[LogRecord]:
        """An alarm-level line (or a chattering burst) with nothing wrong with the machine; skipped while it has a fault."""
        if self._has_fault(a, ts):
            return []
        rng, style = self.rng, self.styles[a]
        kind = MISLEADING_KINDS[int(rng.integers(len(MISLEADING_KINDS)))]
        fields: dict[str, Any] = {
            "chan": f"ZS-{int(rng.integers(100, 999))}",
            "value": "850.0" if rng.random() < 0.7 else "-242.0",
        }
        steps: list[tuple[float, str]] = [(ts, "controller")]
        if kind == "mis_limit_switch":  # chattering: on, off, on, off... within minutes
            for k in range(1, 2 * int(rng.integers(2, 4))):
                steps.append((steps[-1][0] + float(rng.uniform(2.0, 40.0)), "clear" if k % 2 else "controller"))
        elif kind == "mis_rtd_failed":  # the instrument fault shows up a few minutes after the false alarm
            steps.append((ts + float(rng.uniform(60.0, 600.0)), "clear"))
        lines = []
        for when, voice in steps:
            text = self.r.template(kind, voice, style, {**self._common(a, "controller"), **fields})
            level = "ALARM" if voice == "controller" else "INFO" if kind == "mis_limit_switch" else "WARNING"
            code = self.r.code(style, "comm" if kind == "mis_comm_timeout" else "misc", level)
            lines.append(record(self.site_ids[a], self.assets[a].id, when, level, self.r.source(style, "controller"), text, code))
        return lines

    # ------------------------------------------------------------------ rendering

    def _common(self, a: int, kind: str) -> dict[str, Any]:
        rng, asset = self.rng, self.assets[a]
        noun = ASSET_TYPES[asset.type].noun
        name = self.r.any(NAMES)
        return {
            "T": tag_variant(asset.id, self.styles[a] if kind != "operator" else "generic", rng),
            "noun": noun,
            "Noun": noun.capitalize(),
            "name": name,
            "initials": "".join(w[0] for w in name.split()),
            "n": int(rng.integers(1, 40)),
            "k": int(rng.integers(1, 16)),
            "wo": int(rng.integers(100000, 999999)),
            "grams": int(rng.integers(5, 60)),
            "hours": int(rng.integers(2000, 90000)),
            "kwh": int(rng.integers(1000, 900000)),
            "PT": self.r.any(["DE-H", "DE-V", "NDE-H", "DE-A", "MDE", "P1H"]),
            "rpm": int(self.p.rated_rpm[a]),
            "hz": "50.0",
        }

    def _line(
        self, ts: float, a: int, event: str, kind: str, view: ChunkView, fields: dict[str, Any], level: str | None = None
    ) -> LogRecord:
        style = self.styles[a]
        level = level or LEVELS.get(event, "INFO")
        text = self.r.template(event, kind, style, {**self._common(a, kind), **fields})
        code = self.r.code(style, event, level) if kind in ("controller", "drive") else None
        return record(self.site_ids[a], self.assets[a].id, ts, level, self.r.source(style, kind), text, code)

    def _measure_line(
        self, ts: float, a: int, measure: str, level: str, value: float, limit: float, kind: str, clear: bool = False
    ) -> LogRecord:
        style = self.styles[a]
        code = self.r.code(style, measure, level) if kind == "controller" else None
        decimals = 2 if measure in ("suction_low", "pressure_low") else 1
        fields = {**self._common(a, kind), "V": f"{value:.{decimals}f}", "L": f"{limit:.{decimals}f}", "K": code or ""}
        text = self.r.measure(measure, level, kind, style, fields, clear=clear)
        if measure.endswith("_low"):
            text = text.replace(">", "<").replace("exceeds", "below").replace("above", "below")
        return record(
            self.site_ids[a],
            self.assets[a].id,
            ts,
            "INFO" if clear else level,
            self.r.source(style, kind),
            text,
            None if clear else code,
        )


def _needs_running(kind: str) -> bool:
    """Lines that only make sense while the machine turns (measurements, noises, heat)."""
    return kind.startswith(("cms", "m:")) or kind in ("obs_noise", "obs_vibration", "obs_hot")
