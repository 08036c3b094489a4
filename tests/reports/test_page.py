"""The report page: atomic writes, embedded images, and what a browser makes of it."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from variability.errors import UserError
from variability.reports.page import Page


def small_page() -> Page:
    page = Page("A report", "subtitle <with markup>")
    section = page.section("Numbers")
    section.paragraph("Text with <b>tags</b> is escaped.")
    section.table(pd.DataFrame({"site": ["act1", "act2"], "V": [0.5, 1e-4]}), caption="sites")
    figure, axis = plt.subplots(figsize=(4, 3))
    axis.plot(np.arange(10), np.arange(10) ** 2, label="square")
    axis.legend()
    section.figure(figure, "square", "A parabola.")
    section.figure(None, "missing", "Needs training curves.")
    return page


def test_folder_has_index_and_pngs_and_escapes_text(tmp_path):
    index = small_page().write(tmp_path / "report")
    html = index.read_text()
    assert (tmp_path / "report" / "square.png").read_bytes().startswith(b"\x89PNG")
    assert '<img src="square.png"' in html
    assert "&lt;b&gt;tags&lt;/b&gt;" in html and "<b>tags</b>" not in html
    assert "Figure &#x27;missing&#x27; was not drawn" in html
    assert "<td>act2</td><td>0.0001</td>" in html


def test_self_contained_report_is_one_file(tmp_path):
    index = small_page().write(tmp_path / "report", self_contained=True)
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["index.html"]
    assert 'src="data:image/png;base64,' in index.read_text()


def test_rewrite_replaces_the_folder_and_leaves_no_staging(tmp_path):
    out = tmp_path / "report"
    small_page().write(out)
    (out / "stale.png").write_bytes(b"old")
    small_page().write(out)
    assert not (out / "stale.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_failed_write_keeps_the_old_report(tmp_path, monkeypatch):
    out = tmp_path / "report"
    small_page().write(out)
    before = (out / "index.html").read_text()

    def broken(self, self_contained):
        raise RuntimeError("disk trouble")

    monkeypatch.setattr(Page, "render", broken)
    with pytest.raises(RuntimeError):
        small_page().write(out)
    assert (out / "index.html").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_output_path_that_is_a_file_is_a_user_error(tmp_path):
    (tmp_path / "report").write_text("not a folder")
    with pytest.raises(UserError, match="is not a folder"):
        small_page().write(tmp_path / "report")


@pytest.mark.parametrize("self_contained", [False, True])
def test_page_in_a_real_browser(tmp_path, browser, self_contained):
    index = small_page().write(tmp_path / "report", self_contained=self_contained)
    browser.check_report(index, min_images=1)


def test_the_browser_check_sees_a_broken_image(tmp_path, browser):
    index = small_page().write(tmp_path / "report")
    (tmp_path / "report" / "square.png").write_bytes(b"not a png")
    count, broken, _ = browser.images(index)
    assert count == 1 and broken == ["square.png"]


@pytest.mark.parametrize("self_contained", [False, True])
def test_the_browser_check_sees_a_blank_figure(tmp_path, browser, self_contained):
    page = small_page()
    figure, axis = plt.subplots(figsize=(4, 3))
    axis.axis("off")  # nothing drawn: a white figure
    page.sections[0].figure(figure, "white", "A figure with nothing on it.")
    index = page.write(tmp_path / "report", self_contained=self_contained)
    count, broken, blank = browser.images(index)
    assert count == 2 and broken == [] and len(blank) == 1
    assert blank[0].startswith("white.png" if not self_contained else "data:image/png")
