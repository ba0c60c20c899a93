"""Forewarn wire contracts: the one definition of every message that crosses a process boundary.

Every part (simulators, edge agent, models, stream, CLI) imports its message types from
here; nothing else defines a schema. Messages are JSON, validated by pydantic v2, and
carry a ``schema_version`` so a consumer can refuse what it does not understand.

    WireModel                 frozen, unknown fields refused, schema_version
    ├── Telemetry             sensors -> edge        MQTT .../telemetry, DIR/messages.jsonl
    ├── LogRecord             machines -> edge       MQTT .../log,       DIR/messages.jsonl
    ├── FaultPrediction       edge -> stream         Kafka forewarn.predictions, MQTT .../prediction
    ├── Escalation            edge -> plant tier     Kafka forewarn.escalations (a window the edge model was unsure of)
    ├── PlantVerdict          plant tier -> stream   Kafka forewarn.stream.control; kept on the Alert (``plant``)
    ├── Alert                 stream -> operations   Kafka forewarn.alerts, MQTT forewarn/alerts/..., DB
    ├── GatewayStatus         edge -> subscribers    MQTT forewarn/gateways/<id>/status (retained)
    ├── ModelCommand          operators -> edge      MQTT forewarn/models/<site>/command (rollback)
    ├── DeadLetter            any -> investigation   Kafka forewarn.deadletter
    ├── AlertCommand          operators -> stream    Kafka forewarn.stream.control (ack / resolve / shelve)
    ├── AssetCommand          operators -> stream    Kafka forewarn.stream.control (out of service)
    ├── FaultEpisode          ground truth           DIR/labels.jsonl
    └── DatasetMeta           dataset description    DIR/meta.json

Conventions, chosen once so that no part has to guess:
- Timestamps are Unix epoch seconds (UTC) as floats: cheap to parse in bulk, which
  matters for telemetry batches of thousands of samples.
- Identifiers are MQTT-topic and URL safe (no ``/``, ``+``, ``#``, ``:`` or spaces), so an
  id can be a topic level and ``:`` can join ids into compound keys.
- Ids of predictions and alerts are deterministic, so every consumer can make its
  writes idempotent: redelivery and replay never double count.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from forewarn.errors import ContractError

SCHEMA_VERSION = 1

# Payload limits: a gateway must survive a hostile or broken publisher, so every size is bounded.
MAX_PAYLOAD_BYTES = 1_048_576  # one wire message, encoded (MQTT or Kafka)
MAX_SAMPLES = 10_000  # samples per channel in one Telemetry batch
MAX_CHANNELS = 64  # channels in one Telemetry batch
MAX_WAVEFORM_SAMPLES = 65_536  # one raw accelerometer burst (about 5 s at 12.8 kHz)
MAX_LOG_TEXT = 2_000  # characters of one log line
MAX_EVIDENCE_ITEMS = 16

# Plausible source clock range (2000-01-01 .. 2100-01-01): catches ms-vs-s and unset clocks.
MIN_TIMESTAMP = 946_684_800.0
MAX_TIMESTAMP = 4_102_444_800.0

NORMAL = "normal"
"""The class label of a window that no fault episode covers."""

SIMULATED_FAULTS: tuple[str, ...] = (
    "bearing_outer_race",
    "bearing_inner_race",
    "imbalance",
    "misalignment",
    "looseness",
    "cavitation",
    "lubrication_loss",
    "overheating",
    "phase_imbalance",
    "seal_leak",
)
"""Fault modes the simulators inject and the shipped model knows. Real-data importers may add others."""

LIVENESS_FAULTS: tuple[str, ...] = ("asset_silent", "gateway_silent")
"""Pseudo-faults the stream raises when an asset or a gateway stops reporting."""

# --------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------

Id = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"),
]
"""Site, asset, gateway and source ids: 1-64 chars of letters, digits, '_', '.', '-'."""

ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
FaultName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
ModelVersion = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-+]{0,79}$")]


def _check_timestamp(value: float) -> float:
    if not MIN_TIMESTAMP <= value <= MAX_TIMESTAMP:
        raise ValueError(
            f"timestamp {value!r} is not Unix epoch seconds between 2000 and 2100 "
            "(milliseconds sent as seconds, or an unset clock?)"
        )
    return value


Timestamp = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_check_timestamp)]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "NOTICE", "WARNING", "ALARM", "ERROR", "CRITICAL")
"""The seven levels on the wire, least severe first."""

_LEVEL_ALIASES = {
    "WARN": "WARNING",
    "ERR": "ERROR",
    "FATAL": "CRITICAL",
    "CRIT": "CRITICAL",
    "ALM": "ALARM",
    # syslog, Java (java.util.logging, log4j), Windows event log, .NET, Android single letters
    "EMERG": "CRITICAL",
    "EMERGENCY": "CRITICAL",
    "PANIC": "CRITICAL",
    "ALERT": "CRITICAL",
    "SEVERE": "ERROR",
    "FAILURE": "ERROR",
    "FAIL": "ERROR",
    "FAULT": "ERROR",
    "ERRORS": "ERROR",
    "WARNINGS": "WARNING",
    "ALARMS": "ALARM",
    "INFORMATION": "INFO",
    "INFORMATIONAL": "INFO",
    "CONFIG": "INFO",
    "NOTE": "NOTICE",
    "TRACE": "DEBUG",
    "VERBOSE": "DEBUG",
    "FINE": "DEBUG",
    "FINER": "DEBUG",
    "FINEST": "DEBUG",
    "DBG": "DEBUG",
    "E": "ERROR",
    "W": "WARNING",
    "I": "INFO",
    "D": "DEBUG",
    "V": "DEBUG",
}
UNKNOWN_LEVEL = "NOTICE"
"""The wire level of a log line whose own level is none of LOG_LEVELS nor a known alias; its own
word is kept at the head of the text as ``[WORD] ``."""
_LEVEL_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,31}$")


def _normalise_level(value: Any) -> Any:
    """Controllers spell levels many ways; accept the common ones, keep one spelling on the wire."""
    if isinstance(value, str):
        upper = value.strip().upper()
        return _LEVEL_ALIASES.get(upper, upper)
    return value


LogLevel = Annotated[
    Literal["DEBUG", "INFO", "NOTICE", "WARNING", "ALARM", "ERROR", "CRITICAL"],
    BeforeValidator(_normalise_level),
]


class WireModel(BaseModel):
    """Base of every wire message: immutable, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = 1


# --------------------------------------------------------------------------------------------
# Inputs: what machines (or simulators, or importers) send
# --------------------------------------------------------------------------------------------


class Waveform(WireModel):
    """A raw high-rate burst of one channel (e.g. an accelerometer at kHz), for spectral features."""

    channel: ChannelName
    sample_rate_hz: float = Field(gt=0, le=200_000)
    t0: Timestamp
    values: list[FiniteFloat] = Field(min_length=1, max_length=MAX_WAVEFORM_SAMPLES)


class Telemetry(WireModel):
    """A batch of samples from one asset: columnar, one timestamp list shared by every channel.

    Batching is essential (a Python MQTT client tops out near 10^4 messages/s), so one
    message carries tens to thousands of samples. ``None`` marks a missing sample (a
    dropout) and is kept, not interpolated, so the consumer sees the gap. ``seq`` counts
    messages per asset so a consumer can detect gaps and duplicates.
    """

    kind: Literal["telemetry"] = "telemetry"
    site: Id
    asset_id: Id
    asset_type: Id | None = None
    seq: int = Field(ge=0)
    timestamps: list[Timestamp] = Field(min_length=1, max_length=MAX_SAMPLES)
    channels: dict[ChannelName, list[FiniteFloat | None]] = Field(min_length=1, max_length=MAX_CHANNELS)
    waveform: Waveform | None = None

    @model_validator(mode="after")
    def _columns_align(self) -> Telemetry:
        n = len(self.timestamps)
        for name, values in self.channels.items():
            if len(values) != n:
                raise ValueError(f"channel {name!r} has {len(values)} samples but there are {n} timestamps")
        ts = self.timestamps
        for i in range(1, n):
            if ts[i] < ts[i - 1]:
                raise ValueError(f"timestamps must not decrease: index {i} ({ts[i]}) < index {i - 1} ({ts[i - 1]})")
        return self

    @property
    def start(self) -> float:
        return self.timestamps[0]

    @property
    def end(self) -> float:
        return self.timestamps[-1]


class LogRecord(WireModel):
    """One log line from a controller, PLC or condition-monitoring unit on one asset."""

    kind: Literal["log"] = "log"
    site: Id
    asset_id: Id
    ts: Timestamp
    level: LogLevel = "INFO"
    source: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "controller"
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LOG_TEXT)]
    code: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    seq: int | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _keep_unknown_level(cls, data: Any) -> Any:
        """A level word the contract does not know (``AUDIT``, ``SECURITY``) is not a reason to refuse a
        real log line: it travels as UNKNOWN_LEVEL with ``[WORD] `` put before the text. A value that
        is not a word (a number, a sentence) is still refused."""
        if not isinstance(data, dict):
            return data
        level = data.get("level")
        if not isinstance(level, str) or _normalise_level(level) in LOG_LEVELS or not _LEVEL_WORD.match(level.strip()):
            return data
        text = data.get("text")
        if not isinstance(text, str):
            return data
        return {**data, "level": UNKNOWN_LEVEL, "text": f"[{level.strip()}] {text}"[:MAX_LOG_TEXT]}


InputMessage = Annotated[Telemetry | LogRecord, Field(discriminator="kind")]
"""What flows from machines to the edge agent and what a dataset directory's messages.jsonl holds."""

# --------------------------------------------------------------------------------------------
# Outputs: predictions and alerts
# --------------------------------------------------------------------------------------------


class ChannelEvidence(WireModel):
    """A channel that deviated in the window: how far (in baseline standard deviations) and where."""

    channel: ChannelName
    score: FiniteFloat
    value: FiniteFloat | None = None
    baseline: FiniteFloat | None = None


class LogEvidence(WireModel):
    """A log line that weighed in the model's decision."""

    ts: Timestamp
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LOG_TEXT)]
    weight: FiniteFloat


class Evidence(WireModel):
    """Why a prediction (and so an alert) said what it said, for the operator who must act on it."""

    channels: list[ChannelEvidence] = Field(default_factory=list, max_length=MAX_EVIDENCE_ITEMS)
    logs: list[LogEvidence] = Field(default_factory=list, max_length=MAX_EVIDENCE_ITEMS)


def prediction_id(gateway_id: str, asset_id: str, window_end: float) -> str:
    """The id of the prediction for one window: scoring the same window twice yields the same id."""
    return f"{gateway_id}:{asset_id}:{round(window_end * 1000)}"


class FaultPrediction(WireModel):
    """The model's verdict on one asset's window, as emitted by a gateway."""

    id: str
    gateway_id: Id
    site: Id
    asset_id: Id
    asset_type: Id | None = None
    window_start: Timestamp
    window_end: Timestamp
    fault: FaultName
    probabilities: dict[FaultName, Probability] = Field(min_length=1, max_length=64)
    anomaly_score: Probability
    ttf_hours: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    confidence: Probability
    model_version: ModelVersion
    evidence: Evidence = Field(default_factory=Evidence)
    latency_ms: float = Field(ge=0, allow_inf_nan=False)
    historical: bool = False
    """True when sent late from the outbox after an uplink outage: old news, not a live reading."""
    produced_at: Timestamp

    @model_validator(mode="after")
    def _consistent(self) -> FaultPrediction:
        expected = prediction_id(self.gateway_id, self.asset_id, self.window_end)
        if self.id != expected:
            raise ValueError(f"id {self.id!r} must be {expected!r} (gateway:asset:window_end_ms)")
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        if self.fault not in self.probabilities:
            raise ValueError(f"fault {self.fault!r} has no entry in probabilities")
        total = math.fsum(self.probabilities.values())
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"probabilities sum to {total:.6f}, not 1")
        return self


INPUTS_ID = Annotated[str, StringConstraints(pattern=r"^in-[0-9a-f]{12}$")]
"""What turned a window into model inputs (models.cascade.inputs_id): the plant tier scores only inputs it reads alike."""
MAX_SENSOR_VALUES = 65_536
"""Floats of one escalated window's sensor input (steps x features)."""


class Escalation(WireModel):
    """A window the gateway's model was unsure of, sent to the plant tier's bigger model (edge -> cascade).

    It carries the edge's prediction (its verdict stands meanwhile) and the model inputs the
    gateway already built for the window, so the plant tier re-scores exactly what the edge saw
    without the raw samples: ``sensors`` is the (steps, features) float32 input, little-endian,
    base64; ``tokens`` the log word-piece ids. Keyed by asset id on Kafka.
    """

    prediction: FaultPrediction
    reason: Literal["low_confidence", "unknown_anomaly"]
    inputs_id: INPUTS_ID
    steps: int = Field(ge=1, le=4096)
    features: int = Field(ge=1, le=16_384)
    sensors: Annotated[str, StringConstraints(max_length=4 * ((MAX_SENSOR_VALUES * 4 + 2) // 3))]
    tokens: list[Annotated[int, Field(ge=0, lt=1 << 31)]] = Field(max_length=4096)
    ts: Timestamp
    """When the gateway decided to escalate (the outbox may hold it longer while the uplink is down)."""

    @model_validator(mode="after")
    def _sized(self) -> Escalation:
        if self.steps * self.features > MAX_SENSOR_VALUES:
            raise ValueError(f"steps x features is {self.steps * self.features}, over {MAX_SENSOR_VALUES}")
        expected = 4 * ((self.steps * self.features * 4 + 2) // 3)
        if len(self.sensors) != expected:
            raise ValueError(
                f"sensors is {len(self.sensors)} base64 characters, {self.steps}x{self.features} float32 take {expected}"
            )
        return self


class PlantVerdict(WireModel):
    """The plant tier's verdict on an escalated window, and what it does to the edge's (models.cascade.outcome).

    ``confirm``: the bigger model names the edge's class; ``reclassify``: another fault (or a
    fault where the edge saw none); ``clear``: normal where the edge named a fault. The stream
    records it on the asset's alert for the edge's fault (``Alert.plant``).
    """

    prediction_id: str
    asset_id: Id
    site: Id
    window_end: Timestamp
    edge_fault: FaultName
    edge_confidence: Probability
    edge_model_version: ModelVersion
    reason: Literal["low_confidence", "unknown_anomaly"]
    fault: FaultName
    confidence: Probability
    outcome: Literal["confirm", "reclassify", "clear"]
    model_version: ModelVersion
    ts: Timestamp


class Severity(StrEnum):
    """Alert severity, ordered: compare with ``SEVERITY_ORDER``."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_ORDER: dict[Severity, int] = {s: i for i, s in enumerate(Severity)}


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


Suppression = Literal["shelved", "out_of_service", "suppressed"]
"""ISA-18.2 states of an active alert that is recorded but not annunciated: ``shelved`` by an
operator for a while, its asset ``out_of_service`` (under maintenance), or ``suppressed`` by
design (a downstream symptom of another alert open on the same asset)."""

Verdict = Literal["confirmed", "false_alarm", "maintenance"]
"""What an operator found an alert to be: a real fault (``confirmed``, with the fault found), a
false alarm, or an effect of maintenance work (a seal replaced, a machine run on test)."""


def alert_id(asset_id: str, fault: str, opened_at: float) -> str:
    """The id of one alert episode: the same deciding prediction always opens the same alert."""
    return f"{asset_id}:{fault}:{round(opened_at * 1000)}"


class Alert(WireModel):
    """One problem on one asset, as the operations team sees it; ``revision`` orders its updates.

    A consumer applies an update only if its ``revision`` is higher than the one it holds,
    which makes every write idempotent and immune to reordering.
    """

    id: str
    site: Id
    asset_id: Id
    asset_type: Id | None = None
    gateway_id: Id | None = None
    fault: FaultName
    severity: Severity
    state: AlertState
    first_seen: Timestamp
    last_seen: Timestamp
    occurrences: int = Field(ge=1)
    peak_probability: Probability
    last_probability: Probability
    ttf_hours: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    evidence: Evidence = Field(default_factory=Evidence)
    model_version: ModelVersion | None = None
    deciding_prediction_id: str | None = None
    revision: int = Field(ge=1)
    updated_at: Timestamp
    acknowledged_by: Annotated[str, StringConstraints(max_length=64)] | None = None
    acknowledged_at: Timestamp | None = None
    resolved_at: Timestamp | None = None
    resolution: Literal["auto", "operator"] | None = None
    escalations: int = Field(default=0, ge=0)
    resolved_by: Annotated[str, StringConstraints(max_length=64)] | None = None
    """Who resolved it (an operator resolution), as ``acknowledged_by`` says who acknowledged it."""
    verdict: Verdict | None = None
    """The operator's finding (see ``Verdict``); a label for retraining (`forewarn alerts export-labels`)."""
    verdict_fault: FaultName | None = None
    """With ``confirmed``: the fault the technician found (may differ from ``fault``)."""
    verdict_by: Annotated[str, StringConstraints(max_length=64)] | None = None
    verdict_at: Timestamp | None = None
    verdict_note: Annotated[str, StringConstraints(max_length=500)] | None = None
    operator_note: Annotated[str, StringConstraints(max_length=500)] | None = None
    """The reason the operator gave with the latest acknowledgement or resolution (without a verdict too)."""
    suppression: Suppression | None = None
    """Why an active alert is not annunciated (ISA-18.2): None = it is. See ``Suppression``."""
    suppression_reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    shelved_by: Annotated[str, StringConstraints(max_length=64)] | None = None
    shelved_until: Timestamp | None = None
    """A shelved alert returns (is annunciated again) at this time at the latest."""
    latched: bool = False
    """A critical alert whose condition cleared: it stays active until an operator resolves it."""
    chattering: bool = False
    """It opened and cleared more often an hour than the rules allow: reported, and damped (held longer)."""
    plant: PlantVerdict | None = None
    """The plant tier's latest verdict on an escalated window of this alert (edge -> plant cascade)."""

    @model_validator(mode="after")
    def _consistent(self) -> Alert:
        if self.last_seen < self.first_seen:
            raise ValueError("last_seen is before first_seen")
        if self.state is AlertState.RESOLVED and self.resolved_at is None:
            raise ValueError("a resolved alert needs resolved_at")
        return self


class GatewayStatus(WireModel):
    """A gateway's health, published retained; the MQTT last-will publishes ``state="offline"``."""

    gateway_id: Id
    site: Id
    state: Literal["online", "offline"]
    ts: Timestamp
    model_version: ModelVersion | None = None
    uptime_s: float | None = Field(default=None, ge=0)
    assets: int | None = Field(default=None, ge=0)
    windows_scored: int | None = Field(default=None, ge=0)
    outbox_depth: int | None = Field(default=None, ge=0)
    uplink: Literal["up", "down"] | None = None
    warning: Annotated[str, StringConstraints(max_length=1_000)] | None = None
    """Why an online gateway is scoring nothing, e.g. nothing received on its subscriptions (None: all well)."""
    previous_model_version: ModelVersion | None = None
    """The bundle kept for a rollback (N-1); None before the first rollout."""
    rollout: Annotated[str, StringConstraints(max_length=1_000)] | None = None
    """The last rollout's outcome, e.g. ``installed slm-... (self-test: 200 windows, 1.5% flipped)`` or a refusal's reason."""


class ModelCommand(WireModel):
    """An operator's order to a site's gateways about their model (not retained: a restart must not replay it).

    ``rollback``: go back to the previous bundle (N-1). ``gateway_id`` narrows it to one gateway.
    ``signature``: Ed25519 by the key that signs the site's bundles, over the command's other fields
    and the site (``models.signing.sign_command``); a gateway refuses an unsigned, foreign or stale one.
    The signed bundle packages themselves travel as raw payloads (``models.signing``), not as JSON.
    """

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
    action: Literal["rollback"]
    gateway_id: Id | None = None
    by: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "operator"
    ts: Timestamp
    signature: Annotated[str, StringConstraints(max_length=128)] | None = None


class DeadLetter(WireModel):
    """A message a component refused: why, where it came from, and the (truncated) bytes."""

    component: Id
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2_000)]
    source: Annotated[str, StringConstraints(max_length=512)] | None = None
    """Where it arrived: an MQTT topic, a Kafka topic/partition/offset, a file and line."""
    payload: Annotated[str, StringConstraints(max_length=8_192)]
    """The payload as text (undecodable bytes replaced), truncated to 8 KiB."""
    payload_bytes: int = Field(ge=0)
    ts: Timestamp


# --------------------------------------------------------------------------------------------
# Dataset directory: ground truth and description (see forewarn.dataset for the I/O)
# --------------------------------------------------------------------------------------------


class FaultEpisode(WireModel):
    """One fault on one asset: it covers [onset, failure]; ``failure`` is None when not reached or unknown.

    A reversible condition (a leak repaired, a misalignment corrected) that cleared without a
    failure has an ``end`` instead: it covers [onset, end] and gives no time to failure.
    """

    asset_id: Id
    fault: FaultName
    onset: Timestamp
    failure: Timestamp | None = None
    site: Id | None = None
    end: Timestamp | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FaultEpisode:
        if self.failure is not None and self.failure < self.onset:
            raise ValueError("failure is before onset")
        if self.end is not None and self.end < self.onset:
            raise ValueError("end is before onset")
        if self.end is not None and self.failure is not None:
            raise ValueError("an episode ends at its failure or at its end, not both")
        return self

    def covers(self, ts: float) -> bool:
        """True when ``ts`` falls inside the episode (one without failure or end runs on forever)."""
        last = self.failure if self.failure is not None else self.end
        return self.onset <= ts and (last is None or ts <= last)


ChannelRole = Literal[
    "speed",
    "temperature",
    "vibration",
    "current",
    "voltage",
    "power",
    "flow",
    "pressure",
    "level",
    "position",
    "torque",
    "setting",
    "other",
]
"""What a channel measures, whatever its name: ``setting`` is an operating setting (a set point, a
load or regime selector) that moves other channels' levels without being a fault."""


class ChannelInfo(WireModel):
    unit: Annotated[str, StringConstraints(max_length=32)] = ""
    rate_hz: float = Field(gt=0, le=200_000)
    description: Annotated[str, StringConstraints(max_length=256)] = ""
    original_name: Annotated[str, StringConstraints(max_length=256)] = ""
    """The channel's name in its source (a historian tag, a dataset's column) when it differs."""
    role: ChannelRole | None = None


class Nameplate(WireModel):
    """What a machine's rating plate says, as an asset register keeps it.

    Features that scale with the machine's size (winding rise per ampere squared varies 50-fold
    between a 15 A and a 110 A motor of one type) only compare across machines per unit of
    rating; without it only the machine's own history can tell that it runs hot.
    """

    rated_current_a: float | None = Field(None, gt=0, le=100_000, allow_inf_nan=False)


def rated_currents(nameplates: dict[str, Nameplate]) -> dict[str, float]:
    """asset_id -> rated current, for the plates that give one (a dataset's meta.json, a gateway's config)."""
    return {a: p.rated_current_a for a, p in nameplates.items() if p.rated_current_a is not None}


class DatasetMeta(WireModel):
    """DIR/meta.json: where a dataset came from and what it holds."""

    source: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    licence: Annotated[str, StringConstraints(max_length=256)] = ""
    channels: dict[ChannelName, ChannelInfo] = Field(default_factory=dict)
    assets: dict[Id, Id | None] = Field(default_factory=dict)
    """asset_id -> asset_type (None when unknown)."""
    nameplates: dict[Id, Nameplate] = Field(default_factory=dict)
    """asset_id -> rating plate, for the assets whose ratings are known."""
    split: Annotated[str, StringConstraints(max_length=64)] = ""
    seed: int | None = None
    start: Timestamp | None = None
    end: Timestamp | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def rated_currents(self) -> dict[str, float]:
        """asset_id -> rated current, for the assets whose rating plates give one."""
        return rated_currents(self.nameplates)


# --------------------------------------------------------------------------------------------
# Operator actions (appended for the stream part)
# --------------------------------------------------------------------------------------------


class AlertCommand(WireModel):
    """An operator's action on one alert, sent to the stream workers (keyed by asset id).

    It travels through Kafka to the worker that owns the asset, so acknowledging or
    resolving changes the aggregation state itself (not only a database row). ``id`` is
    chosen by the sender; a worker applies each command id at most once.
    """

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
    alert_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    action: Literal["acknowledge", "resolve", "shelve", "unshelve"]
    by: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "operator"
    note: Annotated[str, StringConstraints(max_length=500)] | None = None
    ts: Timestamp
    minutes: float | None = Field(default=None, gt=0, le=10_080, allow_inf_nan=False)
    """With ``shelve``: for how long (the worker caps it at its configured maximum)."""
    verdict: Verdict | None = None
    """The operator's finding, recorded with the alert (a resolve may carry it for an alert already resolved)."""
    found_fault: FaultName | None = None
    """With ``verdict="confirmed"``: the fault the technician found (default: the alert's own)."""

    @model_validator(mode="after")
    def _verdict_consistent(self) -> AlertCommand:
        if self.found_fault is not None and self.verdict != "confirmed":
            raise ValueError("found_fault goes with verdict 'confirmed'")
        if self.action == "shelve" and (self.minutes is None or not self.note):
            raise ValueError("shelve needs minutes and a reason (note)")
        return self

    @property
    def asset_id(self) -> str:
        """The asset the alert belongs to (alert ids are ``asset:fault:opened_ms``)."""
        return self.alert_id.split(":", 1)[0]


class AssetCommand(WireModel):
    """An operator takes an asset out of service (maintenance: its alerts are recorded, not annunciated) or back.

    Travels like ``AlertCommand`` (Kafka ``forewarn.stream.control``, keyed by asset id).
    """

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
    asset_id: Id
    action: Literal["out_of_service", "in_service"]
    by: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "operator"
    note: Annotated[str, StringConstraints(max_length=500)] | None = None
    ts: Timestamp


# --------------------------------------------------------------------------------------------
# JSON helpers: the only way bytes become messages and back
# --------------------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)

_INPUT_ADAPTER: TypeAdapter[Telemetry | LogRecord] = TypeAdapter(InputMessage)


def encode(message: BaseModel) -> bytes:
    """Serialise a wire message to compact UTF-8 JSON."""
    return message.model_dump_json().encode()


def _check_size(raw: bytes | str, limit: int) -> None:
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode())
    if size > limit:
        raise ContractError(f"payload is {size:,} bytes, over the {limit:,} byte limit")


def _contract_error(exc: ValidationError, what: str, tagged: bool = False) -> ContractError:
    """Turn pydantic's report into one line per problem that names the field and the reason.

    ``tagged``: the errors come from the kind-discriminated union, whose first location
    element is the kind itself; drop it so paths read the same as for a single model.
    """
    problems = []
    for err in exc.errors(include_url=False):
        path = err["loc"][1:] if tagged and err["loc"] and err["loc"][0] in ("telemetry", "log") else err["loc"]
        loc = ".".join(str(p) for p in path) or "(message)"
        problems.append((loc, err["msg"]))
    summary = "; ".join(f"{loc}: {msg}" for loc, msg in problems[:5])
    more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
    return ContractError(f"invalid {what}: {summary}{more}", problems=problems)


def decode(raw: bytes | str, model: type[M], *, limit: int = MAX_PAYLOAD_BYTES) -> M:
    """Parse and validate one JSON message; raises ContractError naming each bad field."""
    _check_size(raw, limit)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _contract_error(exc, model.__name__) from exc


def decode_input(raw: bytes | str, *, limit: int = MAX_PAYLOAD_BYTES) -> Telemetry | LogRecord:
    """Parse a machine message whose ``kind`` says whether it is telemetry or a log line."""
    _check_size(raw, limit)
    try:
        return _INPUT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _contract_error(exc, "input message", tagged=True) from exc


def dead_letter(component: str, reason: str, payload: bytes | str, source: str | None, ts: float) -> DeadLetter:
    """Build the dead-letter record for a refused payload, truncating what must not travel whole."""
    raw = payload.encode() if isinstance(payload, str) else payload
    text = raw[:8_192].decode("utf-8", errors="replace")[:8_192]
    return DeadLetter(
        component=component,
        reason=reason[:2_000],
        source=source[:512] if source else None,
        payload=text,
        payload_bytes=len(raw),
        ts=ts,
    )


__all__ = [
    "LIVENESS_FAULTS",
    "LOG_LEVELS",
    "MAX_CHANNELS",
    "MAX_EVIDENCE_ITEMS",
    "MAX_LOG_TEXT",
    "MAX_PAYLOAD_BYTES",
    "MAX_SAMPLES",
    "MAX_WAVEFORM_SAMPLES",
    "NORMAL",
    "SCHEMA_VERSION",
    "SEVERITY_ORDER",
    "SIMULATED_FAULTS",
    "UNKNOWN_LEVEL",
    "Alert",
    "AlertCommand",
    "AlertState",
    "AssetCommand",
    "ChannelEvidence",
    "ChannelInfo",
    "ChannelRole",
    "DatasetMeta",
    "DeadLetter",
    "Escalation",
    "Evidence",
    "FaultEpisode",
    "FaultPrediction",
    "GatewayStatus",
    "InputMessage",
    "LogEvidence",
    "LogRecord",
    "ModelCommand",
    "Nameplate",
    "PlantVerdict",
    "Severity",
    "Suppression",
    "Telemetry",
    "Verdict",
    "Waveform",
    "alert_id",
    "dead_letter",
    "decode",
    "decode_input",
    "encode",
    "prediction_id",
    "rated_currents",
]
