"""A small turbofan fleet in C-MAPSS's text format becomes train and test dataset directories
whose labels give each engine's true remaining life."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from forewarn.dataset import iter_messages, label_at, read_labels, read_meta
from forewarn.importers.cmapss import import_cmapss
from forewarn.importers.common import START, ImportRefused


def _row(unit: int, cycle: int) -> str:
    values = [unit, cycle, 0.001 * cycle, 0.0, 100.0] + [500.0 + unit + cycle * 0.1 + s for s in range(21)]
    return " ".join(f"{v:g}" for v in values) + "  "


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "cmapss"
    d.mkdir()
    train = [_row(1, c) for c in range(1, 6)] + [_row(2, c) for c in range(1, 5)]
    train.insert(3, "1 4 0.1 0.2")  # line 4: a truncated row
    (d / "train_FD001.txt").write_text("\n".join(train) + "\n")
    (d / "test_FD001.txt").write_text("\n".join([_row(1, c) for c in range(1, 4)] + [_row(2, c) for c in range(1, 3)]) + "\n")
    (d / "RUL_FD001.txt").write_text("10 \n2 \n")
    return d


def test_units_become_assets_with_failures_and_true_rul(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = import_cmapss(src, out, cycle_s=3600.0, onset_cycles=2)

    assert report.bad_count == 1 and report.bad_rows[0][:2] == ("train_FD001.txt", 4)
    train = list(iter_messages(out / "train"))
    assert len(train) == 9 and {m.asset_id for m in train} == {"fd001_train_001", "fd001_train_002"}
    episodes = {e.asset_id: e for e in read_labels(out / "train")}
    # unit 1 fails at its last cycle (5), the episode starts 2 cycles earlier
    assert episodes["fd001_train_001"].failure == START + 4 * 3600
    assert episodes["fd001_train_001"].onset == START + 2 * 3600
    assert label_at(episodes.values(), "fd001_train_001", START + 3 * 3600) == ("degradation", 1.0)
    assert label_at(episodes.values(), "fd001_train_001", START + 1 * 3600)[0] == "normal"

    meta = read_meta(out / "test")
    rul = meta.extra["rul"]["assets"]
    assert rul["fd001_test_001"] == {"last_cycle": 3, "last_ts": START + 2 * 3600, "rul_cycles": 10, "failure": START + 12 * 3600}
    assert rul["fd001_test_002"]["rul_cycles"] == 2
    test_episodes = {e.asset_id: e for e in read_labels(out / "test")}
    # hours to failure at a test unit's last cycle is its true RUL (one cycle = one hour)
    assert label_at(test_episodes.values(), "fd001_test_002", START + 1 * 3600) == ("degradation", 2.0)
    assert meta.channels["t24"].original_name == "T24" and meta.channels["t24"].role == "temperature"
    assert meta.channels["setting_1"].role == "setting"
    assert meta.channels["t24"].rate_hz == pytest.approx(1 / 3600)
    assert meta.extra["import"]["bad_rows"] == 1


def test_the_command_prints_counts_and_refuses_a_missing_file(src: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["data", "import", "cmapss", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "2 assets, 9 messages" in result.output and "train_FD001.txt:4" in result.output
    (src / "RUL_FD001.txt").unlink()
    with pytest.raises(ImportRefused, match="RUL_FD001.txt"):
        import_cmapss(src, tmp_path / "p")


def test_normal_first_trains_on_healthy_starts_and_tests_on_whole_lives(tmp_path: Path) -> None:
    src = tmp_path / "fleet"
    src.mkdir()
    lives = {u: 8 + u for u in range(1, 11)}  # ten units, 9..18 cycles
    (src / "train_FD001.txt").write_text("\n".join(_row(u, c) for u, n in lives.items() for c in range(1, n + 1)) + "\n")
    (src / "test_FD001.txt").write_text(_row(1, 1) + "\n")
    (src / "RUL_FD001.txt").write_text("5\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["data", "import", "cmapss", str(src), "--out", str(out), "--split", "normal-first", "--normal-cycles", "3"]
    )
    assert result.exit_code == 0, result.output

    train = list(iter_messages(out / "train"))
    assert {m.asset_id for m in train} == {f"fd001_train_{u:03d}" for u in lives if u % 5}
    assert len(train) == 8 * 3 and max(m.timestamps[0] for m in train) == START + 2 * 3600  # first 3 cycles only
    assert read_labels(out / "train") == []  # no episode: learnt without labels

    test = list(iter_messages(out / "test"))
    assert {m.asset_id for m in test} == {"fd001_train_005", "fd001_train_010"}
    assert len(test) == lives[5] + lives[10]  # whole lives
    failures = {e.asset_id: e.failure for e in read_labels(out / "test")}
    assert failures == {"fd001_train_005": START + (lives[5] - 1) * 3600, "fd001_train_010": START + (lives[10] - 1) * 3600}
    with pytest.raises(ImportRefused, match="normal-first"):
        import_cmapss(src, tmp_path / "x", split="random")
