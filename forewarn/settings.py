"""Settings: one pydantic-settings class per process, built once by its CLI command and passed down.

Precedence, highest first: explicit overrides (CLI flags) > environment ``FOREWARN_*`` >
TOML file > defaults. Every default runs on one machine.

Environment variables name a section and a field joined by one underscore:
``FOREWARN_KAFKA_BOOTSTRAP`` sets ``kafka.bootstrap``, ``FOREWARN_STATE_DIR`` sets
``state_dir``. The TOML file has the same shape (``[kafka] bootstrap = "..."``); it is
``--config FILE``, else ``$FOREWARN_CONFIG``, else ``./forewarn.toml`` if present.

The sections shared by every process live here (``mqtt``, ``kafka``, ``topics``,
``database``, ``logging``); each process adds its own section in its package
(``edge_agent.config``, ``stream.config``, ...) by subclassing ``CommonSettings``.
Nothing below a CLI entry point reads ``os.environ``.
"""

from __future__ import annotations

import difflib
import importlib
import os
import ssl
import tomllib
import types
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from forewarn.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("forewarn.toml")

# Every process's settings class ("module:attribute"), in data-flow order. One TOML file may
# hold every part's sections, so a key is unknown only when no installed part knows it.
SETTINGS_CLASSES: dict[str, str] = {
    "common": "forewarn.settings:CommonSettings",
    "simulator": "simulators.config:SimulatorSettings",
    "edge": "edge_agent.config:EdgeSettings",
    "stream": "stream.config:StreamSettings",
}

_config_file: ContextVar[Path | None] = ContextVar("forewarn_config_file", default=None)


def default_state_dir() -> Path:
    """Where state lives when nothing says otherwise: $XDG_STATE_HOME/forewarn (~/.local/state/forewarn)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "forewarn"


class MqttSettings(BaseModel):
    """The MQTT broker the machines publish to and the gateway subscribes to."""

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port, or mqtts://host:port for TLS")
    username: str | None = Field(None, description="MQTT username (None: anonymous)")
    password: SecretStr | None = Field(None, description="MQTT password")
    ca_file: Path | None = Field(None, description="CA bundle to verify the broker's TLS certificate")
    cert_file: Path | None = Field(None, description="client certificate for mutual TLS")
    key_file: Path | None = Field(None, description="client key for mutual TLS")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive interval")
    reconnect_min_s: float = Field(0.5, gt=0, description="first reconnect delay; doubles up to reconnect_max_s")
    reconnect_max_s: float = Field(30.0, gt=0, description="longest reconnect delay")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{value!r} is not mqtt://host[:port] or mqtts://host[:port]")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class KafkaSettings(BaseModel):
    """The Kafka cluster between the gateways and the stream workers, and how every Forewarn client reaches it.

    ``client_options()`` is the one place that turns these settings into connection
    arguments: the gateway's producer, the stream worker (Faust, through
    ``broker_credentials``), the feed's consumer and every admin client use it.
    """

    bootstrap: str = Field("", description="host:port[,host:port]; empty: the demo starts a local tansu broker")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="SSL / SASL_SSL: TLS 1.2 or newer, the brokers' certificates and names verified"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="required with SASL_PLAINTEXT / SASL_SSL"
    )
    sasl_username: str | None = Field(None, description="this client's Kafka principal (one per gateway)")
    sasl_password: SecretStr | None = Field(None, description="SASL password (FOREWARN_KAFKA_SASL_PASSWORD)")
    sasl_password_file: Path | None = Field(
        None, description="file holding the SASL password; read once at start, it replaces sasl_password"
    )
    ca_file: Path | None = Field(None, description="CA bundle to verify the brokers' TLS certificates (else the system's)")
    cert_file: Path | None = Field(None, description="client certificate, for brokers that require one (SSL)")
    key_file: Path | None = Field(None, description="client key of cert_file (omit when cert_file holds both)")
    partitions: int = Field(4, ge=1, le=1024, description="partitions of the topics Forewarn creates")
    replication_factor: int = Field(1, ge=1, le=16)
    session_timeout_s: float = Field(
        10.0, ge=3, le=300, description="consumer group session timeout (tansu joins take half of it)"
    )

    @model_validator(mode="after")
    def _coherent_security(self) -> KafkaSettings:
        """Refuse settings a client would silently ignore (a mechanism without SASL, SASL without a user)."""
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not (self.sasl_mechanism and self.sasl_username):
            raise ValueError(
                f"kafka.security_protocol {self.security_protocol} needs kafka.sasl_mechanism and kafka.sasl_username"
            )
        if not sasl and (self.sasl_mechanism or self.sasl_username):
            raise ValueError(
                f"kafka.sasl_mechanism / kafka.sasl_username are set but kafka.security_protocol is "
                f"{self.security_protocol}: use SASL_SSL (or SASL_PLAINTEXT), else they are not used"
            )
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("kafka.key_file is set without kafka.cert_file")
        if self.sasl_password_file is not None:
            self.sasl_password = SecretStr(read_secret_file(self.sasl_password_file, "kafka.sasl_password_file"))
        return self

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of an SSL / SASL_SSL connection: verified brokers, optional client certificate.

        Raises ConfigError naming the file when a CA, certificate or key cannot be loaded.
        """
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.cert_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        except (OSError, ssl.SSLError) as exc:
            files = ", ".join(str(f) for f in (self.ca_file, self.cert_file, self.key_file) if f is not None)
            raise ConfigError(f"cannot load the Kafka TLS files ({files or 'system CAs'}): {exc}") from exc
        return context

    def client_options(self) -> dict[str, Any]:
        """aiokafka connection keyword arguments for these settings (security included).

        Raises ConfigError when SASL has no password or a TLS file cannot be loaded: the
        process stops at start with the reason, instead of retrying a connection that cannot work.
        """
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            if self.sasl_password is None:
                raise ConfigError(
                    f"kafka.sasl_username {self.sasl_username!r} has no password: set FOREWARN_KAFKA_SASL_PASSWORD, "
                    "kafka.sasl_password_file or kafka.sasl_password"
                )
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        return options


class TopicSettings(BaseModel):
    """Topic names. MQTT templates take ``{site}``, ``{asset}`` and ``{gateway}``."""

    mqtt_telemetry: str = "forewarn/{site}/{asset}/telemetry"
    mqtt_log: str = "forewarn/{site}/{asset}/log"
    mqtt_prediction: str = "forewarn/{site}/{asset}/prediction"
    mqtt_alert: str = "forewarn/alerts/{site}/{asset}"
    mqtt_gateway_status: str = "forewarn/gateways/{gateway}/status"
    mqtt_model_bundle: str = Field(
        "forewarn/models/{site}/bundle", description="a site's signed model bundle, retained (`forewarn model publish`)"
    )
    mqtt_model_command: str = Field(
        "forewarn/models/{site}/command", description="orders to a site's gateways about their model (rollback)"
    )
    kafka_predictions: str = "forewarn.predictions"
    kafka_alerts: str = "forewarn.alerts"
    kafka_deadletter: str = "forewarn.deadletter"
    kafka_escalations: str = Field(
        "forewarn.escalations", description="windows the gateway's model was unsure of, for the plant tier's model (cascade)"
    )

    @field_validator("mqtt_telemetry", "mqtt_log", "mqtt_prediction", "mqtt_alert")
    @classmethod
    def _has_asset(cls, value: str) -> str:
        if "{asset}" not in value or "{site}" not in value:
            raise ValueError(f"{value!r} must contain {{site}} and {{asset}}")
        return value

    @field_validator("mqtt_model_bundle", "mqtt_model_command")
    @classmethod
    def _has_site(cls, value: str) -> str:
        if "{site}" not in value:
            raise ValueError(f"{value!r} must contain {{site}}")
        return value

    def subscription(self, template: str, site: str | None = None) -> str:
        """The MQTT filter matching a template for one site (or every site) and every asset."""
        return template.format(site=site or "+", asset="+", gateway="+")


class DatabaseSettings(BaseModel):
    """Where alerts live: SQLite under the state directory by default, PostgreSQL in production."""

    url: SecretStr | None = Field(
        None, description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db; None: SQLite in state_dir"
    )
    echo: bool = False


class LoggingSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = Field("text", description="json for log shippers (one object per line)")


class CommonSettings(BaseSettings):
    """What every Forewarn process shares. Subclass it to add a process's own section."""

    model_config = SettingsConfigDict(
        env_prefix="FOREWARN_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
        validate_default=True,
    )

    site: str = Field("plant1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", description="this deployment's site id")
    state_dir: Path = Field(default_factory=default_state_dir, description="database, outbox and broker data")
    mqtt: MqttSettings = MqttSettings()
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    database: DatabaseSettings = DatabaseSettings()
    logging: LoggingSettings = LoggingSettings()

    def database_url(self) -> str:
        """The effective SQLAlchemy URL (secret): the configured one, else SQLite in the state directory."""
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.state_dir / 'forewarn.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


S = TypeVar("S", bound=CommonSettings)


def resolve_config_file(config_file: Path | None, environ: dict[str, str] | None = None) -> Path | None:
    """--config, else $FOREWARN_CONFIG, else ./forewarn.toml when it exists."""
    env = os.environ if environ is None else environ
    if config_file is None and env.get("FOREWARN_CONFIG"):
        config_file = Path(env["FOREWARN_CONFIG"])
    if config_file is None:
        return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None
    if not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    return config_file


@contextmanager
def _using_config_file(path: Path | None) -> Iterator[None]:
    token = _config_file.set(path)
    try:
        yield
    finally:
        _config_file.reset(token)


def load_settings(cls: type[S], config_file: Path | None = None, **overrides: Any) -> S:
    """Build a process's settings from overrides, the environment and the TOML file.

    Raises ConfigError with every bad field named, so the CLI can print one clear message.
    """
    path = resolve_config_file(config_file)
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        unknown = unknown_keys(data, cls)
        if unknown:
            raise ConfigError(f"{path}: " + "; ".join(unknown))
    try:
        with _using_config_file(path):
            return cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False))
        source = f" (from {path})" if path else ""
        raise ConfigError(f"invalid settings{source}: {problems}") from exc


def unknown_keys(data: dict[str, Any], cls: type[BaseModel]) -> list[str]:
    """What a TOML file holds that no settings know, each with the nearest valid name.

    A top-level section this process does not read is checked against the other parts'
    settings classes (one file may configure every part); a typo is refused, never ignored.
    """
    problems: list[str] = []
    fields = cls.model_fields
    others: dict[str, type[BaseModel]] | None = None
    for key, value in data.items():
        if key in fields:
            problems += _check_value(value, fields[key].annotation, key)
            continue
        if others is None:
            others = _other_fields(cls)
        if key in others:
            problems += _check_value(value, others[key], key)
            continue
        problems.append(_unknown(key, "", isinstance(value, dict), [*fields, *others]))
    return problems


def _other_fields(cls: type[BaseModel]) -> dict[str, Any]:
    """Top-level field name -> annotation of every installed settings class but ``cls``."""
    found: dict[str, Any] = {}
    for target in SETTINGS_CLASSES.values():
        module_name, _, attribute = target.partition(":")
        try:
            other = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue  # a part that is not installed configures nothing
        if other is not cls:
            found.update({name: info.annotation for name, info in other.model_fields.items()})
    return found


def _check_value(value: Any, annotation: Any, where: str) -> list[str]:
    """Unknown keys inside one value: a section (model), a table of models or a list of them."""
    model, container = _model_of(annotation)
    if model is None:
        return []
    if container == "dict" and isinstance(value, dict):
        return [p for k, v in value.items() for p in _check_value(v, model, f"{where}.{k}")]
    if container == "list" and isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _check_value(v, model, f"{where}[{i}]")]
    if container == "" and isinstance(value, dict):
        problems: list[str] = []
        fields = model.model_fields
        for key, inner in value.items():
            if key in fields:
                problems += _check_value(inner, fields[key].annotation, f"{where}.{key}")
            else:
                problems.append(_unknown(key, where, isinstance(inner, dict), list(fields)))
        return problems
    return []


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The settings model an annotation holds, and how: directly (""), as dict values or as list items."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        for arg in args:
            model, container = _model_of(arg)
            if model is not None:
                return model, container
    if origin is dict and len(args) == 2:
        model, container = _model_of(args[1])
        return (model, "dict") if model is not None and container == "" else (None, "")
    if origin is list and len(args) == 1:
        model, container = _model_of(args[0])
        return (model, "list") if model is not None and container == "" else (None, "")
    return None, ""


def _unknown(key: str, where: str, is_table: bool, valid: list[str]) -> str:
    name = f"[{where}.{key}]" if where and is_table else f"[{key}]" if is_table else key
    place = f" in [{where}]" if where and not is_table else ""
    kind = "section" if is_table else "key"
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = ""
    if near:
        hint = f"; did you mean [{where + '.' if where else ''}{near[0]}]?" if is_table else f"; did you mean {near[0]}?"
    return f"unknown {kind} {name}{place}{hint}"


def require_state_dir(path: Path) -> Path:
    """For read-only commands: a state directory that does not exist is a typo, not an empty one.

    Creating it (and an empty database in it) would report "no alerts" for a plant that has some.
    """
    if not path.is_dir():
        raise ConfigError(
            f"state directory {path} does not exist (check --state-dir / FOREWARN_STATE_DIR); "
            "a read-only command does not create one"
        )
    return path


def read_secret_file(path: Path, field: str) -> str:
    """A secret file's content without its trailing newline; the error names the file, never the content.

    Secrets live in files so they can be a systemd credential or a Docker secret, kept out of
    the config file, the environment of child processes and ``forewarn config show``.
    """
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{field}: cannot read {path}: {exc.strerror}") from exc
    if not secret:
        raise ValueError(f"{field}: {path} is empty")
    return secret


def masked_dump(settings: BaseModel) -> dict[str, Any]:
    """The settings as plain data with every secret shown as '********' (for `forewarn config show`)."""
    data = settings.model_dump(mode="json")
    _mask(settings, data)
    return data


def _mask(model: BaseModel, data: dict[str, Any]) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            data[name] = _mask_secret(value.get_secret_value())
        elif isinstance(value, BaseModel):
            _mask(value, data[name])


def _mask_secret(secret: str) -> str:
    """A URL keeps its host and database (operators need them) and loses its password."""
    parts = urlsplit(secret)
    if parts.scheme and "://" in secret:
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", ":********@", 1)
        return parts._replace(netloc=netloc).geturl()
    return "********"
