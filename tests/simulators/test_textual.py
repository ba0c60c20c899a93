"""Log text that carries weight: faults announced first or only in text, maintenance that explains a step,
misleading alarms on healthy machines, and a held-out phrase set that shares no sentence with the training one."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.contracts import LogRecord, Telemetry
from forewarn.dataset import iter_messages, label_at, read_labels, read_meta
from simulators.channels import CHANNELS
from simulators.errors import ScenarioError
from simulators.faults import DETECTABLE
from simulators.logtext import HELDOUT_BANKS, TRAIN_BANKS, Renderer
from simulators.phrases import MEASURES
from simulators.plant import Plant
from simulators.scenario import load_scenario, scenario_from_dict
from simulators.textual import NOTE_SPACING_S, Maintenance

START = 1_750_000_000.0
FAULTS = [
    ("P-1", "centrifugal_pump", "bearing_outer_race"),
    ("P-2", "centrifugal_pump", "seal_leak"),
    ("M-1", "induction_motor", "overheating"),
    ("FAN-1", "fan", "misalignment"),
    ("K-1", "compressor", "lubrication_loss"),
    ("CV-1", "gearbox", "looseness"),
]


def _plant(logs: dict[str, Any], healthy: int = 2, seed: int = 2) -> Plant:
    assets = [{"id": i, "type": t, "duty": "continuous"} for i, t, _ in FAULTS]
    assets += [{"id": f"M-9{k}", "type": "induction_motor", "duty": "continuous"} for k in range(healthy)]
    faults = [{"asset": i, "fault": f, "onset": "1h", "time_to_failure": "16h", "growth": "linear"} for i, _, f in FAULTS]
    scenario = scenario_from_dict(
        {"sample_rate_hz": 0.1, "batch_s": 60, "assets": assets, "faults": faults, "logs": logs}, "test-textual"
    )
    return Plant(scenario, seed=seed, start=START)


def _run(plant: Plant, hours: float = 20.0) -> tuple[list[Telemetry], list[LogRecord]]:
    messages = list(plant.messages(hours * 3600))
    return [m for m in messages if isinstance(m, Telemetry)], [m for m in messages if isinstance(m, LogRecord)]


def test_early_notes_announce_faults_before_the_sensors_and_move_the_label_onset() -> None:
    plant = _plant({"early_notes": 1.0})
    _, lines = _run(plant)
    table = plant.episode_table
    labels = {e.asset_id: e for e in plant.episodes()}
    for e in range(len(table)):
        a = int(table.asset[e])
        asset = plant.asset_ids[a]
        initiation, sensor_p = float(table.onset[e]), table.sensor_detectable_at(e)
        planned = sorted(t for t, k, _ in plant.notes if k == a)
        assert 1 <= len(planned) <= 3  # a few notes, not one an hour
        assert all(b - a_ >= NOTE_SPACING_S for a_, b in itertools.pairwise(planned))
        assert all(initiation <= t < sensor_p for t in planned)  # before the sensors show anything
        written = {round(ln.ts, 3) for ln in lines if ln.asset_id == asset and ln.level == "NOTICE"}
        assert {round(t, 3) for t in planned} <= written
        announced = float(table.announced[e])  # type: ignore[index]
        assert announced == planned[0]
        assert labels[asset].onset == pytest.approx(announced, abs=1e-3)  # detectable by the log: the label says so
    p2 = plant.asset_ids.index("P-2")
    note_times = {round(t, 3) for t, k, _ in plant.notes if k == p2}
    texts = " ".join(ln.text.lower() for ln in lines if ln.asset_id == "P-2" and round(ln.ts, 3) in note_times)
    assert "seal" in texts  # the symptom matches the fault: drips at the seal


def test_text_only_faults_stay_below_the_sensors_while_the_log_announces_them() -> None:
    plant = _plant({"text_only": 1.0})
    table = plant.episode_table
    assert table.hidden_until is not None and table.hidden_ramp is not None and table.announced is not None
    for e in range(len(table)):
        a, fault = int(table.asset[e]), FAULTS[e][2]
        p_raw = table.time_at_severity(e, DETECTABLE[fault])
        hidden = float(table.hidden_until[e])
        assert p_raw < hidden < float(table.failure[e])
        ts = np.linspace(p_raw, hidden - 1, 50)[None, :].repeat(len(plant), axis=0)
        quiet = table.severities(ts, len(plant))[:, a]
        assert quiet.max() <= 0.5 * DETECTABLE[fault] + 1e-9  # what the physics sees: below the P threshold
        late = float(table.hidden_until[e] + table.hidden_ramp[e] + 60)
        full = table.severities(np.full((len(plant), 1), late), len(plant))[:, a].max()
        assert full == pytest.approx(float(table.severity_at(e, late)))  # then the signature catches up
        assert float(table.announced[e]) < hidden  # the log announced it while the sensors were quiet
    labels = plant.episodes()
    assert len(labels) == len(FAULTS)  # ordinary fault episodes in the ground truth
    assert all(lab.onset == pytest.approx(float(table.announced[e]), abs=1e-3) for e, lab in enumerate(labels))


def test_a_text_only_fault_is_invisible_in_its_channel_until_its_signature_is_let_through() -> None:
    hidden, plain = _plant({"text_only": 1.0}, healthy=0), _plant({}, healthy=0)
    e = 0  # P-1, bearing outer race: the BPFO envelope band is its first sign
    t_lo, t_hi = hidden.episode_table.time_at_severity(e, 0.3), float(hidden.episode_table.hidden_until[e])  # type: ignore[index]
    assert t_hi - t_lo > 1800

    def bpfo(plant: Plant) -> float:
        values = [
            v
            for m in plant.messages(t_hi - START)
            if isinstance(m, Telemetry) and m.asset_id == "P-1"
            for t, v in zip(m.timestamps, m.channels["band_bpfo_g"], strict=True)
            if t_lo <= t < t_hi and v is not None
        ]
        return float(np.median(values))

    assert bpfo(hidden) < 0.5 * bpfo(plain)


def test_other_options_leave_the_telemetry_and_labels_of_a_plant_unchanged() -> None:
    base_tel, _ = _run(_plant({}), hours=3)
    tel, _ = _run(_plant({"misleading_alarms_per_day": 30.0}), hours=3)
    assert [m.model_dump_json() for m in tel] == [m.model_dump_json() for m in base_tel]
    assert _plant({}).episodes() == _plant({"misleading_alarms_per_day": 30.0}).episodes()
    assert not hasattr(_plant({}), "maintenance") or _plant({}).maintenance is None


def test_maintenance_steps_measured_levels_from_the_moment_it_is_done() -> None:
    present = np.ones((1, len(CHANNELS)), dtype=bool)
    maint = Maintenance(["centrifugal_pump"], present, per_day=1.0, rng=np.random.default_rng(4), start=0.0)
    when = float(maint.next[0])
    ts = np.linspace(when - 300, when + 300, 61)[None, :]
    measured = np.full((1, len(CHANNELS), 61), 10.0)
    events = maint.apply(measured, ts, float(ts.max()) + 1)
    assert len(events) == 1 and events[0].ts == when
    before, after = measured[0, :, ts[0] < when], measured[0, :, ts[0] >= when]
    assert np.all(before == 10.0)
    changed = np.flatnonzero(np.abs(after.mean(axis=0) - 10.0) > 0.1)
    assert changed.size >= 1  # a step, not a fault
    again = np.full((1, len(CHANNELS), 5), 10.0)
    maint.apply(again, np.full((1, 5), when + 600), when + 601)
    assert np.allclose(again[0, changed, 0], after[-1, changed])  # and it stays


def test_maintenance_entries_explain_steps_and_are_labelled_normal() -> None:
    plant = _plant({"maintenance_per_day": 10.0}, healthy=3)
    tel, lines = _run(plant, hours=14)
    episodes = plant.episodes()
    maintenance = [ln for ln in lines if ln.source in ("CMMS", "maint", "work-orders") and ln.level == "INFO"]
    words = ("recalibrated", "calibration", "regreased", "regreasing", "coupling", "seal", "impeller")
    explained = [ln for ln in maintenance if any(w in ln.text.lower() for w in words)]
    assert len(explained) >= 10
    healthy = [ln for ln in explained if ln.asset_id.startswith("M-9")]
    assert healthy and all(label_at(episodes, ln.asset_id, ln.ts)[0] == "normal" for ln in healthy)
    # A recalibration on a healthy machine moves its reading by the amount the entry states, labelled normal.
    recal = [
        ln
        for ln in healthy
        if "TT-" in ln.text and not any(o is not ln and o.asset_id == ln.asset_id and abs(o.ts - ln.ts) < 1200 for o in explained)
    ]
    assert recal
    for ln in recal:
        delta = float(re.search(r"([+-]\d+\.\d) C", ln.text).group(1))  # type: ignore[union-attr]
        channel = "bearing_temp_c" if "TT-BRG" in ln.text else "winding_temp_c"
        series = [
            (t, v)
            for m in tel
            if m.asset_id == ln.asset_id
            for t, v in zip(m.timestamps, m.channels[channel], strict=True)
            if v is not None and abs(t - ln.ts) < 600
        ]
        before = np.median([v for t, v in series if t < ln.ts][-3:])  # the samples either side of the entry
        after = np.median([v for t, v in series if t >= ln.ts][:3])
        assert after - before == pytest.approx(delta, abs=0.8)


def test_misleading_alarms_fire_on_healthy_machines_only_and_are_labelled_normal() -> None:
    plant = _plant({"misleading_alarms_per_day": 24.0}, healthy=3)
    _, lines = _run(plant, hours=12)
    episodes = plant.episodes()
    misleading = [ln for ln in lines if re.search(r"ZS-\d{3}|850\.0|-242\.0|bad quality|not responding", ln.text)]
    alarms = [ln for ln in misleading if ln.level == "ALARM"]
    assert len(alarms) >= 20
    assert {ln.asset_id for ln in alarms} & {"M-90", "M-91", "M-92"}
    assert all(label_at(episodes, ln.asset_id, ln.ts)[0] == "normal" for ln in misleading)
    chatter = [ln for ln in misleading if "ZS-" in ln.text]
    by_switch: dict[str, list[LogRecord]] = {}
    for ln in chatter:
        by_switch.setdefault(re.search(r"ZS-\d{3}", ln.text).group(0) + ln.asset_id, []).append(ln)  # type: ignore[union-attr]
    assert any(len(burst) >= 4 and burst[-1].ts - burst[0].ts < 600 for burst in by_switch.values())


def test_false_notes_describe_symptoms_on_healthy_machines_and_are_labelled_normal() -> None:
    def notes(rate: float) -> tuple[Plant, list[LogRecord]]:
        plant = _plant({"false_notes_per_day": rate}, healthy=3)
        _, lines = _run(plant, hours=12)
        pattern = re.compile(r"tech note|work request|notification \d+", re.I)
        return plant, [ln for ln in lines if ln.level == "NOTICE" and pattern.search(ln.text)]

    plant, false = notes(10.0)
    assert not notes(0.0)[1]
    healthy = [ln for ln in false if ln.asset_id.startswith("M-9")]
    assert len(healthy) >= 3
    episodes = plant.episodes()
    assert all(label_at(episodes, ln.asset_id, ln.ts)[0] == "normal" for ln in false)


# ----------------------------------------------------------------------------------- held-out phrasing


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    return set().union(*(_strings(v) for v in value)) if value else set()


def _mask(text: str) -> str:
    return re.sub(r"\d+", "#", text.lower())


def test_heldout_phrase_set_covers_every_text_and_shares_no_template_with_the_training_set() -> None:
    train, heldout = TRAIN_BANKS, HELDOUT_BANKS
    for event, kinds in train.templates.items():
        assert set(kinds) <= set(heldout.templates[event]), f"heldout lacks {event}: {set(kinds) - set(heldout.templates[event])}"
    for name in ("measure_patterns", "sounds", "diagnoses", "bands", "repairs", "process_words", "note_symptoms", "cms_levels"):
        assert set(getattr(train, name)) <= set(getattr(heldout, name)), name
    for name in train.__dataclass_fields__:
        shared = _strings(getattr(train, name)) & _strings(getattr(heldout, name))
        assert not shared, f"{name}: templates in both sets: {sorted(shared)[:5]}"


def test_rendered_heldout_lines_never_repeat_a_training_sentence() -> None:
    fields = {
        "T": "P-101",
        "noun": "pump",
        "Noun": "Pump",
        "value": "71",
        "sound": "grinding",
        "band": "BPFO",
        "symptom": "drips",
        "chan": "TT-BRG",
        "delta": "+2.0 C",
        "diag": "misalignment",
        "V": "7.1",
        "L": "4.5",
        "K": "A123",
    }

    def render(phrasing: str) -> set[str]:
        r = Renderer(np.random.default_rng(0), phrasing)
        out: set[str] = set()
        for event, kinds in r.banks.templates.items():
            for kind in kinds:
                out |= {_mask(r.template(event, kind, "generic", fields)) for _ in range(40)}
        for measure in MEASURES:
            for style in ("siemens", "rockwell", "abb", "schneider", "generic", "cms"):
                for level in ("WARNING", "ALARM"):
                    kind = "cms" if style == "cms" else "controller"
                    out |= {_mask(r.measure(measure, level, kind, style, fields)) for _ in range(10)}
            out |= {_mask(r.measure(measure, "WARNING", "controller", "generic", fields, clear=True)) for _ in range(10)}
        return out

    train, heldout = render("all"), render("heldout")
    assert len(train) > 1000 and len(heldout) > 300
    assert not train & heldout, sorted(train & heldout)[:10]
    rendered = {t for t in heldout if not re.search(r"[\[\]{}|]", t)}
    assert rendered == heldout  # no leftover markup


def test_a_heldout_plant_writes_only_heldout_sentences_over_the_same_telemetry_and_labels() -> None:
    def run(phrasing: str) -> tuple[list[str], set[str], list[Any]]:
        logs = {"phrasing": phrasing, "early_notes": 0.6, "text_only": 0.4, "maintenance_per_day": 3.0}
        plant = _plant(logs | {"misleading_alarms_per_day": 6.0})
        tel, lines = _run(plant, hours=12)
        texts = {_mask(ln.text).replace("p-#", "T").replace("p#", "T") for ln in lines}
        return [m.model_dump_json() for m in tel], texts, plant.episodes()

    (train_tel, train, train_labels), (held_tel, heldout, held_labels) = run("all"), run("heldout")
    assert len(heldout) > 60
    assert len(train & heldout) == 0, sorted(train & heldout)[:10]
    assert held_tel == train_tel and held_labels == train_labels  # only the wording differs


# ----------------------------------------------------------------------------------- scenarios and command line


def test_textual_scenarios_load_by_name_and_bad_shares_are_refused() -> None:
    train, held = load_scenario("textual_train"), load_scenario("textual_heldout")
    assert train.logs.textual and held.logs.textual and held.logs.phrasing == "heldout"
    assert not load_scenario("demo").logs.textual and not load_scenario("test").logs.textual
    with pytest.raises(ScenarioError, match="early_notes"):
        scenario_from_dict({"generate": {"assets": 2}, "logs": {"early_notes": 0.8, "text_only": 0.4}})


def test_simulate_heldout_phrasing_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "held"
    args = ["simulate", "--scenario", "textual_train", "--assets", "4", "--duration", "3h", "--seed", "101"]
    result = CliRunner().invoke(main, [*args, "--phrasing", "heldout", "--out", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["assets"] == 4 and read_meta(out).extra["scenario"] == "textual_train"
    logs = [m for m in iter_messages(out) if isinstance(m, LogRecord)]
    assert logs and len(read_labels(out)) == summary["episodes"]
    train_sentences = {_mask(s) for s in _strings(TRAIN_BANKS.templates)}
    assert not {_mask(m.text) for m in logs} & train_sentences
    codes = {m.code for m in logs if m.code}
    assert codes and all(re.fullmatch(r"SM-\d{3}[SW]|(FLT|WRN)\.\d{2}|E7[0-9A-F]{3}|SC\d{2}F?|EV-\d{3}", c) for c in codes), codes
    assert read_meta(out).extra["phrasing"] == "heldout" and "textual" in read_meta(out).extra
