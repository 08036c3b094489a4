"""Every bad input a user can give: one clear line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from .conftest import PLAIN, make_plain, save_model, save_torchscript, small_fc


def test_missing_file(cli, tmp_path):
    cli("probe", tmp_path / "absent.pt").assert_user_error("no model file at", "absent.pt")


def test_directory(cli, tmp_path):
    cli("probe", tmp_path).assert_user_error("is a directory")


def test_empty_file(cli, tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    cli("probe", tmp_path / "empty.pt").assert_user_error("empty.pt is empty")


@pytest.mark.parametrize("keep", [0.3, 0.8, 0.99])
def test_truncated_file(cli, toolkit_file, keep):
    data = toolkit_file.read_bytes()
    toolkit_file.write_bytes(data[: int(len(data) * keep)])
    cli("probe", toolkit_file).assert_user_error("truncated or damaged")


def test_truncated_export_program(cli, tmp_path):
    from .conftest import export_program

    path = export_program(small_fc(), tmp_path / "m.pt2")
    path.write_bytes(path.read_bytes()[:-300])
    cli("probe", path).assert_user_error("truncated or damaged")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,value\n1,2\n", "is not a model file"),
        (b"\x00\x01\x02\x03 binary junk", "is not a model file"),
    ],
)
def test_file_that_is_not_a_model(cli, tmp_path, content, message):
    (tmp_path / "notes.pt").write_bytes(content)
    cli("probe", tmp_path / "notes.pt").assert_user_error(message)


def test_zip_that_pytorch_did_not_write(cli, tmp_path):
    with zipfile.ZipFile(tmp_path / "other.pt", "w") as archive:
        archive.writestr("readme.txt", "hello")
    cli("probe", tmp_path / "other.pt").assert_user_error("not one that PyTorch writes")


def test_torch_file_holding_no_model(cli, tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    cli("probe", tmp_path / "list.pt").assert_user_error("holds no model", "list")


def test_pickle_is_refused_and_its_code_never_runs(cli, hostile_pickles):
    marker, files = hostile_pickles
    for path in files:
        line = cli("probe", path).assert_user_error("--trust-pickle", "unpickling runs")
        assert "was not loaded" in line
        assert not marker.exists(), f"code from {path.name} ran"


def test_the_hostile_payload_is_real(cli, hostile_pickles):
    """With --trust-pickle the payload runs: the refusal above is what kept it from running."""
    marker, files = hostile_pickles
    cli("probe", files[1], "--trust-pickle").assert_user_error("not a torch.nn.Module")
    assert marker.exists()


def test_arch_that_cannot_be_imported(cli, tmp_path):
    torch.save(make_plain().state_dict(), tmp_path / "w.pt")
    cli("probe", tmp_path / "w.pt", "--arch", "no_such_package.models:net").assert_user_error(
        "cannot import module 'no_such_package.models'"
    )
    cli("probe", tmp_path / "w.pt", "--arch", "tests.cli.conftest:no_such").assert_user_error(
        "has no attribute 'no_such'"
    )
    cli("probe", tmp_path / "w.pt", "--arch", "just_a_name").assert_user_error(
        "package.module:factory"
    )


def test_state_dict_without_arch(cli, tmp_path):
    torch.save(make_plain().state_dict(), tmp_path / "w.pt")
    cli("probe", tmp_path / "w.pt").assert_user_error("holds a state dict (4 tensors)", "--arch")


def test_arch_that_does_not_match_the_state_dict_names_the_keys(cli, tmp_path):
    state = make_plain().state_dict()
    state["extra.weight"] = torch.zeros(2)
    del state["last.bias"]
    torch.save(state, tmp_path / "w.pt")
    line = cli("probe", tmp_path / "w.pt", "--arch", PLAIN).assert_user_error("does not fit")
    assert "missing from the file: last.bias" in line
    assert "in the file but not in the model: extra.weight" in line


def test_arch_with_other_shapes_names_them(cli, tmp_path):
    torch.save(make_plain(width=5).state_dict(), tmp_path / "w.pt")
    wider = ("--arch", PLAIN, "--arch-kwargs", '{"width": 8}')
    line = cli("probe", tmp_path / "w.pt", *wider).assert_user_error("shapes differ")
    assert "first.weight: file (5, 3), model (8, 3)" in line


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ("{width: 8}", "--arch-kwargs is not valid JSON"),
        ("[8]", "must be a JSON object"),
        ('{"depth": 3}', "failed: TypeError"),
    ],
)
def test_bad_arch_kwargs(cli, tmp_path, kwargs, message):
    torch.save(make_plain().state_dict(), tmp_path / "w.pt")
    arch = ("--arch", PLAIN, "--arch-kwargs", kwargs)
    cli("probe", tmp_path / "w.pt", *arch).assert_user_error(message)


def test_arch_with_a_toolkit_file(cli, toolkit_file):
    cli("probe", toolkit_file, "--arch", PLAIN).assert_user_error("carries its architecture")


def test_generated_inputs_of_the_wrong_shape(cli, toolkit_file):
    cli("probe", toolkit_file, "--input-shape", "5").assert_user_error(
        "takes inputs of shape (2,)", "the inputs have shape (5,)", "--input-shape 2"
    )


def test_inputs_file_of_the_wrong_shape(cli, toolkit_file, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 3, 4), dtype=np.float32))
    cli("probe", toolkit_file, "--inputs", tmp_path / "x.npy").assert_user_error(
        "takes inputs of shape (2,)", "the inputs have shape (3, 4)"
    )


def test_wrong_shape_for_a_model_without_a_recorded_shape(cli, tmp_path):
    torch.save(make_plain().state_dict(), tmp_path / "w.pt")
    line = cli("probe", tmp_path / "w.pt", "--arch", PLAIN, "--input-shape", "7").assert_user_error(
        "cannot run on inputs of shape (7,)"
    )
    assert "it expects (3,)" in line and "The model said" in line


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.txt", b"1,2\n", "unknown inputs format '.txt'"),
        ("x.csv", b"1,2\n3,abc\n", "is not a .csv of numbers"),
        ("x.csv", b"", "is empty"),
        ("x.npy", b"\x93NUMPY garbage", "is not a readable .npy file"),
        ("x.pt", b"PK\x03\x04 broken", "is not a readable PyTorch file"),
    ],
)
def test_unreadable_inputs_files(cli, toolkit_file, tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    cli("probe", toolkit_file, "--inputs", tmp_path / name).assert_user_error(message)


def test_inputs_file_missing_or_holding_objects(cli, toolkit_file, tmp_path, hostile_pickles):
    cli("probe", toolkit_file, "--inputs", tmp_path / "nope.npy").assert_user_error(
        "no inputs file at"
    )
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cli("probe", toolkit_file, "--inputs", tmp_path / "objects.npy").assert_user_error(
        "holds Python objects"
    )
    marker, (hostile_pt, _) = hostile_pickles
    cli("probe", toolkit_file, "--inputs", hostile_pt).assert_user_error("pickled Python objects")
    assert not marker.exists()
    torch.save({"y": torch.zeros(3)}, tmp_path / "noy.pt")
    cli("probe", toolkit_file, "--inputs", tmp_path / "noy.pt").assert_user_error(
        "expected a tensor or a dict with an 'x' tensor"
    )


def test_unknown_device(cli, toolkit_file):
    cli("probe", toolkit_file, "--device", "tpu").assert_user_error("unknown device 'tpu'")


def test_cuda_without_a_gpu(cli, toolkit_file, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cli("probe", toolkit_file, "--device", "cuda").assert_user_error("no usable CUDA GPU")


def test_model_without_probe_sites(cli, tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "linear.pt")
    cli("probe", tmp_path / "linear.pt", "--trust-pickle").assert_user_error(
        "found no probe site", "--sites"
    )


def test_sites_that_name_nothing(cli, toolkit_file):
    cli("probe", toolkit_file, "--sites", "encoder.*").assert_user_error("'encoder.*'", "act1")


def test_sites_with_torchscript(cli, tmp_path):
    save_torchscript(small_fc(), tmp_path / "s.pt")
    cli("probe", tmp_path / "s.pt", "--sites", "act1").assert_user_error(
        "--sites cannot be used", "TorchScript"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "sometimes"], "--fail-on 'sometimes' is not a condition"),
        (["--fail-on", "dead:1.5"], "the fraction must lie in [0, 1)"),
        (["--tau", "0"], "tau must lie in (0, 1]"),
        (["--collapse-level", "0.2", "--collapsing-level", "0.1"], "collapse levels must"),
        (["--input-shape", "3,a"], "--input-shape '3,a' is not a shape"),
        (["--samples", "0"], "--samples must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--json", "-", "--csv", "-"], "both want stdout"),
        (["--self-contained"], "add --report DIR"),
        (["--arch-kwargs", "{}"], "add --arch"),
    ],
)
def test_bad_options(cli, toolkit_file, args, message):
    cli("probe", toolkit_file, *args).assert_user_error(message)


def test_inputs_with_generation_options(cli, toolkit_file, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 2), dtype=np.float32))
    cli("probe", toolkit_file, "--inputs", tmp_path / "x.npy", "--samples", "9").assert_user_error(
        "cannot be combined with --inputs"
    )


def test_json_to_a_directory(cli, toolkit_file, tmp_path):
    (tmp_path / "taken").mkdir()
    cli("probe", toolkit_file, "--samples", "50", "--json", tmp_path / "taken").assert_user_error(
        "is a directory"
    )


def test_model_file_whose_spec_cannot_be_built(cli, tmp_path):
    path = save_model(small_fc(), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["spec"]["family"] = "transformer"
    torch.save(payload, path)
    cli("probe", path).assert_user_error("spec that cannot be built")


def test_model_file_whose_spec_is_far_larger_than_its_weights(cli, tmp_path, monkeypatch):
    """Width 200,000 in a 4-KB file: refused before anything is built (it would take 320 GB)."""
    path = save_model(small_fc(), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["spec"]["width"] = 200_000
    torch.save(payload, path)

    def built(spec):
        raise AssertionError("a model was built")

    monkeypatch.setattr("variability.arch.files.rebuild", built)
    cli("probe", path).assert_user_error("m.pt: the weights do not fit the spec", "200000")
