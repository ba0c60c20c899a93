"""A machine that only writes logs (an HDFS block, a controller without telemetry) gets windows that count its lines per step."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from forewarn.contracts import DatasetMeta, FaultEpisode, LogRecord, Telemetry
from forewarn.dataset import DatasetWriter
from models.data import load_tables, window_channels
from models.windowing import LOG_RATE_CHANNEL, AssetWindower, WindowSpec, windows_from_messages

T0 = 1_767_225_600.0  # a multiple of 600 s
SPEC = WindowSpec(channels=(LOG_RATE_CHANNEL,), length_s=60.0, hop_s=20.0, steps=6, grace_s=10.0, max_log_lines=3)
SESSION_SPEC = WindowSpec(channels=(LOG_RATE_CHANNEL,), length_s=600.0, hop_s=120.0, steps=10, grace_s=60.0)


def _line(ts: float, asset: str = "a", text: str = "block received") -> LogRecord:
    return LogRecord(site="p", asset_id=asset, ts=ts, text=text)


def test_a_log_only_stream_gives_windows_of_lines_per_step() -> None:
    per_step = [k % 3 for k in range(20)]  # 200 s of 10 s steps: 0, 1, 2, 0, 1, 2, ...
    lines = [_line(T0 + 10 * k + i) for k, n in enumerate(per_step) for i in range(n)]

    windows = list(windows_from_messages(lines, SPEC))

    assert windows, "log lines alone advance the clock"
    assert windows[0].start == T0 <= lines[0].ts < windows[0].start + SPEC.hop_s, "the first window holds the first line"
    assert all(b.end - a.end == 20.0 for a, b in itertools.pairwise(windows))
    for w in windows:
        first = round((w.start - T0) / 10)
        expected = [per_step[k] if k < len(per_step) else 0 for k in range(first, first + 6)]
        np.testing.assert_array_equal(w.stats[:, 0, 0], expected)  # mean: lines in the step
        np.testing.assert_array_equal(w.stats[:, 0, 1], 0.0)
        np.testing.assert_array_equal(w.stats[:, 0, 2], expected)
        np.testing.assert_array_equal(w.stats[:, 0, 3], expected)
        assert (w.counts == 1).all() and w.coverage == 1.0, "a step of 0 lines is data, not a gap"
        assert len(w.logs) == 3
    assert windows[-1].end == T0 + 200.0 > lines[-1].ts, "flush reaches the window holding the last line"


def test_a_session_shorter_than_a_window_gives_exactly_one_window_at_flush() -> None:
    w = AssetWindower(SESSION_SPEC, "p", "blk")
    for i in range(13):  # 13 lines, 1 s apart, starting 95 s into a 120 s hop
        w.add_log(_line(T0 + 95 + i, "blk", f"template {i}"))
        assert list(w.ready()) == [], "the stream may go on: nothing is emitted live"

    windows = list(w.flush())

    assert len(windows) == 1
    only = windows[0]
    assert only.start == T0 and only.end == T0 + 600, "the hop-aligned window that holds the session"
    np.testing.assert_array_equal(only.stats[:, 0, 0], [0, 13, 0, 0, 0, 0, 0, 0, 0, 0])  # 60 s steps
    assert [r.text for r in only.logs][-1] == "template 12"
    assert list(w.flush()) == [], "each window exactly once"


def test_telemetry_beside_the_log_rate_keeps_its_samples_and_a_sent_log_lines_channel_is_refused() -> None:
    spec = WindowSpec(channels=("temp", LOG_RATE_CHANNEL), length_s=60.0, hop_s=20.0, steps=6, grace_s=10.0)
    messages: list[Telemetry | LogRecord] = []
    for k in range(12):  # 120 s, one batch per 10 s step, two log lines in even steps
        ts = [T0 + 10 * k + i for i in range(10)]
        messages.append(
            Telemetry(site="p", asset_id="a", seq=k, timestamps=ts, channels={"temp": [20.0] * 10, LOG_RATE_CHANNEL: [9.0] * 10})
        )
        if k % 2 == 0:
            messages += [_line(T0 + 10 * k + 3), _line(T0 + 10 * k + 6)]
    messages.sort(key=lambda m: m.ts if isinstance(m, LogRecord) else m.timestamps[0])

    windows = list(windows_from_messages(messages, spec))

    assert windows
    for w in windows:
        assert (w.counts[:, 0] == 10).all()
        np.testing.assert_allclose(w.stats[:, 0, 0], 20.0)
        first = round((w.start - T0) / 10)
        np.testing.assert_array_equal(w.stats[:, 1, 0], [2 if k % 2 == 0 and k < 12 else 0 for k in range(first, first + 6)])


def test_a_log_only_dataset_trains_on_labelled_windows(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    sessions = {"blk_1": 5, "blk_2": 12, "blk_3": 30, "blk_4": 8}  # lines per block, 1 s apart, all at T0
    anomalous = {"blk_3", "blk_4"}
    meta = DatasetMeta(source="test", assets=dict.fromkeys(sessions, "block"))
    with DatasetWriter(directory, meta) as writer:
        for i in range(max(sessions.values())):
            for asset, n in sessions.items():
                if i < n:
                    writer.write(_line(T0 + i, asset, f"step {i} of {asset}"))
        for asset in sorted(anomalous):
            writer.label(FaultEpisode(asset_id=asset, fault="anomaly", onset=T0))

    assert window_channels([directory]) == (LOG_RATE_CHANNEL,)
    table = load_tables([directory], SESSION_SPEC, None)

    assert sorted(table.asset_ids) == sorted(sessions), "one window per short session"
    for asset, label, stats, asset_type in zip(table.asset_ids, table.labels, table.stats, table.asset_types, strict=True):
        assert label == ("anomaly" if asset in anomalous else "normal")
        assert stats[:, 0, 0].sum() == sessions[asset] and stats[0, 0, 0] == min(sessions[asset], 60)
        assert asset_type == "block"
    assert (table.counts == 1).all()


def test_a_dataset_without_channels_or_logs_has_no_window_channels(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    with DatasetWriter(directory, DatasetMeta(source="test")):
        pass
    assert window_channels([directory]) == ()
