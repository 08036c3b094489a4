"""The probe report: its verdict, its table, and its figures in a browser."""

import torch
from torch import nn

from variability import probe_model
from variability.reports.probe_report import build_probe_page, verdict_text, write_probe_report


def deep_relu(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(24):
        layers += [nn.Linear(2 if i == 0 else 4, 4), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(4, 1))


def test_verdict_names_the_collapse_and_where_it_starts():
    grid = torch.rand(500, 2) * 2 - 1
    model = deep_relu(0)
    with torch.no_grad():
        model[10].weight.zero_()  # the sixth Linear maps everything to its bias
    results = probe_model(model, grid)
    text = verdict_text(results)
    assert text.startswith("Collapsed to a constant")
    assert f"starts at site {results.first_collapsed_site}" in text
    assert results.first_collapsed_site == "11"


def test_report_table_lists_every_site_and_the_output(tmp_path):
    results = probe_model(deep_relu(1), torch.rand(300, 2))
    index = write_probe_report(results, tmp_path / "probe", hints=["Try fewer layers."])
    html = index.read_text()
    for site in results.sites:
        assert f"<td>{site.name}</td>" in html
    assert "<td>output</td>" in html and "Try fewer layers." in html
    assert (tmp_path / "probe" / "site_profile.png").exists()
    assert (tmp_path / "probe" / "unit_activation.png").exists()


def test_probe_report_in_a_browser(tmp_path, browser):
    results = probe_model(deep_relu(2), torch.rand(300, 2))
    page = build_probe_page(results, provenance={"device": "cpu"})
    index = page.write(tmp_path / "probe")
    browser.check_report(index, min_images=2)
