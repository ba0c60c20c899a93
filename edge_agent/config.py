"""Settings of the gateway daemon: the shared sections plus an ``[edge]`` section.

Built once by `forewarn edge run` / `forewarn edge score` with ``load_settings`` and passed
down; nothing below reads the environment. Every field has a default that runs on one
machine, so `forewarn edge run` with no file works next to a local Mosquitto.

Environment overrides name the section and the field: ``FOREWARN_EDGE_GATEWAY_ID=gw7``,
``FOREWARN_EDGE_OUTBOX_MAX_BYTES=1000000``, ``FOREWARN_KAFKA_BOOTSTRAP=broker:9092``.
See ``edge_agent/forewarn-edge.example.toml`` for a commented file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator

from edge_agent.sparkplug.config import SparkplugSection
from forewarn.contracts import MAX_PAYLOAD_BYTES, Nameplate
from forewarn.settings import CommonSettings

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class EdgeSection(BaseModel):
    """The ``[edge]`` table: what only the gateway daemon reads."""

    gateway_id: str = Field("gw1", pattern=_ID, description="this gateway's id: part of every prediction id and topic")
    model: Path | None = Field(None, description="model bundle directory; None: the bundle shipped with Forewarn")
    ort_threads: int = Field(1, ge=1, le=64, description="ONNX Runtime intra-op threads (1 leaves a core for ingest)")
    batch_size: int = Field(64, ge=1, le=4096, description="most windows per inference call; bounds the added latency of a burst")
    reload_check_s: float = Field(
        5.0, ge=0, description="how often to look for a new bundle dropped in place (0: never hot-reload)"
    )

    # -- MQTT ingest and local publishing
    client_id: str | None = Field(
        None, description="MQTT client id; fixed so the broker keeps the session. None: forewarn-edge-<gateway_id>"
    )
    mqtt_protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1", description="MQTT protocol version; 3.1.1 works with every broker (amqtt included)"
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, description="MQTT 5 only: how long the broker keeps the session while the gateway is away"
    )
    subscribe_qos: Literal[0, 1] = Field(1, description="QoS of the telemetry and log subscriptions")
    prediction_qos: Literal[0, 1, 2] = Field(1, description="QoS of predictions published to MQTT .../prediction")
    publish_predictions_mqtt: bool = Field(True, description="also publish every prediction to MQTT for local subscribers")
    mqtt_queue_max: int = Field(
        10_000, ge=0, description="MQTT publishes held in memory while the broker is away (beyond: counted, dropped)"
    )
    max_payload_bytes: int = Field(
        MAX_PAYLOAD_BYTES, ge=1024, le=MAX_PAYLOAD_BYTES, description="largest inbound payload accepted"
    )
    inbox_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        description="payload bytes waiting between MQTT and the pipeline; beyond, MQTT waits (inbox_wait_s)",
    )
    inbox_wait_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="how long a payload may wait for room in a full inbox (backpressure to the broker) before it "
        "is dead-lettered as inbox_full; keep it under half the MQTT keepalive",
    )
    drain_max_messages: int = Field(2_000, ge=1, description="most inbound messages folded per pipeline step")

    # -- secrets kept out of the config file (a systemd credential, a Docker secret)
    mqtt_password_file: Path | None = Field(
        None, description="file holding the MQTT password; read once at start, it replaces mqtt.password"
    )
    kafka_password_file: Path | None = Field(
        None, description="file holding the Kafka SASL password; read once at start, it replaces kafka.sasl_password"
    )

    # -- assets
    unknown_assets: Literal["accept", "reject"] = Field(
        "accept",
        description="accept: score any asset (up to max_assets); reject: only known_assets, others dead-lettered. "
        "Unset, it is reject when known_assets lists any asset, else accept",
    )
    known_assets: list[str] = Field(default_factory=list, description="asset ids this gateway expects (used by 'reject')")
    channel_map: dict[str, str] = Field(
        default_factory=dict,
        description="plant channel -> the bundle's channel, for a plant that names its channels otherwise than the data "
        "the bundle learnt from (`forewarn model map` proposes one); unnamed channels keep their names",
    )
    nameplates: dict[str, Nameplate] = Field(
        default_factory=dict,
        description="asset id -> rating plate ({rated_current_a}): lets a model trained with ratings compare a machine's "
        "heating with its type's from the first window (docs/edge.md)",
    )
    max_assets: int = Field(1_000, ge=1, le=100_000, description="most assets buffered at once (memory bound)")
    asset_idle_s: float = Field(
        3_600.0, gt=0, description="when max_assets is reached, an asset silent this long gives up its buffer"
    )
    dedup_window: int = Field(1_024, ge=16, le=1_000_000, description="recent seq numbers remembered per asset")
    reorder_hold_s: float = Field(
        10.0,
        ge=0,
        description="after a seq gap, how long an asset's later messages wait for the gap to fill, so that a "
        "backlog arriving behind a live message is folded in order (0: fold in arrival order)",
    )
    checkpoint_s: float = Field(
        60.0,
        ge=0,
        description="how often the windows in progress and each asset's history are checkpointed to the state "
        "directory, the messages since kept in a journal, so a crash loses none of them (0: never; docs/edge.md)",
    )
    journal_max_bytes: int = Field(
        64 * 1024 * 1024, ge=64 * 1024, description="a journal this large brings the next checkpoint forward"
    )

    # -- outbox and Kafka delivery
    outbox_path: Path | None = Field(None, description="SQLite outbox file; None: <state_dir>/edge/outbox.sqlite3")
    outbox_max_bytes: int = Field(
        256 * 1024 * 1024, ge=64 * 1024, description="outbox size bound; over it the oldest rows go (see docs/edge.md)"
    )
    outbox_max_age_s: float = Field(7 * 24 * 3600.0, gt=0, description="rows older than this are discarded, counted")
    outbox_sync: Literal["NORMAL", "FULL"] = Field(
        "FULL", description="SQLite synchronous mode: FULL survives power loss, NORMAL only a crash of the process"
    )
    historical_after_s: float = Field(
        120.0, gt=0, description="a prediction older than this when sent is replayed, flagged historical"
    )
    replay_rate: float = Field(200.0, gt=0, description="historical predictions sent per second after an outage")
    kafka_batch: int = Field(500, ge=1, le=100_000, description="most outbox rows per Kafka send")
    kafka_timeout_s: float = Field(10.0, gt=0, description="time for Kafka to acknowledge a batch before it counts as failed")
    kafka_backoff_max_s: float = Field(30.0, gt=0, description="longest wait between Kafka reconnect attempts")
    deadletter_rate: float = Field(
        20.0, ge=0, description="dead letters per second sent to Kafka; more are counted only (a flood must not fill the outbox)"
    )

    # -- edge -> plant cascade (edge_agent.escalate, docs/edge.md "Cascade")
    cascade_enabled: bool = Field(
        True, description="escalate the windows the model is unsure of to the plant tier's model (topics.kafka_escalations)"
    )
    cascade_confidence_below: float = Field(
        0.6, ge=0.0, le=1.0, description="escalate a window whose prediction's confidence is below this"
    )
    cascade_anomaly_above: float = Field(
        0.9, ge=0.0, le=1.0, description="escalate a window predicted normal whose anomaly score reaches this"
    )
    cascade_rate: float = Field(0.2, ge=0, description="escalations per second at most (the budget); more keep the edge verdict")
    cascade_burst: int = Field(20, ge=1, le=100_000, description="escalations the budget may save up")

    # -- health and metrics
    status_interval_s: float = Field(30.0, gt=0, description="how often the retained gateway status is refreshed")
    input_quiet_s: float = Field(
        60.0,
        ge=0,
        description="warn (log and status) when no message was placed in a window for this long: nothing arrives on "
        "the site's subscriptions, or all is refused (0: never)",
    )
    metrics_enabled: bool = Field(True, description="serve Prometheus metrics over HTTP")
    metrics_host: str = Field("127.0.0.1", description="address of the metrics HTTP server")
    metrics_port: int = Field(9464, ge=0, le=65535, description="port of the metrics HTTP server (0: any free port)")
    stop_timeout_s: float = Field(5.0, gt=0, description="on SIGTERM: time allowed to flush the outbox to Kafka")

    @model_validator(mode="after")
    def _known_assets_mean_reject(self) -> EdgeSection:
        """A gateway told which assets it serves refuses the others unless unknown_assets says accept."""
        if "unknown_assets" not in self.model_fields_set and self.known_assets:
            self.unknown_assets = "reject"
        return self


class RolloutSection(BaseModel):
    """The ``[rollout]`` table: signed bundles published to the site's bundle topic (docs/edge.md, "Rolling out a new model")."""

    public_key_file: Path | None = Field(
        None, description="Ed25519 public key (PEM) that signs this site's bundles; None: rollout off, no bundle accepted"
    )
    selftest_windows: int = Field(200, ge=0, le=10_000, description="recent windows kept to self-test a new bundle on")
    min_selftest_windows: int = Field(
        20, ge=0, le=10_000, description="fewer kept windows than this: the verdict-flip check is skipped (load and run only)"
    )
    max_flip_share: float = Field(
        0.25, ge=0.0, le=1.0, description="a new bundle whose verdicts differ from the running one's on more of the "
        "kept windows than this share is refused (1.0: never)",
    )  # fmt: skip
    max_bundle_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="largest signed package accepted, packed and unpacked")


class EdgeSettings(CommonSettings):
    """Everything `forewarn edge run` and `forewarn edge score` read."""

    edge: EdgeSection = EdgeSection()
    sparkplug: SparkplugSection = SparkplugSection()
    rollout: RolloutSection = RolloutSection()

    @model_validator(mode="after")
    def _inbox_wait_within_keepalive(self) -> EdgeSettings:
        """The MQTT network thread sends no ping while it waits for room: a long wait would drop the session."""
        if self.edge.inbox_wait_s > self.mqtt.keepalive_s / 2:
            raise ValueError(
                f"edge.inbox_wait_s ({self.edge.inbox_wait_s} s) must be at most half of mqtt.keepalive_s "
                f"({self.mqtt.keepalive_s} s): the MQTT connection sends no keepalive while it waits"
            )
        return self

    @model_validator(mode="after")
    def _secrets_from_files(self) -> EdgeSettings:
        """Read the password files named in [edge] (their content is never logged or shown)."""
        if urlsplit(self.mqtt.url).password is not None:
            raise ValueError(
                "mqtt.url must not carry a password (it would be logged, and is not used): "
                "set mqtt.username with mqtt.password, FOREWARN_MQTT_PASSWORD or edge.mqtt_password_file"
            )
        if self.edge.mqtt_password_file is not None:
            self.mqtt.password = SecretStr(_read_secret(self.edge.mqtt_password_file, "edge.mqtt_password_file"))
        if self.edge.kafka_password_file is not None:
            self.kafka.sasl_password = SecretStr(_read_secret(self.edge.kafka_password_file, "edge.kafka_password_file"))
        return self

    def client_id(self) -> str:
        return self.edge.client_id or f"forewarn-edge-{self.edge.gateway_id}"

    def bundles_dir(self) -> Path:
        """Where rolled-out bundles are unpacked (``<version>/``) and the active one is remembered."""
        return self.state_dir / "edge" / "bundles"

    def windows_dir(self) -> Path:
        """Where the checkpoint and journal of the windows in progress live (edge_agent.journal)."""
        return self.state_dir / "edge"

    def outbox_file(self) -> Path:
        return self.edge.outbox_path or self.state_dir / "edge" / "outbox.sqlite3"

    def model_path(self) -> Path:
        """The configured bundle, else the one shipped with Forewarn (imported late: the runtime is heavy)."""
        if self.edge.model is not None:
            return self.edge.model
        from models.runtime import default_bundle_path

        return default_bundle_path()


def _read_secret(path: Path, field: str) -> str:
    """A secret file's content without its trailing newline; the error names the file, never the content."""
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{field}: cannot read {path}: {exc.strerror}") from exc
    if not secret:
        raise ValueError(f"{field}: {path} is empty")
    return secret
