"""Scenario files: a plant described in TOML (sites, assets, fault schedule, log styles, noise).

A scenario is data, validated on load: a broken file raises ``ScenarioError`` naming the
file and the field (``assets[3].type: unknown asset type 'pmup'``). Times inside a scenario
are offsets from the run's start, written as seconds or with a unit (``"90s"``, ``"20m"``,
``"6h"``, ``"2d"``; negative onsets mean the fault was already developing at the start).

A scenario may list its assets and faults explicitly, ask for generated ones
(``[generate] assets = 200``: a parametric plant with a random fault schedule drawn from
the run's seed), or both; ``Scenario.with_assets(n)`` is what ``--assets N`` does. See
docs/simulators.md for the full reference and ``simulators/scenarios/*.toml`` for examples.
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from forewarn.contracts import SIMULATED_FAULTS
from simulators.assets import ASSET_TYPES
from simulators.errors import ScenarioError

SCENARIO_DIR = Path(__file__).parent / "scenarios"
MODEL_SCENARIO_DIR = Path(__file__).parent.parent / "models" / "scenarios"  # model training plants (in a checkout)

_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like '90s', '20m', '1.5h', '3d' (negative allowed)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError(f"{value!r} is not a duration (seconds, or a number with s, m, h or d, e.g. '20m')")


Duration = Annotated[float, BeforeValidator(parse_duration)]
LOG_STYLES = ("siemens", "rockwell", "abb", "schneider", "generic")
LogStyle = Literal["siemens", "rockwell", "abb", "schneider", "generic"]
Growth = Literal["linear", "exponential", "sigmoid", "power", "step"]
Duty = Literal["continuous", "shift", "cyclic", "standby"]
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


def _parse_start(value: Any) -> Any:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO 8601 time like 2025-01-06T06:00:00Z") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoiseSection(_Section):
    """Sensor artefacts, as multipliers on each channel's own figures (1 = a typical plant)."""

    level: float = Field(1.0, ge=0, le=20, description="multiplier on sensor noise")
    drift: float = Field(1.0, ge=0, le=50, description="multiplier on calibration drift")
    dropout_per_day: float = Field(2.0, ge=0, le=1000, description="sensor dropouts (None samples) per asset-day")
    stuck_per_day: float = Field(0.2, ge=0, le=100, description="stuck sensors (frozen value) per asset-day")
    gap_per_day: float = Field(0.5, ge=0, le=100, description="lost telemetry batches (communication gaps) per asset-day")
    spike_rate: float = Field(2e-5, ge=0, le=0.01, description="probability of an EMI spike per sample and channel")
    jitter_s: float = Field(0.02, ge=0, le=0.4, description="standard deviation of source clock jitter, seconds")


class LogSection(_Section):
    """How chatty the machines' controllers, condition monitors and operators are."""

    chatter: float = Field(1.0, ge=0, le=20, description="multiplier on routine status lines")
    nuisance_per_day: float = Field(1.5, ge=0, le=200, description="nuisance alarms and false reports per asset-day")
    fault_log_probability: float = Field(0.8, ge=0, le=1, description="chance that a fault episode gets fault-related logs")
    operators: bool = Field(True, description="operator round notes and shift handovers")
    cms: bool = Field(True, description="condition-monitoring unit messages")
    phrasing: Literal["all", "train", "holdout", "heldout"] = Field(
        "all",
        description="wordings used: all, one of two disjoint halves (train / holdout) of the banks, "
        "or heldout: a separately written phrase set (other sentences, work orders, vendor alarm styles)",
    )
    early_notes: float = Field(
        0.0, ge=0, le=1, description="share of fault episodes announced by technician notes before the P point"
    )
    text_only: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of fault episodes that stay below what the sensors show for a while, announced in text",
    )
    maintenance_per_day: float = Field(
        0.0, ge=0, le=50, description="maintenance actions that step sensor levels (with their log entry) per asset-day"
    )
    misleading_alarms_per_day: float = Field(
        0.0, ge=0, le=200, description="misleading alarm-level lines on healthy machines per asset-day"
    )
    false_notes_per_day: float = Field(
        0.0, ge=0, le=50, description="symptom notes on healthy machines (a person hears what is not there) per asset-day"
    )

    @model_validator(mode="after")
    def _shares(self) -> LogSection:
        if self.early_notes + self.text_only > 1:
            raise ValueError("early_notes + text_only: the two shares of fault episodes add up to more than 1")
        return self

    @property
    def textual(self) -> bool:
        """Whether any of the text-carries-weight phenomena is on (all are off by default)."""
        return bool(
            self.early_notes
            or self.text_only
            or self.maintenance_per_day
            or self.misleading_alarms_per_day
            or self.false_notes_per_day
        )


class Site(_Section):
    id: Annotated[str, Field(pattern=_ID)]
    ambient_c: float = Field(20.0, ge=-40, le=55, description="mean ambient temperature")
    ambient_swing_c: float = Field(5.0, ge=0, le=25, description="day/night ambient amplitude")
    utc_offset_h: float = Field(0.0, ge=-12, le=14, description="local time offset, for shifts and day/night")
    shifts: list[str] = Field(default_factory=lambda: ["06:00", "14:00", "22:00"], description="shift handover times")
    production: tuple[str, str] = Field(("06:00", "22:00"), description="hours when shift-duty assets run")
    weekend_off: bool = Field(False, description="shift-duty assets stay off on Saturday and Sunday")
    log_style: LogStyle = "generic"

    @field_validator("shifts", "production")
    @classmethod
    def _clock_times(cls, value: Any) -> Any:
        for item in value:
            if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", item):
                raise ValueError(f"{item!r} is not a clock time HH:MM")
        return value


class AssetSpec(_Section):
    id: Annotated[str, Field(pattern=_ID)]
    type: str
    site: str | None = Field(None, description="site id; default: the first site")
    duty: Duty = "continuous"
    vfd: bool = Field(False, description="variable-speed drive: speed setpoints change, no inrush on start")
    load: float = Field(0.7, ge=0.05, le=1.1, description="mean load as a fraction of rated")
    rated_rpm: float | None = Field(None, gt=0, le=20_000)
    waveform: bool = Field(False, description="attach raw accelerometer bursts now and then")
    log_style: LogStyle | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in ASSET_TYPES:
            raise ValueError(f"unknown asset type {value!r}; known: {', '.join(ASSET_TYPES)}")
        return value


class FaultSpec(_Section):
    asset: str
    fault: str
    onset: Duration = Field(description="offset of the fault's onset from the start (negative: already developing)")
    time_to_failure: Duration | None = Field(None, description="from onset to functional failure; None: never fails")
    growth: Growth = "exponential"
    shape: float = Field(3.0, gt=0, le=20, description="steepness of the growth curve")
    repair: Duration = Field(4 * 3600.0, ge=0, description="downtime after the failure before the asset runs again")
    logs: float | None = Field(None, ge=0, le=1, description="chance of fault-related logs (default: [logs])")

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, value: str) -> str:
        if value not in SIMULATED_FAULTS:
            raise ValueError(f"unknown fault {value!r}; known: {', '.join(SIMULATED_FAULTS)}")
        return value

    @field_validator("time_to_failure")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("time_to_failure must be positive")
        return value


class GenerateSection(_Section):
    """A parametric plant: how many assets to add and the random fault schedule they get."""

    assets: int = Field(0, ge=0, le=5000, description="total assets of the plant (explicit ones count); 0: only explicit")
    sites: int = Field(1, ge=1, le=100, description="sites to spread generated assets over (when none are listed)")
    types: dict[str, float] = Field(
        default_factory=lambda: {
            "centrifugal_pump": 0.3,
            "induction_motor": 0.2,
            "fan": 0.17,
            "compressor": 0.15,
            "gearbox": 0.18,
        },
        description="asset type -> weight",
    )
    fault_fraction: float = Field(0.5, ge=0, le=1, description="fraction of generated assets that develop faults")
    max_faults_per_asset: int = Field(2, ge=1, le=5)
    horizon: Duration = Field(86400.0, gt=0, description="the run length the fault schedule is drawn for")
    ttf: tuple[Duration, Duration] = Field((4 * 3600.0, 3 * 86400.0), description="range of times to failure")
    vfd_fraction: float = Field(0.4, ge=0, le=1)
    waveform_fraction: float = Field(0.1, ge=0, le=1)

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if name not in ASSET_TYPES:
                raise ValueError(f"unknown asset type {name!r}; known: {', '.join(ASSET_TYPES)}")
            if weight < 0:
                raise ValueError(f"weight of {name!r} is negative")
        if not any(value.values()):
            raise ValueError("at least one asset type needs a positive weight")
        return value


class Scenario(_Section):
    """A plant to simulate. Build with ``load_scenario``; the fields mirror the TOML file."""

    name: Annotated[str, Field(pattern=_ID)] = "scenario"
    description: str = ""
    start: Annotated[datetime | None, BeforeValidator(_parse_start)] = Field(None, description="default start time")
    sample_rate_hz: float = Field(1.0, gt=0, le=100, description="rate of the slow feature channels")
    batch_s: float = Field(10.0, gt=0, le=600, description="seconds of samples per telemetry message")
    waveform_every_s: Duration = Field(600.0, gt=0, description="interval between raw bursts of waveform assets")
    waveform_rate_hz: float = Field(12_800.0, gt=0, le=100_000)
    waveform_samples: int = Field(4096, ge=64, le=65_536)
    noise: NoiseSection = NoiseSection()
    logs: LogSection = LogSection()
    sites: list[Site] = Field(default_factory=lambda: [Site(id="plant1")], min_length=1)
    assets: list[AssetSpec] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    generate: GenerateSection = GenerateSection()

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        site_ids = [s.id for s in self.sites]
        _unique(site_ids, "sites", "id")
        _unique([a.id for a in self.assets], "assets", "id")
        types = {a.id: a.type for a in self.assets}
        for i, asset in enumerate(self.assets):
            if asset.site is not None and asset.site not in site_ids:
                raise ValueError(f"assets[{i}].site: unknown site {asset.site!r}; sites are {', '.join(site_ids)}")
        for i, fault in enumerate(self.faults):
            if fault.asset not in types:
                raise ValueError(f"faults[{i}].asset: no asset {fault.asset!r} in [[assets]]")
            allowed = ASSET_TYPES[types[fault.asset]].faults
            if fault.fault not in allowed:
                raise ValueError(
                    f"faults[{i}].fault: a {types[fault.asset]} cannot develop {fault.fault!r}; it can: {', '.join(allowed)}"
                )
        if self.batch_s * self.sample_rate_hz < 1:
            raise ValueError("batch_s: a batch must hold at least one sample (batch_s * sample_rate_hz >= 1)")
        if self.batch_s * self.sample_rate_hz > 10_000:
            raise ValueError("batch_s: a batch may hold at most 10,000 samples per channel")
        if not self.assets and self.generate.assets == 0:
            raise ValueError("assets: the scenario has no [[assets]] and [generate] assets = 0")
        return self

    @property
    def asset_count(self) -> int:
        return max(self.generate.assets, len(self.assets)) if self.generate.assets else len(self.assets)

    def with_assets(self, n: int) -> Scenario:
        """The same plant with exactly ``n`` assets: explicit ones first, then generated ones."""
        if n < 1:
            raise ScenarioError("--assets must be at least 1")
        kept = self.assets[:n]
        ids = {a.id for a in kept}
        return self.model_copy(
            update={
                "assets": kept,
                "faults": [f for f in self.faults if f.asset in ids],
                "generate": self.generate.model_copy(update={"assets": n}),
            }
        )

    def with_horizon(self, seconds: float) -> Scenario:
        """Draw generated fault schedules for a run of this length (what ``--duration`` implies)."""
        return self.model_copy(update={"generate": self.generate.model_copy(update={"horizon": seconds})})

    def with_noise(self, level: float) -> Scenario:
        return self.model_copy(update={"noise": self.noise.model_copy(update={"level": level})})

    def with_phrasing(self, phrasing: str) -> Scenario:
        return _validated(self.model_dump() | {"logs": self.logs.model_dump() | {"phrasing": phrasing}}, f"scenario {self.name}")

    def with_batch(self, batch_s: float) -> Scenario:
        return _validated(self.model_dump() | {"batch_s": batch_s}, f"scenario {self.name}")


def _unique(values: list[str], section: str, field: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{section}[{i}].{field}: duplicate {value!r}")
        seen.add(value)


def _validated(data: dict[str, Any], origin: str) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{loc}: {msg}" if loc else msg)
        raise ScenarioError(f"{origin}: " + "; ".join(problems)) from exc


def scenario_path(path_or_name: str | Path) -> Path:
    """A file path, or the name of a shipped scenario ('demo' -> simulators/scenarios/demo.toml)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    if isinstance(path_or_name, str) and re.match(r"^[A-Za-z0-9_\-]+$", path_or_name):
        for folder in (SCENARIO_DIR, MODEL_SCENARIO_DIR):
            shipped = folder / f"{path_or_name}.toml"
            if shipped.is_file():
                return shipped
    names = ", ".join(sorted(p.stem for folder in (SCENARIO_DIR, MODEL_SCENARIO_DIR) for p in folder.glob("*.toml")))
    raise ScenarioError(f"scenario {str(path_or_name)!r} is neither a file nor a shipped scenario ({names})")


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Load and validate a scenario file, or a shipped scenario by name ('demo', 'test', 'plant200')."""
    path = scenario_path(path_or_name)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    data.setdefault("name", path.stem)
    return _validated(data, str(path))


def scenario_from_dict(data: dict[str, Any], origin: str = "scenario") -> Scenario:
    """Validate a scenario given as a dict (the TOML file's shape), e.g. built by a training script."""
    return _validated(data, origin)
