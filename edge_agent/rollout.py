"""Model rollout: signed bundles from the site's bundle topic, self-tested, swapped between windows, N-1 kept.

    `forewarn model publish` --> MQTT forewarn/models/<site>/bundle (retained)
        --RolloutLink--> events --Rollout.tick (event loop, between two pipeline steps)-->
            signature and site (models.signing.open_package)
            --worker thread--> unpack into bundles/<version>/, every sha256, load, self-test
            --between two steps--> Scorer.swap; the replaced bundle stays loaded as N-1
    MQTT forewarn/models/<site>/command {"action": "rollback", "signature": ...} --> verified --> swap back to N-1

Only the event loop swaps, and only between two pipeline steps, so no batch is in flight: each
window is scored by exactly one bundle. A refused package (bad signature, another site, a file
whose sha256 differs, a failed self-test) is counted, logged and reported in the status's
``rollout`` field, and its files are never loaded. Scoring that fails on a rolled-out bundle
rolls back to N-1 and scores the same batch again. ``bundles/rollout.json`` remembers the active
and previous bundles, so a restart runs what ran before it.

The self-test scores the windows the gateway kept (the last ``selftest_windows``) with the new
bundle: it must return one finite output per window, and, with at least
``min_selftest_windows`` kept, its verdicts may differ from the running bundle's on at most
``max_flip_share`` of them. A new model is expected to change some verdicts; one that changes a
quarter of them on the same plant minutes apart is far likelier broken (wrong normalisation,
labels out of order) than better, and the old model keeps running while someone looks.
A bundle that cuts windows differently cannot be compared on the kept windows and is refused:
roll such a model out with ``edge.model`` and a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import queue
import shutil
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import EdgeSettings
from edge_agent.errors import ModelError
from edge_agent.infer import Scorer
from edge_agent.metrics import EdgeMetrics
from forewarn.contracts import ModelCommand, decode
from forewarn.errors import ContractError
from forewarn.mqtt import apply_connection_settings
from models.errors import BundleError
from models.signing import PackageError, Statement, load_public_key, open_package, unpack, verify_command
from models.windowing import Window

if TYPE_CHECKING:
    from models.runtime import Bundle, Predictor

log = logging.getLogger(__name__)

STATE_FILE = "rollout.json"
Loaded = tuple["Bundle", "Predictor"]


@dataclass(frozen=True)
class Event:
    """One message from the rollout topics, as the paho thread received it."""

    topic: str
    payload: bytes
    retain: bool


class RolloutLink:
    """Its own MQTT connection for the rollout topics (clean session: the retained bundle comes with each subscribe).

    A package of a megabyte or more never passes through the telemetry inbox, and the
    callback only enqueues.
    """

    def __init__(self, settings: EdgeSettings) -> None:
        self.settings = settings
        self.bundle_topic = settings.topics.mqtt_model_bundle.format(site=settings.site)
        self.command_topic = settings.topics.mqtt_model_command.format(site=settings.site)
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{settings.client_id()}-rollout", clean_session=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def start(self) -> None:
        mq = self.settings.mqtt
        apply_connection_settings(self.client, mq)
        self.client.connect_async(mq.host, mq.port, keepalive=mq.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def drain(self) -> list[Event]:
        events = []
        with contextlib.suppress(queue.Empty):
            while True:
                events.append(self.events.get_nowait())
        return events

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode, props: Properties | None
    ) -> None:
        if not reason.is_failure:
            client.subscribe([(self.bundle_topic, 1), (self.command_topic, 1)])

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.events.put(Event(message.topic, bytes(message.payload), bool(message.retain)))


@dataclass
class RolloutState:
    """What survives a restart: the active and previous bundle directories and the newest package handled."""

    active: str | None = None
    """A rolled-out bundle directory; None: the configured bundle (edge.model)."""
    previous: str | None = None
    newest_published_at: float = 0.0
    """Publish time of the newest signed package handled: an older one is a replay, refused."""
    outcome: str | None = None
    history: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> RolloutState:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError) as exc:
            log.warning("rollout state %s unreadable (%s): starting from the configured bundle", path, exc)
            return cls()

    def save(self, path: Path) -> None:
        """Write atomically (temporary file, fsync, rename): a power cut leaves the old state or the new."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w") as fh:
            json.dump(asdict(self), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


@dataclass(frozen=True)
class Candidate:
    """A verified, loaded and self-tested bundle waiting for the swap."""

    statement: Statement
    path: Path
    loaded: Loaded
    summary: str


def self_test(active: Loaded, candidate: Loaded, windows: Sequence[Window], min_windows: int, max_flip_share: float) -> str:
    """Score the kept windows with the candidate; returns a one-line summary, raises PackageError("selftest")."""
    (old_bundle, old_predictor), (bundle, predictor) = active, candidate
    if bundle.spec != old_bundle.spec:
        raise PackageError("selftest", "the bundle cuts windows differently from the running one (set edge.model and restart)")
    if not windows:
        return "self-test: no recent windows yet, loaded only"
    try:
        outputs = predictor.predict(windows)
    except Exception as exc:  # ONNX Runtime raises its own types
        raise PackageError("selftest", f"scoring the recent windows failed: {type(exc).__name__}: {exc}") from exc
    if len(outputs) != len(windows):
        raise PackageError("selftest", f"{len(outputs)} outputs for {len(windows)} windows")
    for o in outputs:
        numbers = [*o.probabilities.values(), o.anomaly_score, o.confidence, o.ttf_hours or 0.0]
        if not all(math.isfinite(x) for x in numbers):
            raise PackageError("selftest", f"a non-finite output on a recent window (fault {o.fault})")
    n = len(windows)
    if n < min_windows:
        return f"self-test: {n} windows scored, finite (the flip check needs {min_windows})"
    try:
        before = old_predictor.predict(windows)
    except Exception as exc:  # the running bundle failed: nothing to compare with, so no verdict on the new one
        raise PackageError("selftest", f"the running bundle failed on the recent windows: {type(exc).__name__}: {exc}") from exc
    flips = sum(a.fault != b.fault for a, b in zip(before, outputs, strict=True))
    if flips / n > max_flip_share:
        raise PackageError(
            "selftest", f"verdicts differ from the running bundle's on {flips} of {n} recent windows "
            f"({flips / n:.0%}, over rollout.max_flip_share {max_flip_share:.0%})"
        )  # fmt: skip
    return f"self-test: {n} windows, {flips / n:.1%} of verdicts changed"


class Rollout:
    """The gateway's side of a rollout; the daemon calls ``tick`` between pipeline steps."""

    def __init__(self, settings: EdgeSettings, scorer: Scorer, metrics: EdgeMetrics) -> None:
        rollout = settings.rollout
        assert rollout.public_key_file is not None, "rollout is on only with a public key"
        try:
            self.public = load_public_key(rollout.public_key_file)
        except BundleError as exc:
            raise ModelError(f"rollout.public_key_file: {exc}") from exc
        self.settings = settings
        self.scorer = scorer
        self.metrics = metrics
        self.dir = settings.bundles_dir()
        self.state_file = self.dir / STATE_FILE
        self.state = RolloutState.load(self.state_file)
        self.recent: deque[Window] = deque(maxlen=rollout.selftest_windows)
        self.link = RolloutLink(settings)
        self.previous: tuple[Path, Loaded] | None = None
        self.changed = False
        """An outcome the retained status should say at once (the daemon clears it)."""
        self._task: asyncio.Future[Candidate] | None = None
        self._pending: bytes | None = None

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> None:
        """Load the remembered active bundle (else the configured one) and keep N-1 loaded; blocking."""
        if self.state.active is None:
            self.scorer.load()
        else:
            configured, self.scorer.path = self.scorer.path, Path(self.state.active)
            try:
                self.scorer.load()
            except ModelError as exc:
                log.error("the rolled-out bundle %s cannot be loaded (%s): running the configured one", self.state.active, exc)
                self.scorer.path, self.state.active, self.state.previous = configured, None, None
                self.state.outcome = f"active bundle unloadable at start, back to the configured one: {exc}"[:1000]
                self._save()
                self.scorer.load()
        if self.state.previous is not None:
            try:
                self.previous = Path(self.state.previous), self.scorer.open(Path(self.state.previous))
            except ModelError as exc:
                log.warning("the previous bundle %s cannot be loaded (%s): no rollback possible", self.state.previous, exc)
                self.state.previous = None

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        self.link.stop()

    @property
    def previous_version(self) -> str | None:
        return None if self.previous is None else str(self.previous[1][0].version)

    def keep(self, windows: Sequence[Window]) -> None:
        """Remember scored windows for the next self-test."""
        self.recent.extend(windows)

    # ------------------------------------------------------------------ the loop's side

    def tick(self) -> None:
        """Handle what arrived, start a self-test, swap in a finished one (between two pipeline steps)."""
        for event in self.link.drain():
            if event.topic == self.link.command_topic:
                self._command(event)
            elif event.payload:  # an empty retained payload clears the topic: nothing to install
                self._pending = event.payload  # a newer package replaces one not yet started
        if self._task is None and self._pending is not None:
            payload, self._pending = self._pending, None
            self._receive(payload)
        if self._task is not None and self._task.done():
            task, self._task = self._task, None
            try:
                self._install(task.result())
            except PackageError as exc:
                self._refuse(exc)
            except ModelError as exc:
                self._refuse(PackageError("load_failed", str(exc)))

    def rollback(self, why: str) -> bool:
        """Swap N-1 back in; False (and said so) when none is kept."""
        if self.previous is None:
            self._outcome(f"rollback ({why}) asked, but no previous bundle is kept", logging.WARNING)
            return False
        path, loaded = self.previous
        was = self.scorer.version
        replaced, _ = self.scorer.swap(path, loaded)
        self.previous = None
        self._discard(replaced)
        self.state.active = str(path) if path.parent == self.dir else None
        self.state.previous = None
        self.metrics.model_rollouts.labels("rolled_back", "").inc()
        self._outcome(f"rolled back from {was} to {self.scorer.version}: {why}", logging.WARNING)
        return True

    # ------------------------------------------------------------------ helpers

    def _receive(self, payload: bytes) -> None:
        """Check the signature here (cheap); unpack, verify and self-test in a worker thread."""
        try:
            statement = open_package(payload, self.public, self.settings.site, self.settings.rollout.max_bundle_bytes)
        except PackageError as exc:
            self._refuse(exc)
            return
        newest = self.state.newest_published_at
        if statement.published_at == newest or statement.version == self.scorer.version:
            return  # the retained copy again (reconnect, restart), or what already runs
        if statement.published_at < newest:
            self._refuse(PackageError("stale", f"bundle {statement.version} was published before the newest one handled"))
            return
        self.state.newest_published_at = statement.published_at
        self._save()
        log.info("signed bundle %s received for site %s: verifying and self-testing", statement.version, statement.site)
        windows, active = list(self.recent), self.scorer.loaded
        self._task = asyncio.ensure_future(asyncio.to_thread(self._prepare, payload, statement, active, windows))

    def _prepare(self, payload: bytes, statement: Statement, active: Loaded, windows: list[Window]) -> Candidate:
        """Unpack into bundles/<version>/, verify every sha256, load, self-test (worker thread)."""
        rollout = self.settings.rollout
        incoming = self.dir / ".incoming"
        shutil.rmtree(incoming, ignore_errors=True)
        try:
            unpack(payload, statement, incoming, rollout.max_bundle_bytes)
            final = self.dir / statement.version
            kept = self.previous[0] if self.previous is not None else None
            if final.exists() and final != kept:
                shutil.rmtree(final)
            if not final.exists():
                os.replace(incoming, final)
            try:
                loaded = self.scorer.open(final)
                summary = self_test(active, loaded, windows, rollout.min_selftest_windows, rollout.max_flip_share)
            except (PackageError, ModelError):
                if final != kept:
                    shutil.rmtree(final, ignore_errors=True)
                raise
            return Candidate(statement, final, loaded, summary)
        except OSError as exc:  # a full or read-only disk: refuse this bundle, keep scoring
            raise PackageError("io_error", f"cannot unpack bundle {statement.version} into {self.dir}: {exc}") from exc
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    def _install(self, candidate: Candidate) -> None:
        replaced, loaded = self.scorer.swap(candidate.path, candidate.loaded)
        if self.previous is not None and self.previous[0] != candidate.path:
            self._discard(self.previous[0])
        self.previous = replaced, loaded
        self.state.active, self.state.previous = str(candidate.path), str(replaced)
        self.metrics.model_rollouts.labels("installed", "").inc()
        self._outcome(f"installed {candidate.statement.version}, previous {loaded[0].version} kept ({candidate.summary})")

    def _refuse(self, exc: PackageError) -> None:
        self.metrics.model_rollouts.labels("refused", exc.reason).inc()
        self._outcome(f"refused ({exc.reason}), still running {self.scorer.version}: {exc.detail}", logging.WARNING)

    def _command(self, event: Event) -> None:
        if event.retain:
            log.warning("a retained model command on %s is ignored: commands must not replay on a restart", event.topic)
            return
        try:
            command = decode(event.payload, ModelCommand)
        except ContractError as exc:
            log.warning("model command on %s refused: %s", event.topic, exc)
            return
        if command.gateway_id is not None and command.gateway_id != self.settings.edge.gateway_id:
            return
        try:
            verify_command(command, self.settings.site, self.public)
        except PackageError as exc:
            self.metrics.model_rollouts.labels("command_refused", exc.reason).inc()
            self._outcome(
                f"rollback command refused ({exc.reason}), still running {self.scorer.version}: {exc.detail}", logging.WARNING
            )
            return
        self.rollback(f"commanded by {command.by} ({command.id})")

    def _discard(self, path: Path) -> None:
        """Delete a bundle directory of ours that nothing uses any more (never the configured bundle)."""
        if path.parent == self.dir and path != self.scorer.path:
            shutil.rmtree(path, ignore_errors=True)

    def _save(self) -> None:
        """Remember the state; an unwritable state dir costs the memory across a restart, never the scoring."""
        try:
            self.state.save(self.state_file)
        except OSError as exc:
            log.error("cannot write %s (%s): a restart would not remember this rollout", self.state_file, exc)

    def _outcome(self, text: str, level: int = logging.INFO) -> None:
        log.log(level, "model rollout: %s", text)
        self.state.outcome = text[:1000]
        self.state.history = [*self.state.history, self.state.outcome][-20:]
        self._save()
        self.changed = True
