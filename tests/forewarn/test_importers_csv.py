"""A plant's historian, alarm and work-order CSVs, described by one TOML mapping, become one dataset
directory with safe names, the originals kept, and every unreadable row reported by file and line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.contracts import LogRecord, Telemetry
from forewarn.dataset import iter_messages, label_at, read_labels, read_meta
from forewarn.importers.common import ImportRefused, channel_name
from forewarn.importers.plantcsv import import_csv


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


MAPPING = """
site = "hall3"
source = "pump testbed historian"

[telemetry]
files = ["historian.csv"]
layout = "wide"
time_column = "Time"
time_format = "%d.%m.%Y %H:%M:%S"
timezone = "+01:00"
asset_column = "Machine"
decimal = ","
delimiter = ";"
asset_type = "pump"

[telemetry.channels."Accelerometer1RMS"]
unit = "g"
role = "vibration"
description = "DE bearing RMS"

[telemetry.channels."Volume Flow RateRMS"]
unit = "l/min"
role = "flow"

[events]
files = ["alarms.csv"]
time_column = "when"
asset_column = "machine"
text_column = "message"
level_column = "severity"
code_column = "code"
levels = { "1" = "CRITICAL", "2" = "ALARM" }

[failures]
files = ["workorders.csv"]
asset_column = "machine"
fault_column = "failure mode"
onset_column = "detected"
failure_column = "failed"
end_column = "cleared"
"""

HISTORIAN = """Time;Machine;Accelerometer1RMS;Volume Flow RateRMS;Ignored
01.03.2024 10:00:00;P 101/A;0,12;31,5;x
01.03.2024 10:00:10;P 101/A;0,13;;x
01.03.2024 10:00:20;P 101/A;abc;31,9;x
01.03.2024 10:00:30;P 101/A;0,15;32,0;x
2024-03-01 10:00:40;P 101/A;0,15;32,0;x
01.03.2024 10:00:00;P-102;0,20;40,0;x
01.03.2024 10:00:10;P-102;0,20;40,0;x
01.03.2024 10:00:20;P-102;0,20;40,0;x
"""

ALARMS = """when,machine,severity,message,code
2024-03-01T09:00:05Z,P 101/A,2,Bearing temperature high,A17
2024-03-01T09:00:06Z,P 101/A,SEVERE,Vibration trip,
2024-03-01T09:00:07Z,P 101/A,AUDIT,Door opened,
2024-03-01T09:00:08Z,P-102,INFO,,
"""

WORKORDERS = """machine,failure mode,detected,failed,cleared
P 101/A,Bearing Failure (DE),2024-03-01T09:00:00Z,2024-03-01T11:00:00Z,
P-102,Seal leak,2024-03-01T08:00:00Z,,2024-03-01T09:30:00Z
P-102,Seal leak,,,
"""


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "export"
    d.mkdir()
    (d / "historian.csv").write_text(HISTORIAN)
    (d / "alarms.csv").write_text(ALARMS)
    (d / "workorders.csv").write_text(WORKORDERS)
    (tmp_path / "mapping.toml").write_text(MAPPING)
    return d


def test_exports_become_one_dataset_with_safe_names_and_bad_rows_listed(src: Path, tmp_path: Path) -> None:
    report = import_csv(src, tmp_path / "out", tmp_path / "mapping.toml")

    assert sorted((f, n) for f, n, _ in report.bad_rows) == [
        ("alarms.csv", 5),  # empty text
        ("historian.csv", 4),  # "abc" is not a number
        ("historian.csv", 6),  # the time is in another format
        ("workorders.csv", 4),  # no onset
    ]
    meta = read_meta(tmp_path / "out")
    assert set(meta.channels) == {"accelerometer1_rms", "volume_flow_rate_rms"}  # "Ignored" is not mapped
    acc = meta.channels["accelerometer1_rms"]
    assert (acc.original_name, acc.unit, acc.role) == ("Accelerometer1RMS", "g", "vibration")
    assert acc.rate_hz == pytest.approx(0.1)
    assert meta.extra["names"]["assets"] == {"P_101_A": "P 101/A"}
    assert meta.extra["names"]["faults"] == {"bearing_failure_de": "Bearing Failure (DE)", "seal_leak": "Seal leak"}

    messages = list(iter_messages(tmp_path / "out"))
    telemetry = [m for m in messages if isinstance(m, Telemetry) and m.asset_id == "P_101_A"]
    stamps = [t for m in telemetry for t in m.timestamps]
    assert stamps == [_ts("2024-03-01T09:00:00"), _ts("2024-03-01T09:00:10"), _ts("2024-03-01T09:00:30")]  # +01:00 read
    flows = [v for m in telemetry for v in m.channels["volume_flow_rate_rms"]]
    assert flows == [31.5, None, 32.0]  # an empty cell is a gap, kept
    logs = [(m.level, m.text, m.code) for m in messages if isinstance(m, LogRecord)]
    assert logs == [
        ("ALARM", "Bearing temperature high", "A17"),
        ("ERROR", "Vibration trip", None),
        ("NOTICE", "[AUDIT] Door opened", None),
    ]
    episodes = {e.asset_id: e for e in read_labels(tmp_path / "out")}
    assert label_at(episodes.values(), "P_101_A", _ts("2024-03-01T10:00:00")) == ("bearing_failure_de", 1.0)
    leak = episodes["P-102"]
    assert leak.end == _ts("2024-03-01T09:30:00") and leak.failure is None  # reversible: cleared, never failed
    assert meta.extra["import"]["bad_rows"] == 4


def test_long_layout_with_one_file_per_asset(tmp_path: Path) -> None:
    for asset, value in (("M1", 1.0), ("M2", 2.0)):
        rows = [
            f"2024-01-01T00:00:{s:02d}Z,{tag},{value + s},{unit}"
            for s in (0, 1)
            for tag, unit in (("Temp Motor", "C"), ("Speed", "rpm"))
        ]
        (tmp_path / f"{asset}.csv").write_text("t,tag,v,u\n" + "\n".join(rows) + "\n")
    (tmp_path / "map.toml").write_text(
        '[telemetry]\nfiles = ["M*.csv"]\nlayout = "long"\ntime_column = "t"\nchannel_column = "tag"\n'
        'value_column = "v"\nunit_column = "u"\n[telemetry.channels."Temp Motor"]\nrole = "temperature"\n'
        '[telemetry.channels.Speed]\nname = "shaft_rpm"\n'
    )
    import_csv(tmp_path, tmp_path / "out", tmp_path / "map.toml")
    meta = read_meta(tmp_path / "out")
    assert set(meta.assets) == {"M1", "M2"}
    assert meta.channels["temp_motor"].unit == "C" and meta.channels["shaft_rpm"].original_name == "Speed"
    m2 = [m for m in iter_messages(tmp_path / "out") if m.asset_id == "M2"]
    assert isinstance(m2[0], Telemetry) and m2[0].channels == {"temp_motor": [2.0, 3.0], "shaft_rpm": [2.0, 3.0]}


def test_names_are_made_contract_safe_and_unique() -> None:
    taken: set[str] = set()
    assert channel_name("Accelerometer1RMS", taken) == "accelerometer1_rms"
    assert channel_name("T24", taken) == "t24"
    assert channel_name("Volume Flow RateRMS", taken) == "volume_flow_rate_rms"
    assert channel_name("T-24", taken) == "t_24"
    assert channel_name("t24", taken) == "t24_2"
    assert channel_name("2nd stage pressure", taken) == "c_2nd_stage_pressure"
    long = channel_name("A very long historian tag name that goes on and on beyond any limit", taken)
    assert len(long) <= 48 and long.startswith("a_very_long")


def test_a_bad_mapping_is_refused_before_anything_is_written(src: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(MAPPING.replace('role = "flow"', 'role = "smell"'))
    with pytest.raises(ImportRefused, match="smell"):
        import_csv(src, tmp_path / "out", tmp_path / "bad.toml")
    assert not (tmp_path / "out" / "meta.json").exists()
    result = CliRunner().invoke(
        main, ["data", "import", "csv", str(src), "--mapping", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1 and "smell" in result.output


def test_a_mapped_column_missing_from_the_file_is_refused(src: Path, tmp_path: Path) -> None:
    (tmp_path / "typo.toml").write_text(MAPPING.replace('channels."Accelerometer1RMS"', 'channels."Accelerometer 1 RMS"'))
    with pytest.raises(ImportRefused, match="no column 'Accelerometer 1 RMS'"):
        import_csv(src, tmp_path / "out", tmp_path / "typo.toml")


def test_one_csv_file_with_every_column_a_channel(tmp_path: Path) -> None:
    (tmp_path / "P-7.csv").write_text("ts,Motor Current (A),Bearing Temp\n1709280000,10.5,40\n1709280060,11.0,41\n")
    (tmp_path / "m.toml").write_text('[telemetry]\ntime_column = "ts"\ntime_format = "unix_s"\n')
    import_csv(tmp_path / "P-7.csv", tmp_path / "out", tmp_path / "m.toml")
    meta = read_meta(tmp_path / "out")
    assert set(meta.assets) == {"P-7"}  # the file's name is the asset
    assert set(meta.channels) == {"motor_current_a", "bearing_temp"}
    assert meta.channels["bearing_temp"].rate_hz == pytest.approx(1 / 60)
    (tmp_path / "m.toml").write_text('[telemetry]\ntime_column = "ts"\n[events]\ntime_column = "ts"\ntext_column = "x"\n')
    with pytest.raises(ImportRefused, match=r"\[events\]: files is required"):
        import_csv(tmp_path / "P-7.csv", tmp_path / "out2", tmp_path / "m.toml")
