"""A Window becomes a fixed-size token layout: z-scored sensor steps with masks, and log pieces within the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forewarn.contracts import LogRecord
from models.features import GLOBAL, FeatureSpec, Featuriser, Normaliser
from models.tokenizer import SEP, LogTokenizer, base_tokenizer_path, trim_vocabulary
from models.windowing import Window, WindowSpec

T0 = 1_767_225_600.0
SPEC = WindowSpec(channels=("temp", "vib"), length_s=60.0, hop_s=20.0, steps=6, grace_s=10.0, max_log_lines=8)


def _normaliser() -> Normaliser:
    rng = np.random.default_rng(0)
    stats = rng.normal(10.0, 2.0, size=(50, 6, 2, 4)).astype(np.float32)
    counts = np.full((50, 6, 2), 10, dtype=np.int32)
    counts[25:, :, 1] = 0  # "motor" windows have no vib
    types = ["pump"] * 25 + ["motor"] * 25
    return Normaliser.fit(SPEC.channels, stats, counts, types, np.ones(50, dtype=bool))


@pytest.fixture(scope="module")
def featuriser(tmp_path_factory: pytest.TempPathFactory) -> Featuriser:
    texts = ["warning bearing temperature high", "info pump started", "alarm trip"]
    path = Path(tmp_path_factory.mktemp("tok")) / "tokenizer.json"
    path.write_text(trim_vocabulary(base_tokenizer_path().read_text(), texts)[0])
    return Featuriser(SPEC, FeatureSpec(log_tokens=16, line_tokens=5), _normaliser(), LogTokenizer.from_file(path))


def _window(asset_type: str | None, logs: tuple[LogRecord, ...] = (), value: float = 10.0) -> Window:
    stats = np.full((6, 2, 4), value, dtype=np.float32)
    counts = np.full((6, 2), 10, dtype=np.int32)
    stats[0] = np.nan  # first step empty
    counts[0] = 0
    return Window("p", "a", asset_type, T0, T0 + 60, stats, counts, logs)


def _log(i: int, text: str, level: str = "INFO") -> LogRecord:
    return LogRecord(site="p", asset_id="a", ts=T0 + i, level=level, text=text)


def test_shapes_and_fixed_budget(featuriser: Featuriser) -> None:
    logs = tuple(_log(i, f"bearing temperature high {i}", "WARNING") for i in range(8))
    f = featuriser([_window("pump", logs), _window(None)])
    assert f.sensors.shape == (2, 6, 2 * 5) and f.sensors.dtype == np.float32
    assert f.tokens.shape == (2, 16) and f.line_index.shape == (2, 16)
    assert (f.tokens[1] == 0).all(), "no logs: all padding"
    assert (f.tokens[0] != 0).sum() <= 16


def test_normalisation_against_the_types_baseline(featuriser: Featuriser) -> None:
    norm = featuriser.normaliser
    assert norm.asset_types[0] == GLOBAL and set(norm.asset_types) == {GLOBAL, "pump", "motor"}
    f = featuriser([_window("pump", value=float(norm.mean[norm.type_index("pump"), 0, 0]))])
    z = f.sensors[0, 1:, 0]  # temp mean stat, steps with data
    np.testing.assert_allclose(z, 0.0, atol=1e-5)
    far = featuriser([_window("pump", value=1e6)])
    assert far.sensors[0, 1:, :8].max() == pytest.approx(featuriser.features.clip), "z is clipped"


def test_missing_channels_and_empty_steps_are_masked(featuriser: Featuriser) -> None:
    f = featuriser([_window("motor", value=1e6)])
    presence = f.sensors[0, :, 8:]  # (steps, channels)
    assert (presence[0] == 0).all(), "empty step is masked"
    assert (presence[1:, 0] == 1).all() and (presence[1:, 1] == 0).all(), "motors lack vib: masked"
    assert (f.sensors[0, :, 4:8] == 0).all(), "masked channel carries zeros, not imputed values"


def test_unknown_type_uses_the_global_baseline(featuriser: Featuriser) -> None:
    assert featuriser.normaliser.type_index("turbine") == 0
    assert featuriser.normaliser.type_index(None) == 0


def test_logs_severe_first_deduplicated_then_in_time_order(featuriser: Featuriser) -> None:
    logs = (
        _log(1, "pump started"),
        _log(2, "alarm trip", "ALARM"),
        _log(3, "pump started"),
        _log(4, "bearing temperature high", "WARNING"),
    )
    tokens, line_index = featuriser.log_tokens([logs])
    lines = [i for i in dict.fromkeys(line_index[0].tolist()) if i >= 0]
    assert lines == [1, 2, 3], "duplicate 'pump started' kept once (the latest), lines in time order"
    assert (tokens[0][line_index[0] < 0][: len(lines)] == SEP).all(), "each line closed by [SEP]"


def test_budget_keeps_the_most_severe_lines(featuriser: Featuriser) -> None:
    logs = (*(_log(i, f"pump started {i}") for i in range(6)), _log(10, "alarm trip", "ALARM"))
    _, line_index = featuriser.log_tokens([logs])
    assert 6 in line_index[0], "the alarm survives a full budget"


def test_deviations_report_z_and_raw_values(featuriser: Featuriser) -> None:
    w = _window("pump", value=30.0)
    z, value = featuriser.deviations(w.stats[None], w.counts[None], featuriser.type_indices(["pump"]))
    assert z.shape == value.shape == (1, 2, 4)
    np.testing.assert_allclose(value[0], 30.0)
    assert (z[0] > 3).all()


CATALOGUE = WindowSpec(
    channels=("ambient_temp_c", "band_1x_mm_s", "current_l1_a", "current_l2_a", "current_l3_a", "speed_rpm", "winding_temp_c"),
    length_s=60.0,
    hop_s=20.0,
    steps=6,
    grace_s=10.0,
)


def _machine(phases: tuple[float, float, float], speed: float = 1500.0, winding: float = 60.0) -> np.ndarray:
    stats = np.zeros((1, 6, 7, 4), dtype=np.float32)
    for c, value in enumerate((20.0, 2.0, *phases, speed, winding)):
        stats[0, :, c, :] = value
    stats[0, :, :, 1] = 0.1  # std
    return stats


def test_derived_features_read_like_an_analysts() -> None:
    from models.derived import DERIVED, derive, running

    names = tuple(DERIVED)
    counts = np.ones((1, 6, 7), dtype=np.int32)
    d = derive(names, CATALOGUE.channels, _machine((50.0, 50.0, 44.0)), counts)[0, 0]
    value = dict(zip(names, d, strict=True))
    assert value["current_unbalance"] == pytest.approx(6.0 / 48.0)
    assert value["winding_rise_c"] == pytest.approx(40.0)
    assert value["log_1x_per_speed2"] == pytest.approx(np.log(2.0 / 1.5**2))
    assert np.isnan(value["oil_rise_c"]), "no oil channel: undefined, masked downstream"
    stopped = derive(names, CATALOGUE.channels, _machine((0.1, 0.1, 0.1), speed=0.0), counts)[0, 0]
    assert np.isnan(stopped[names.index("log_1x_per_speed2")]), "no speed to normalise by"
    assert running(CATALOGUE.channels, _machine((50, 50, 50)), counts, "speed_rpm").tolist() == [True]
    assert running(CATALOGUE.channels, _machine((0, 0, 0), speed=0.0), counts, "speed_rpm").tolist() == [False]


def test_a_speed_frozen_on_a_machine_that_draws_no_current_is_not_running() -> None:
    from models.derived import running

    counts = np.ones((1, 6, 7), dtype=np.int32)
    assert running(CATALOGUE.channels, _machine((0.05, 0.0, 0.1)), counts, "speed_rpm").tolist() == [False], (
        "tripped, speed stuck"
    )
    no_currents = counts.copy()
    no_currents[..., 2:5] = 0
    assert running(CATALOGUE.channels, _machine((0.0, 0.0, 0.0)), no_currents, "speed_rpm").tolist() == [True], (
        "unread: speed decides"
    )
    one_phase = counts.copy()
    one_phase[..., 3:5] = 0
    assert running(CATALOGUE.channels, _machine((8.0, 0.0, 0.0)), one_phase, "speed_rpm").tolist() == [True], (
        "one phase read, drawing"
    )
    speed_only = ("speed_rpm",)
    assert running(speed_only, _machine((0, 0, 0))[:, :, 5:6], counts[:, :, 5:6], "speed_rpm").tolist() == [True], (
        "no current channels"
    )


def _motor_featuriser(tmp_path: Path, spec: FeatureSpec) -> Featuriser:
    """A featuriser over CATALOGUE whose healthy baseline is twenty motors at 50 A and 60 C."""
    stats = np.concatenate([_machine((50.0, 50.0, 50.0)) for _ in range(20)])
    counts = np.ones((20, 6, 7), dtype=np.int32)
    norm = Normaliser.fit(CATALOGUE.channels, stats, counts, ["motor"] * 20, np.ones(20, dtype=bool), spec.derived)
    path = tmp_path / f"tok-{len(spec.context)}.json"
    path.write_text(trim_vocabulary(base_tokenizer_path().read_text(), ["info ok"])[0])
    return Featuriser(CATALOGUE, spec, norm, LogTokenizer.from_file(path))


def test_relative_features_measure_the_step_against_the_assets_reference(tmp_path: Path) -> None:
    from models.derived import DERIVED

    names = tuple(DERIVED)
    spec = FeatureSpec(log_tokens=8, line_tokens=4, derived=names, relative=True)
    featuriser = _motor_featuriser(tmp_path, spec)
    reference = np.zeros((1, 7, 2), dtype=np.float32)
    reference[0, :, 0] = (20.0, 2.0, 50.0, 50.0, 50.0, 1500.0, 50.0)  # this motor's winding used to run at 50 C
    reference[0, :, 1] = 0.5
    out = featuriser.sensors(_machine((50.0, 50.0, 50.0)), np.ones((1, 6, 7), np.int32), np.array([1]), reference)
    assert out.shape == (1, 6, spec.sensor_features(7))
    c, d = 7, len(names)
    rel = out[0, 0, c * 5 + 2 * d :]
    z_winding = rel[6]
    assert z_winding == pytest.approx(spec.clip), "60 C against its own 50 +- 1 C: far out (clipped)"
    assert rel[c + 6] == 1.0 and rel[c + 0] == 1.0, "presence flags"
    unknown = featuriser.sensors(_machine((50.0, 50.0, 50.0)), np.ones((1, 6, 7), np.int32), np.array([1]), None)
    assert (unknown[0, :, c * 5 + 2 * d :] == 0).all(), "no reference yet: masked"


def test_derived_drift_is_measured_in_the_assets_own_spread(tmp_path: Path) -> None:
    """A 20% hotter winding for the same current is far out against this motor's own steady history,
    though it is well inside the spread between motors of its type."""
    import dataclasses

    from models.derived import DERIVED

    names = tuple(DERIVED)
    stats = np.concatenate([_machine((50.0, 50.0, 50.0)) for _ in range(20)])
    counts = np.ones((20, 6, 7), dtype=np.int32)
    norm = Normaliser.fit(CATALOGUE.channels, stats, counts, ["motor"] * 20, np.ones(20, dtype=bool), names)
    k = names.index("log_winding_rise_per_current2")
    norm.derived_std[:, k] = 1.0  # motors of a type differ a lot in winding rise per ampere squared
    path = tmp_path / "tok.json"
    path.write_text(trim_vocabulary(base_tokenizer_path().read_text(), ["info ok"])[0])
    feats = FeatureSpec(log_tokens=8, line_tokens=4, derived=names, relative=True)
    spec = dataclasses.replace(CATALOGUE, reference_s=600.0, reference_derived=names)
    featuriser = Featuriser(spec, feats, norm, LogTokenizer.from_file(path))
    machine = _machine((50.0, 50.0, 50.0))
    own = derive_step(names, machine)
    reference_derived = np.stack([own, np.full_like(own, 0.01)], axis=-1)[None].astype(np.float32)  # (1, D, 2)
    reference_derived[0, k, 0] -= np.log(1.2)  # it used to run 20% cooler per ampere squared
    reference = np.full((1, 7, 2), np.nan, dtype=np.float32)
    out = featuriser.sensors(machine, np.ones((1, 6, 7), np.int32), np.array([1]), reference, reference_derived)
    c, d = 7, len(names)
    rel_derived = out[0, 0, c * 5 + 2 * d + 2 * c :]
    assert rel_derived[k] == pytest.approx(np.log(1.2) / 0.05, rel=1e-3), "scaled by the floor (0.05 x type spread)"
    assert rel_derived[d + k] == 1.0, "present"
    missing = featuriser.sensors(machine, np.ones((1, 6, 7), np.int32), np.array([1]), reference, None)
    assert (missing[0, :, c * 5 + 2 * d + 2 * c :] == 0).all(), "no derived history yet: masked"


def derive_step(names: tuple[str, ...], machine: np.ndarray) -> np.ndarray:
    from models.derived import derive

    return derive(names, CATALOGUE.channels, machine, np.ones(machine.shape[:3], np.int32))[0, 0]


def test_pump_curve_position_tells_a_seal_leak_from_a_demand_drop() -> None:
    """A throttled pump moves along its curve (less flow, more head); a leaking seal takes both down."""
    from models.derived import derive

    channels = ("discharge_pressure_bar", "flow_m3_h", "speed_rpm", "suction_pressure_bar")

    def pump(demand: float, leak: float = 0.0) -> np.ndarray:  # the simulator's curve at 2,950 rpm
        flow = 120.0 * demand * (1.0 - 0.22 * leak)
        head = 6.0 * (1.25 - 0.3 * demand**2) * (1.0 - 0.18 * leak)
        stats = np.zeros((1, 1, 4, 4), dtype=np.float32)
        for c, value in enumerate((1.5 + head, flow, 2950.0, 1.5)):
            stats[0, 0, c, :] = value
        return stats

    def read(stats: np.ndarray) -> dict[str, float]:
        names = ("log_pump_curve", "log_flow_per_speed", "head_per_speed2")
        return dict(zip(names, derive(names, channels, stats, np.ones((1, 1, 4), dtype=np.int32))[0, 0], strict=True))

    healthy = [read(pump(d)) for d in (0.3, 0.5, 0.7, 1.0)]
    along = np.ptp([h["log_pump_curve"] for h in healthy])
    assert np.ptp([h["log_flow_per_speed"] for h in healthy]) > 1.0, "demand swings flow a lot"
    assert along < 0.1, "but hardly moves the duty point off the curve"
    for demand in (0.5, 1.0):
        drop = read(pump(demand))["log_pump_curve"] - read(pump(demand, leak=0.8))["log_pump_curve"]
        assert drop > 2 * along, f"a leak at {demand:.0%} demand leaves the curve"


def test_the_ambient_as_context_is_read_only_through_the_rises_over_it(tmp_path: Path) -> None:
    """The site's evening cooling is no fault: the ambient's own columns read as a channel that sent nothing,
    while the winding's rise over it is read as before."""
    from dataclasses import replace

    from models.derived import DERIVED

    names = tuple(DERIVED)
    spec = FeatureSpec(log_tokens=8, line_tokens=4, derived=names, relative=True)
    contextual = replace(spec, context=("ambient_temp_c",))
    reference = np.zeros((1, 7, 2), dtype=np.float32)
    reference[0, :, 0] = (26.0, 2.0, 50.0, 50.0, 50.0, 1500.0, 66.0)  # six hours ago the site was 6 C warmer
    reference[0, :, 1] = 0.5
    cold = _machine((50.0, 50.0, 50.0))
    ones = np.ones((1, 6, 7), np.int32)
    before = _motor_featuriser(tmp_path, spec).sensors(cold, ones, np.array([1]), reference)
    after = _motor_featuriser(tmp_path, contextual).sensors(cold, ones, np.array([1]), reference)
    c, d, ambient, rise = 7, len(names), 0, names.index("winding_rise_c")
    ambient_columns = [0, 1, 2, 3, 4 * c + ambient, 5 * c + 2 * d + ambient, 5 * c + 2 * d + c + ambient]
    assert before[0, 0, 5 * c + 2 * d + ambient] == pytest.approx(-spec.clip), "6 C colder than its reference"
    assert (after[..., ambient_columns] == 0).all(), "as if the ambient had sent nothing"
    others = [k for k in range(before.shape[-1]) if k not in ambient_columns]
    assert np.array_equal(after[..., others], before[..., others])
    assert after[0, 0, 5 * c + rise + d] == 1.0, "the winding's rise over ambient is still read"
    assert FeatureSpec.from_dict(contextual.to_dict()) == contextual
    old = {k: v for k, v in spec.to_dict().items() if k != "context"}
    assert FeatureSpec.from_dict(old).context == (), "a bundle saved before context reads every channel"
