"""The printed table, verdict and diagnosis for a fixed small model, against a golden file.

The model's weights are chosen by hand: act1 healthy, half of act2's units dead, act3 squeezed
onto its bias (collapsing). Rendered at a fixed width without colour.

To regenerate the golden file after an intended change of the output, run

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/cli/test_golden.py

and review the diff of tests/cli/golden/probe_table.txt before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from variability import build_model, save_model

GOLDEN = Path(__file__).parent / "golden" / "probe_table.txt"


def chosen_model():
    model = build_model("fc", d_in=2, d_out=1, depth=3, width=4, seed=0)
    with torch.no_grad():
        model.linear1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]]))
        model.linear1.bias.zero_()
        model.linear2.weight.copy_(
            torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.5, -1.0, 1.0, 0.0], [0.0] * 4, [0.0] * 4])
        )
        model.linear2.bias.copy_(torch.tensor([0.0, 0.1, -1.0, -1.0]))  # units 3 and 4 dead
        model.linear3.weight.copy_(0.01 * torch.tensor([[1.0, -1.0, 0.0, 0.0]] * 4))
        model.linear3.bias.fill_(1.0)  # every unit sits near 1: collapsing
        model.out.weight.fill_(1.0)
        model.out.bias.zero_()
    return model


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_table_matches_the_golden_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_model(chosen_model(), "model.pt")
    run = cli("probe", "model.pt", "--samples", "256", "--dist", "uniform", "--seed", "0")
    assert run.exit_code == 0, run.stderr
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text("\n".join(lines(run.stdout)) + "\n", encoding="utf-8")
    assert lines(run.stdout) == lines(GOLDEN.read_text(encoding="utf-8"))
