"""A reliability engineer reads the simulated logs: many phrasings, nuisance on healthy machines, no giveaway strings."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

from forewarn.contracts import LogRecord
from forewarn.dataset import label_at
from simulators.logtext import Renderer, expand
from simulators.phrases import MEASURE_PATTERNS
from simulators.plant import Plant
from simulators.scenario import scenario_from_dict
from simulators.templates import TEMPLATES


def _lines(assets: int = 60, hours: float = 24.0, seed: int = 3) -> tuple[Plant, list[LogRecord]]:
    scenario = scenario_from_dict(
        {"generate": {"assets": assets, "horizon": hours * 3600, "fault_fraction": 0.6}, "sample_rate_hz": 0.1, "batch_s": 60}
    )
    plant = Plant(scenario, seed=seed, start=1_750_000_000.0)
    return plant, [m for m in plant.messages(hours * 3600) if isinstance(m, LogRecord)]


def test_templates_render_without_leftover_markup() -> None:
    renderer = Renderer(np.random.default_rng(0))
    fields = {"T": "P-101", "noun": "pump", "Noun": "Pump", "value": "1.0", "sound": "grinding", "band": "BPFO"}
    for event, kinds in TEMPLATES.items():
        for kind in kinds:
            for _ in range(20):
                text = renderer.template(event, kind, "generic", fields)
                assert text and not re.search(r"[\[\]{}|]", text), (event, kind, text)
    for style in MEASURE_PATTERNS:
        for _ in range(50):
            text = renderer.measure(
                "vib",
                "WARNING",
                "cms" if style == "cms" else "controller",
                style,
                {"T": "P-101", "V": "7.1", "L": "4.5", "K": "A123"},
            )
            assert not re.search(r"[\[\]{}|]", text), text


def test_one_event_has_many_phrasings() -> None:
    rng = np.random.default_rng(1)
    renderer = Renderer(rng)
    texts = {
        renderer.measure("bearing_temp", "ALARM", "controller", style, {"T": "P-101", "V": "96.0", "L": "90.0"})
        for style in ("siemens", "rockwell", "abb", "schneider", "generic")
        for _ in range(40)
    }
    assert len(texts) > 100
    assert len({expand("[a|b] [c|d|]", rng) for _ in range(200)}) == 6


def test_fault_words_appear_on_healthy_assets_and_faults_are_not_always_logged() -> None:
    plant, lines = _lines()
    episodes = plant.episodes(until=plant.now)
    by_state: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        state, _ = label_at(episodes, line.asset_id, line.ts)
        for word in ("BPFO", "bearing", "vibration", "leak", "unbalance", "noise", "temperature"):
            if word.lower() in line.text.lower():
                by_state["fault" if state != "normal" else "normal"][word] += 1
    assert by_state["normal"]["vibration"] > 0 and by_state["normal"]["bearing"] > 0 and by_state["normal"]["leak"] > 0
    healthy = set(plant.asset_ids) - {e.asset_id for e in episodes} - {f.asset for f in plant.layout.faults}
    healthy_alarms = [ln for ln in lines if ln.asset_id in healthy and ln.level in ("WARNING", "ALARM")]
    assert healthy_alarms, "healthy assets never raised a nuisance alarm"
    silent = [
        e
        for e in episodes
        if not any(
            ln.asset_id == e.asset_id and e.onset <= ln.ts <= (e.failure or plant.now) and ln.level != "INFO" for ln in lines
        )
    ]
    assert len(silent) < len(episodes)


def test_no_single_line_identifies_a_fault() -> None:
    plant, lines = _lines(assets=80, seed=5)
    episodes = plant.episodes(until=plant.now)
    texts_by_fault: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        state, _ = label_at(episodes, line.asset_id, line.ts)
        texts_by_fault[state][line.text] += 1
    for fault, texts in texts_by_fault.items():
        if fault == "normal":
            continue
        most_common, count = texts.most_common(1)[0]
        assert count <= max(2, sum(texts.values()) // 5), (fault, most_common)


def test_routine_lines_dominate_and_every_source_speaks() -> None:
    _, lines = _lines(assets=30, hours=12)
    levels = Counter(line.level for line in lines)
    assert levels["INFO"] > levels["WARNING"] + levels["ALARM"]
    sources = {line.source for line in lines}
    assert len(sources) >= 8


def test_train_and_holdout_phrasings_are_disjoint_wordings() -> None:
    fields = {"T": "P-101", "V": "96.0", "L": "90.0", "sound": "grinding", "noun": "pump", "Noun": "Pump"}

    def texts(phrasing: str) -> set[str]:
        renderer = Renderer(np.random.default_rng(0), phrasing)
        out = {renderer.measure("bearing_temp", "ALARM", "controller", "generic", fields) for _ in range(300)}
        return out | {renderer.template("obs_noise", "operator", "generic", fields) for _ in range(300)}

    train, holdout = texts("train"), texts("holdout")
    assert len(train) > 50 and len(holdout) > 50
    assert len(train & holdout) < 0.05 * len(train)
    assert len(texts("all")) > len(train)
