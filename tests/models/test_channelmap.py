"""Another plant's channels paired with a bundle's by their text: right pairs, never across roles or units."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from forewarn.cli import main
from forewarn.contracts import ChannelInfo, DatasetMeta, Telemetry
from forewarn.dataset import DatasetWriter
from models.channelmap import compatible, propose, words
from models.runtime import Bundle, default_bundle_path


def _info(description: str, unit: str = "", role: str | None = None, original: str = "") -> ChannelInfo:
    return ChannelInfo.model_validate(
        {"rate_hz": 1.0, "description": description, "unit": unit, "role": role, "original_name": original}
    )


BUNDLE = {
    "t24": _info("total temperature at LPC outlet", "degR", "temperature", "T24"),
    "t50": _info("total temperature at LPT outlet", "degR", "temperature", "T50"),
    "p30": _info("total pressure at HPC outlet", "psia", "pressure", "P30"),
    "nf": _info("physical fan speed", "rpm", "speed", "Nf"),
}


def test_words_split_names_at_case_and_digit_changes_and_drop_filler() -> None:
    assert words("Ps30", None) == {"ps", "30"}
    assert words("TT_2104", _info("Temperature at the LPC outlet", "degC")) == {
        "tt",
        "2104",
        "temperature",
        "lpc",
        "outlet",
        "unit:c",
    }
    assert words("VibRmsAccelG", None) == words("vib_rms_accel_g", None)


def test_opaque_tags_are_paired_by_description_unit_and_role() -> None:
    plant = {
        "TAG_07": _info("LPT outlet temperature, total", "degR", "temperature"),
        "TAG_02": _info("LPC outlet temperature (total)", "degR", "temperature"),
        "TAG_11": _info("fan speed, physical", "rpm", "speed"),
        "TAG_05": _info("HPC outlet pressure, total", "psia", "pressure"),
        "TAG_99": _info("door open counter", "", "other"),
    }
    pairs = {m.plant: m.bundle for m in propose(plant, BUNDLE)}
    assert pairs == {"TAG_07": "t50", "TAG_02": "t24", "TAG_11": "nf", "TAG_05": "p30"}  # the counter stays unmatched


def test_a_pair_across_roles_or_units_is_never_made_and_each_channel_is_used_once() -> None:
    assert not compatible(_info("x", "degR", "temperature"), _info("x", "psia", "temperature"))
    assert not compatible(_info("x", "", "pressure"), _info("x", "", "temperature"))
    assert compatible(_info("x", "degC"), _info("x", "celsius"))
    plant = {"A": _info("total temperature at LPC outlet", "psia", "pressure")}  # the words of t24, the unit of p30
    assert [m.bundle for m in propose(plant, BUNDLE)] != ["t24"]
    twins = {"A": BUNDLE["t24"], "B": BUNDLE["t24"]}
    assert len(propose(twins, BUNDLE)) == 2 and len({m.bundle for m in propose(twins, BUNDLE)}) == 2


def test_model_map_pairs_a_renamed_plant_with_the_shipped_bundle_and_data_rename_applies_it(tmp_path: Path) -> None:
    spec = Bundle.load(default_bundle_path()).spec
    renamed = {c: "_".join(c.split("_")[::-1]) for c in spec.channels}  # vib_rms_accel_g -> g_accel_rms_vib
    plant = tmp_path / "plant"
    meta = DatasetMeta(source="test", channels={renamed[c]: ChannelInfo(rate_hz=1.0) for c in spec.channels})
    writer = DatasetWriter(plant, meta)
    writer.write(
        Telemetry(
            site="s", asset_id="a", seq=0, timestamps=[1_767_225_600.0], channels={renamed[c]: [1.0] for c in spec.channels}
        )
    )
    writer.close()
    out = tmp_path / "map.json"
    result = CliRunner().invoke(main, ["model", "map", str(default_bundle_path()), str(plant), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {v: k for k, v in renamed.items()}  # names alone suffice here
    assert "bundle channels left empty: none" in result.output

    back = tmp_path / "back"
    result = CliRunner().invoke(main, ["data", "rename", str(plant), "--map", str(out), "--out", str(back)])
    assert result.exit_code == 0, result.output
    assert set(json.loads((back / "meta.json").read_text())["channels"]) == set(spec.channels)
    (message,) = [json.loads(line) for line in (back / "messages.jsonl").read_text().splitlines()]
    assert set(message["channels"]) == set(spec.channels)
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({renamed[spec.channels[0]]: "x", renamed[spec.channels[1]]: "x"}))
    result = CliRunner().invoke(main, ["data", "rename", str(plant), "--map", str(clash), "--out", str(tmp_path / "c")])
    assert result.exit_code != 0 and "more than one channel" in result.output
