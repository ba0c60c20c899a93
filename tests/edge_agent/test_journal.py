"""A crash loses no window in progress: checkpoint + journal give back exactly what an uninterrupted stage would cut."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edge_agent.ingest import TopicRouter, admit
from edge_agent.journal import WindowJournal, encode_frame, read_frames
from edge_agent.metrics import EdgeMetrics
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import encode
from forewarn.settings import TopicSettings
from models.windowing import Window, WindowSpec
from tests.edge_agent.streams import Message, plant_stream, topic_of

ROUTER = TopicRouter(TopicSettings())


def _admit(topic: str, payload: bytes) -> Message:
    return admit(topic, payload, ROUTER, 1 << 20)


def _stage(spec: WindowSpec) -> WindowStage:
    return WindowStage(spec, AssetPolicy(), EdgeMetrics())


def _feed(stage: WindowStage, messages: list[Message]) -> list[Window]:
    for message in messages:
        stage.add(message)
    return [w for w, _ in stage.ready()]


def _frames(messages: list[Message]) -> list[tuple[str, bytes]]:
    return [(topic_of(m), encode(m)) for m in messages]


def _same(a: list[Window], b: list[Window]) -> None:
    assert [(w.asset_id, w.end) for w in a] == [(w.asset_id, w.end) for w in b]
    for x, y in zip(a, b, strict=True):
        for f in dataclasses.fields(Window):
            u, v = getattr(x, f.name), getattr(y, f.name)
            if isinstance(u, np.ndarray):
                np.testing.assert_array_equal(u, v, err_msg=f"{x.asset_id} {x.end} {f.name}")
            else:
                assert u == v, f"{x.asset_id} {x.end} {f.name}"


def test_a_crash_after_a_checkpoint_and_a_journal_cuts_the_same_windows_as_no_crash(spec: WindowSpec, tmp_path: Path) -> None:
    messages = plant_stream(spec, "plant1", ["a1", "a2"], minutes=40)
    whole = _feed(_stage(spec), messages)
    a, b = len(messages) // 3, 2 * len(messages) // 3

    before = _stage(spec)
    journal = WindowJournal(tmp_path, interval_s=60.0, max_bytes=1 << 30)
    assert journal.restore(before, _admit).assets == 0  # a first start finds nothing
    first = _feed(before, messages[:a])
    journal.checkpoint(before)
    second = _feed(before, messages[a:b])
    journal.record(_frames(messages[a:b]))  # journalled, then the process dies: no checkpoint, no stop

    after = _stage(spec)
    restored = WindowJournal(tmp_path, interval_s=60.0, max_bytes=1 << 30).restore(after, _admit)
    assert restored.assets == 2 and restored.replayed == b - a and not restored.torn
    replayed = [w for w, _ in after.ready()]
    assert [(w.asset_id, w.end) for w in replayed] == [(w.asset_id, w.end) for w in second]  # scored again, same ids
    _same(first + replayed + _feed(after, messages[b:]), whole)


def test_without_the_journal_the_same_crash_loses_windows(spec: WindowSpec) -> None:
    """The oracle the first test is measured against: a fresh stage really does lose what was in progress."""
    messages = plant_stream(spec, "plant1", ["a1"], minutes=40)
    whole = _feed(_stage(spec), messages)
    a = len(messages) // 2
    fresh = _feed(_stage(spec), messages[:a]) + _feed(_stage(spec), messages[a:])
    assert len(fresh) < len(whole)


def test_a_message_both_journalled_and_redelivered_is_folded_once(spec: WindowSpec, tmp_path: Path) -> None:
    messages = plant_stream(spec, "plant1", ["a1"], minutes=30)
    whole = _feed(_stage(spec), messages)
    stage = _stage(spec)
    journal = WindowJournal(tmp_path, 60.0, 1 << 30)
    journal.restore(stage, _admit)
    first = _feed(stage, messages[:10])
    journal.checkpoint(stage)
    journal.record(_frames(messages[10:12]))  # the crash came before their MQTT acks

    after = _stage(spec)
    WindowJournal(tmp_path, 60.0, 1 << 30).restore(after, _admit)
    replayed = [w for w, _ in after.ready()]
    _same(first + replayed + _feed(after, messages[10:]), whole)  # 10 and 11 come again from the broker: duplicates


def test_a_frame_cut_short_ends_the_replay_and_says_so(spec: WindowSpec, tmp_path: Path) -> None:
    messages = plant_stream(spec, "plant1", ["a1"], minutes=3)
    frames = _frames(messages)
    data = b"".join(encode_frame(t, p) for t, p in frames)
    assert read_frames(data) == (frames, False)
    cut = data[:-5]
    assert read_frames(cut) == (frames[:-1], True)
    flipped = bytearray(data)
    flipped[len(encode_frame(*frames[0])) + 20] ^= 0xFF  # one bit of the second frame: its CRC fails
    assert read_frames(bytes(flipped)) == (frames[:1], True)

    stage = _stage(spec)
    journal = WindowJournal(tmp_path, 60.0, 1 << 30)
    journal.restore(stage, _admit)
    journal.checkpoint(stage)
    journal.record(frames)
    with journal.journal_path.open("r+b") as f:
        f.truncate(journal.journal_path.stat().st_size - 5)
    restored = WindowJournal(tmp_path, 60.0, 1 << 30).restore(_stage(spec), _admit)
    assert restored.torn and restored.replayed == len(frames) - 1


def test_a_checkpoint_of_another_spec_or_an_unreadable_one_is_set_aside(spec: WindowSpec, tmp_path: Path) -> None:
    messages = plant_stream(spec, "plant1", ["a1"], minutes=5)
    stage = _stage(spec)
    journal = WindowJournal(tmp_path, 60.0, 1 << 30)
    journal.restore(stage, _admit)
    _feed(stage, messages)
    journal.checkpoint(stage)
    other = dataclasses.replace(spec, hop_s=spec.hop_s * 2, length_s=spec.length_s * 2)
    restored = WindowJournal(tmp_path, 60.0, 1 << 30).restore(_stage(other), _admit)
    assert restored.assets == 0 and restored.discarded is not None and "another window spec" in restored.discarded
    assert (tmp_path / "windows.unreadable").exists() and not (tmp_path / "windows.ckpt").exists()

    (tmp_path / "windows.ckpt").write_bytes(b"not a pickle")
    restored = WindowJournal(tmp_path, 60.0, 1 << 30).restore(_stage(spec), _admit)
    assert restored.assets == 0 and restored.discarded is not None


def test_a_checkpoint_is_due_by_time_or_by_journal_size(spec: WindowSpec, tmp_path: Path) -> None:
    now = [0.0]
    journal = WindowJournal(tmp_path, interval_s=60.0, max_bytes=64 * 1024, clock=lambda: now[0])
    stage = _stage(spec)
    journal.restore(stage, _admit)
    assert not journal.due()
    now[0] = 61.0
    assert journal.due()
    journal.checkpoint(stage)
    assert not journal.due() and journal.journal_path.stat().st_size == 0
    journal.record([("t", b"x" * 70_000)])
    assert journal.due(), "a journal over max_bytes brings the checkpoint forward"


def test_a_refused_replay_is_counted_not_fatal(spec: WindowSpec, tmp_path: Path) -> None:
    stage = _stage(spec)
    journal = WindowJournal(tmp_path, 60.0, 1 << 30)
    journal.restore(stage, _admit)
    journal.checkpoint(stage)
    good = _frames(plant_stream(spec, "plant1", ["a1"], minutes=2))
    journal.record([*good, ("forewarn/plant1/a1/telemetry", b"{not json")])
    restored = WindowJournal(tmp_path, 60.0, 1 << 30).restore(_stage(spec), _admit)
    assert (restored.replayed, restored.refused) == (len(good), 1)


@pytest.mark.parametrize("assets", [1, 3])
def test_the_stage_saves_and_loads_its_assets(spec: WindowSpec, tmp_path: Path, assets: int) -> None:
    stage = _stage(spec)
    _feed(stage, plant_stream(spec, "plant1", [f"a{i}" for i in range(assets)], minutes=5))
    with (tmp_path / "s").open("wb") as out:
        stage.save(out)
    other = _stage(spec)
    with (tmp_path / "s").open("rb") as src:
        assert other.load(src) == assets
    assert other.asset_count == assets
