"""The comparison report of all three families, opened in headless Chromium: every image loads
and the page is not blank."""

from __future__ import annotations

import re

import pytest

from variability.experiments.comparison import CompareSettings, compare
from variability.experiments.comparison.report_data import write_report


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    settings = CompareSettings(
        params=800, depths=(2, 4), seeds=1, steps=4, every=2, batch_size=64, tolerance=0.25
    )
    return compare(settings, tmp_path_factory.mktemp("compare") / "all", workers=1)


def test_the_comparison_report_opens_in_a_browser(comparison, browser, tmp_path):
    assert [r["family"] for r in comparison.records[:3]] == ["fc", "lcw", "han"]
    index = write_report(comparison, tmp_path / "report")
    html = index.read_text()
    for family in ("fc", "lcw", "han"):
        assert f'src="heatmap_variability_{family}.png"' in html
        # the activation ratio's heatmap, or the sentence that says why it is one colour
        label = {"fc": "FC", "lcw": "LCW", "han": "Han"}[family]
        drawn = f'src="heatmap_activation_{family}.png"' in html
        said = re.search(rf"<p>{label} \({family}-d4-s0, width \d+\): The activation ratio", html)
        assert drawn != bool(said), family
    browser.check_report(index, min_images=10)
