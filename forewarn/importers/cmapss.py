"""NASA C-MAPSS turbofan run-to-failure data -> two dataset directories, ``train`` and ``test``.

    SRC/train_FD00x.txt   unit, cycle, 3 operating settings, 21 sensors (space separated)
    SRC/test_FD00x.txt    the same, each unit's run cut short before failure
    SRC/RUL_FD00x.txt     true remaining cycles after each test unit's last cycle, in unit order

Each unit is an asset (``fd001_train_007``) with one sample per cycle; cycle k of every unit is
at START + (k - 1) * cycle_s (default one hour, so hours to failure read as cycles). Channels are
the three settings (role ``setting``: they move the sensors' levels without being a fault) and the
21 sensors under their names in Saxena et al. (2008), made contract-safe (``T24`` -> ``t24``).

A training unit fails at its last cycle: one ``degradation`` episode from ``onset_cycles`` before
that (default 125, the usual RUL cap, so windows labelled normal are those whose capped RUL is the
cap) to the failure. A test unit's failure is its last cycle plus its true RUL, so its episode may
end, or even begin, after its data; meta.json ``extra.rul`` lists every unit's last cycle, its time
and its RUL there, for the last-cycle RUL RMSE.

``split="normal-first"`` is the protocol for learning without labels, from the run-to-failure
file alone: OUT/train holds the first ``normal_cycles`` cycles of four units in five (no
episode: every engine starts healthy), OUT/test the whole lives of every fifth unit (numbers
divisible by 5) with their failures, so `model evaluate` says how many cycles before failure
an anomaly bundle's score rises (``lead_time``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from forewarn.contracts import ChannelInfo, ChannelRole, DatasetMeta, FaultEpisode, Telemetry
from forewarn.importers.common import START, ImportRefused, Report, merged, write_dataset

SUBSETS = ("FD001", "FD002", "FD003", "FD004")
FAULT = "degradation"
RUL_CAP = 125

# (original name, description, unit, role), Saxena et al. 2008, table 2
SENSORS: tuple[tuple[str, str, str, ChannelRole], ...] = (
    ("T2", "total temperature at fan inlet", "degR", "temperature"),
    ("T24", "total temperature at LPC outlet", "degR", "temperature"),
    ("T30", "total temperature at HPC outlet", "degR", "temperature"),
    ("T50", "total temperature at LPT outlet", "degR", "temperature"),
    ("P2", "pressure at fan inlet", "psia", "pressure"),
    ("P15", "total pressure in bypass duct", "psia", "pressure"),
    ("P30", "total pressure at HPC outlet", "psia", "pressure"),
    ("Nf", "physical fan speed", "rpm", "speed"),
    ("Nc", "physical core speed", "rpm", "speed"),
    ("epr", "engine pressure ratio (P50/P2)", "", "pressure"),
    ("Ps30", "static pressure at HPC outlet", "psia", "pressure"),
    ("phi", "ratio of fuel flow to Ps30", "pps/psi", "flow"),
    ("NRf", "corrected fan speed", "rpm", "speed"),
    ("NRc", "corrected core speed", "rpm", "speed"),
    ("BPR", "bypass ratio", "", "other"),
    ("farB", "burner fuel-air ratio", "", "other"),
    ("htBleed", "bleed enthalpy", "", "other"),
    ("Nf_dmd", "demanded fan speed", "rpm", "speed"),
    ("PCNfR_dmd", "demanded corrected fan speed", "rpm", "speed"),
    ("W31", "HPT coolant bleed", "lbm/s", "flow"),
    ("W32", "LPT coolant bleed", "lbm/s", "flow"),
)
SETTINGS = (
    ("setting1", "operational setting 1 (altitude in the six-condition subsets)"),
    ("setting2", "operational setting 2 (Mach number)"),
    ("setting3", "operational setting 3 (throttle resolver angle)"),
)
COLUMNS = 26

Rows = dict[int, list[tuple[int, list[float]]]]
"""unit -> [(cycle, 24 values)] in file order."""


def channels(cycle_s: float) -> dict[str, ChannelInfo]:
    rate = 1.0 / cycle_s
    out = {
        f"setting_{i + 1}": ChannelInfo(rate_hz=rate, description=d, original_name=o, role="setting")
        for i, (o, d) in enumerate(SETTINGS)
    }
    for original, description, unit, role in SENSORS:
        out[original.lower()] = ChannelInfo(rate_hz=rate, unit=unit, description=description, original_name=original, role=role)
    return out


def read_rows(path: Path, report: Report) -> Rows:
    """Rows of one C-MAPSS text file by unit; a row that is not 26 finite numbers, or repeats or goes
    back in cycle, is counted in ``report`` with its line number."""
    rows: Rows = {}
    with path.open(encoding="ascii", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != COLUMNS:
                report.bad(path.name, number, f"{len(fields)} columns, expected {COLUMNS}")
                continue
            try:
                values = [float(f) for f in fields]
            except ValueError as exc:
                report.bad(path.name, number, f"not a number: {exc}")
                continue
            if not all(math.isfinite(v) for v in values) or values[0] != int(values[0]) or values[1] != int(values[1]):
                report.bad(path.name, number, "unit and cycle must be whole numbers and every value finite")
                continue
            unit, cycle = int(values[0]), int(values[1])
            seen = rows.setdefault(unit, [])
            if seen and cycle <= seen[-1][0]:
                report.bad(path.name, number, f"unit {unit} cycle {cycle} does not follow cycle {seen[-1][0]}")
                continue
            seen.append((cycle, values[2:]))
    return rows


def _unit_messages(
    site: str, asset: str, rows: list[tuple[int, list[float]]], names: list[str], cycle_s: float
) -> Iterator[Telemetry]:
    for seq, (cycle, values) in enumerate(rows):
        yield Telemetry(
            site=site,
            asset_id=asset,
            asset_type="turbofan",
            seq=seq,
            timestamps=[START + (cycle - 1) * cycle_s],
            channels={n: [v] for n, v in zip(names, values, strict=True)},
        )


def import_cmapss(
    src: Path,
    out: Path,
    *,
    subset: str = "FD001",
    cycle_s: float = 3600.0,
    onset_cycles: int = RUL_CAP,
    site: str = "cmapss",
    overwrite: bool = False,
    split: str = "file",
    normal_cycles: int = 50,
) -> Report:
    """Write OUT/train and OUT/test from one C-MAPSS subset in SRC (the file's own split, or ``normal-first``)."""
    subset = subset.upper()
    if subset not in SUBSETS:
        raise ImportRefused(f"unknown C-MAPSS subset {subset!r}; one of {', '.join(SUBSETS)}")
    if cycle_s <= 0 or onset_cycles < 0:
        raise ImportRefused("--cycle-s must be positive and --onset-cycles not negative")
    if split not in ("file", "normal-first") or normal_cycles < 1:
        raise ImportRefused(f"--split is file or normal-first (got {split!r}); --normal-cycles must be positive")
    files = {part: Path(src) / f"{part}_{subset}.txt" for part in ("train", "test", "RUL")}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise ImportRefused(f"{src} lacks {', '.join(missing)} (the C-MAPSS text files of {subset})")
    report = Report(source=f"NASA C-MAPSS {subset} from {src}")
    train = read_rows(files["train"], report)
    test = read_rows(files["test"], report)
    ruls: list[int] = []
    for number, line in enumerate(files["RUL"].read_text(encoding="ascii", errors="replace").splitlines(), start=1):
        if line.strip():
            try:
                ruls.append(int(float(line.split()[0])))
            except ValueError:
                report.bad(files["RUL"].name, number, f"not a number of cycles: {line.strip()[:40]!r}")
                ruls.append(-1)
    units = sorted(test)
    if len(ruls) != len(units):
        raise ImportRefused(f"{files['RUL'].name} has {len(ruls)} lines for {len(units)} test units")
    chans = channels(cycle_s)
    names = list(chans)
    prefix = subset.lower()
    # (directory, the file its units come from, unit -> rows, unit -> true RUL after its last row)
    parts = [("train", "train", train, dict.fromkeys(train, 0)), ("test", "test", test, dict(zip(units, ruls, strict=True)))]
    if split == "normal-first":
        healthy = {u: rows[:normal_cycles] for u, rows in train.items() if u % 5}
        whole = {u: r for u, r in train.items() if u % 5 == 0}
        parts = [("train", "train", healthy, {}), ("test", "train", whole, dict.fromkeys(whole, 0))]
        report.notes.append(
            f"normal-first: train = the first {normal_cycles} cycles of {len(healthy)} units, unlabelled; "
            f"test = the whole lives of {len(whole)} units (numbers divisible by 5) with their failures"
        )
    for part, origin, rows, true_rul in parts:
        episodes, rul_table, streams = [], {}, []
        for unit in sorted(rows):
            asset = f"{prefix}_{origin}_{unit:03d}"
            first, last = rows[unit][0][0], rows[unit][-1][0]
            streams.append(_unit_messages(site, asset, rows[unit], names, cycle_s))
            if unit not in true_rul:
                continue  # normal-first training units: healthy history, no failure in it
            rul = true_rul[unit]
            if rul < 0:
                report.notes.append(f"{asset}: no true RUL (bad line in {files['RUL'].name}), no episode written")
                continue
            failure = START + (last - 1 + rul) * cycle_s
            onset = max(START + (first - 1) * cycle_s, failure - onset_cycles * cycle_s)
            episodes.append(FaultEpisode(site=site, asset_id=asset, fault=FAULT, onset=onset, failure=failure))
            rul_table[asset] = {
                "last_cycle": last,
                "last_ts": START + (last - 1) * cycle_s,
                "rul_cycles": rul,
                "failure": failure,
            }
        longest = max(r[-1][0] for r in rows.values())
        meta = DatasetMeta(
            source=f"NASA C-MAPSS {subset} {part} (Saxena et al., PHM08)",
            licence="NASA PCoE public data",
            channels=chans,
            assets={f"{prefix}_{origin}_{u:03d}": "turbofan" for u in sorted(rows)},
            split=part,
            start=START,
            end=START + (longest - 1) * cycle_s,
            extra={
                "cycle_s": cycle_s,
                "rul": {"unit": "cycles", "cap": RUL_CAP, "onset_cycles": onset_cycles, "assets": rul_table},
                "faults": {
                    FAULT: "HPC degradation" + (" or fan degradation (not told per unit)" if subset in ("FD003", "FD004") else "")
                },
            },
        )
        write_dataset(out / part, meta, merged(streams), episodes, report, overwrite=overwrite)
    return report
