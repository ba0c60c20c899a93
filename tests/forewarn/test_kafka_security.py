"""Kafka security, against a real broker: strangers and wrong passwords refused, TLS verified, secrets never shown.

The broker is tansu 0.6.0 (the one ``forewarn[demo]`` ships). What it can and cannot prove:

- ``tansu broker --authentication`` requires SASL on every connection and offers
  SCRAM-SHA-256/512 only (PLAIN is refused). Its users cannot be created in this build:
  ``tansu user create`` needs an authenticated connection once ``--authentication`` is on,
  and without it the memory and S3 storage engines keep no user (the only ones compiled
  in). So a SASL login can be proven refused here, never accepted; the accepted path is
  covered by the settings -> client arguments tests below.
- ``--cert`` and ``--key`` conflict in its command line (either alone leaves the listener
  plaintext), so TLS is terminated in front of it by a TLS front (``TlsFront``, Python's
  ``ssl`` with a certificate from a CA made by the test). The handshake, the CA check and
  client certificates are real; the Kafka protocol behind is tansu's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from demo.brokers import TansuBroker, free_port
from edge_agent.config import EdgeSettings
from edge_agent.errors import DeliveryError
from edge_agent.publish import AioKafkaPort
from forewarn.contracts import encode
from forewarn.errors import ConfigError, ServiceUnavailable
from forewarn.kafka import ensure_topics
from forewarn.settings import KafkaSettings, masked_dump
from stream.app import _broker_options
from stream.config import StreamSettings
from tests.pki import make_ca, make_cert

PASSWORD = "kafka-pw-5d21e9"
TIMEOUT_S = 5.0


class SecuredTansu(TansuBroker):
    """tansu with extra command-line flags, advertising the address clients must use (a TLS front's)."""

    def __init__(self, log_file: Path, *flags: str) -> None:
        super().__init__(log_file=log_file)
        self.flags = list(flags)
        self.advertised_port = self.port

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--advertised-listener-url") + 1] = f"tcp://{self.host}:{self.advertised_port}"
        return cmd + self.flags


class TlsFront:
    """A TLS listener that forwards each connection to a plaintext port: TLS in front of tansu."""

    def __init__(self, upstream_port: int, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.port = free_port()
        self.upstream_port = upstream_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        if client_ca is not None:  # mutual TLS: a client must show a certificate this CA signed
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.sessions = 0  # connections whose TLS handshake succeeded
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._loop.set_exception_handler(self._on_error)
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._forward, "127.0.0.1", self.port, ssl=self.context), self._loop
        )
        self._server = started.result(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        """A refused handshake is what some tests want: not an error of the front."""

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, ssl.SSLError):
        writer.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site CA with a broker and a gateway certificate, and a rogue CA with its own broker and gateway."""
    d = tmp_path_factory.mktemp("kafka-pki")
    make_ca(d, "ca")
    make_ca(d, "rogue-ca")
    server = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"
    make_cert(d, "broker", "ca", server)
    make_cert(d, "rogue-broker", "rogue-ca", server)
    make_cert(d, "gw-a", "ca", "extendedKeyUsage=clientAuth")
    make_cert(d, "intruder", "rogue-ca", "extendedKeyUsage=clientAuth")
    return d


@pytest.fixture
def authenticating_tansu(tmp_path: Path) -> Iterator[SecuredTansu]:
    broker = SecuredTansu(tmp_path / "tansu.log", "--authentication")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _tls_front(tmp_path: Path, pki: Path, cert: str, client_ca: bool) -> tuple[SecuredTansu, TlsFront]:
    broker = SecuredTansu(tmp_path / "tansu.log")
    front = TlsFront(broker.port, pki / f"{cert}.pem", pki / f"{cert}.key", pki / "ca.pem" if client_ca else None)
    broker.advertised_port = front.port  # metadata sends clients back through the front
    broker.start()
    front.start()
    return broker, front


def _send(kafka: KafkaSettings, topic: str, value: bytes, key: bytes = b"P-1") -> tuple[list[bool], float]:
    """Send one record with the gateway's publisher; (acknowledged, seconds taken). Raises DeliveryError."""
    port = AioKafkaPort(kafka, [topic], TIMEOUT_S, "gw-a-kafka-security-test")

    async def send() -> list[bool]:
        try:
            return await port.send([(topic, key, value)])
        finally:
            await port.close()

    started = time.monotonic()
    try:
        return asyncio.run(send()), time.monotonic() - started
    except DeliveryError as exc:
        exc.add_note(f"after {time.monotonic() - started:.1f} s")
        raise


def _read_back(kafka: KafkaSettings, topic: str, timeout: float = 15.0) -> list[bytes]:
    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **kafka.client_options())
        await consumer.start()
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + timeout
            while not values and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values += [r.value or b"" for r in records]
        finally:
            await consumer.stop()
        return values

    return asyncio.run(read())


# ------------------------------------------------------------------ refused by an authenticating broker


@pytest.mark.integration
def test_a_client_without_credentials_is_refused_promptly(authenticating_tansu: SecuredTansu, unique: str) -> None:
    kafka = KafkaSettings(bootstrap=authenticating_tansu.bootstrap)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="check kafka.security_protocol"):
        _send(kafka, f"predictions-{unique}", b"x")
    with pytest.raises(ServiceUnavailable, match="a broker that requires TLS or SASL drops clients without"):
        asyncio.run(asyncio.wait_for(ensure_topics(kafka, [f"predictions-{unique}"]), 3 * TIMEOUT_S))
    assert time.monotonic() - started < 4 * TIMEOUT_S, "refused, not left hanging"
    log = (authenticating_tansu.log_file or Path()).read_text(errors="replace")
    assert "NotAuthenticated" in log, "the broker itself refused the unauthenticated requests"


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_wrong_password_is_refused_with_a_clear_error_that_never_shows_it(
    authenticating_tansu: SecuredTansu, tmp_path: Path, unique: str, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")
    settings = EdgeSettings(
        state_dir=tmp_path,
        kafka={
            "bootstrap": authenticating_tansu.bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism,
            "sasl_username": "gw-a",
            "sasl_password_file": secret,
        },
    )
    assert settings.kafka.sasl_password is not None and settings.kafka.sasl_password.get_secret_value() == PASSWORD
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeliveryError) as refused:
        _send(settings.kafka, f"predictions-{unique}", b"x")
    message = str(refused.value)
    assert f"SASL {mechanism} as 'gw-a'" in message and "refused the login" in message, message
    assert "after" in "".join(refused.value.__notes__) and float(refused.value.__notes__[0].split()[1]) < 2 * TIMEOUT_S
    shown = json.dumps(masked_dump(settings))
    for text in (caplog.text, message, repr(settings), str(settings), shown):
        assert PASSWORD not in text
    assert '"sasl_password": "********"' in shown and str(secret) in shown


@pytest.mark.integration
def test_a_mechanism_the_broker_does_not_offer_is_named(authenticating_tansu: SecuredTansu, unique: str) -> None:
    kafka = KafkaSettings(
        bootstrap=authenticating_tansu.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="gw-a",
        sasl_password=PASSWORD,
    )
    with pytest.raises(DeliveryError) as refused:
        _send(kafka, f"predictions-{unique}", b"x")
    assert PASSWORD not in str(refused.value)
    assert "kafka.sasl_mechanism (one the broker offers)" in str(refused.value)
    log = (authenticating_tansu.log_file or Path()).read_text(errors="replace")
    assert "NoSharedMechanism" in log, "tansu offers SCRAM only: it refused PLAIN"


# ------------------------------------------------------------------ TLS


@pytest.mark.integration
def test_the_gateway_produces_over_mutual_tls_and_a_consumer_reads_it_back(pki: Path, tmp_path: Path, unique: str) -> None:
    broker, front = _tls_front(tmp_path, pki, "broker", client_ca=True)
    topic = f"predictions-{unique}"
    try:
        settings = EdgeSettings(
            state_dir=tmp_path,
            kafka={
                "bootstrap": f"127.0.0.1:{front.port}",
                "security_protocol": "SSL",
                "ca_file": pki / "ca.pem",
                "cert_file": pki / "gw-a.pem",
                "key_file": pki / "gw-a.key",
            },
        )
        acked, _ = _send(settings.kafka, topic, b"over-tls")
        assert acked == [True]
        assert _read_back(settings.kafka, topic) == [b"over-tls"]
        sessions = front.sessions
        without_cert = settings.kafka.model_copy(update={"cert_file": None, "key_file": None})
        with pytest.raises(DeliveryError, match="TLS handshake failed"):
            _send(without_cert, topic, b"no-certificate")
        intruder = settings.kafka.model_copy(update={"cert_file": pki / "intruder.pem", "key_file": pki / "intruder.key"})
        with pytest.raises(DeliveryError):
            _send(intruder, topic, b"rogue-certificate")
        assert front.sessions == sessions, "no handshake without a client certificate the site CA signed"
        assert _read_back(settings.kafka, topic) == [b"over-tls"], "nothing else got through"
    finally:
        front.stop()
        broker.stop()


@pytest.mark.integration
def test_a_broker_certificate_not_signed_by_the_configured_ca_is_refused(pki: Path, tmp_path: Path, unique: str) -> None:
    broker, front = _tls_front(tmp_path, pki, "rogue-broker", client_ca=False)
    try:
        kafka = KafkaSettings(bootstrap=f"127.0.0.1:{front.port}", security_protocol="SSL", ca_file=pki / "ca.pem")
        with pytest.raises(DeliveryError, match="kafka.ca_file"):
            _send(kafka, f"predictions-{unique}", b"x")
        trusting = kafka.model_copy(update={"ca_file": pki / "rogue-ca.pem"})
        assert _send(trusting, f"predictions-{unique}", b"x")[0] == [True], "the same broker, its CA configured: accepted"
    finally:
        front.stop()
        broker.stop()


# ------------------------------------------------------------------ settings -> client arguments


def test_sasl_ssl_settings_become_the_same_arguments_for_every_client(pki: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    kafka = KafkaSettings(
        bootstrap="k1:9093,k2:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="stream-1",
        sasl_password_file=secret,
        ca_file=pki / "ca.pem",
    )
    options = kafka.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "stream-1",
        PASSWORD,
    )
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert any(c["subject"] == ((("commonName", "ca"),),) for c in context.get_ca_certs()), "the configured CA"

    faust_options = _broker_options(StreamSettings(state_dir=tmp_path, kafka=kafka))
    assert faust_options["broker"] == "kafka://k1:9093;kafka://k2:9093"
    credentials = faust_options["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("stream-1", PASSWORD)
    assert credentials.ssl_context is not None and credentials.ssl_context.get_ca_certs() == context.get_ca_certs()
    assert PASSWORD not in repr(credentials)


@pytest.mark.parametrize(
    ("protocol", "mechanism", "faust_protocol"),
    [("SASL_PLAINTEXT", "PLAIN", "SASL_PLAINTEXT"), ("SASL_PLAINTEXT", "SCRAM-SHA-256", "SASL_PLAINTEXT"), ("SSL", None, "SSL")],
)
def test_the_stream_worker_gets_each_protocol_through_faust_broker_credentials(
    tmp_path: Path, protocol: str, mechanism: str | None, faust_protocol: str
) -> None:
    sasl = {"sasl_mechanism": mechanism, "sasl_username": "stream-1", "sasl_password": PASSWORD} if mechanism else {}
    kafka = KafkaSettings(bootstrap="k1:9092", security_protocol=protocol, **sasl)
    credentials = _broker_options(StreamSettings(state_dir=tmp_path, kafka=kafka))["broker_credentials"]
    assert credentials.protocol.value == faust_protocol
    if mechanism:
        assert credentials.mechanism.value == mechanism and credentials.ssl_context is None
    assert kafka.client_options()["security_protocol"] == protocol
    assert "broker_credentials" not in _broker_options(StreamSettings(state_dir=tmp_path, kafka={"bootstrap": "k1:9092"}))


def test_incoherent_kafka_security_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs kafka.sasl_mechanism and kafka.sasl_username"):
        KafkaSettings(security_protocol="SASL_SSL")
    with pytest.raises(ValidationError, match="use SASL_SSL"):
        KafkaSettings(sasl_mechanism="SCRAM-SHA-256", sasl_username="gw")
    with pytest.raises(ValidationError, match="kafka.key_file is set without kafka.cert_file"):
        KafkaSettings(security_protocol="SSL", key_file=tmp_path / "k")
    with pytest.raises(ValidationError, match=r"kafka.sasl_password_file: cannot read .*nope"):
        KafkaSettings(
            security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="gw", sasl_password_file=tmp_path / "nope"
        )
    no_password = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="gw")
    with pytest.raises(ConfigError, match="FOREWARN_KAFKA_SASL_PASSWORD"):
        no_password.client_options()
    missing_ca = KafkaSettings(security_protocol="SSL", ca_file=tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match=r"cannot load the Kafka TLS files \(.*ca\.pem\)"):
        missing_ca.client_options()
    with pytest.raises(ConfigError, match="ca.pem"):
        AioKafkaPort(missing_ca, ["t"], 1.0, "gw")  # the gateway stops at start, naming the file


# ------------------------------------------------------------------ the stream worker (Faust) over mutual TLS


@pytest.mark.integration
def test_the_stream_worker_consumes_predictions_over_mutual_tls(pki: Path, tmp_path: Path, mqtt_url: str) -> None:
    from stream.synthetic import prediction
    from tests.stream.conftest import RunningWorker

    broker, front = _tls_front(tmp_path, pki, "broker", client_ca=True)
    worker = RunningWorker(f"127.0.0.1:{front.port}", tmp_path, mqtt_url)
    worker.env |= {
        "FOREWARN_KAFKA_SECURITY_PROTOCOL": "SSL",
        "FOREWARN_KAFKA_CA_FILE": str(pki / "ca.pem"),
        "FOREWARN_KAFKA_CERT_FILE": str(pki / "gw-a.pem"),
        "FOREWARN_KAFKA_KEY_FILE": str(pki / "gw-a.key"),
    }
    kafka = KafkaSettings(
        bootstrap=worker.bootstrap,
        security_protocol="SSL",
        ca_file=pki / "ca.pem",
        cert_file=pki / "gw-a.pem",
        key_file=pki / "gw-a.key",
    )
    try:
        worker.start()  # Faust joins its group and gets partitions through the TLS front
        start = time.time() - 200
        for i in range(8):  # two healthy windows, then a fault: one alert
            p = prediction("tls-1", start + 10 * i, "bearing_outer_race" if i >= 2 else "normal", 0.93)
            assert _send(kafka, worker.predictions, encode(p), key=b"tls-1")[0] == [True]
        (alert,) = worker.wait_for(lambda: worker.alerts_of("tls-1"), 30, "the alert the worker folded")
        assert alert["fault"] == "bearing_outer_race"
    finally:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop()
        front.stop()
        broker.stop()


def test_a_login_without_tls_is_warned_about_once_per_client(caplog: pytest.LogCaptureFixture) -> None:
    clear = KafkaSettings(
        bootstrap="k1:9092",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="gw",
        sasl_password=PASSWORD,
    )
    caplog.set_level(logging.WARNING)
    AioKafkaPort(clear, ["t"], 1.0, "gw")
    assert "the password crosses the network in clear; use SASL_SSL" in caplog.text
    caplog.clear()
    AioKafkaPort(clear.model_copy(update={"security_protocol": "SASL_SSL"}), ["t"], 1.0, "gw")
    assert caplog.text == "", "SASL_SSL: nothing to warn about"
    AioKafkaPort(KafkaSettings(bootstrap="k1:9092", ca_file=Path("/etc/ca.pem")), ["t"], 1.0, "gw")
    assert "TLS is not used" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.integration
def test_the_stream_worker_stops_with_the_reason_when_its_password_is_wrong(
    authenticating_tansu: SecuredTansu, tmp_path: Path
) -> None:
    env = dict(
        os.environ,
        FOREWARN_KAFKA_BOOTSTRAP=authenticating_tansu.bootstrap,
        FOREWARN_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        FOREWARN_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        FOREWARN_KAFKA_SASL_USERNAME="stream-1",
        FOREWARN_KAFKA_SASL_PASSWORD=PASSWORD,
        FOREWARN_STATE_DIR=str(tmp_path),
        FOREWARN_STREAM_WEB_PORT=str(free_port()),
    )
    done = subprocess.run(
        [sys.executable, "-m", "forewarn.cli", "stream", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails here
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "SASL SCRAM-SHA-512 as 'stream-1') refused the login" in output, output
    assert PASSWORD not in output
