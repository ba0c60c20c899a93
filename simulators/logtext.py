"""Log text rendering: turn an event into one log line the way a given vendor or person writes it.

Each asset's controller has a vendor style (``siemens``, ``rockwell``, ``abb``,
``schneider``, ``generic``) that decides its source names, its alarm codes, its word orders
and its habits (upper case, terse tags); condition monitors, operators and the
maintenance system have their own voices. Within a style, every line is drawn from the
phrase banks with random alternatives, abbreviations and word orders, so one event never
has one fixed string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from forewarn.contracts import LogRecord
from simulators import heldout as H
from simulators.phrases import (
    BANDS,
    CLEAR_PATTERNS,
    CMS_LEVELS,
    CMS_POINTS,
    CONDITION_ABBR,
    CONDITIONS,
    DIAGNOSES,
    MEASURE_PATTERNS,
    MEASURES,
    OTHER_SOURCES,
    PROCESS_WORDS,
    REPAIRS,
    SCHNEIDER_CODES,
    SOUNDS,
    SOURCES,
)
from simulators.templates import TEMPLATES
from simulators.textual import NOTE_SYMPTOMS, TEXTUAL_TEMPLATES

_ALT = re.compile(r"\[([^\[\]]*)\]")
_SPACES = re.compile(r"\s{2,}")
_ARTICLE = re.compile(r"\b([Aa]n?) (?=(\w))")
_ABBREVIATIONS = (
    (re.compile(r"\btemperature\b", re.I), "temp"),
    (re.compile(r"\bbearing\b", re.I), "brg"),
    (re.compile(r"\bvibration\b", re.I), "vib"),
    (re.compile(r"\bpressure\b", re.I), "press"),
    (re.compile(r"\bmotor\b", re.I), "mtr"),
    (re.compile(r"\bcommunication\b", re.I), "comm"),
    (re.compile(r"\bwinding\b", re.I), "wdg"),
)
# Stable event numbers behind vendor codes (append only: codes are part of the plant's vocabulary).
EVENT_NUMBERS: dict[str, int] = {
    name: i + 1
    for i, name in enumerate(
        [
            "start",
            "stop",
            "speed",
            "load",
            "shift",
            "pm",
            "status",
            "trip_vib",
            "trip_temp",
            "trip_elec",
            "trip_process",
            "repaired",
            "vib",
            "bearing_temp",
            "winding_temp",
            "oil_temp",
            "disch_temp",
            "current_unbalance",
            "current_high",
            "pressure_low",
            "suction_low",
            "flow_low",
            "sensor_fault",
            "comm",
            "misc",
            "obs_power",
        ]
    )
}


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def expand(template: str, rng: np.random.Generator, half: int | None = None) -> str:
    """Resolve every ``[a|b|c]`` group (innermost first) with a random alternative (of one half, see Renderer)."""
    while True:
        new = _ALT.sub(lambda m: _choice(m.group(1).split("|"), rng, half), template)
        if new == template:
            return new
        template = new


def _choice(options: list[str], rng: np.random.Generator, half: int | None = None) -> str:
    if half is not None and len(options) >= 2:
        options = options[half::2]
    return options[int(rng.integers(len(options)))]


def _article(match: re.Match[str]) -> str:
    word, following = match.group(1), match.group(2)
    article = "an" if following.lower() in "aeiou" else "a"
    return (article.capitalize() if word[0] == "A" else article) + " "


def _tidy(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    text = _ARTICLE.sub(_article, text)
    text = text.replace(" ,", ",").replace(" :", ":").replace("( ", "(").replace(" )", ")").replace("()", "")
    return text.strip(" ,:-") or "event"


def tag_variant(asset_id: str, style: str, rng: np.random.Generator) -> str:
    """How a controller of ``style`` writes the asset's tag (P-101, P101, P_101, p-101)."""
    tag = asset_id.rsplit(".", 1)[-1]
    roll = rng.random()
    if style in ("siemens", "schneider") and roll < 0.7:
        return tag.replace("-", "")
    if style == "rockwell" and roll < 0.7:
        return tag.replace("-", "_")
    if style == "generic" and roll < 0.2:
        return tag.lower()
    return tag


PHRASING_HALVES: dict[str, int | None] = {"all": None, "train": 0, "holdout": 1, "heldout": None}


@dataclass(frozen=True)
class Banks:
    """Every wording a plant writes with: whole-event templates, measurement alarm parts, and word lists."""

    templates: dict[str, dict[str, list[str]]]
    measure_patterns: dict[str, list[str]]
    clear_patterns: list[str]
    conditions: dict[tuple[str, str], list[str]]
    condition_abbr: dict[tuple[str, str], list[str]]
    cms_levels: dict[str, list[str]]
    sounds: dict[str, list[str]]
    diagnoses: dict[str, list[str]]
    bands: dict[str, list[str]]
    repairs: dict[str, list[str]]
    process_words: dict[str, list[str]]
    note_symptoms: dict[str, list[str]]


TRAIN_BANKS = Banks(
    {**TEMPLATES, **TEXTUAL_TEMPLATES},
    MEASURE_PATTERNS,
    CLEAR_PATTERNS,
    CONDITIONS,
    CONDITION_ABBR,
    CMS_LEVELS,
    SOUNDS,
    DIAGNOSES,
    BANDS,
    REPAIRS,
    PROCESS_WORDS,
    NOTE_SYMPTOMS,
)
"""The training phrase set (phrasing all / train / holdout: the last two are its two halves)."""
HELDOUT_BANKS = Banks(
    H.HELDOUT_TEMPLATES,
    H.HELDOUT_MEASURE_PATTERNS,
    H.HELDOUT_CLEAR_PATTERNS,
    H.HELDOUT_CONDITIONS,
    H.HELDOUT_CONDITION_ABBR,
    H.HELDOUT_CMS_LEVELS,
    H.HELDOUT_SOUNDS,
    H.HELDOUT_DIAGNOSES,
    H.HELDOUT_BANDS,
    H.HELDOUT_REPAIRS,
    H.HELDOUT_PROCESS_WORDS,
    H.HELDOUT_NOTE_SYMPTOMS,
)
"""The separately written held-out phrase set (phrasing heldout, ``simulators/heldout.py``)."""


class Renderer:
    """Renders events for one plant; all randomness comes from the generator given.

    ``phrasing`` "train" or "holdout" restricts every choice of wording (templates, nouns,
    conditions, word orders, alternatives) to one of two disjoint halves of the phrase
    banks, so a model can be evaluated on phrasings it never saw in training; "heldout" uses
    the separately written phrase set of ``heldout.py`` instead (all of it).
    """

    def __init__(self, rng: np.random.Generator, phrasing: str = "all") -> None:
        self.rng = rng
        self.half = PHRASING_HALVES[phrasing]
        self.banks = HELDOUT_BANKS if phrasing == "heldout" else TRAIN_BANKS

    def pick(self, options: list[str]) -> str:
        """A wording choice (subject to the phrasing half)."""
        return _choice(options, self.rng, self.half)

    def any(self, options: list[str]) -> str:
        """A choice that is identity, not wording (source names, people, measuring points)."""
        return _choice(options, self.rng)

    def expand(self, template: str) -> str:
        return expand(template, self.rng, self.half)

    def source(self, style: str, kind: str) -> str:
        if kind in SOURCES.get(style, {}):
            return self.any(SOURCES[style][kind])
        return self.any(OTHER_SOURCES.get(kind, SOURCES["generic"]["controller"]))

    def code(self, style: str, event: str, level: str) -> str | None:
        """A vendor-style alarm code, or None (many lines carry none)."""
        number = EVENT_NUMBERS.get(event)
        if number is None or self.rng.random() < 0.25:
            return None
        severe = level in ("ALARM", "ERROR", "CRITICAL")
        if self.banks is HELDOUT_BANKS:  # other vendors' numbering, none of the training formats
            return {
                "siemens": f"SM-{number:03d}{'S' if severe else 'W'}",
                "rockwell": f"{'FLT' if severe else 'WRN'}.{number:02d}",
                "abb": f"E{0x7000 + number * 13:04X}",
                "schneider": f"SC{number:02d}{'F' if severe else ''}",
            }.get(style, f"EV-{number:03d}")
        if style == "siemens":
            return f"{4000 + 10 * number + severe}" if self.rng.random() < 0.5 else f"0x{0x4A00 + 16 * number + severe:04X}"
        if style == "rockwell":
            return f"{'F' if severe else 'A'}{number * 7 % 1000:03d}"
        if style == "abb":
            return f"{'F' if severe else 'A'}{0x2000 + number * 37:04X}"
        if style == "schneider":
            return SCHNEIDER_CODES.get(event, f"E{number:03d}")
        return f"ALM{number:03d}" if severe or self.rng.random() < 0.3 else None

    def finish(self, text: str, style: str, kind: str) -> str:
        """Vendor and human habits: upper case on terse panels, abbreviations, lower-case notes."""
        rng = self.rng
        if kind in ("controller", "drive") and rng.random() < {"generic": 0.3, "schneider": 0.3, "rockwell": 0.15}.get(
            style, 0.05
        ):
            text = text.upper()
        elif kind == "operator" and rng.random() < 0.4:
            text = text.lower()
        if rng.random() < 0.15:
            for pattern, short in _ABBREVIATIONS:
                if rng.random() < 0.5:
                    text = pattern.sub(short, text)
        return _tidy(text)[:2000]

    def template(self, event: str, kind: str, style: str, fields: dict[str, Any]) -> str:
        """A whole-template event (start, shift handover, operator note, CMS message...)."""
        template = self.pick(self.banks.templates[event][kind])
        return self.finish(self.expand(template).format_map(_Fields(fields)), style, kind)

    def measure(self, measure: str, level: str, kind: str, style: str, fields: dict[str, Any], clear: bool = False) -> str:
        """A measurement alarm composed from noun, condition and a word order of the style."""
        rng, bank, banks = self.rng, MEASURES[measure], self.banks
        side = str(bank["side"])
        fmt = _Fields(fields)
        fmt.update(
            N=self.expand(self.pick(list(bank["nouns"]))),
            NA=self.pick(list(bank["abbr"])),
            C=self.pick(banks.conditions[(side, level)]),
            CA=self.pick(banks.condition_abbr[(side, level)]),
            U=self.pick(list(bank["units"])),
            LVL=self.pick(banks.cms_levels[level]),
            PT=self.any(CMS_POINTS),
            P=f"{int(rng.integers(30, 99))}.{int(rng.integers(1, 40)):02d}",
        )
        if clear:
            patterns = banks.clear_patterns
        elif kind == "cms":
            patterns = banks.measure_patterns["cms"]
        else:
            by_style = banks.measure_patterns
            patterns = by_style.get(style, by_style["generic"]) + by_style["generic"][:3]
        text = self.expand(self.pick(patterns)).format_map(fmt)
        return self.finish(text, style, kind)


def record(site: str, asset_id: str, ts: float, level: str, source: str, text: str, code: str | None) -> LogRecord:
    """A validated log line (logs are few next to telemetry, so they go through the contract's checks)."""
    return LogRecord(site=site, asset_id=asset_id, ts=round(ts, 3), level=level, source=source[:64], text=text, code=code)
