"""An operator's read-only alert commands refuse a mistyped state directory instead of reporting an empty plant."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main


def test_read_only_commands_refuse_a_state_dir_that_does_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOREWARN_DATABASE_URL", raising=False)
    typo = tmp_path / "stat"
    for args in (["alerts", "list"], ["alerts", "show", "a:b:1"]):
        result = CliRunner().invoke(main, [*args, "--state-dir", str(typo)])
        assert result.exit_code == 1 and "does not exist" in result.output, result.output
        assert not typo.exists()  # and nothing was created there


def test_show_names_an_unknown_alert(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["alerts", "show", "a:b:1", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1 and "no alert 'a:b:1'" in result.output
