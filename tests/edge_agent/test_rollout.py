"""A bundle published with `forewarn model publish` reaches a running gateway, which self-tests it, swaps it between
windows and reports it; a foreign or tampered bundle is refused; a rollback command and a restart behave."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.cli import main
from forewarn.contracts import FaultPrediction, GatewayStatus, ModelCommand, decode, encode
from models.bundle import write_manifest
from models.runtime import default_bundle_path
from models.signing import keygen, load_private_key, pack, sign_command
from models.windowing import WindowSpec
from tests.edge_agent.streams import Agent, Publisher, expected_ids, plant_stream

pytestmark = pytest.mark.integration

DEFAULT_VERSION = json.loads((default_bundle_path() / "manifest.json").read_text())["version"]


class Watch:
    """The gateway's last retained status, and every prediction it published with the version that made it."""

    def __init__(self, url: str, site: str, gateway: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.status_topic = f"forewarn/gateways/{gateway}/status"
        self.versions: dict[str, str] = {}
        self.published: Counter[str] = Counter()
        self._status: bytes = b""
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.subscribe([(f"forewarn/{site}/+/prediction", 1), (self.status_topic, 1)])
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            if message.topic == self.status_topic:
                self._status = bytes(message.payload)
            else:
                p = decode(bytes(message.payload), FaultPrediction)
                self.versions[p.id] = p.model_version
                self.published[p.id] += 1

    def status(self) -> GatewayStatus | None:
        with self._lock:
            return decode(self._status, GatewayStatus) if self._status else None

    def rollout(self) -> str:
        s = self.status()
        return (s.rollout if s is not None else None) or ""

    def online_with(self, version: str) -> bool:
        s = self.status()
        return s is not None and s.state == "online" and s.model_version == version

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return keygen(tmp_path / "keys")


@pytest.fixture(scope="module")
def new_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The shipped model with a release note in its config: the same weights, a genuinely new content version."""
    path = Path(shutil.copytree(default_bundle_path(), tmp_path_factory.mktemp("new") / "bundle"))
    config = json.loads((path / "config.json").read_text())
    config["release_note"] = "rollout test"
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    version = str(write_manifest(path)["version"])
    assert version != DEFAULT_VERSION
    return path, version


@pytest.fixture
def site_agent(tmp_path: Path, mqtt_url: str, unique: str, keys: tuple[Path, Path]) -> Iterator[Agent]:
    """An agent with rollout on; afterwards its retained bundle and status are removed from the shared broker."""
    agent = Agent(tmp_path / "state", mqtt_url, "", unique)
    agent.env["FOREWARN_ROLLOUT_PUBLIC_KEY_FILE"] = str(keys[1])
    yield agent
    agent.close()
    publisher = Publisher(mqtt_url)
    publisher.client.publish(f"forewarn/models/{agent.site}/bundle", b"", qos=1, retain=True).wait_for_publish(5)
    for gateway in (agent.gateway, f"{agent.gateway}l"):
        publisher.client.publish(f"forewarn/gateways/{gateway}/status", b"", qos=1, retain=True).wait_for_publish(5)
        host, port = mqtt_url.removeprefix("mqtt://").split(":")
        session = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"forewarn-edge-{gateway}", clean_session=True)
        session.connect(host, int(port))  # a clean connect ends the agent's persistent session on the shared broker
        session.disconnect()
    publisher.close()


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_published_bundle_is_installed_rolled_back_on_command_and_kept_through_a_restart(
    mqtt_url: str, spec: WindowSpec, site_agent: Agent, keys: tuple[Path, Path], new_bundle: tuple[Path, str]
) -> None:
    agent, (bundle, version) = site_agent, new_bundle
    messages = plant_stream(spec, agent.site, ["a1", "a2", "a3"], minutes=60)
    thirds = [messages[: len(messages) // 3], messages[: 2 * len(messages) // 3], messages]
    before, during = (expected_ids(m, spec, agent.gateway) for m in thirds[:2])
    after = expected_ids(messages, spec, agent.gateway) - during  # the windows in progress survive the restart
    watch, publisher = Watch(mqtt_url, agent.site, agent.gateway), Publisher(mqtt_url)
    try:
        agent.start()
        publisher.send(thirds[0])
        agent.wait(lambda: set(watch.versions) == before, 30, "the first windows scored by the shipped bundle")
        assert len(before) >= 20 and set(watch.versions.values()) == {DEFAULT_VERSION}

        out = _cli("model", "publish", str(bundle), "--site", agent.site, "--key", str(keys[0]), "--mqtt", mqtt_url)
        assert version in out and "retained" in out
        agent.wait(lambda: watch.online_with(version), 30, "the new bundle reported active")
        status = watch.status()
        assert status is not None and status.previous_model_version == DEFAULT_VERSION
        assert status.rollout is not None and f"self-test: {len(before)} windows, 0.0%" in status.rollout
        assert (agent.state / "edge" / "bundles" / version / "model.onnx").is_file()

        late = Agent(agent.state.parent / "late", mqtt_url, "", f"{agent.gateway[1:]}l")  # the site's other gateway: off till now
        late.env.update(FOREWARN_SITE=agent.site, FOREWARN_ROLLOUT_PUBLIC_KEY_FILE=str(keys[1]))
        late_watch = Watch(mqtt_url, agent.site, late.gateway)
        try:
            late.start()
            late.wait(lambda: late_watch.online_with(version), 30, "a gateway started later gets the retained bundle")
        finally:
            late.close()
            late_watch.close()

        publisher.send(thirds[1][len(thirds[0]) :])
        agent.wait(lambda: set(watch.versions) == during, 30, "the next windows scored")
        assert {watch.versions[i] for i in during - before} == {version}, "every later window names the new bundle"
        assert max(watch.published.values()) == 1, "no window scored twice across the swap"

        assert agent.stop() == 0
        agent.start()
        agent.wait(lambda: watch.online_with(version), 30, "the new bundle still active after a restart")
        status = watch.status()
        assert status is not None and status.previous_model_version == DEFAULT_VERSION

        _cli("model", "rollback", "--site", agent.site, "--key", str(keys[0]), "--mqtt", mqtt_url)
        agent.wait(lambda: watch.online_with(DEFAULT_VERSION), 30, "the previous bundle restored")
        status = watch.status()
        assert status is not None and status.previous_model_version is None
        assert status.rollout is not None and status.rollout.startswith(f"rolled back from {version} to {DEFAULT_VERSION}")
        assert agent.metric("forewarn_edge_model_rollouts_total", 'outcome="rolled_back",reason=""') == 1

        publisher.send(thirds[2][len(thirds[1]) :])
        agent.wait(lambda: set(watch.versions) == during | after, 30, "the last windows scored")
        assert after and {watch.versions[i] for i in after} == {DEFAULT_VERSION}
        assert not (agent.state / "edge" / "bundles" / version).exists(), "the rolled-back bundle is deleted"
    finally:
        publisher.close()
        watch.close()


def _tampered(payload: bytes) -> bytes:
    """The same signed header over a tar whose labels.json differs from the manifest."""
    head, _, body = payload.partition(b"\n")
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar, tarfile.open(fileobj=out, mode="w:gz") as new:
        for member in tar:
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "labels.json":
                data = data.replace(b"normal", b"nermal")
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return head + b"\n" + out.getvalue()


def test_a_bundle_signed_by_another_key_or_tampered_with_is_refused_and_the_running_one_stays(
    mqtt_url: str, tmp_path: Path, site_agent: Agent, new_bundle: tuple[Path, str], keys: tuple[Path, Path]
) -> None:
    agent, (bundle, version) = site_agent, new_bundle
    other, _ = keygen(tmp_path / "other")
    watch, publisher = Watch(mqtt_url, agent.site, agent.gateway), Publisher(mqtt_url)
    topic = f"forewarn/models/{agent.site}/bundle"

    def refused(reason: str) -> bool:
        return agent.metric("forewarn_edge_model_rollouts_total", f'outcome="refused",reason="{reason}"') == 1

    try:
        agent.start()
        agent.wait(lambda: watch.online_with(DEFAULT_VERSION), 30, "the shipped bundle active")

        _cli("model", "publish", str(bundle), "--site", agent.site, "--key", str(other), "--mqtt", mqtt_url)
        agent.wait(lambda: refused("bad_signature"), 30, "a foreign key refused")
        agent.wait(lambda: "bad_signature" in watch.rollout(), 10, "the refusal in the status")
        assert watch.online_with(DEFAULT_VERSION)

        payload, _ = pack(bundle, agent.site, load_private_key(keys[0]))
        publisher.client.publish(topic, _tampered(payload), qos=1, retain=True).wait_for_publish(10)
        agent.wait(lambda: refused("file_mismatch"), 30, "a tampered file refused")
        status = watch.status()
        assert status is not None and status.model_version == DEFAULT_VERSION and status.previous_model_version is None
        assert status.rollout is not None and "labels.json" in status.rollout
        assert not (agent.state / "edge" / "bundles" / version).exists(), "a refused bundle leaves no files to load"
        assert agent.metric("forewarn_edge_model_rollouts_total", 'outcome="installed",reason=""') is None

        command_topic = f"forewarn/models/{agent.site}/command"
        unsigned = ModelCommand(id="c1", action="rollback", ts=time.time())
        forged = sign_command(ModelCommand(id="c2", action="rollback", ts=time.time()), agent.site, load_private_key(other))
        for command in (unsigned, forged):
            publisher.client.publish(command_topic, encode(command), qos=1).wait_for_publish(10)
        for reason in ("unsigned", "bad_signature"):
            agent.wait(
                lambda r=reason: (
                    agent.metric("forewarn_edge_model_rollouts_total", f'outcome="command_refused",reason="{r}"') == 1
                ),
                30,
                f"a rollback command refused: {reason}",
            )
        assert "rollback command refused" in watch.rollout()
    finally:
        publisher.close()
        watch.close()
