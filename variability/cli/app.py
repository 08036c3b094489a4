"""The ``variability`` console script: a typer app with one module per command.

A command's module is imported when that command runs or shows its own help, never before:
the commands import torch, pandas and matplotlib (seconds), and ``variability --help`` or
``--version`` need none of them (docs/benchmarks.md, "Start-up").
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from variability.cli.help_text import Command, Group
from variability.versions import VERSION

__all__ = ["COMMANDS", "app", "load_command"]

COMMANDS: dict[str, str] = {
    "probe": "Probe a saved model: where signal dies, site by site, and why.",
    "compare": "Compare FC, LCW and Han networks at one parameter budget over depths and seeds.",
    "train": "Train a model at a parameter budget, watching every probe site; writes a run "
    "directory.",
    "report": "Draw a training run, or a comparison, as HTML with PNG figures.",
    "reproduce": "Reproduce a published result: prints a table, writes a report and results.json.",
    "init": "Reinitialise a model so that every probe site gets a healthy pre-activation: rescale "
    "and shift, site by site in depth order, the layer that feeds it; write the fixed model in the "
    "input's format; print each site's figures before and after.",
}
"""Each command (``variability/cli/NAME.py`` defines the function ``NAME``) and the line that
lists it in ``variability --help`` (tests/cli/test_help.py keeps it the docstring's first line)."""

NO_ARGS_IS_HELP = frozenset({"probe", "report", "reproduce", "init"})


def load_command(name: str) -> Command:
    """The click command of ``variability NAME``, its module imported now."""
    function = getattr(importlib.import_module(f"variability.cli.{name}"), name)
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name=name, cls=Command, no_args_is_help=name in NO_ARGS_IS_HELP)(function)
    command = typer.main.get_command(single)
    assert isinstance(command, Command)
    return command


class LazyCommands(Group):
    """Lists every command by name and one line; loads one only when it is invoked."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        return Command(cmd_name, short_help=COMMANDS[cmd_name])  # a line in the list

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and name not in self.commands:
            command = self.commands[name] = load_command(name)
        return name, command, rest


app = typer.Typer(
    name="variability",
    cls=LazyCommands,
    help="Diagnose why a PyTorch network is hard to train: activation ratio, variability and "
    "collapse to constants at every nonlinearity.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"variability {VERSION}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """variability: where signal dies in a PyTorch network."""


def main() -> None:
    """The command line without the early checks of ``variability.cli.main`` (the console
    script), which imports this module only once its checks have passed."""
    app()
