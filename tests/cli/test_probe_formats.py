"""Every model format and every probe-set format the command reads, checked against the engine.

Each test runs the command and compares its JSON with ``probe_model`` called directly on the same
model and the same inputs: the command must not change a figure on its way through.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from variability import load_model, probe_model
from variability.loading import generate_inputs

from .conftest import PLAIN, collapse, export_program, make_plain, save_torchscript, small_fc


def figures(results_dict: dict) -> dict[str, tuple]:
    """name -> (V, AR, dead fraction, samples) of every site and the output."""
    rows = [*results_dict["sites"], results_dict["output"]]
    return {
        r["name"]: (r["variability"], r["activation_ratio"], r["dead_fraction"], r["samples"])
        for r in rows
    }


def assert_same_figures(cli_json: dict, direct: dict) -> None:
    got, want = figures(cli_json), figures(direct)
    assert list(got) == list(want)
    for name in want:
        for a, b in zip(got[name], want[name], strict=True):
            assert a == (b if b is None else pytest.approx(b, rel=1e-5, abs=1e-12)), name


def generated(shape, samples=300, seed=0, dist="normal"):
    inputs = generate_inputs(shape, samples, distribution=dist, seed=seed)
    return torch.cat(list(inputs.batches(samples)))


def test_toolkit_file_needs_no_other_argument(probe_json, toolkit_file):
    document = probe_json(toolkit_file, "--samples", "300")
    assert document["model"]["format"] == "variability model file"
    assert document["inputs"]["sample_shape"] == [2]  # d_in from the file's spec
    direct = probe_model(load_model(toolkit_file), generated((2,)))
    assert_same_figures(document, direct.to_dict())
    assert [s["name"] for s in document["sites"]] == ["act1", "act2", "act3"]


def test_state_dict_with_arch_and_arch_kwargs(probe_json, tmp_path):
    model = small_fc(seed=3, depth=2, width=5)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    kwargs = '{"family": "fc", "d_in": 2, "d_out": 1, "depth": 2, "width": 5, "seed": 0}'
    arch = ("--arch", "variability.arch:build_model", "--arch-kwargs", kwargs)
    document = probe_json(tmp_path / "weights.pt", *arch, "--samples", "300")
    # the weights are the file's (seed 3), not those the factory drew (seed 0)
    assert_same_figures(document, probe_model(model, generated((2,))).to_dict())


def test_state_dict_inside_a_training_checkpoint(probe_json, tmp_path):
    model = make_plain()
    torch.save({"epoch": 3, "model_state_dict": model.state_dict()}, tmp_path / "ckpt.pt")
    document = probe_json(tmp_path / "ckpt.pt", "--arch", PLAIN, "--samples", "300")
    assert "under the key 'model_state_dict'" in document["model"]["description"]
    # shape guessed from the first Linear layer (3 features), said in a note
    assert document["inputs"]["sample_shape"] == [3]
    assert any("guessed from the first layer 'first'" in n for n in document["notes"])
    assert_same_figures(document, probe_model(model, generated((3,))).to_dict())


def test_factory_module_in_the_current_directory(probe_json, tmp_path, monkeypatch):
    (tmp_path / "my_arch_cwd_module.py").write_text(
        "from torch import nn\n"
        "def net(width=4):\n"
        "    return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 1))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(__import__("sys").modules, "my_arch_cwd_module", raising=False)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(2, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1))
    torch.save(model.state_dict(), "w.pt")
    arch = ("--arch", "my_arch_cwd_module:net", "--arch-kwargs", '{"width": 7}')
    document = probe_json("w.pt", *arch, "--samples", "200")
    assert_same_figures(document, probe_model(model, generated((2,), 200)).to_dict())


def test_torch_export_program_probed_through_its_graph(probe_json, tmp_path):
    model = small_fc(seed=2)
    path = export_program(model, tmp_path / "model.pt2")
    document = probe_json(path, "--samples", "300", "--batch-size", "64")
    assert document["model"]["format"] == "torch.export program"
    assert [s["name"] for s in document["sites"]] == ["act1", "act2", "act3"]
    assert_same_figures(document, probe_model(model, generated((2,))).to_dict())


def test_export_with_a_fixed_batch_size(cli, probe_json, tmp_path):
    path = export_program(small_fc(), tmp_path / "fixed.pt2", dynamic=False)
    assert probe_json(path, "--samples", "40")["samples"] == 40
    cli("probe", path, "--samples", "42").assert_user_error("batches of exactly 4 inputs", "not 42")


def test_torchscript_archive_gives_the_output_only_and_says_why(cli, tmp_path):
    model = small_fc(seed=4)
    save_torchscript(model, tmp_path / "scripted.pt")
    run = cli("probe", tmp_path / "scripted.pt", "--samples", "300")
    assert run.exit_code == 0, run.stderr
    assert "only the output's figures are measured" in run.stdout
    assert "hooks cannot see into" in run.stdout
    table_rows = [line.split()[0] for line in run.stdout.splitlines() if line.strip()]
    assert "output" in table_rows and "act1" not in table_rows
    as_json = cli("probe", tmp_path / "scripted.pt", "--samples", "300", "--json", "-")
    document = as_json.json()
    assert document["sites"] == [] and document["model"]["output_only"] is True
    direct = probe_model(model, generated((2,)))
    assert document["output"]["variability"] == pytest.approx(direct.output.variability, rel=1e-6)
    assert "only the output" in as_json.stderr  # the reason, on stderr when stdout is JSON


def test_pickled_module_with_trust_pickle(probe_json, tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    torch.save(model, tmp_path / "whole.pt")
    document = probe_json(tmp_path / "whole.pt", "--trust-pickle", "--samples", "300")
    assert document["model"]["format"] == "pickled module"
    assert_same_figures(document, probe_model(model, generated((2,))).to_dict())


def test_conv_model_needs_an_input_shape_then_probes(cli, probe_json, tmp_path):
    torch.manual_seed(0)
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 36, 2)
    )
    torch.save(conv, tmp_path / "conv.pt")
    cli("probe", tmp_path / "conv.pt", "--trust-pickle").assert_user_error(
        "--input-shape", "takes 3 channels", "(3, H, W)"
    )
    shape = ("--input-shape", "3,8,8", "--samples", "50")
    site = probe_json(tmp_path / "conv.pt", "--trust-pickle", *shape)["sites"][0]
    assert site["units"] == 4 and site["samples"] == 50 * 36  # channels; positions are samples


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".pt-dict", ".csv"])
def test_inputs_files(probe_json, toolkit_file, tmp_path, suffix):
    x = torch.rand(120, 2, dtype=torch.float64) * 2 - 1
    path = tmp_path / f"inputs{suffix.removesuffix('-dict')}"
    if suffix == ".npy":
        np.save(path, x.numpy())
    elif suffix == ".pt":
        torch.save(x, path)
    elif suffix == ".pt-dict":
        torch.save({"x": x, "y": torch.zeros(120)}, path)
    else:
        rows = "\n".join(",".join(repr(float(v)) for v in row) for row in x.tolist())
        path.write_text("a,b\n" + rows + "\n")  # with a header row
    document = probe_json(toolkit_file, "--inputs", path)
    assert document["samples"] == 120
    direct = probe_model(load_model(toolkit_file), x.float())
    assert_same_figures(document, direct.to_dict())


def test_inputs_reshaped_by_input_shape(probe_json, tmp_path):
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 2), torch.nn.ReLU())
    torch.save(conv, tmp_path / "conv1d.pt")
    flat = torch.randn(30, 10)
    np.save(tmp_path / "flat.npy", flat.numpy())
    inputs = ("--inputs", tmp_path / "flat.npy", "--input-shape", "2,5")
    document = probe_json(tmp_path / "conv1d.pt", "--trust-pickle", *inputs)
    assert_same_figures(document, probe_model(conv, flat.reshape(30, 2, 5)).to_dict())


def test_generated_inputs_do_not_depend_on_the_batch_size(probe_json, toolkit_file):
    inputs = generate_inputs((2,), 700, seed=5)
    whole = torch.cat(list(inputs.batches(700)))
    for size in (7, 256, 5000):
        assert torch.equal(torch.cat(list(inputs.batches(size))), whole)
    assert not torch.equal(torch.cat(list(generate_inputs((2,), 700, seed=6).batches(700))), whole)
    small, large = (
        probe_json(toolkit_file, "--samples", "700", "--batch-size", b) for b in ("7", "5000")
    )
    assert_same_figures(small, large)  # same inputs, summed in another order


def test_uniform_inputs_lie_in_the_box():
    x = generated((3,), samples=2000, dist="uniform")
    assert x.min() >= -1 and x.max() <= 1 and abs(float(x.mean())) < 0.05
    n = generated((3,), samples=2000, dist="normal")
    assert abs(float(n.std()) - 1) < 0.05 and n.abs().max() > 1.5


def test_sites_by_name_and_glob(probe_json, toolkit_file):
    for sites, names in (("act1,act3", ["act1", "act3"]), ("act[23]", ["act2", "act3"])):
        document = probe_json(toolkit_file, "--sites", sites, "--samples", "100")
        assert [s["name"] for s in document["sites"]] == names


def test_collapsed_model_found_in_every_format(probe_json, tmp_path):
    model = collapse(small_fc())
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    path = export_program(model, tmp_path / "c.pt2")
    kwargs = '{"family": "fc", "d_in": 2, "d_out": 1, "depth": 3, "width": 6, "seed": 0}'
    arch = ("--arch", "variability.arch:build_model", "--arch-kwargs", kwargs)
    for args in ([path], [tmp_path / "sd.pt", *arch]):
        document = probe_json(*args, "--samples", "200")
        assert document["verdict"]["network_collapsed"] is True
        assert document["verdict"]["first_collapsed_site"] == "act3"


def test_legacy_torch_format(cli, probe_json, tmp_path):
    """Files from torch.save before PyTorch 1.6 (not zip): state dicts load with weights_only,
    whole modules still need --trust-pickle."""
    model = make_plain()
    torch.save(model.state_dict(), tmp_path / "sd.pt", _use_new_zipfile_serialization=False)
    torch.save(model, tmp_path / "whole.pt", _use_new_zipfile_serialization=False)
    via_arch = probe_json(tmp_path / "sd.pt", "--arch", PLAIN, "--samples", "200")
    assert_same_figures(via_arch, probe_model(model, generated((3,), 200)).to_dict())
    cli("probe", tmp_path / "whole.pt").assert_user_error("--trust-pickle")
    trusted = probe_json(tmp_path / "whole.pt", "--trust-pickle", "--samples", "200")
    assert trusted["sites"] == via_arch["sites"]
