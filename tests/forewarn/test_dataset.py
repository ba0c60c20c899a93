"""A dataset directory written by one part reads back identically in another, and a corrupt line is reported by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from forewarn.contracts import NORMAL, DatasetMeta, FaultEpisode, LogRecord, Telemetry
from forewarn.dataset import DatasetWriter, faults_at, iter_messages, label_at, read_labels, read_meta
from forewarn.errors import DatasetError

T0 = 1_767_225_600.0


def _messages() -> list[Telemetry | LogRecord]:
    return [
        Telemetry(site="p", asset_id="a", seq=0, timestamps=[T0, T0 + 1], channels={"temp": [20.0, None]}),
        LogRecord(site="p", asset_id="a", ts=T0 + 1.5, text="motor started"),
        Telemetry(site="p", asset_id="a", seq=1, timestamps=[T0 + 2], channels={"temp": [21.0]}),
    ]


def test_round_trip(tmp_path: Path) -> None:
    meta = DatasetMeta(source="unit test", seed=1)
    episode = FaultEpisode(asset_id="a", fault="imbalance", onset=T0 + 1, failure=T0 + 10)
    with DatasetWriter(tmp_path, meta) as writer:
        writer.write_many(_messages())
        writer.label(episode)
    assert list(iter_messages(tmp_path)) == _messages()
    assert read_labels(tmp_path) == [episode]
    assert read_meta(tmp_path) == meta


def test_out_of_order_write_is_refused(tmp_path: Path) -> None:
    first, _, last = _messages()
    with DatasetWriter(tmp_path, DatasetMeta(source="t")) as writer:
        writer.write(last)
        with pytest.raises(DatasetError, match="time order"):
            writer.write(first)


def test_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, DatasetMeta(source="t")) as writer:
        writer.write_many(_messages())
    path = tmp_path / "messages.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"ts"', '"tz"')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"messages.jsonl:2: .*ts"):
        list(iter_messages(tmp_path))


def test_missing_directory_is_clear(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="meta.json is missing"):
        read_meta(tmp_path)


def test_label_at_prefers_the_fault_that_fails_first() -> None:
    episodes = [
        FaultEpisode(asset_id="a", fault="imbalance", onset=T0, failure=None),
        FaultEpisode(asset_id="a", fault="overheating", onset=T0 + 10, failure=T0 + 3610),
    ]
    assert label_at(episodes, "a", T0 - 1) == (NORMAL, None)
    assert label_at(episodes, "a", T0 + 5) == ("imbalance", None)
    assert label_at(episodes, "a", T0 + 10) == ("overheating", 1.0)
    assert label_at(episodes, "b", T0 + 10) == (NORMAL, None)


def test_faults_at_lists_every_overlapping_fault_the_label_first() -> None:
    episodes = [
        FaultEpisode(asset_id="a", fault="imbalance", onset=T0, failure=None),
        FaultEpisode(asset_id="a", fault="overheating", onset=T0 + 10, failure=T0 + 3610),
    ]
    assert faults_at(episodes, "a", T0 - 1) == ()
    assert faults_at(episodes, "a", T0 + 5) == ("imbalance",)
    assert faults_at(episodes, "a", T0 + 10) == ("overheating", "imbalance")
    assert faults_at(episodes, "a", T0 + 10)[0] == label_at(episodes, "a", T0 + 10)[0]
