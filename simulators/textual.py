"""Log text that carries weight: what real plants write and the sensors do not show.

Four phenomena, each a ``[logs]`` option of the scenario and all off by default:

- ``early_notes``: for this share of fault episodes, technicians and operators write what
  they hear, see or smell (grinding at the DE bearing, a hot coupling, drips at the seal,
  discoloured paint) between the fault's initiation and its P point, 1-3 notes at least
  45 minutes apart;
- ``text_only``: for this share, the fault's physical signature is held below what the
  sensors show (half the mode's detectability threshold) for 30-60% of its P-F interval,
  then catches up; notes announce it meanwhile, so for a while only the log knows;
- ``maintenance_per_day``: maintenance actions that step sensor levels and are no fault
  (a sensor recalibrated, bearings regreased, a seal or a coupling replaced, an impeller
  trimmed), each with its work-order or technician entry;
- ``misleading_alarms_per_day``: alarm-level lines on machines with no fault (a chattering
  limit switch, a communication timeout, a failed RTD reading 850 °C).

An announced episode's labelled onset is its first announcing line when that comes before
its P point in the sensors (``Episodes.detectable_at``): ground truth says when a fault is
first detectable by anything the plant records. Maintenance steps and misleading alarms
are labelled normal. The plan here draws from its own random stream, so a scenario
without these options produces exactly the bytes it produced before they existed.

The train wording of these lines is below; ``heldout.py`` has the held-out set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forewarn.contracts import SIMULATED_FAULTS
from simulators.channels import INDEX
from simulators.faults import DETECTABLE, OPEN_ENDED_S, Episodes
from simulators.scenario import LogSection

DAY = 86400.0
NOTE_SPACING_S = 2700.0
"""Announcing notes of one episode are at least this far apart (a few notes, not one every hour)."""


def plan_announcements(episodes: Episodes, cfg: LogSection, rng: np.random.Generator) -> list[tuple[float, int, str]]:
    """Choose the announced and text-only episodes, set their ``announced`` / ``hidden_until`` times (in place),
    and return their notes as (time, asset index, fault)."""
    assert episodes.announced is not None and episodes.hidden_until is not None and episodes.hidden_ramp is not None
    notes: list[tuple[float, int, str]] = []
    for e in range(len(episodes)):
        u = float(rng.random())
        fault = SIMULATED_FAULTS[int(episodes.fault[e])]
        initiation = float(episodes.onset[e])
        p = episodes.time_at_severity(e, DETECTABLE[fault])
        if not np.isfinite(p) or p <= initiation:
            continue
        if u < cfg.text_only:
            end = float(episodes.failure[e]) if np.isfinite(episodes.ttf[e]) else initiation + OPEN_ENDED_S
            span = end - p
            if span <= 0:
                continue
            hidden = p + float(rng.uniform(0.3, 0.6)) * span
            episodes.hidden_until[e] = hidden
            episodes.hidden_ramp[e] = 0.15 * span
            lo, hi = initiation + 0.5 * (p - initiation), hidden
        elif u < cfg.text_only + cfg.early_notes:
            lo, hi = initiation + 0.3 * (p - initiation), p
        else:
            continue
        times: list[float] = []
        for t in np.sort(rng.uniform(lo, hi, 1 + int(rng.integers(0, 3)))).tolist():
            if not times or t - times[-1] >= NOTE_SPACING_S:
                times.append(t)
        episodes.announced[e] = times[0]
        notes.extend((t, int(episodes.asset[e]), fault) for t in times)
    return notes


# ----------------------------------------------------------------------------------- maintenance

# kind -> (asset types that can have it, weight)
MAINTENANCE_KINDS: dict[str, tuple[tuple[str, ...] | None, float]] = {
    "mnt_recalibrated": (None, 0.35),
    "mnt_regreased": (None, 0.2),
    "mnt_coupling": (None, 0.2),
    "mnt_seal": (("centrifugal_pump", "compressor"), 0.15),
    "mnt_impeller": (("centrifugal_pump",), 0.1),
}
_RECALIBRATE: dict[str, tuple[str, str]] = {  # channel -> (tag, how the step is made: add in unit, or mult)
    "bearing_temp_c": ("TT-BRG", "add"),
    "winding_temp_c": ("TT-WDG", "add"),
    "discharge_pressure_bar": ("PT-DIS", "mult"),
    "flow_m3_h": ("FT-01", "mult"),
    "vib_rms_velocity_mm_s": ("VT-DE", "mult"),
}


@dataclass
class MaintenanceEvent:
    ts: float
    asset: int
    kind: str
    fields: dict[str, Any]


class Maintenance:
    """Maintenance actions that step measured levels from the moment they are done (and stay)."""

    def __init__(self, types: list[str], present: np.ndarray, per_day: float, rng: np.random.Generator, start: float) -> None:
        self.types, self.present, self.per_day, self.rng = types, present, per_day, rng
        n, c = present.shape
        self.next = np.asarray(start + rng.exponential(DAY / per_day, n)) if per_day > 0 else np.full(n, np.inf)
        self.mult = np.ones((n, c))
        self.add = np.zeros((n, c))
        self.active = False

    def apply(self, measured: np.ndarray, ts: np.ndarray, t1: float) -> list[MaintenanceEvent]:
        """Apply every step so far to ``measured`` (A, C, N), in place; return the actions done in this batch."""
        if self.active:
            measured *= self.mult[:, :, None]
            measured += self.add[:, :, None]
        events: list[MaintenanceEvent] = []
        for a in np.flatnonzero(self.next < t1).tolist():
            while self.next[a] < t1:
                when = float(self.next[a])
                self.next[a] += self.rng.exponential(DAY / self.per_day)
                kind, changes, fields = self._draw(a)
                after = ts[a] >= when
                for c, m, b in changes:
                    measured[a, c, after] = measured[a, c, after] * m + b
                    self.mult[a, c] *= m
                    self.add[a, c] = self.add[a, c] * m + b
                self.active = True
                events.append(MaintenanceEvent(when, a, kind, fields))
        return events

    def _draw(self, a: int) -> tuple[str, list[tuple[int, float, float]], dict[str, Any]]:
        rng, type_id = self.rng, self.types[a]
        kinds = [k for k, (types, _) in MAINTENANCE_KINDS.items() if types is None or type_id in types]
        weights = np.array([MAINTENANCE_KINDS[k][1] for k in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]

        def u(lo: float, hi: float) -> float:
            return float(rng.uniform(lo, hi))

        if kind == "mnt_recalibrated":
            candidates = [ch for ch in _RECALIBRATE if self.present[a, INDEX[ch]]]
            channel = candidates[int(rng.integers(len(candidates)))]
            tag, how = _RECALIBRATE[channel]
            sign = 1.0 if rng.random() < 0.5 else -1.0
            if how == "add":
                delta = sign * u(2.0, 6.0)
                return kind, [(INDEX[channel], 1.0, delta)], {"chan": tag, "delta": f"{delta:+.1f} C"}
            factor = (
                1.0 + sign * u(0.05, 0.15) if channel != "vib_rms_velocity_mm_s" else (u(1.2, 1.4) if sign > 0 else u(0.65, 0.8))
            )
            return kind, [(INDEX[channel], factor, 0.0)], {"chan": tag, "delta": f"{100 * (factor - 1):+.0f}%"}
        if kind == "mnt_regreased":
            changes = [(INDEX["vib_rms_accel_g"], u(0.75, 0.9), 0.0), (INDEX["band_hf_g"], u(0.5, 0.75), 0.0)]
            return kind, [*changes, (INDEX["bearing_temp_c"], 1.0, -u(1.0, 3.0))], {"grams": int(rng.integers(10, 60))}
        if kind == "mnt_coupling":
            return kind, [(INDEX["band_2x_mm_s"], u(0.5, 0.75), 0.0), (INDEX["vib_axial_velocity_mm_s"], u(0.65, 0.85), 0.0)], {}
        if kind == "mnt_seal":
            return kind, [(INDEX["flow_m3_h"], u(1.03, 1.08), 0.0), (INDEX["discharge_pressure_bar"], u(1.02, 1.06), 0.0)], {}
        factor = u(0.88, 0.95)  # impeller trimmed: less flow, head and power
        changes = [(INDEX["flow_m3_h"], u(0.86, 0.94), 0.0), (INDEX["discharge_pressure_bar"], u(0.85, 0.93), 0.0)]
        changes += [(INDEX[f"current_l{k}_a"], factor, 0.0) for k in (1, 2, 3)]
        return kind, changes, {"mm": int(rng.integers(5, 25))}


MISLEADING_KINDS: tuple[str, ...] = ("mis_limit_switch", "mis_comm_timeout", "mis_rtd_failed")

# ----------------------------------------------------------------------------------- train wording

_NOTE_TAIL = "[, will keep an eye on it|, WO requested|, told the shift lead|, to check next round|]"
NOTE_SYMPTOMS: dict[str, list[str]] = {
    "bearing_outer_race": [
        "[grinding|rumbling|growling] [noise|sound] at the [DE|NDE|drive end] bearing",
        "[DE|NDE] bearing sounds rough with the stethoscope",
        "faint [grinding|rumble] from the [DE|NDE] bearing housing",
    ],
    "bearing_inner_race": [
        "[grinding|rumbling] [noise|sound] at the [DE|NDE] bearing, [comes and goes|steady]",
        "[DE|NDE] bearing [growling|rough] on the stethoscope",
        "intermittent [grinding|ticking] from the [DE|NDE] bearing",
    ],
    "imbalance": [
        "[rotor|impeller|fan wheel] [looks dirty|has buildup on it|has deposits]",
        "[droning|wobbling] that rises with speed",
        "missing balance weight suspected on the [rotor|fan wheel]",
    ],
    "misalignment": [
        "coupling [worn|showing wear|looks worn]",
        "[rubber dust|black dust] under the coupling guard",
        "coupling [hot to touch|warmer than usual]",
    ],
    "looseness": [
        "[hold-down|foundation] bolt [loose|backing off]",
        "[cracked grout|gap] under the baseplate",
        "[knocking|rattle] from the base",
    ],
    "cavitation": [
        "[gravel|marbles] sound in the pump casing",
        "suction strainer [looks blocked|dP high on local gauge]",
        "[crackling|popping] at the pump suction",
    ],
    "lubrication_loss": [
        "grease nipple [blocked|won't take grease]",
        "auto-lubricator [stuck|not dispensing]",
        "bearing [squeal|squeak] [at start-up|on run-up]",
    ],
    "overheating": [
        "[hot smell|smell of hot paint] at the motor",
        "paint [discoloured|blistering] on the motor frame",
        "[fan cowl|cooling fins] [clogged with fluff|caked with dust]",
    ],
    "phase_imbalance": [
        "[buzzing|humming] at the terminal box",
        "[burnt smell|discoloured cable lug] at the terminal box",
        "one phase [lug|terminal] [looks discoloured|shows heat marks]",
    ],
    "seal_leak": [
        "[drips|steady drip] at the [mech seal|mechanical seal]",
        "[small puddle|wet patch] under the seal",
        "seal [weeping|dripping] [a bit|more than usual]",
    ],
}
TEXTUAL_TEMPLATES: dict[str, dict[str, list[str]]] = {
    "note": {
        "operator": [
            "{T}: {symptom}" + _NOTE_TAIL,
            "[Round|Walkdown]: {symptom} on {T}" + _NOTE_TAIL,
            "Tech note {T} - {symptom}",
            "[noticed|found] {symptom} on {T}" + _NOTE_TAIL,
        ],
        "cmms": [
            "Work request [raised|created] for {T}: {symptom}",
            "Notification {wo}: {T} {symptom}",
        ],
    },
    "mnt_recalibrated": {
        "cmms": [
            "[Sensor|Transmitter] {chan} on {T} [recalibrated|calibrated], offset corrected {delta}",
            "{chan} {T} calibration [done|completed], reading shifted {delta}",
            "Instrument tech: {chan} recalibrated on {T} ({delta})",
        ],
    },
    "mnt_regreased": {
        "cmms": [
            "[Bearings|DE and NDE bearings] regreased on {T} ({grams} g)",
            "{T} bearing regreased, [noise gone|runs quieter]",
            "Regreasing done on {T}[, {grams} g each side|]",
        ],
    },
    "mnt_coupling": {
        "cmms": [
            "Coupling [element|insert] replaced on {T}",
            "{T}: new coupling [element|spider] fitted, alignment checked",
        ],
    },
    "mnt_seal": {
        "cmms": [
            "[Seal|Mechanical seal] replaced on {T}",
            "{T} mech seal [renewed|changed] [during PM|on planned stop]",
        ],
    },
    "mnt_impeller": {
        "cmms": [
            "Impeller trimmed on {T} ({mm} mm off the diameter)",
            "{T}: impeller [trimmed|machined down] to new duty point",
        ],
    },
    "mis_limit_switch": {
        "controller": [
            "[Limit switch|Position switch] {chan} [activated|tripped]",
            "{T} [guard|valve] limit switch {chan} [ON|active]",
        ],
        "clear": ["[Limit switch|Position switch] {chan} [reset|normal]", "{T} limit switch {chan} [OFF|inactive]"],
    },
    "mis_comm_timeout": {
        "controller": [
            "[Communication|Comms] timeout [RIO {n}|remote IO {n}] - {T} values bad quality",
            "{T} [IO|I/O] [module|rack] {n} not responding",
        ],
    },
    "mis_rtd_failed": {
        "controller": [
            "{T} [bearing|winding] temperature [high high|HIHI] {value} C",
            "[Alarm|ALARM]: {T} [bearing|winding] temp {value} C above trip limit",
        ],
        "clear": ["[RTD|PT100] on {T} [open circuit|failed], alarm suppressed", "{T} temperature [sensor|RTD] fault"],
    },
}
