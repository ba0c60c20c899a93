"""A maintainer runs `benchmarks/run --quick --only outbox --json` and gets one Markdown table and one JSON summary of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run"


def test_one_cheap_item_prints_the_table_with_its_baselines_and_the_machine() -> None:
    command = [str(RUN), "--quick", "--only", "outbox", "--runs", "1", "--json"]
    env = {**os.environ, "PYTHON": sys.executable}  # the interpreter running the tests, whatever its venv
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("Forewarn benchmarks (quick, 1 runs after a warm-up) on ") and "cores" in lines[0]

    table = [line for line in lines if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["item", "figure", "median", "spread", "unit", "baseline (same run)", "baseline", "ratio", "target"]
    assert set(table[1]) <= {"|", "-"}
    body = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert len(body) == 4 and all(len(row) == len(header) and row[0] == "outbox" for row in body)

    summary = json.loads(lines[-1])
    assert summary["failed"] == {} and summary["machine"]["cores"] >= 1
    rows = summary["rows"]
    assert [r["figure"] for r in rows] == [row[1] for row in body]
    for r, row in zip(rows, body, strict=True):
        assert r["values"] and r["median"] > 0 and r["baseline_median"] > 0
        assert abs(r["ratio"] - r["median"] / r["baseline_median"]) < 1e-9
        assert row[7] == f"{r['ratio']:.2f}x"  # the printed ratio is the JSON's
