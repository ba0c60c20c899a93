"""A simulated plant: every asset's telemetry and log lines in global time order, and the ground truth.

``Plant(scenario, seed, start)`` materialises the scenario (explicit and generated assets,
the fault schedule), draws each asset's physical constants, and then produces the run
batch by batch: operating point -> fault severities -> physics -> sensor artefacts ->
telemetry messages (+ raw bursts), and the log generator reads the same batch. One batch
is ``batch_s`` of source time for every asset at once, vectorised with numpy, so a plant
of hundreds of assets costs about as many numpy calls as a plant of one.

The same ``Plant`` serves live publishing (``simulators.publish``) and dataset writing
(``simulators.dataset_out``): both just consume ``messages``. Everything is determined by
(scenario, seed, start): the same three give the same messages, byte for byte.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np

from forewarn.contracts import ChannelInfo, DatasetMeta, FaultEpisode, LogRecord, Nameplate, Telemetry
from forewarn.dataset import message_time
from simulators.assets import ASSET_TYPES, draw_params
from simulators.channels import BY_NAME, CHANNELS, INDEX, WAVEFORM_CHANNEL
from simulators.faults import Episodes
from simulators.layout import materialise
from simulators.logplan import LogGenerator
from simulators.logrules import ChunkView
from simulators.operation import Operation
from simulators.physics import Components, Physics
from simulators.scenario import Scenario
from simulators.sensors import Sensors
from simulators.textual import Maintenance, plan_announcements
from simulators.waveform import burst

Message = Telemetry | LogRecord
_SCALE = 10.0 ** np.array([c.decimals for c in CHANNELS], dtype=np.float64)[None, :, None]  # (1, C, 1)


class Plant:
    """One run of a scenario. Iterate ``messages(duration_s)`` (repeatedly, to go on); ask ``episodes()`` for the truth."""

    def __init__(self, scenario: Scenario, seed: int, start: float | None = None) -> None:
        self.scenario = scenario
        self.seed = int(seed)
        if start is None:
            start = scenario.start.timestamp() if scenario.start is not None else time.time()
        self.start = round(float(start), 3)
        self.now = self.start
        self.layout = materialise(scenario, self.seed)
        assets = self.layout.assets
        self.asset_ids = [a.id for a in assets]
        self.asset_types = [a.type for a in assets]
        site_ids = [s.id for s in self.layout.sites]
        self.site_of = [a.site or site_ids[0] for a in assets]
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence([self.seed, 0xF04E]).spawn(7)]
        r_params, r_op, r_phys, r_sens, r_logs, r_wave, r_misc = streams
        self.params = draw_params(
            self.asset_types, [a.vfd for a in assets], [a.load for a in assets], [a.rated_rpm for a in assets], r_params
        )
        self.rng_wave, self.rng_misc = r_wave, r_misc
        index = {a: i for i, a in enumerate(self.asset_ids)}
        self.episode_table = Episodes.build(self.layout.faults, index, self.start, scenario.logs.fault_log_probability)
        self.operation = Operation(assets, self.layout.sites, self.params, r_op, self.start)
        for e in range(len(self.episode_table)):
            if math.isfinite(self.episode_table.ttf[e]):
                self.operation.schedule_trip(
                    int(self.episode_table.asset[e]),
                    float(self.episode_table.failure[e]),
                    float(self.episode_table.repair[e]),
                    self.layout.faults[e].fault,
                )
        self.physics = Physics(self.params, r_phys)
        self.channel_index = [np.array([INDEX[c] for c in ASSET_TYPES[t].channels]) for t in self.asset_types]
        self.channel_names = [ASSET_TYPES[t].channels for t in self.asset_types]
        present = np.zeros((len(assets), len(CHANNELS)), dtype=bool)
        for a, idx in enumerate(self.channel_index):
            present[a, idx] = True
        self.sensors = Sensors(present, scenario.noise, r_sens)
        sites = {s.id: s for s in self.layout.sites}
        self._site_index = np.array([site_ids.index(s) for s in self.site_of])
        self._ambient_mean = np.array([sites[s].ambient_c for s in site_ids])
        self._ambient_swing = np.array([sites[s].ambient_swing_c for s in site_ids])
        self._utc_offset = np.array([sites[s].utc_offset_h for s in site_ids])
        self._weather = r_misc.normal(0.0, 2.0, len(site_ids))
        asset_ambient = self._ambient_mean[self._site_index] + self.params.ambient_offset
        # Text that carries weight (off by default): its own random stream, so other scenarios keep their bytes.
        notes: list[tuple[float, int, str]] = []
        self.maintenance: Maintenance | None = None
        if scenario.logs.textual:
            r_text = np.random.default_rng(np.random.SeedSequence([self.seed, 0xF04E, 0x7E47]))
            notes = plan_announcements(self.episode_table, scenario.logs, r_text)
            if scenario.logs.maintenance_per_day > 0:
                self.maintenance = Maintenance(self.asset_types, present, scenario.logs.maintenance_per_day, r_text, self.start)
        self.notes = notes  # the announcing notes: (time, asset index, fault)
        self.logs = LogGenerator(
            assets, self.site_of, self.params, self.episode_table, scenario.logs, r_logs, self.start, asset_ambient, notes
        )
        self.dt = 1.0 / scenario.sample_rate_hz
        self.samples_per_batch = max(1, round(scenario.batch_s * scenario.sample_rate_hz))
        self.phase = r_misc.uniform(0.0, self.dt, len(assets))
        self.seq = np.zeros(len(assets), dtype=np.int64)
        self.waveform = np.array([a.waveform for a in assets], dtype=bool)
        self.next_waveform = self.start + r_misc.uniform(0.0, scenario.waveform_every_s, len(assets))
        self._later: list[tuple[float, int, LogRecord]] = []
        self._later_n = 0

    def __len__(self) -> int:
        return len(self.asset_ids)

    # ------------------------------------------------------------------ the run

    def messages(self, duration_s: float) -> Iterator[Message]:
        """Telemetry batches and log lines of the next ``duration_s`` seconds, in global source-time order.

        ``math.inf`` runs forever (live publishing). Calling again continues where the last call stopped.
        """
        end = self.now + duration_s
        while True:
            left = end - self.now
            n = self.samples_per_batch if math.isinf(left) else min(self.samples_per_batch, math.floor(left / self.dt + 1e-9))
            if n < 1:
                return
            yield from self._batch(n)

    def _batch(self, n: int) -> list[Message]:
        t0 = self.now
        t1 = t0 + n * self.dt
        nominal = t0 + self.phase[:, None] + np.arange(n)[None, :] * self.dt  # (A, N)
        ts = self.sensors.jitter(nominal, t0, t1)
        op = self.operation.step(t1, ts)
        ambient = self._ambient(ts, t1 - t0)
        severities = self.episode_table.severities(ts, len(self))
        true, components = self.physics.step(ts, op, ambient, severities, self.dt)
        measured, lost, sensor_events = self.sensors.apply(true, ts, t0, t1)
        done = self.maintenance.apply(measured, ts, t1) if self.maintenance is not None else []
        view = ChunkView(ts=ts, values=measured, running=self.operation.running.copy(), since_start=op.since_start[:, -1])
        lines = self.logs.step(t1, view, op.events, sensor_events, done)
        out: list[Message] = self._telemetry(ts, measured, lost, components, t0, t1)
        out.extend(self._timely(lines, t0, t1))
        out.sort(key=message_time)
        self.now = t1
        return out

    def _timely(self, lines: list[LogRecord], t0: float, t1: float) -> list[LogRecord]:
        """Lines of this batch; a line stamped later waits for its batch, one stamped before the run is dropped."""
        for line in lines:
            self._later_n += 1
            heapq.heappush(self._later, (line.ts, self._later_n, line))
        due = []
        while self._later and self._later[0][0] < t1:
            ts, _, line = heapq.heappop(self._later)
            if ts >= self.start:
                due.append(line if ts >= t0 else line.model_copy(update={"ts": round(t0, 3)}))
        return due

    def _ambient(self, ts: np.ndarray, span: float) -> np.ndarray:
        """Site ambient: daily swing by local time plus slowly wandering weather, plus each asset's own offset."""
        alpha = math.exp(-span / (6 * 3600.0))
        self._weather = alpha * self._weather + math.sqrt(1 - alpha * alpha) * 2.0 * self.rng_misc.standard_normal(
            len(self._weather)
        )
        site = self._site_index
        local_h = ((ts + self._utc_offset[site][:, None] * 3600.0) % 86400.0) / 3600.0
        daily = self._ambient_swing[site][:, None] * np.sin(2 * np.pi * (local_h - 9.0) / 24.0)
        ambient: np.ndarray = (self._ambient_mean[site] + self._weather[site] + self.params.ambient_offset)[:, None] + daily
        return ambient

    def _telemetry(
        self, ts: np.ndarray, measured: np.ndarray, lost: np.ndarray, components: Components, t0: float, t1: float
    ) -> list[Message]:
        rounded = np.round(measured * _SCALE) / _SCALE  # transmitter resolution
        missing = np.isnan(rounded)
        stamps = np.round(ts, 3).tolist()
        scenario = self.scenario
        out: list[Message] = []
        for a in range(len(self)):
            seq = int(self.seq[a])
            self.seq[a] += 1
            wave = None
            if self.waveform[a] and t0 >= self.next_waveform[a]:
                self.next_waveform[a] += scenario.waveform_every_s
                wave = burst(
                    components,
                    a,
                    self.params,
                    scenario.waveform_rate_hz,
                    scenario.waveform_samples,
                    stamps[a][0],
                    self.rng_wave,
                )
            if lost[a]:
                continue  # lost in transit: seq still advanced, so the receiver sees the gap
            idx = self.channel_index[a]
            rows = rounded[a, idx].tolist()
            holes = missing[a, idx].any(axis=1)
            if holes.any():
                for i in np.flatnonzero(holes).tolist():
                    rows[i] = [None if v != v else v for v in rows[i]]
            # model_construct: every value here is generated by us and already valid (finite floats or None,
            # aligned columns, non-decreasing stamps), and validating ~10^5 numbers per second would dominate.
            out.append(
                Telemetry.model_construct(
                    schema_version=1,
                    kind="telemetry",
                    site=self.site_of[a],
                    asset_id=self.asset_ids[a],
                    asset_type=self.asset_types[a],
                    seq=seq,
                    timestamps=stamps[a],
                    channels=dict(zip(self.channel_names[a], rows, strict=True)),
                    waveform=wave,
                )
            )
        return out

    # ------------------------------------------------------------------ ground truth and description

    def episodes(self, until: float | None = None) -> list[FaultEpisode]:
        """Ground truth of this run up to ``until`` (default: as far as ``messages`` has run; the whole
        schedule if nothing has run yet). A failure later than ``until`` is reported as None (not reached)."""
        if until is None and self.now > self.start:
            until = self.now
        return self.episode_table.to_labels(self.asset_ids, self.site_of, until)

    def meta(self, split: str = "", end: float | None = None) -> DatasetMeta:
        """The dataset description of this run: channels with rates, assets with types and rated currents, seed, time span."""
        used = {c for names in self.channel_names for c in names}
        channels = {
            c.name: ChannelInfo(unit=c.unit, rate_hz=self.scenario.sample_rate_hz, description=c.description, role=c.role)
            for c in CHANNELS
            if c.name in used
        }
        if self.waveform.any():
            channels[WAVEFORM_CHANNEL.name] = ChannelInfo(
                unit=WAVEFORM_CHANNEL.unit, rate_hz=self.scenario.waveform_rate_hz, description=WAVEFORM_CHANNEL.description
            )
        scenario = self.scenario
        return DatasetMeta(
            source=f"forewarn simulators, scenario {scenario.name}",
            licence="Apache-2.0 (synthetic data)",
            channels=channels,
            assets=dict(zip(self.asset_ids, self.asset_types, strict=True)),
            nameplates={
                a: Nameplate(rated_current_a=round(float(i), 1)) for a, i in zip(self.asset_ids, self.params.i_rated, strict=True)
            },
            split=split,
            seed=self.seed,
            start=self.start,
            end=end if end is not None else self.now,
            extra={
                "scenario": scenario.name,
                "sample_rate_hz": scenario.sample_rate_hz,
                "batch_s": scenario.batch_s,
                "noise": scenario.noise.model_dump(),
                "asset_channels": {t: list(ASSET_TYPES[t].channels) for t in sorted(set(self.asset_types))},
                "sites": dict(zip(self.asset_ids, self.site_of, strict=True)),
                "log_styles": {a.id: a.log_style for a in self.layout.assets},
                "start_iso": datetime.fromtimestamp(self.start, UTC).isoformat(),
                "units": {c: BY_NAME[c].unit for c in sorted(used)},
                "episodes": self.episode_table.describe(self.asset_ids),
                "label_onset": "P point: when the fault first becomes detectable (simulators.faults.DETECTABLE)",
                **self._log_options(),
            },
        )

    def _log_options(self) -> dict[str, object]:
        """meta.json keys for non-default log wording and text-that-carries-weight options (none by default)."""
        logs = self.scenario.logs
        out: dict[str, object] = {}
        if logs.phrasing != "all":
            out["phrasing"] = logs.phrasing
        if logs.textual:
            keys = ("early_notes", "text_only", "maintenance_per_day", "misleading_alarms_per_day", "false_notes_per_day")
            out["textual"] = {k: getattr(logs, k) for k in keys}
        return out
