"""A site's Mosquitto with passwords, TLS and per-gateway ACLs refuses strangers, wrong certificates, other sites."""

from __future__ import annotations

import getpass
import json
import logging
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from demo.brokers import free_port, stop_process_group, wait_for_port
from edge_agent.config import EdgeSettings
from edge_agent.daemon import _policy
from edge_agent.errors import Rejected
from edge_agent.health import Health, Vitals
from edge_agent.ingest import Delivery, Inbox, MqttLink
from edge_agent.metrics import EdgeMetrics
from edge_agent.window import WindowStage
from forewarn.contracts import Telemetry, encode
from forewarn.errors import ConfigError
from forewarn.mqtt import apply_connection_settings, tls_context
from forewarn.settings import MqttSettings, load_settings, masked_dump
from models.windowing import WindowSpec
from tests.pki import make_ca as _make_ca
from tests.pki import make_cert as _make_cert

T0 = 1_767_225_600.0
PASSWORDS = {"gw-a": "pw-gateway-a-7f3c", "gw-b": "pw-gateway-b-19ee", "machines-a": "pw-machines-a-c4", "ops": "pw-ops-88d1"}
# One section per MQTT user, as docker/mosquitto/init.sh writes it: each gateway reads its own
# site's machines and writes its own site's predictions and its own status, nothing else.
ACL = """
user gw-a
topic read forewarn/plantA/+/telemetry
topic read forewarn/plantA/+/log
topic write forewarn/plantA/+/prediction
topic readwrite forewarn/gateways/gw-a/status

user gw-b
topic read forewarn/plantB/+/telemetry
topic write forewarn/plantB/+/prediction
topic readwrite forewarn/gateways/gw-b/status

user machines-a
topic write forewarn/plantA/+/telemetry
topic write forewarn/plantA/+/log

user ops
topic read forewarn/#
"""


@dataclass
class SecureBroker:
    """A private Mosquitto: TLS with passwords on ``port``, TLS with passwords and client certificates on ``mtls_port``."""

    dir: Path
    port: int
    mtls_port: int
    process: subprocess.Popen[bytes]

    def file(self, name: str) -> Path:
        return self.dir / name


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    d = tmp_path_factory.mktemp("secure-mosquitto")
    _make_ca(d, "ca")
    _make_ca(d, "rogue-ca")
    _make_cert(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
    _make_cert(d, "gw-a", "ca", "extendedKeyUsage=clientAuth")
    _make_cert(d, "intruder", "rogue-ca", "extendedKeyUsage=clientAuth")
    passwd = d / "passwd"
    for i, (user, password) in enumerate(PASSWORDS.items()):
        cmd = ["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd), user, password]
        subprocess.run(cmd, check=True, capture_output=True)
    passwd.chmod(0o600)
    (d / "acl").write_text(ACL)
    port, mtls_port = free_port(), free_port()
    tls = f"cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\ntls_version tlsv1.2\n"
    (d / "mosquitto.conf").write_text(
        # As root, Mosquitto would drop to user "mosquitto", who cannot read the test's files.
        f"user {getpass.getuser()}\nper_listener_settings false\nallow_anonymous false\n"
        f"password_file {passwd}\nacl_file {d}/acl\npersistence false\n"
        f"listener {port} 127.0.0.1\n{tls}"
        f"listener {mtls_port} 127.0.0.1\n{tls}require_certificate true\n"
    )
    log = (d / "mosquitto.log").open("ab")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen([binary, "-c", str(d / "mosquitto.conf")], stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        wait_for_port("127.0.0.1", mtls_port, 10, process)
        wait_for_port("127.0.0.1", port, 10, process)
        yield SecureBroker(d, port, mtls_port, process)
    finally:
        stop_process_group(process)


def _mqtt(b: SecureBroker, port: int, user: str | None, ca: str = "ca", cert: str | None = None, **kw: object) -> MqttSettings:
    return MqttSettings.model_validate(
        {
            "url": f"mqtts://127.0.0.1:{port}",
            "username": user,
            "password": PASSWORDS.get(user or "") if "password" not in kw else kw["password"],
            "ca_file": b.file(f"{ca}.pem"),
            "cert_file": b.file(f"{cert}.pem") if cert else None,
            "key_file": b.file(f"{cert}.key") if cert else None,
        }
    )


def _connect(settings: MqttSettings, protocol: int = mqtt.MQTTv311, timeout: float = 5.0) -> tuple[mqtt.Client | None, str]:
    """Connect with Forewarn's own connection settings: (a looping client, "connected") or (None, why it failed)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)  # type: ignore[arg-type]
    apply_connection_settings(client, settings)
    outcome: list[str] = []
    client.on_connect = lambda c, u, f, rc, p: outcome.append("connected" if not rc.is_failure else f"refused: {rc}")
    client.on_disconnect = lambda c, u, f, rc, p: outcome.append(f"disconnected: {rc}")
    try:
        client.connect(settings.host, settings.port, keepalive=10)
        deadline = time.monotonic() + timeout
        while not outcome and time.monotonic() < deadline:
            rc = client.loop(0.1)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                outcome.append(f"dropped: {rc}")
    except (ssl.SSLError, OSError) as exc:
        outcome.append(f"tls: {exc}")
    if outcome and outcome[0] == "connected":
        client.loop_start()
        return client, "connected"
    client.disconnect()
    return None, outcome[0] if outcome else "no answer"


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


# ------------------------------------------------------------------------------ who may connect


@pytest.mark.integration
def test_clients_without_valid_credentials_are_refused(broker: SecureBroker) -> None:
    client, outcome = _connect(_mqtt(broker, broker.port, None))
    assert client is None and outcome.startswith("refused"), f"anonymous client: {outcome}"
    client, outcome = _connect(_mqtt(broker, broker.port, "gw-a", password="guessed"))
    assert client is None and outcome.startswith("refused"), f"wrong password: {outcome}"
    # The plain MQTT protocol on a TLS port gets nowhere either.
    plain = mqtt.Client(CallbackAPIVersion.VERSION2)
    with pytest.raises(OSError):
        plain.connect("127.0.0.1", broker.port, keepalive=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if plain.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                raise OSError("the broker dropped a plaintext client")
    # The same credentials over TLS are let in: the refusals above are about the credentials.
    client, outcome = _connect(_mqtt(broker, broker.port, "gw-a"))
    assert client is not None, outcome
    _close(client)


@pytest.mark.integration
def test_a_wrong_certificate_is_refused_either_way(broker: SecureBroker) -> None:
    # The client trusts only another CA: the broker's certificate fails verification.
    client, outcome = _connect(_mqtt(broker, broker.port, "gw-a", ca="rogue-ca"))
    assert client is None and "CERTIFICATE_VERIFY_FAILED" in outcome, outcome
    # The broker requires a client certificate: none, or one from another CA, is refused even with the right password.
    client, outcome = _connect(_mqtt(broker, broker.mtls_port, "gw-a"))
    assert client is None, f"no client certificate: {outcome}"
    client, outcome = _connect(_mqtt(broker, broker.mtls_port, "gw-a", cert="intruder"))
    assert client is None, f"certificate of a rogue CA: {outcome}"
    client, outcome = _connect(_mqtt(broker, broker.mtls_port, "gw-a", cert="gw-a"))
    assert client is not None, outcome
    _close(client)


def test_unreadable_tls_files_are_a_configuration_error_naming_the_file(tmp_path: Path) -> None:
    settings = MqttSettings(url="mqtts://127.0.0.1:8883", ca_file=tmp_path / "missing-ca.pem")
    with pytest.raises(ConfigError, match="missing-ca.pem"):
        tls_context(settings)


# ------------------------------------------------------------------------------ what a gateway may publish


@pytest.mark.integration
def test_a_gateway_cannot_publish_to_another_sites_topics(broker: SecureBroker) -> None:
    ops, outcome = _connect(_mqtt(broker, broker.port, "ops"))
    assert ops is not None, outcome
    seen: list[str] = []
    subscribed: list[int] = []
    ops.on_message = lambda c, u, m: seen.append(m.topic)
    ops.on_subscribe = lambda c, u, mid, rcs, p: subscribed.append(mid)
    ops.subscribe("forewarn/#", qos=1)
    gw, outcome = _connect(_mqtt(broker, broker.port, "gw-a"), protocol=mqtt.MQTTv5)
    assert gw is not None, outcome
    acks: dict[int, int] = {}
    gw.on_publish = lambda c, u, mid, rc, p: acks.__setitem__(mid, rc.value)
    try:
        _until(lambda: bool(subscribed), "the ops subscription")
        denied = ["forewarn/plantB/P-9/prediction", "forewarn/gateways/gw-b/status", "forewarn/plantA/P-1/telemetry"]
        mids = {topic: gw.publish(topic, b"{}", qos=1).mid for topic in denied}
        allowed = gw.publish("forewarn/plantA/P-1/prediction", b"{}", qos=1).mid
        _until(lambda: "forewarn/plantA/P-1/prediction" in seen and allowed in acks, "the allowed prediction")
        # MQTT 5 tells the publisher (PUBACK 0x87 not authorized); the site's subscribers never see it.
        assert {topic: acks.get(mid) for topic, mid in mids.items()} == dict.fromkeys(denied, 0x87)
        assert acks[allowed] == 0
        assert seen == ["forewarn/plantA/P-1/prediction"], "published in order: the denied ones would have come first"
    finally:
        _close(gw)
        _close(ops)


def _until(condition: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# ------------------------------------------------------------------------------ the gateway itself


def _vitals() -> Vitals:
    return Vitals(model_version=None, assets=0, windows_scored=0, outbox_depth=0, uplink=False)


@pytest.mark.integration
def test_the_gateway_connects_over_mutual_tls_with_a_password_from_a_file(
    broker: SecureBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text(PASSWORDS["gw-a"] + "\n")
    settings = EdgeSettings(
        site="plantA",
        state_dir=tmp_path,
        mqtt={
            "url": f"mqtts://127.0.0.1:{broker.mtls_port}",
            "username": "gw-a",
            "ca_file": broker.file("ca.pem"),
            "cert_file": broker.file("gw-a.pem"),
            "key_file": broker.file("gw-a.key"),
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1.0,
        },
        edge={"gateway_id": "gw-a", "mqtt_password_file": secret, "client_id": "gw-a-security-test"},
    )
    assert settings.mqtt.password is not None and settings.mqtt.password.get_secret_value() == PASSWORDS["gw-a"]
    inbox = Inbox(settings.edge.inbox_max_bytes)
    health = Health("gw-a", "plantA", "forewarn/gateways/gw-a/status", 60, _vitals)
    link = MqttLink(settings, inbox, EdgeMetrics(), health.will(), health.birth)
    machines, outcome = _connect(_mqtt(broker, broker.port, "machines-a"))
    ops, outcome_ops = _connect(_mqtt(broker, broker.port, "ops"))
    assert machines is not None and ops is not None, (outcome, outcome_ops)
    statuses: list[bytes] = []
    ops.on_message = lambda c, u, m: statuses.append(bytes(m.payload))
    caplog.set_level(logging.DEBUG)
    link.start()
    try:
        assert link.wait_connected(10), "the gateway connects with its credentials and certificate"
        ops.subscribe("forewarn/gateways/gw-a/status", qos=1)
        telemetry = Telemetry(site="plantA", asset_id="P-1", seq=0, timestamps=[T0, T0 + 1], channels={"temp": [20.0, 21.0]})
        got: list[Delivery] = []
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:  # until the gateway's subscription is in place
            machines.publish("forewarn/plantA/P-1/telemetry", encode(telemetry), qos=1).wait_for_publish(5)
            got = inbox.drain(10)
            if not got:
                time.sleep(0.05)
        assert got and got[0].message == telemetry, "the site's telemetry reaches the gateway through the ACL"
        _until(lambda: bool(statuses), "the gateway's retained status")
        assert json.loads(statuses[0])["state"] == "online"
    finally:
        link.stop(health.will())
        _close(machines)
        _close(ops)
    shown = json.dumps(masked_dump(settings))
    for text in (caplog.text, repr(settings), str(settings), shown):
        assert PASSWORDS["gw-a"] not in text
    assert '"password": "********"' in shown


def test_a_missing_password_file_is_named_without_its_content(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="edge.mqtt_password_file"):
        EdgeSettings(state_dir=tmp_path, edge={"mqtt_password_file": tmp_path / "nope"})
    with pytest.raises(ConfigError, match="must not carry a password") as caught:
        load_settings(EdgeSettings, None, state_dir=tmp_path, mqtt={"url": "mqtts://gw:hunter2@broker:8883"})
    assert "hunter2" not in str(caught.value), "the message the CLI prints does not repeat the password"


# ------------------------------------------------------------------------------ unknown assets


def test_a_gateway_given_its_assets_refuses_the_others_unless_told_to_accept(tmp_path: Path, spec: WindowSpec) -> None:
    assert EdgeSettings(state_dir=tmp_path).edge.unknown_assets == "accept", "no list: any asset is scored"
    listed = EdgeSettings(state_dir=tmp_path, edge={"known_assets": ["P-1"]})
    stage = WindowStage(spec, _policy(listed), EdgeMetrics())
    assert stage.add(Telemetry(site="plantA", asset_id="P-1", seq=0, timestamps=[T0], channels={"temp": [1.0]}))
    with pytest.raises(Rejected) as caught:
        stage.add(Telemetry(site="plantA", asset_id="P-666", seq=0, timestamps=[T0], channels={"temp": [1.0]}))
    assert caught.value.reason == "unknown_asset"
    opened = EdgeSettings(state_dir=tmp_path, edge={"known_assets": ["P-1"], "unknown_assets": "accept"})
    stage = WindowStage(spec, _policy(opened), EdgeMetrics())
    assert stage.add(Telemetry(site="plantA", asset_id="P-666", seq=0, timestamps=[T0], channels={"temp": [1.0]}))
