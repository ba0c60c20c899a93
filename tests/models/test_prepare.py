"""A reliability engineer retrains on simulator runs that start healthy, yet plants hold machines faulty before any history."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.data import WindowTable, load_tables
from models.derived import COOLING
from models.features import GLOBAL, Normaliser
from models.prepare import absorb_references, derived_names, drop_references, visible_against_type, window_spec
from models.profiles import profile
from models.windowing import WindowSpec
from tests.models.synthetic import CHANNELS, write_dataset

SPEC = WindowSpec(
    channels=CHANNELS, length_s=600.0, hop_s=60.0, steps=10, grace_s=10.0, reference_s=1800.0, reference_min_s=600.0
)


def test_absorbed_references_hold_the_fault_so_only_the_type_baseline_shows_it(tmp_path: Path) -> None:
    table = load_tables([write_dataset(tmp_path / "d", seconds=5400)], SPEC, None)
    hot = np.array([a == "M-1" and label == "overheating" for a, label in zip(table.asset_ids, table.labels, strict=True)])
    temp = CHANNELS.index("temp_c")
    assert hot.sum() > 20 and np.isfinite(table.reference[hot, temp, 0]).any()

    absorbed, changed = absorb_references(table, SPEC, 1.0, np.random.default_rng(0))

    assert changed == sum(label != "normal" for label in table.labels), "every fault window, at fraction 1"
    healthy = np.array([label == "normal" for label in table.labels])
    np.testing.assert_array_equal(absorbed.reference[healthy], table.reference[healthy])
    episode_mean = table.stats[hot][:, :, temp, 0].mean()
    np.testing.assert_allclose(absorbed.reference[hot, temp, 0], episode_mean, rtol=1e-5)
    own_history = np.nanmean(table.reference[hot, temp, 0])
    assert episode_mean > own_history + 3.0, "the asset's own history was cooler: the fault showed against it"
    deviation = np.abs(table.stats[hot][:, :, temp, 0].mean(axis=1) - absorbed.reference[hot, temp, 0])
    assert np.median(deviation) < 0.5 * np.median(np.abs(table.stats[hot][:, :, temp, 0].mean(axis=1) - own_history))


def test_no_absorbed_references_leaves_the_table_as_cut(tmp_path: Path) -> None:
    table = load_tables([write_dataset(tmp_path / "d", seconds=3600)], SPEC, None)
    same, changed = absorb_references(table, SPEC, 0.0, np.random.default_rng(0))
    assert changed == 0 and same is table
    _, changed = absorb_references(table, SPEC, 0.3, np.random.default_rng(0))
    faults = sum(label != "normal" for label in table.labels)
    assert 0 < changed < faults


def test_dropped_references_read_as_an_assets_first_hour(tmp_path: Path) -> None:
    table = load_tables([write_dataset(tmp_path / "d", seconds=3600)], SPEC, None)
    had = np.isfinite(table.reference[:, :, 0]).any(axis=1)
    dropped, changed = drop_references(table, 0.5, np.random.default_rng(0))
    gone = ~np.isfinite(dropped.reference[:, :, 0]).any(axis=1)
    assert 0.3 * len(table) < changed < 0.7 * len(table)
    assert (gone & had).any() and (~gone).any(), "some windows lose the reference they had, others keep it"
    kept = ~gone
    np.testing.assert_array_equal(dropped.reference[kept], table.reference[kept])
    assert drop_references(table, 0.0, np.random.default_rng(0)) == (table, 0)


def test_only_faults_the_type_baseline_shows_are_taught_without_their_own_history() -> None:
    """A motor running 60 K over ambient shows it against any motor; one at 32 K needs its own past."""
    spec = WindowSpec(channels=("ambient_temp_c", "winding_temp_c"), length_s=60.0, hop_s=60.0, steps=2, grace_s=0.0)
    stats = np.zeros((3, 2, 2, 4), dtype=np.float32)
    stats[:, :, 0, 0] = 20.0
    stats[:, :, 1, 0] = np.array([52.0, 80.0, 8.0])[:, None]  # rises 32, 60 and -12 K
    table = WindowTable(
        stats=stats,
        counts=np.ones((3, 2, 2), dtype=np.int32),
        ends=np.zeros(3),
        ttf_hours=np.full(3, np.nan, dtype=np.float32),
        labels=["overheating"] * 3,
        truths=[("overheating",)] * 3,
        asset_ids=["M-1", "M-2", "M-3"],
        asset_types=["motor"] * 3,
        logs=[()] * 3,
        source=np.zeros(3, dtype=np.int32),
        sources=["x"],
        reference=np.full((3, 2, 2), np.nan, dtype=np.float32),
        reference_derived=np.zeros((3, 0, 2), dtype=np.float32),
        lagged=np.zeros((3, 2, 0), dtype=np.float32),
        rated_current=np.full(3, np.nan, dtype=np.float32),
        pump_slope=np.full(3, np.nan, dtype=np.float32),
    )
    baseline = Normaliser(
        channels=spec.channels,
        asset_types=(GLOBAL, "motor"),
        mean=np.zeros((2, 2, 4)),
        std=np.ones((2, 2, 4)),
        known=np.ones((2, 2), dtype=bool),
        derived=("winding_rise_c",),
        derived_mean=np.full((2, 1), 30.0),
        derived_std=np.full((2, 1), 5.0),
        derived_known=np.ones((2, 1), dtype=bool),
    )
    assert visible_against_type(table, spec, baseline, 3.0).tolist() == [False, True, True]


def test_a_profile_reads_one_pump_curve_its_own_where_the_history_fits_it() -> None:
    fixed, own = derived_names(profile("full", derived=True)), derived_names(profile("full", derived=True, pump_fit=True))
    assert "log_pump_curve" in fixed and "log_pump_curve_own" not in fixed
    assert "log_pump_curve_own" in own and "log_pump_curve" not in own
    assert set(fixed) - {"log_pump_curve"} == set(own) - {"log_pump_curve_own"}
    assert derived_names(profile("full")) == (), "simulator-named physics features are opt-in"


def test_a_profile_reads_each_cooling_feature_in_one_form_every_step_or_turning_only() -> None:
    every = derived_names(profile("full", derived=True))
    turning = derived_names(profile("full", derived=True, cooling_turning=True))
    for name in COOLING:
        assert name in every and f"{name}_turning" not in every
        assert f"{name}_turning" in turning and name not in turning
    assert set(every) - set(COOLING) == set(turning) - {f"{name}_turning" for name in COOLING}


def test_the_window_follows_hourly_or_per_cycle_data_and_keeps_the_profiles_window_otherwise() -> None:
    quick = profile("quick")
    hourly = window_spec(quick, ("t24",), rate_hz=1 / 3600)
    assert hourly.step_s == 3600.0 and hourly.steps == quick.steps and hourly.hop_s == 3600.0
    assert hourly.length_s == 3600.0 * quick.steps and hourly.grace_s == 3600.0
    assert hourly.reference_s == quick.reference_s * 3600.0 / (quick.length_s / quick.steps)
    fast = window_spec(quick, ("t24",), rate_hz=1.0)
    assert (fast.length_s, fast.hop_s) == (quick.length_s, quick.hop_s)
    kept = window_spec(quick.with_(window_follows_rate=False), ("t24",), rate_hz=1 / 3600)
    assert kept.length_s == quick.length_s


def test_the_running_channel_is_the_one_declared_with_role_speed_never_a_name_guess() -> None:
    quick = profile("quick")
    assert window_spec(quick, ("shaft_rpm", "t24"), speed="shaft_rpm").running_channel == "shaft_rpm"
    assert window_spec(quick, ("speed_rpm", "t24")).running_channel is None, "no role declared: every window counts as running"


def test_channel_coverage_is_the_share_of_window_steps_with_a_sample() -> None:
    from models.prepare import channel_coverage

    counts = np.zeros((2, 4, 3), dtype=np.int32)  # 2 windows of 4 steps, 3 channels
    counts[:, :, 0] = 5  # always read
    counts[0, :2, 1] = 1  # a quarter of the steps
    assert channel_coverage(("a", "b", "c"), counts) == {"a": 1.0, "b": 0.25, "c": 0.0}


def test_a_time_split_shares_no_sample_between_training_and_validation(tmp_path: Path) -> None:
    from models.prepare import split

    table = load_tables([write_dataset(tmp_path / "d", seconds=5400)], SPEC, None)
    train, val, how = split(table, 0.6, seed=0, length_s=SPEC.length_s)
    assert how.startswith("by time"), "holding out 60 % as whole assets would leave training too little"
    assert len(train) and len(val) and not set(train) & set(val)
    for asset in set(table.asset_ids):
        mine = [i for i in val if table.asset_ids[i] == asset]
        first_val_start = min(table.ends[i] for i in mine) - SPEC.length_s
        assert all(table.ends[i] <= first_val_start for i in train if table.asset_ids[i] == asset)
