"""How a command reads in ``--help``: flags without a value type, paragraphs that flow.

typer shows a type beside every option, ``<bool>`` beside flags that take no value, and keeps
the line breaks of a docstring's later paragraphs, which the terminal then wraps a second time
into ragged lines. The commands here show flags bare and give each paragraph as one line, for
the terminal to wrap at its own width.
"""

from __future__ import annotations

import inspect
from typing import Any

from typer.core import TyperCommand, TyperGroup

__all__ = ["Command", "Group", "flowing"]


def flowing(text: str | None) -> str | None:
    """``text`` with each paragraph on one line (click's ``\\b`` paragraphs kept as written)."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def _bare(parameter: Any) -> None:
    """A flag shows no type: ``--quiet``, not ``--quiet <bool>``."""
    if getattr(parameter, "is_flag", False) and parameter.metavar is None:
        parameter.metavar = ""


class _Readable:
    help: str | None
    params: list[Any]

    def _make_readable(self) -> None:
        self.help = flowing(self.help)
        for parameter in self.params:
            _bare(parameter)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            _bare(option)
        return option


class Command(_Readable, TyperCommand):
    """A command whose ``--help`` shows flags bare and paragraphs flowing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._make_readable()


class Group(_Readable, TyperGroup):
    """A group of commands whose ``--help`` reads the same way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._make_readable()
