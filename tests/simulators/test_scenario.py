"""A plant engineer writes a scenario file; a mistake is reported with the file and the field, and a good file loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.errors import ScenarioError
from simulators.layout import materialise
from simulators.scenario import SCENARIO_DIR, load_scenario, parse_duration, scenario_from_dict


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
def test_every_shipped_scenario_loads_and_materialises(name: str) -> None:
    scenario = load_scenario(name)
    layout = materialise(scenario, seed=0)
    assert layout.assets
    assert len({a.id for a in layout.assets}) == len(layout.assets)


def test_shipped_scenarios_are_what_the_demo_and_tests_expect() -> None:
    demo = materialise(load_scenario("demo"), 0)
    assert 4 <= len(demo.assets) <= 6 and len({a.type for a in demo.assets}) >= 4
    assert len({a.site for a in demo.assets}) == 1
    assert demo.faults and min(f.onset for f in demo.faults) <= 0
    assert len(materialise(load_scenario("plant200"), 0).assets) == 200


def test_generated_plants_depend_on_the_seed_and_cover_every_fault_mode() -> None:
    scenario = load_scenario("plant200")
    a, b = materialise(scenario, 1), materialise(scenario, 2)
    assert [x.type for x in a.assets] != [x.type for x in b.assets]
    from forewarn.contracts import SIMULATED_FAULTS

    assert {f.fault for f in a.faults} == set(SIMULATED_FAULTS)
    faulty = {f.asset for f in a.faults}
    assert 0.3 * 200 < len(faulty) < 0.7 * 200  # and the rest are healthy controls


def test_with_assets_keeps_explicit_assets_then_generates() -> None:
    demo = load_scenario("demo")
    assert [a.id for a in materialise(demo.with_assets(2), 0).assets] == ["P-101", "M-102"]
    assert len(materialise(demo.with_assets(30), 0).assets) == 30


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('[[assets]]\nid = "P1"\ntype = "pmup"\n', "assets[0].type", "unknown asset type 'pmup'"),
        (
            '[[assets]]\nid = "P1"\ntype = "fan"\n[[faults]]\nasset = "P1"\nfault = "cavitation"\nonset = 0\n',
            "faults[0].fault",
            "a fan cannot develop 'cavitation'",
        ),
        (
            '[[assets]]\nid = "P1"\ntype = "fan"\n[[faults]]\nasset = "P2"\nfault = "imbalance"\nonset = 0\n',
            "faults[0].asset",
            "no asset 'P2'",
        ),
        (
            '[[assets]]\nid = "P1"\ntype = "fan"\n[[faults]]\nasset = "P1"\nfault = "imbalance"\nonset = "soon"\n',
            "faults[0].onset",
            "not a duration",
        ),
        ('[[assets]]\nid = "P 1"\ntype = "fan"\n', "assets[0].id", "pattern"),
        ('[[assets]]\nid = "P1"\ntype = "fan"\nlod = 0.5\n', "assets[0].lod", "Extra inputs"),
        ('sample_rate_hz = 0\n[[assets]]\nid = "P1"\ntype = "fan"\n', "sample_rate_hz", "greater than 0"),
        ('[[sites]]\nid = "a"\nshifts = ["25:00"]\n[[assets]]\nid = "P1"\ntype = "fan"\n', "sites[0].shifts", "HH:MM"),
        ("name = 'x'\n", "assets", "no [[assets]]"),
    ],
)
def test_a_broken_scenario_names_the_file_and_field(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = tmp_path / "plant.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message and field in message and reason in message


def test_not_toml_and_unknown_names_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[assets]\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="neither a file nor a shipped scenario"):
        load_scenario("no-such-plant")


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("20m") == 1200 and parse_duration("1.5h") == 5400
    assert parse_duration("-2h") == -7200 and parse_duration(3) == 3.0 and parse_duration("2d") == 172800
    with pytest.raises(ValueError):
        parse_duration("2 weeks")


def test_scenario_from_dict_for_training_scripts() -> None:
    scenario = scenario_from_dict({"generate": {"assets": 3}, "noise": {"level": 2.0}})
    assert scenario.asset_count == 3 and scenario.noise.level == 2.0
