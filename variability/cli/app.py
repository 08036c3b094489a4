"""The ``variability`` console script: a typer app with one module per command."""

from __future__ import annotations

import typer

from variability.cli.compare import compare
from variability.cli.init import init
from variability.cli.probe import probe
from variability.cli.report import report
from variability.cli.reproduce import reproduce
from variability.cli.train import train
from variability.versions import VERSION

app = typer.Typer(
    name="variability",
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


app.command(no_args_is_help=True)(probe)
app.command()(compare)
app.command()(train)
app.command(no_args_is_help=True)(report)
app.command(no_args_is_help=True)(reproduce)
app.command(no_args_is_help=True)(init)


def main() -> None:
    """The command line without the early checks of ``variability.cli.main`` (the console
    script), which imports this module only once its checks have passed."""
    app()
