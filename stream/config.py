"""Settings of a stream worker: the shared sections plus ``[stream]``.

Rule parameters have one default set and a list of overrides, each naming a fault, an
asset type, or both; the most specific override wins field by field::

    [stream.rules.default]
    threshold = 0.7
    k = 3
    n = 5

    [[stream.rules.overrides]]          # cavitation is noisy: ask for more evidence
    fault = "cavitation"
    k = 4

    [[stream.rules.overrides]]          # boiler feed pumps are critical: earlier, louder
    asset_type = "boiler_feed_pump"
    threshold = 0.6
    high_ttf_hours = 72

Environment: ``FOREWARN_STREAM='{"web_port": 7000}'`` (one JSON object for the section).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from forewarn.settings import CommonSettings


class RuleParams(BaseModel):
    """When a fault becomes an alert, how bad it is, and when it goes away."""

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(0.7, gt=0, le=1, description="a prediction counts as a hit when P(fault) >= threshold")
    k: int = Field(3, ge=1, le=64, description="hits needed among the last n predictions to raise an alert")
    n: int = Field(5, ge=1, le=64, description="how many recent predictions the k-of-n rule looks at")
    clear_threshold: float = Field(0.4, ge=0, lt=1, description="hysteresis: P(fault) below this counts as quiet")
    quiet_predictions: int = Field(5, ge=1, le=64, description="consecutive quiet predictions needed to auto-resolve")
    quiet_s: float = Field(60.0, ge=0, description="and at least this much event time since the last hit")
    renotify_s: float = Field(900.0, gt=0, description="re-send an open, unacknowledged alert this often")
    escalate_after_s: float = Field(1800.0, gt=0, description="raise severity one level while unacknowledged this long")
    medium_probability: float = Field(0.8, ge=0, le=1, description="peak probability for at least medium severity")
    high_probability: float = Field(0.9, ge=0, le=1, description="peak probability for at least high severity")
    medium_ttf_hours: float = Field(72.0, ge=0, description="time to failure below which severity is at least medium")
    high_ttf_hours: float = Field(24.0, ge=0, description="time to failure below which severity is at least high")
    critical_ttf_hours: float = Field(4.0, ge=0, description="time to failure below which severity is critical")
    persistent_occurrences: int = Field(20, ge=1, description="hits after which a persistent fault is one level worse")
    on_delay_s: float = Field(
        0.0, ge=0, description="on-delay: the fault must have been a hit, never quiet, this long (event time) before opening"
    )
    realarm_s: float = Field(
        0.0, ge=0, description="re-alarm: an acknowledged alert still active this long is annunciated again (0: never)"
    )
    latch_critical: bool = Field(True, description="a critical alert whose condition clears stays active until resolved")
    chatter_opens_per_hour: int = Field(
        4, ge=1, description="an alert opening more often than this within an hour (event time) is chattering"
    )
    chatter_quiet_s: float = Field(600.0, ge=0, description="a chattering alert auto-resolves only after this long quiet")

    @model_validator(mode="after")
    def _consistent(self) -> RuleParams:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) must not exceed n ({self.n})")
        if self.clear_threshold >= self.threshold:
            raise ValueError(f"clear_threshold ({self.clear_threshold}) must be below threshold ({self.threshold})")
        return self


class RuleOverride(BaseModel):
    """Some rule parameters for one fault, one asset type, or one fault on one asset type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: str | None = Field(None, description="the fault this override applies to (None: every fault)")
    asset_type: str | None = Field(None, description="the asset type it applies to (None: every type)")
    threshold: float | None = None
    k: int | None = None
    n: int | None = None
    clear_threshold: float | None = None
    quiet_predictions: int | None = None
    quiet_s: float | None = None
    renotify_s: float | None = None
    escalate_after_s: float | None = None
    medium_probability: float | None = None
    high_probability: float | None = None
    medium_ttf_hours: float | None = None
    high_ttf_hours: float | None = None
    critical_ttf_hours: float | None = None
    persistent_occurrences: int | None = None
    on_delay_s: float | None = None
    realarm_s: float | None = None
    latch_critical: bool | None = None
    chatter_opens_per_hour: int | None = None
    chatter_quiet_s: float | None = None

    @property
    def specificity(self) -> int:
        return (self.fault is not None) + 2 * (self.asset_type is not None)

    def matches(self, fault: str, asset_type: str | None) -> bool:
        return (self.fault is None or self.fault == fault) and (self.asset_type is None or self.asset_type == asset_type)

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"fault", "asset_type"}).items() if v is not None}


class RuleSettings(BaseModel):
    """The default rule and its overrides, resolved (and cached) per fault and asset type."""

    model_config = ConfigDict(frozen=True)

    default: RuleParams = RuleParams()
    overrides: list[RuleOverride] = Field(default_factory=list)
    symptoms: dict[str, list[str]] = Field(
        default_factory=dict,
        description="suppression by design: fault -> the faults that are its downstream symptoms on the same asset; "
        "such an alert opening while its cause is open is recorded, not annunciated",
    )
    max_shelve_minutes: float = Field(720.0, gt=0, le=10_080, description="the longest an operator may shelve an alert")
    minor_update_s: float = Field(
        5.0,
        ge=0,
        description="an open alert's new occurrences are published at most this often (opening, "
        "severity and state changes go out at once)",
    )

    @model_validator(mode="after")
    def _overrides_valid(self) -> RuleSettings:
        for override in self.overrides:  # validate every combination now, not on the first prediction
            self.params(override.fault or "any", override.asset_type)
        return self

    def params(self, fault: str, asset_type: str | None) -> RuleParams:
        """The parameters for one fault on one asset type: default, then matching overrides by specificity."""
        key = (fault, asset_type)
        cache = self._cache
        if key not in cache:
            merged = self.default.model_dump()
            for override in sorted(self.overrides, key=lambda o: o.specificity):
                if override.matches(fault, asset_type):
                    merged.update(override.values())
            cache[key] = RuleParams(**merged)
        return cache[key]

    @cached_property
    def _cache(self) -> dict[tuple[str, str | None], RuleParams]:
        return {}

    @property
    def window(self) -> int:
        """How many recent predictions per asset the state must keep for every rule to be decidable."""
        sizes = [self.default.n, self.default.quiet_predictions]
        for override in self.overrides:
            sizes += [override.n or 0, override.quiet_predictions or 0]
        return max(sizes)

    @property
    def lowest_clear_threshold(self) -> float:
        """Probabilities below every clear threshold are stored as zero (it keeps the state small)."""
        values = [self.default.clear_threshold] + [o.clear_threshold for o in self.overrides if o.clear_threshold is not None]
        return min(values)


class LivenessSettings(BaseModel):
    """A gateway or asset that goes quiet is a problem of its own."""

    model_config = ConfigDict(frozen=True)

    asset_silent_s: float = Field(300.0, gt=0, description="no prediction for an asset this long raises asset_silent")
    gateway_silent_s: float = Field(300.0, gt=0, description="no prediction from a gateway this long raises gateway_silent")
    severity: str = Field("high", pattern="^(low|medium|high|critical)$", description="severity of liveness alerts")


class ApiToken(BaseModel):
    """One person's (or one system's) token for the alert feed, with its role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$", description="who holds it (recorded as 'by')")
    token: SecretStr = Field(description="the bearer token (at least 16 characters)", min_length=16)
    role: Literal["viewer", "operator"] = Field("viewer", description="viewer: read; operator: read and act")


ChangeKind = Literal["opened", "escalated", "acknowledged", "resolved", "updated"]
DEFAULT_CHANGES: tuple[ChangeKind, ...] = ("opened", "escalated")


class NotifyRule(BaseModel):
    """Where alert changes go (a webhook, e-mail addresses) and which: by site, severity, fault and kind of change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", description="named in logs and payloads")
    webhook_url: str | None = Field(None, pattern=r"^https?://", description="POST each change here (JSON)")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the X-Forewarn-Signature header")
    email_to: list[str] = Field(default_factory=list, description="e-mail each change to these (needs stream.smtp)")
    sites: list[str] = Field(default_factory=list, description="only these sites (empty: all)")
    faults: list[str] = Field(default_factory=list, description="only these faults (empty: all)")
    min_severity: Literal["low", "medium", "high", "critical"] = Field("low", description="only this severity and worse")
    changes: list[ChangeKind] = Field(default_factory=lambda: list(DEFAULT_CHANGES), description="which kinds of change")
    max_per_hour: int = Field(60, ge=1, description="rate limit: more notifications than this an hour are dropped")
    retries: int = Field(4, ge=0, le=10, description="webhook retries (0.5 s, 1 s, 2 s, ... apart)")
    digest_below: Literal["medium", "high", "critical"] | None = Field(
        None, description="changes of alerts below this severity wait for the digest instead"
    )
    digest_every_s: float = Field(86_400.0, gt=0, description="how often the digest goes out (daily)")

    @model_validator(mode="after")
    def _somewhere(self) -> NotifyRule:
        if not self.webhook_url and not self.email_to:
            raise ValueError(f"notification rule {self.name!r} needs a webhook_url or email_to")
        return self

    def matches(self, alert: Any, kind: str) -> bool:
        from forewarn.contracts import SEVERITY_ORDER, Severity

        return (
            kind in self.changes
            and (not self.sites or alert.site in self.sites)
            and (not self.faults or alert.fault in self.faults)
            and SEVERITY_ORDER[alert.severity] >= SEVERITY_ORDER[Severity(self.min_severity)]
        )


class SmtpSettings(BaseModel):
    """The mail server notifications go through."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(description="SMTP server")
    port: int = Field(25, ge=1, le=65535)
    from_addr: str = Field("forewarn@localhost", description="the From: address")
    starttls: bool = Field(False, description="upgrade the connection with STARTTLS")
    username: str | None = None
    password: SecretStr | None = None


class StreamSection(BaseModel):
    """The stream worker's own settings."""

    model_config = ConfigDict(frozen=True)

    app_id: str = Field("forewarn-stream", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", description="Faust app id")
    partitions: int | None = Field(None, ge=1, le=1024, description="partitions of the stream's topics (None: kafka.partitions)")
    control_topic: str = Field("forewarn.stream.control", description="operator commands, heartbeats and ticks")
    web_host: str = Field("127.0.0.1", description="address of the alert feed web server")
    web_port: int = Field(6066, ge=0, le=65535, description="port of the alert feed (0: any free port)")
    web_enabled: bool = Field(True, description="serve the alert feed (REST, SSE, page) from this worker")
    api_token: SecretStr | None = Field(
        None, description="token for acknowledge/resolve (None: generated once into STATE_DIR/stream-api-token)"
    )
    command_wait_s: float = Field(
        10.0, gt=0, le=120, description="how long acknowledge/resolve wait for a worker to apply them before answering 504"
    )
    api_tokens: list[ApiToken] = Field(
        default_factory=list, description="more tokens, each with a name and a role (viewer or operator)"
    )
    read_auth: bool = Field(
        False, description="the feed's reads (alerts, events, KPIs) need a token too (any role); writes always need operator"
    )
    mqtt_publish: bool = Field(True, description="publish alert changes to MQTT (retained, QoS 1)")
    tick_s: float = Field(1.0, gt=0, le=60, description="how often liveness, re-notify and escalation are checked")
    delivery: Literal["batched", "agent"] = Field(
        "batched",
        description="how predictions and control messages reach the aggregation: 'batched' (a fetch at a time from "
        "Faust's consumer, stream.batches; about 3x the throughput) or 'agent' (a plain Faust agent, public API only); "
        "'batched' falls back to 'agent' with a warning when the installed Faust lacks the hooks it needs",
    )
    batch_size: int = Field(2000, ge=1, le=100_000, description="most messages per aggregation batch (and per fetch)")
    batch_within_s: float = Field(
        0.05, gt=0, le=5, description="longest wait after a batch before the next one goes (adds to alert latency)"
    )
    topic_check_s: float = Field(
        10.0, gt=0, le=3600, description="how often the worker checks that its topics exist (and re-creates lost ones)"
    )
    stop_deadline_s: float = Field(
        10.0, gt=0, le=300, description="after SIGTERM/SIGINT, exit (code 3) if the clean stop has not finished by then"
    )
    db_retry_max_s: float = Field(10.0, gt=0, description="longest pause between database retries during an outage")
    recovery_stall_s: float | None = Field(
        None,
        ge=0,
        description="end a changelog partition's recovery that delivered nothing this long short of the end offset "
        "the broker reported (stream.recovery; tansu overstates it); 0: wait forever, as Faust does; None: 60 s on "
        "tansu, off on any other broker (Apache Kafka reports end offsets correctly)",
    )
    rules: RuleSettings = RuleSettings()
    liveness: LivenessSettings = LivenessSettings()
    notify: list[NotifyRule] = Field(default_factory=list, description="notification rules (stream.notify)")
    smtp: SmtpSettings | None = Field(None, description="the mail server for e-mail notifications")


class StreamSettings(CommonSettings):
    """A stream worker's settings: the shared sections plus ``[stream]``."""

    stream: StreamSection = StreamSection()

    @property
    def partitions(self) -> int:
        return self.stream.partitions or self.kafka.partitions
