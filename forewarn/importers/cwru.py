"""Case Western Reserve University bearing recordings (.mat) -> dataset directories of kHz vibration.

    SRC/12k_Drive_End_IR007_0_105.mat     fault at the inner race (IR), outer race (OR007@6: at 6
    SRC/12k_Drive_End_OR007@6_0_130.mat   o'clock) or a ball (B), 0.007 inch across, 0 hp load,
    SRC/normal_0_97.mat                   CWRU record 105; ``normal_*``: the healthy baseline

Each recording is one asset (``cwru_ir007_105``) whose accelerometer (drive end by default; fan end
and base plate on request) is a channel carrying every sample at the recording's rate, batched
``batch_s`` seconds to a Telemetry message. The label comes from the file name: the fault's
location (``bearing_inner_race``, ``bearing_outer_race``, ``bearing_ball``), or location and size
with ``label_by="location_size"``; an episode covers the whole recording (the faults were seeded,
nothing failed). The normal recording has no episode.

Sampling rates are checked, not assumed. The files hold no rate, and whether the healthy baseline
was recorded at 12 or 48 kHz is disputed. The check reads the recording's own shaft speed
(its ``RPM`` variable, else the other recordings'): a recording taken at 4x the nominal rate and read
at the nominal one shows spectral lines at 1/4 and 3/4 of the shaft frequency (its true 1x and 3x),
which a recording at the nominal rate does not. A recording found at another rate is resampled
(polyphase, anti-aliased) to the nominal rate; an unclear check is refused unless ``rates`` names
the file's rate.

``split="size"`` writes OUT/train and OUT/test with no recording in both: the fault recordings of
``test_sizes`` go to test, the others to train, and the one healthy recording is cut in two
assets (``..._a`` first part for train, ``..._b`` its last ``test_fraction`` for test), which share
no window. ``split="time"`` cuts every recording so, the usual (optimistic) protocol in which a
recording's windows land on both sides, though no window is in both. ``split="normal-first"`` is
the unsupervised protocol: OUT/train holds only the healthy recording's first part, OUT/test its
last ``test_fraction`` and every fault recording.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forewarn.contracts import MAX_SAMPLES, ChannelInfo, DatasetMeta, FaultEpisode, Telemetry
from forewarn.importers.common import START, ImportRefused, Report, merged, write_dataset

NOMINAL_HZ = 12_000
LOCATIONS = {"IR": "bearing_inner_race", "OR": "bearing_outer_race", "B": "bearing_ball"}
SENSORS = {
    "DE": ("de_accel_g", "drive-end accelerometer (CWRU DE_time)"),
    "FE": ("fe_accel_g", "fan-end accelerometer (CWRU FE_time)"),
    "BA": ("ba_accel_g", "base-plate accelerometer (CWRU BA_time)"),
}
LOAD_RPM = {0: 1797.0, 1: 1772.0, 2: 1750.0, 3: 1730.0}
"""Approximate motor speed by load (hp), the CWRU test rig's table, for recordings without RPM."""
_SPLITS = {
    "size": "by fault size (test: {sizes})",
    "time": "by time in each recording (test: last {f:g})",
    "normal-first": "healthy first part only for training (test: its last {f:g}, every fault)",
}
HIGH_RATE_EVIDENCE = 8.0
LOW_RATE_EVIDENCE = 4.0
_FAULT_FILE = re.compile(r"^(?:\d+k_)?(?:Drive|Fan)_End_(IR|OR|B)(\d{3})(?:@(\d+))?_(\d)_(\d+)$", re.IGNORECASE)
_NORMAL_FILE = re.compile(r"^normal_(\d)_(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Recording:
    path: Path
    asset: str
    location: str | None  # IR / OR / B, None for normal
    size: str | None  # "007" (mils)
    position: str | None  # outer race clock position
    load_hp: int
    number: str

    @property
    def fault(self) -> str | None:
        return None if self.location is None else LOCATIONS[self.location]


def parse_name(path: Path) -> Recording | None:
    """The recording a CWRU file name describes, or None when the name is not CWRU's."""
    stem = path.stem
    m = _FAULT_FILE.match(stem)
    if m:
        loc, size, pos, load, number = m.groups()
        loc = loc.upper()
        asset = f"cwru_{loc.lower()}{size}{'at' + pos if pos else ''}_{number}"
        return Recording(path, asset, loc, size, pos, int(load), number)
    m = _NORMAL_FILE.match(stem)
    if m:
        load, number = m.groups()
        return Recording(path, f"cwru_normal_{load}_{number}", None, None, None, int(load), number)
    return None


def _prominence(spec: np.ndarray, freqs: np.ndarray, f: float) -> float:
    """Height of the spectral line nearest ``f`` over the median of its +-8 Hz neighbourhood."""
    step = float(freqs[1] - freqs[0])
    tol = max(2 * step, 0.002 * f)
    near = (freqs > f - tol) & (freqs < f + tol)
    around = (freqs > f - 8.0) & (freqs < f + 8.0)
    if not near.any() or around.sum() < 5:
        return float("nan")
    return float(spec[near].max() / max(float(np.median(spec[around])), 1e-30))


def rate_evidence(x: np.ndarray, nominal_hz: float, rpm: float) -> dict[str, float]:
    """Evidence that ``x``, read at ``nominal_hz``, was recorded at 4x that rate: the prominence of
    lines at 1/4 and 3/4 of the shaft frequency (its true 1x and 3x), and of the 1x line itself."""
    x = np.asarray(x, dtype=np.float64) - float(np.mean(x))
    n = len(x)
    spec = np.abs(np.fft.rfft(x * np.hanning(n), 4 * n))
    freqs = np.fft.rfftfreq(4 * n, 1.0 / nominal_hz)
    f1 = rpm / 60.0
    quarter = max(_prominence(spec, freqs, f1 / 4), _prominence(spec, freqs, 3 * f1 / 4))
    return {"shaft_hz": round(f1, 3), "quarter_lines": round(quarter, 2), "one_x": round(_prominence(spec, freqs, f1), 2)}


def decide_rate(evidence: dict[str, float], nominal_hz: float) -> float | None:
    """4x nominal when the quarter-shaft lines stand out, nominal when they do not, None when unclear."""
    q = evidence["quarter_lines"]
    if math.isnan(q):
        return None
    if q >= HIGH_RATE_EVIDENCE:
        return 4 * nominal_hz
    if q <= LOW_RATE_EVIDENCE:
        return nominal_hz
    return None


def _load_mat(path: Path) -> dict[str, Any]:
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise ImportRefused("reading .mat files needs scipy: pip install 'forewarn[train]'") from exc
    try:
        return dict(loadmat(path))
    except Exception as exc:  # scipy raises several types for a corrupt or non-MAT file
        raise ImportRefused(f"{path.name}: not a readable MATLAB file ({exc})") from exc


def _variable(mat: dict[str, Any], suffix: str) -> np.ndarray | None:
    keys = sorted(k for k in mat if not k.startswith("__") and k.upper().endswith(suffix.upper()))
    return None if not keys else np.asarray(mat[keys[0]], dtype=np.float64).ravel()


def _resample(x: np.ndarray, from_hz: float, to_hz: float) -> np.ndarray:
    from scipy.signal import resample_poly

    g = math.gcd(int(from_hz), int(to_hz))
    return np.asarray(resample_poly(x, int(to_hz) // g, int(from_hz) // g))


def _messages(site: str, asset: str, signals: dict[str, np.ndarray], rate: float, batch: int, t0: float) -> Iterator[Telemetry]:
    n = min(len(s) for s in signals.values())
    for seq, i in enumerate(range(0, n, batch)):
        j = min(i + batch, n)
        ts = (t0 + np.arange(i, j) / rate).round(6).tolist()
        yield Telemetry.model_construct(  # every value is ours: finite floats, increasing stamps
            schema_version=1,
            kind="telemetry",
            site=site,
            asset_id=asset,
            asset_type="motor",
            seq=seq,
            timestamps=ts,
            channels={name: s[i:j].tolist() for name, s in signals.items()},
            waveform=None,
        )


def import_cwru(
    src: Path,
    out: Path,
    *,
    sensors: tuple[str, ...] = ("DE",),
    label_by: str = "location",
    split: str = "none",
    test_sizes: tuple[str, ...] = ("014",),
    test_fraction: float = 0.5,
    rates: dict[str, float] | None = None,
    batch_s: float = 0.5,
    site: str = "cwru",
    overwrite: bool = False,
) -> Report:
    """Write OUT (``split="none"``) or OUT/train and OUT/test (``split="size"`` or ``"time"``) from the .mat files in SRC."""
    sensors = tuple(s.upper() for s in sensors)
    if not sensors or set(sensors) - set(SENSORS):
        raise ImportRefused(f"sensors must be among {', '.join(SENSORS)}")
    if label_by not in ("location", "location_size") or split not in ("none", "size", "time", "normal-first"):
        raise ImportRefused("label_by is location or location_size; split is none, size, time or normal-first")
    if not 0 < test_fraction < 1:
        raise ImportRefused("the test fraction must be between 0 and 1")
    rates = dict(rates or {})
    batch = max(1, min(MAX_SAMPLES, round(batch_s * NOMINAL_HZ)))
    report = Report(source=f"CWRU bearing data from {src}")
    recordings = []
    for path in sorted(Path(src).glob("*.mat")):
        rec = parse_name(path)
        if rec is None:
            report.bad(path.name, 0, "file name is not a CWRU recording's (e.g. 12k_Drive_End_IR007_0_105.mat, normal_0_97.mat)")
        else:
            recordings.append(rec)
    if not recordings:
        raise ImportRefused(f"{src} holds no CWRU .mat recordings")
    loaded: list[tuple[Recording, dict[str, Any]]] = [(rec, _load_mat(rec.path)) for rec in recordings]
    known_rpm = [float(r[0]) for _, m in loaded if (r := _variable(m, "RPM")) is not None and r.size]
    streams: list[tuple[str, str, Iterator[Telemetry]]] = []
    episodes: list[tuple[str, FaultEpisode]] = []
    info: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    parts: dict[str, list[str]] = {"train": [], "test": []}
    for rec, mat in loaded:
        signals = {}
        for sensor in sensors:
            x = _variable(mat, f"_{sensor}_time")
            if x is None or x.size == 0:
                break
            signals[SENSORS[sensor][0]] = x
        if len(signals) != len(sensors):
            report.bad(
                rec.path.name, 0, f"no {'/'.join(sensors)} accelerometer variable (*_{sensor}_time); recording not imported"
            )
            continue
        rpm_var = _variable(mat, "RPM")
        if rpm_var is not None and rpm_var.size:
            rpm, rpm_from = float(rpm_var[0]), "file"
        elif known_rpm:
            rpm, rpm_from = float(np.median(known_rpm)), "other recordings"
        else:
            rpm, rpm_from = LOAD_RPM.get(rec.load_hp, 1797.0), "load table"
        first = next(iter(signals.values()))
        evidence = rate_evidence(first[: 8 * NOMINAL_HZ * 4], NOMINAL_HZ, rpm)
        override = rates.get(rec.path.name) or rates.get(rec.path.stem)
        rate = override or decide_rate(evidence, NOMINAL_HZ)
        if rate is None:
            raise ImportRefused(
                f"{rec.path.name}: cannot tell its sampling rate (quarter-shaft line prominence "
                f"{evidence['quarter_lines']}, between {LOW_RATE_EVIDENCE} and {HIGH_RATE_EVIDENCE}); "
                f"name it: --rate {rec.path.name}={NOMINAL_HZ} or ={4 * NOMINAL_HZ}"
            )
        if rate != NOMINAL_HZ:
            signals = {k: _resample(v, rate, NOMINAL_HZ) for k, v in signals.items()}
            report.notes.append(
                f"{rec.path.name} was recorded at {rate:g} Hz ({'given' if override else 'checked'}: quarter-shaft "
                f"lines {evidence['quarter_lines']}x their neighbourhood); resampled to {NOMINAL_HZ} Hz"
            )
        n = min(len(v) for v in signals.values())
        fault = rec.fault
        if fault is not None and label_by == "location_size":
            fault = f"{fault}_{rec.size}"
        pieces = [(rec.asset, 0, n)]
        cut_in_two = split == "time" or (split in ("size", "normal-first") and rec.location is None)
        if cut_in_two:
            cut = round(n * (1 - test_fraction))
            pieces = [(f"{rec.asset}_a", 0, cut), (f"{rec.asset}_b", cut, n)]
        for k, (asset, i, j) in enumerate(pieces):
            held = (split == "size" and rec.size in test_sizes) or (split == "normal-first" and rec.location is not None)
            part = "test" if (k == 1 or held) else "train"
            parts[part].append(asset)
            chunk = {name: v[i:j] for name, v in signals.items()}
            streams.append((part, asset, _messages(site, asset, chunk, NOMINAL_HZ, batch, START)))
            if fault is not None:
                episodes.append((part, FaultEpisode(site=site, asset_id=asset, fault=fault, onset=START, failure=None)))
            seconds[asset] = (j - i) / NOMINAL_HZ
            info[asset] = {
                "file": rec.path.name,
                "location": rec.location,
                "fault_diameter_in": None if rec.size is None else int(rec.size) / 1000,
                "outer_race_position": rec.position,
                "load_hp": rec.load_hp,
                "rpm": rpm,
                "rpm_from": rpm_from,
                "recorded_hz": rate,
                "rate_check": evidence,
                "samples": j - i,
                "seconds": round((j - i) / NOMINAL_HZ, 3),
            }
    if seconds:
        report.notes.append(
            f"each asset holds {min(seconds.values()):.1f}-{max(seconds.values()):.1f} s of samples: train with windows "
            "shorter than that (model train --set length_s=1 --set hop_s=0.5 --set steps=10)"
        )
    channels = {
        name: ChannelInfo(unit="g", rate_hz=NOMINAL_HZ, description=desc, original_name=f"{sensor}_time", role="vibration")
        for sensor in sensors
        for name, desc in [SENSORS[sensor]]
    }
    outputs = {"": sorted(info)} if split == "none" else {p: a for p, a in parts.items()}
    how = _SPLITS.get(split, "").format(sizes=",".join(test_sizes), f=test_fraction)
    for part, assets in outputs.items():
        chosen = set(assets)
        meta = DatasetMeta(
            source=f"CWRU Bearing Data Center, 12 kHz drive-end recordings{' (' + part + ')' if part else ''}",
            licence="CWRU Bearing Data Center (no licence file); cite Case Western Reserve University",
            channels=channels,
            assets=dict.fromkeys(sorted(chosen), "motor"),
            split=f"{part}, {how}"[:64] if part else "",
            start=START,
            end=START + max(seconds[a] for a in chosen) if chosen else START,
            extra={
                "recordings": {a: info[a] for a in sorted(chosen)},
                "faults": {LOCATIONS[k]: f"{k} ({v.split('_', 1)[1].replace('_', ' ')})" for k, v in LOCATIONS.items()},
                "label_by": label_by,
            },
        )
        write_dataset(
            out / part if part else out,
            meta,
            merged(s for p, a, s in streams if a in chosen),
            [e for p, e in episodes if e.asset_id in chosen],
            report,
            overwrite=overwrite,
        )
    return report
