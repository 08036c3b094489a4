"""The HTML page of a report: sections of text, tables and figures, written atomically.

A report is a folder: ``index.html`` and the PNG figures beside it (so each figure can go straight
into a paper), or, with ``self_contained=True``, one ``index.html`` with the images embedded. The
folder is written under a temporary name and renamed when complete, so a reader never sees half a
report and an interrupted write leaves the previous report in place.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from variability.errors import UserError
from variability.folders import new_folders, why_not_written

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; }
.subtitle { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto;
  border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 0.9rem; }
.note { background: #fff8c5; border-left: 4px solid #d4a72c; padding: 0.4rem 0.8rem; }
code, pre { background: #f6f8fa; padding: 0.1rem 0.3rem; font-size: 0.85rem; }
pre { padding: 0.6rem; overflow-x: auto; }
dt { font-weight: bold; margin-top: 0.5rem; } dd { margin-left: 1.2rem; }
"""


DPI = 150
"""Pixels per inch of every figure's PNG."""
CSS_PIXELS_PER_INCH = 100
"""How wide an inch of a figure is on the page. Every figure is shown at this one scale (its
``width`` set from the PNG), so text of one size in points reads the same size in every figure
(a small figure is not blown up to the page's width)."""


@dataclass
class _Figure:
    name: str
    png: bytes
    caption: str
    alt: str

    @property
    def width(self) -> int:
        """The width to show it at, in CSS pixels (the PNG's width is in its header)."""
        pixels = int.from_bytes(self.png[16:20], "big")
        return round(pixels * CSS_PIXELS_PER_INCH / DPI)


@dataclass
class Section:
    """A titled part of a report; blocks appear in the order they are added."""

    title: str
    blocks: list[str | _Figure] = field(default_factory=list)

    def paragraph(self, text: str) -> None:
        self.blocks.append(f"<p>{html.escape(text)}</p>")

    def html(self, markup: str) -> None:
        """Raw HTML, for content the report builds itself (never user input)."""
        self.blocks.append(markup)

    def note(self, text: str) -> None:
        self.blocks.append(f'<p class="note">{html.escape(text)}</p>')

    def code(self, text: str) -> None:
        self.blocks.append(f"<pre>{html.escape(text)}</pre>")

    def definitions(self, items: dict[str, str]) -> None:
        rows = "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items.items()
        )
        self.blocks.append(f"<dl>{rows}</dl>")

    def table(self, frame: pd.DataFrame, caption: str = "", float_format: str = "{:.4g}") -> None:
        def fmt(value: object) -> str:
            if isinstance(value, float):
                return "" if pd.isna(value) else float_format.format(value)
            return html.escape(str(value))

        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>"
            for row in frame.itertuples(index=False)
        )
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.blocks.append(
            f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def figure(self, figure: Figure | None, name: str, caption: str, alt: str = "") -> None:
        """Add a matplotlib figure (saved as ``name``.png); None adds a note that it was skipped."""
        if figure is None:
            self.note(f"Figure '{name}' was not drawn: the data it needs is missing. {caption}")
            return
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        plt.close(figure)
        self.blocks.append(_Figure(name, buffer.getvalue(), caption, alt or caption))


@dataclass
class Page:
    """A report page: a title, a subtitle, and sections."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        section = Section(title)
        self.sections.append(section)
        return section

    def figures(self) -> list[_Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, _Figure)]

    def render(self, self_contained: bool) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        if self.subtitle:
            parts.append(f'<p class="subtitle">{html.escape(self.subtitle)}</p>')
        for section in self.sections:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
            for block in section.blocks:
                parts.append(block if isinstance(block, str) else _img(block, self_contained))
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, folder: str | os.PathLike[str], *, self_contained: bool = False) -> Path:
        """Write the report folder atomically; returns the path of ``index.html``.

        A write that fails (a read-only or full disk, a file where a folder goes) raises a
        UserError and leaves nothing behind: no staging folder, no parent folder made for it.
        """
        folder = Path(folder)
        try:
            with new_folders(folder.parent):
                self._write(folder, self_contained)
        except OSError as error:
            raise UserError(
                f"cannot write the report {folder}: {why_not_written(error, folder)}"
            ) from None
        return folder / "index.html"

    def _write(self, folder: Path, self_contained: bool) -> None:
        staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        try:
            if not self_contained:
                for fig in self.figures():
                    (staging / f"{fig.name}.png").write_bytes(fig.png)
            (staging / "index.html").write_text(self.render(self_contained), encoding="utf-8")
            _replace_folder(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _img(figure: _Figure, self_contained: bool) -> str:
    if self_contained:
        source = "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")
    else:
        source = f"{figure.name}.png"
    return (
        f'<figure><img src="{source}" width="{figure.width}" alt="{html.escape(figure.alt)}">'
        f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
    )


def _replace_folder(staging: Path, folder: Path) -> None:
    """Put ``staging`` where ``folder`` is, keeping the old folder until the new one is in place."""
    if not folder.exists():
        staging.rename(folder)
        return
    if not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder; choose another output folder")
    retired = folder.parent / f".{folder.name}.old-{os.getpid()}"
    folder.rename(retired)
    try:
        staging.rename(folder)
    except BaseException:
        retired.rename(folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)
