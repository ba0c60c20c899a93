"""A site from docker/ has no default password, one slim image per role, health checks and limits, and a locked Mosquitto."""

from __future__ import annotations

import getpass
import importlib
import os
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from demo.brokers import free_port, stop_process_group, wait_for_port
from forewarn.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_TEXT = (DOCKER / "compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
SECRET = re.compile(r"PASSWORD|TOKEN|SECRET")
ONE_SHOT = {"mosquitto-init", "migrate"}
TEST_HOOKS = {"FOREWARN_VERSION", "MOSQUITTO_GENERATED"}  # an image tag; where init.sh writes (tests)


def test_every_long_running_service_restarts_is_health_checked_and_bounded() -> None:
    assert set(SERVICES) == {"kafka", "mosquitto-init", "mosquitto", "postgres", "migrate", "stream", "edge", "simulator"}
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], f"{name} has no healthcheck"
        limits = service["deploy"]["resources"]["limits"]
        assert limits["memory"] and limits["cpus"], f"{name} has no resource limits"
    assert SERVICES["simulator"]["profiles"] == ["sim"]
    # State lives in named volumes: the gateway's outbox survives a container or image replacement.
    named = set(COMPOSE["volumes"])
    for name, target in [
        ("kafka", "/var/lib/kafka/data"),
        ("postgres", "/var/lib/postgresql/data"),
        ("mosquitto", "/mosquitto/data"),
        ("edge", "/var/lib/forewarn"),
    ]:
        mounts = [v.split(":") for v in SERVICES[name]["volumes"]]
        assert any(src in named and dst == target for src, dst, *_ in mounts), f"{name}: no named volume at {target}"
    # Start order waits for health, not for a container merely existing.
    assert SERVICES["stream"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert SERVICES["edge"]["depends_on"]["mosquitto"] == {"condition": "service_healthy"}
    assert SERVICES["mosquitto"]["depends_on"]["mosquitto-init"] == {"condition": "service_completed_successfully"}
    # Only MQTT over TLS and the alert feed are published; Kafka and PostgreSQL stay on the compose network.
    published = {p for s in SERVICES.values() for p in s.get("ports", [])}
    assert published == {"8883:8883", "8080:8080"}


def test_no_secret_has_a_default_and_a_missing_one_is_named() -> None:
    text = COMPOSE_TEXT + (DOCKER / "mosquitto" / "init.sh").read_text()
    variables = [v for v in re.findall(r"\$\{([A-Z_]+)(:?[-?])?([^}]*)\}", text) if v[0] not in TEST_HOOKS]
    secrets = {name for name, _, _ in variables if SECRET.search(name)}
    assert {"POSTGRES_PASSWORD", "MQTT_GATEWAY_PASSWORD", "FOREWARN_STREAM_API_TOKEN", "FOREWARN_FEED_VIEWER_TOKEN"} <= secrets
    # The alert feed serves reads to token holders only.
    assert SERVICES["stream"]["environment"]["FOREWARN_STREAM_READ_AUTH"] == "true"
    for name, operator, message in variables:
        if SECRET.search(name):
            assert operator == ":?" and message.startswith("set "), f"${{{name}}} must be required with a message"
    # Nothing in the compose file spells a password out.
    for service in SERVICES.values():
        for key, value in (service.get("environment") or {}).items():
            if SECRET.search(key):
                assert "${" in str(value) and ":?" in str(value), f"{key} is not taken from the environment"
    # The example env file names every variable, and leaves every secret empty.
    lines = (DOCKER / "site.env.example").read_text().splitlines()
    example = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert {name for name, _, _ in variables} <= set(example), {name for name, _, _ in variables} - set(example)
    assert all(example[name] == "" for name in secrets), "site.env.example must not ship a password"


def _environment(service: str) -> dict[str, str]:
    """A service's environment as compose would pass it, with every required variable set to a stand-in."""

    def value(match: re.Match[str]) -> str:
        return match[3] if match[2] == ":-" else f"stand-in-{match[1].lower()}-0123456789"

    env = SERVICES[service]["environment"]
    return {k: re.sub(r"\$\{(\w+)(:?[-?])?([^}]*)\}", value, str(v)) for k, v in env.items()}


@pytest.mark.parametrize(
    ("service", "target"),
    [
        ("edge", "edge_agent.config:EdgeSettings"),
        ("stream", "stream.config:StreamSettings"),
        ("migrate", "stream.config:StreamSettings"),
        ("simulator", "simulators.config:SimulatorSettings"),
    ],
)
def test_each_services_environment_is_valid_settings_for_its_process(
    service: str, target: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in [k for k in os.environ if k.startswith("FOREWARN_")]:
        monkeypatch.delenv(key)
    for key, value in _environment(service).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FOREWARN_STATE_DIR", str(tmp_path))
    module, _, name = target.partition(":")
    settings = load_settings(getattr(importlib.import_module(module), name))
    assert settings.site == "stand-in-forewarn_site-0123456789"
    assert settings.kafka.bootstrap == "kafka:9092" and settings.kafka.partitions == 6
    if service == "stream":
        stream = settings.stream
        assert stream.read_auth and stream.web_port == 8080 and [t.role for t in stream.api_tokens] == ["viewer"]
        assert settings.mqtt.username == "stream" and settings.mqtt.password is not None
    if service == "edge":
        assert settings.mqtt.username == settings.edge.gateway_id


def _stages() -> dict[str, str]:
    """Dockerfile stage name -> the stage's text."""
    text = (DOCKER / "Dockerfile").read_text()
    parts = re.split(r"^FROM \S+ AS (\w+)\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_each_image_installs_only_its_roles_extras() -> None:
    stages = _stages()
    installs = {name: re.findall(r'pip install [^\n]*"forewarn(?:\[([\w,]*)\])?"', body) for name, body in stages.items()}
    assert installs["gateway"] == [""], "the gateway image is the base install: no torch, Faust or database driver"
    assert installs["stream"] == ["stream,postgres"]
    for extras in installs.values():
        for extra in filter(None, ",".join(extras).split(",")):
            assert extra in EXTRAS, f"the Dockerfile installs [{extra}], which pyproject.toml does not define"
    for role in ("gateway", "stream"):
        assert "USER forewarn" in stages[role], f"the {role} image runs as root"
    targets = {name: s["build"]["target"] for name, s in SERVICES.items() if "build" in s}
    assert targets == {"migrate": "stream", "stream": "stream", "edge": "gateway", "simulator": "gateway"}


# -------------------------------------------------------------------- the site's Mosquitto, for real


@dataclass
class SiteBroker:
    dir: Path
    inner_port: int
    tls_port: int
    generated: Path


PASSWORDS = {
    "MQTT_GATEWAY_PASSWORD": "gw-secret-1a2b",
    "MQTT_MACHINES_PASSWORD": "machines-secret-3c",
    "MQTT_STREAM_PASSWORD": "stream-secret-4d",
    "MQTT_OPS_PASSWORD": "ops-secret-5e",
    "MQTT_RELEASE_PASSWORD": "release-secret-6f",
}


@pytest.fixture(scope="module")
def site_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteBroker]:
    """docker/mosquitto as compose runs it: init.sh writes the users and ACLs, the shipped config serves them."""
    d = tmp_path_factory.mktemp("site-mosquitto")
    generated = d / "generated"
    env = {
        **os.environ,
        **PASSWORDS,
        "FOREWARN_SITE": "hall3",
        "FOREWARN_GATEWAY_ID": "gw-hall3",
        "MOSQUITTO_GENERATED": str(generated),
    }
    subprocess.run(["sh", str(DOCKER / "mosquitto" / "init.sh")], env=env, check=True, capture_output=True)
    subprocess.run(
        ["sh", str(DOCKER / "mosquitto" / "make-certs.sh"), str(d / "certs"), "127.0.0.1"], check=True, capture_output=True
    )
    inner, tls = free_port(), free_port()
    conf = (DOCKER / "mosquitto" / "mosquitto.conf").read_text()
    conf = conf.replace("/mosquitto/generated/", f"{generated}/").replace("/mosquitto/certs/", f"{d}/certs/")
    conf = conf.replace("/mosquitto/data/", f"{d}/").replace("listener 1883", f"listener {inner} 127.0.0.1")
    conf = conf.replace("listener 8883", f"listener {tls} 127.0.0.1")
    (d / "mosquitto.conf").write_text(f"user {getpass.getuser()}\n{conf}")  # as root, stay root: the files are ours
    log = (d / "mosquitto.log").open("ab")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen([binary, "-c", str(d / "mosquitto.conf")], stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        wait_for_port("127.0.0.1", inner, 10, process)
        wait_for_port("127.0.0.1", tls, 10, process)
        yield SiteBroker(d, inner, tls, generated)
    finally:
        stop_process_group(process)


def _client(broker: SiteBroker, user: str | None, password: str | None, tls: bool = False) -> tuple[mqtt.Client, list[str]]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    outcome: list[str] = []
    client.on_connect = lambda c, u, f, rc, p: outcome.append("connected" if not rc.is_failure else f"refused: {rc}")
    if user:
        client.username_pw_set(user, password)
    if tls:
        client.tls_set(ca_certs=str(broker.dir / "certs" / "ca.pem"))
    client.connect("127.0.0.1", broker.tls_port if tls else broker.inner_port, keepalive=10)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.02)
    return client, outcome


@pytest.mark.integration
def test_the_site_broker_admits_each_role_to_its_topics_only(site_broker: SiteBroker) -> None:
    clients: list[mqtt.Client] = []
    try:
        anonymous, outcome = _client(site_broker, None, None)
        clients.append(anonymous)
        assert outcome and outcome[0].startswith("refused"), outcome
        gateway, outcome = _client(site_broker, "gw-hall3", PASSWORDS["MQTT_GATEWAY_PASSWORD"], tls=True)
        clients.append(gateway)
        assert outcome == ["connected"], "the gateway connects over the published TLS listener"
        machines, outcome = _client(site_broker, "machines", PASSWORDS["MQTT_MACHINES_PASSWORD"])
        ops, outcome_ops = _client(site_broker, "ops", PASSWORDS["MQTT_OPS_PASSWORD"])
        clients += [machines, ops]
        assert outcome == outcome_ops == ["connected"]
        seen: list[str] = []
        gateway_got: list[str] = []
        subscribed: list[int] = []
        ops.on_message = lambda c, u, m: seen.append(m.topic)
        gateway.on_message = lambda c, u, m: gateway_got.append(m.topic)
        subscriptions = ((ops, "forewarn/#"), (gateway, "forewarn/hall3/+/telemetry"), (gateway, "forewarn/models/hall3/#"))
        for client, topic in subscriptions:
            client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.append(mid)
            client.subscribe(topic, qos=1)
        _until(lambda: len(subscribed) == 3, "the subscriptions")
        for topic in ("forewarn/other-site/P-1/telemetry", "forewarn/hall3/P-1/prediction", "forewarn/models/hall3/bundle"):
            machines.publish(topic, b"{}", qos=1).wait_for_publish(5)
        machines.publish("forewarn/hall3/P-1/telemetry", b"{}", qos=1).wait_for_publish(5)
        _until(lambda: bool(seen) and bool(gateway_got), "the allowed telemetry")
        assert seen == ["forewarn/hall3/P-1/telemetry"], "machines publish their own site's telemetry, nothing else"
        assert gateway_got == ["forewarn/hall3/P-1/telemetry"], "the gateway reads its site's telemetry over TLS"
        # Only the release user writes a site's model topics, and only its own site's.
        release, outcome = _client(site_broker, "release", PASSWORDS["MQTT_RELEASE_PASSWORD"])
        clients.append(release)
        assert outcome == ["connected"]
        for topic in ("forewarn/models/other-site/bundle", "forewarn/models/hall3/bundle"):
            release.publish(topic, b"{}", qos=1).wait_for_publish(5)
        _until(lambda: len(gateway_got) == 2 and "forewarn/models/hall3/bundle" in seen, "the site's model bundle")
        assert gateway_got[1] == "forewarn/models/hall3/bundle"
        assert "forewarn/models/other-site/bundle" not in seen and seen.count("forewarn/models/hall3/bundle") == 1
        # The compose healthcheck's own command, with its generated password, reads the broker's uptime.
        health = (site_broker.generated / "health-password").read_text()
        done = subprocess.run(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(site_broker.inner_port), "-u", "health", "-P", health,
             "-t", "$SYS/broker/uptime", "-C", "1", "-W", "5"],
            capture_output=True, text=True, timeout=15,
        )  # fmt: skip
        assert done.returncode == 0 and "seconds" in done.stdout, done.stderr
        assert all(p not in (site_broker.generated / "passwd").read_text() for p in PASSWORDS.values()), "hashed, not stored"
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()


def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -------------------------------------------------------------------- the bare gateway


UNIT = ROOT / "edge_agent" / "systemd" / "forewarn-edge.service"


def test_the_systemd_unit_is_hardened() -> None:
    text = UNIT.read_text()
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):
        assert line in text, line
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the exposure score was not measured")
    done = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)], capture_output=True, text=True)
    score = float(re.findall(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)[0])
    assert score <= 2.0, f"exposure {score} (systemd's scale: 0 safe .. 10 exposed)"


def test_the_install_script_parses_and_keeps_the_outbox() -> None:
    script = ROOT / "edge_agent" / "systemd" / "install-gateway.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    assert ".backup(" in text and 'rm -rf "$STATE_DIR' not in text, "the upgrade backs up the outbox and never deletes state"
    assert os.access(script, os.X_OK)
