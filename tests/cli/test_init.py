"""``variability init MODEL --out FIXED``: every format written back as it came, the table
before and after, and bad input in one line with nothing written."""

from __future__ import annotations

import pickle

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tests.cli.conftest import PLAIN, export_program, make_plain, save_torchscript, small_fc
from variability import load_model, probe_model, save_model

UNIFORM = ("--dist", "uniform", "--samples", "1024")


def collapsed_fc():
    """A deep narrow FC ReLU net that maps every input to one output (seed chosen for it)."""
    model = small_fc(seed=2, depth=32, width=6)
    x = torch.rand(1024, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert probe_model(model, x).network_collapsed
    return model


def test_a_collapsed_model_file_is_fixed_and_written_as_a_model_file(cli, tmp_path):
    source = save_model(collapsed_fc(), tmp_path / "deep.pt")
    original = source.read_bytes()
    out = tmp_path / "fixed" / "deep.pt"
    result = cli("init", source, "--out", out, *UNIFORM)
    assert result.exit_code == 0, result.stderr
    assert source.read_bytes() == original
    text = result.stdout
    assert "before verdict: output V" in text and "network C2C: yes" in text
    assert "after  verdict: output V" in text
    after_line = next(line for line in text.splitlines() if line.startswith("after "))
    assert "network C2C: no" in after_line
    row = next(line for line in text.splitlines() if line.startswith("act32 "))
    assert "linear32" in row and "->" in row
    assert f"wrote {out}" in text
    fixed = load_model(out)
    assert not probe_model(fixed, torch.rand(1024, 2) * 2 - 1).network_collapsed
    assert torch.equal(fixed.out.weight, load_model(source).out.weight)  # the head: untouched


def test_a_state_dict_stays_a_state_dict_with_its_checkpoint_entries(cli, tmp_path):
    source = tmp_path / "checkpoint.pt"
    state = make_plain().state_dict()
    torch.save({"model_state_dict": state, "epoch": 7}, source)
    out = tmp_path / "fixed.pt"
    x = torch.randn(512, 3, generator=torch.Generator().manual_seed(5))
    torch.save(x, tmp_path / "x.pt")
    result = cli("init", source, "--arch", PLAIN, "--out", out, "--inputs", tmp_path / "x.pt")
    assert result.exit_code == 0, result.stderr
    written = torch.load(out, weights_only=True)
    assert written["epoch"] == 7
    fixed = written["model_state_dict"]
    assert list(fixed) == list(state)
    assert torch.equal(fixed["last.weight"], state["last.weight"])
    assert torch.equal(fixed["last.bias"], state["last.bias"])
    assert not torch.equal(fixed["first.weight"], state["first.weight"])
    # on the probe set, the tanh site now sees per unit a second moment of 1, half above 0
    model = make_plain()
    model.load_state_dict(fixed)
    z = model.first(x).detach()
    assert torch.allclose(z.square().mean(dim=0), torch.ones(5), rtol=1e-3)
    assert (z > 0).double().mean(dim=0).tolist() == [0.5] * 5


def test_safetensors_and_pickles_are_written_in_their_format(cli, tmp_path):
    weights = tmp_path / "weights.safetensors"
    save_file(make_plain().state_dict(), str(weights))
    out = tmp_path / "fixed.safetensors"
    result = cli("init", weights, "--arch", PLAIN, "--out", out, "--samples", "256")
    assert result.exit_code == 0, result.stderr
    assert set(load_file(str(out))) == set(make_plain().state_dict())
    pickled = tmp_path / "whole.pkl"
    pickled.write_bytes(pickle.dumps(make_plain()))
    out = tmp_path / "fixed.pkl"
    result = cli("init", pickled, "--trust-pickle", "--out", out, "--samples", "256", "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        "lsuv: 1 of 1 sites changed; network not collapsed before, not collapsed after"
    )
    with open(out, "rb") as stream:
        assert isinstance(pickle.load(stream), nn.Module)


def test_report_draws_before_and_after(cli, tmp_path):
    source = save_model(small_fc(depth=4), tmp_path / "model.pt")
    report = tmp_path / "report"
    result = cli(
        "init", source, "--out", tmp_path / "fixed.pt", "--report", report, *UNIFORM,
        "--method", "autoinit",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    page = (report / "index.html").read_text()
    for section in ("What changed", "Sites before", "Sites after", "Before and after"):
        assert section in page
    assert "analytic" in page  # how each site was set
    for figure in ("before_after", "site_profile_before", "site_profile_after"):
        assert (report / f"{figure}.png").stat().st_size > 1000


class FlippedSecondSite(nn.Module):
    """The second relu reads a flipped tensor: no layer made its input."""

    def __init__(self):
        super().__init__()
        self.first, self.head = nn.Linear(2, 4), nn.Linear(4, 1)

    def forward(self, x):
        return self.head(torch.relu(torch.relu(self.first(x)).flip(-1)))


def make_flipped() -> FlippedSecondSite:
    torch.manual_seed(0)
    return FlippedSecondSite()


def make_linear() -> nn.Module:
    return nn.Linear(2, 1)


def test_bad_input_is_one_line_and_nothing_is_written(cli, tmp_path):
    out = tmp_path / "fixed.pt"
    flipped = tmp_path / "flipped.pt"
    torch.save(make_flipped().state_dict(), flipped)
    arch = "tests.cli.test_init:make_flipped"
    cli("init", flipped, "--arch", arch, "--out", out).assert_user_error(
        "cannot reinitialize 1 of 2 sites: relu[1]: its input is made by no layer",
        "--partial",
        "Nothing was written",
    )
    assert not out.exists()
    report = tmp_path / "partial-report"
    result = cli(
        "init", flipped, "--arch", arch, "--out", out, "--partial", "--samples", "256",
        "--report", report,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "left unchanged: relu[1]: its input is made by no layer" in result.stdout
    assert out.exists()
    assert "Left unchanged: relu[1]: its input is made by no layer" in (
        (report / "index.html").read_text()
    )

    linear = tmp_path / "linear.pt"
    torch.save(make_linear().state_dict(), linear)
    cli("init", linear, "--arch", "tests.cli.test_init:make_linear", "--out", out.with_name("x"))
    run = cli("init", linear, "--arch", "tests.cli.test_init:make_linear", "--out", tmp_path / "y")
    run.assert_user_error("found no probe site", "nothing was written")
    assert not (tmp_path / "y").exists()

    program = export_program(small_fc(), tmp_path / "model.pt2")
    cli("init", program, "--out", tmp_path / "p.pt2").assert_user_error(
        "is a torch.export program", "nothing was written"
    )
    script = save_torchscript(small_fc(), tmp_path / "script.pt")
    cli("init", script, "--out", tmp_path / "s.pt").assert_user_error("TorchScript")
    source = save_model(small_fc(), tmp_path / "model.pt")
    cli("init", source, "--out", source).assert_user_error("is the model being fixed")
    cli("init", source, "--out", out, "--method", "center", "--center").assert_user_error(
        "--center adds centring"
    )
    cli("init", source, "--out", out, "--active-fraction", "1.5").assert_user_error(
        "active_fraction must lie strictly between 0 and 1"
    )
    assert not (tmp_path / "p.pt2").exists() and not (tmp_path / "s.pt").exists()


def test_a_hugging_face_folder_is_written_as_a_folder(cli, tmp_path):
    transformers = __import__("transformers")
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=24,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    folder, out = tmp_path / "bert", tmp_path / "bert-fixed"
    model.save_pretrained(folder)
    result = cli("init", folder, "--out", out, "--samples", "64", "--seq-len", "10")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    fixed = transformers.BertModel.from_pretrained(out).eval()
    before, after = dict(model.named_parameters()), dict(fixed.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    # the intermediate Linear feeding each GELU, and the pooler's dense layer before its tanh
    assert changed == {
        "encoder.layer.0.intermediate.dense.weight",
        "encoder.layer.0.intermediate.dense.bias",
        "encoder.layer.1.intermediate.dense.weight",
        "encoder.layer.1.intermediate.dense.bias",
        "pooler.dense.weight",
        "pooler.dense.bias",
    }
