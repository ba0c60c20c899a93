"""An ML engineer changes one profile knob from the command line, and a typo or a wrong type is refused before any training."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from forewarn.cli import main
from models.errors import TrainingError
from models.profiles import parse_override, profile


def test_overrides_are_json_values_of_the_fields_type() -> None:
    assert parse_override("lag_fit=[600, 1200]") == ("lag_fit", (600, 1200))
    assert parse_override("reference_average_start=true") == ("reference_average_start", True)
    assert parse_override("reference_s=3600") == ("reference_s", 3600.0)
    assert parse_override("max_windows=50000") == ("max_windows", 50000)
    changed = profile("full", **dict([parse_override("lag_fit=[600, 1200]"), parse_override("reference_average_start=true")]))
    assert changed.lag_fit == (600, 1200) and changed.reference_average_start and changed.name == "full"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("lag_fits=[600]", "FIELD one of"),
        ("seed=3", "FIELD one of"),
        ("reference_s", "FIELD one of"),
        ("reference_s=fast", "must be JSON"),
        ("max_windows=true", "takes a int"),
        ("reference_average_start=1", "takes a bool"),
        ("lag_fit=600", "takes a tuple"),
    ],
)
def test_a_bad_override_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(TrainingError, match=reason):
        parse_override(text)


def test_the_train_command_refuses_a_bad_override_before_training(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["model", "train", str(tmp_path), "--out", str(tmp_path / "b"), "--set", "bogus=1"])
    assert result.exit_code == 2 and "bogus" in result.output and "FIELD one of" in result.output
    assert not (tmp_path / "b").exists()
