"""Model files: round trip, weights_only loading, and one clear error per kind of bad file."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from variability.arch import (
    FORMAT,
    CorruptModelFileError,
    ModelFileError,
    ModelFileNotFoundError,
    NotAModelFileError,
    SpecError,
    build_model,
    load_model,
    save_model,
)


@pytest.fixture
def trained_like():
    """A model whose weights differ from what its seed would rebuild (as after training)."""
    model = build_model("lcw", 3, 2, 3, width=7, seed=5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("family", ["fc", "lcw", "han"])
def test_round_trip_gives_identical_outputs(tmp_path, family):
    model = build_model(family, 3, 2, 4, width=7, seed=1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)  # not the seeded weights: the file must carry them
    path = save_model(model, tmp_path / "model.pt")
    loaded = load_model(path)
    x = torch.randn(10, 3)
    assert torch.equal(model(x), loaded(x))
    assert loaded.spec == model.spec
    assert not any(tmp_path.glob(".model.pt.*")), "the temporary file was left behind"


def test_file_reads_with_weights_only(tmp_path, trained_like):
    path = save_model(trained_like, tmp_path / "deep" / "dir" / "m.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT and payload["format_version"] == 1
    assert payload["spec"] == trained_like.spec
    assert set(payload["state_dict"]) == set(trained_like.state_dict())
    assert "lcw2.basis" not in payload["state_dict"]  # fixed by the width, not stored


def test_load_onto_device(tmp_path, trained_like):
    path = save_model(trained_like, tmp_path / "m.pt")
    loaded = load_model(path, device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.parameters())


def test_save_needs_a_spec(tmp_path):
    with pytest.raises(SpecError, match="built by build_model"):
        save_model(nn.Linear(2, 2), tmp_path / "x.pt")


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="no model file at") as caught:
        load_model(tmp_path / "absent.pt")
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, ValueError)


def test_directory(tmp_path):
    with pytest.raises(NotAModelFileError, match="is a directory"):
        load_model(tmp_path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a model\n")
    with pytest.raises(NotAModelFileError, match="not a PyTorch archive"):
        load_model(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CorruptModelFileError, match="is empty"):
        load_model(path)


def test_bare_state_dict(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(nn.Linear(2, 3).state_dict(), path)
    with pytest.raises(NotAModelFileError, match="bare state dict of 2 tensors"):
        load_model(path)


def test_pickled_module_is_not_unpickled(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 3), path)
    with pytest.raises(NotAModelFileError, match="pickled Python objects"):
        load_model(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_file(tmp_path, trained_like, keep):
    path = save_model(trained_like, tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CorruptModelFileError, match="truncated or damaged") as caught:
        load_model(path)
    assert "\n" not in str(caught.value)


def test_damaged_bytes(tmp_path, trained_like):
    path = save_model(trained_like, tmp_path / "m.pt")
    data = bytearray(path.read_bytes())
    for offset in range(64, len(data) - 64, 97):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptModelFileError):
        load_model(path)


def test_weights_that_do_not_fit_the_spec(tmp_path, trained_like):
    path = save_model(trained_like, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["spec"]["width"] = 8
    torch.save(payload, path)
    with pytest.raises(CorruptModelFileError, match="do not fit the spec"):
        load_model(path)


@pytest.fixture
def nothing_is_built(monkeypatch):
    """Building fails the test: a spec the weights cannot fill must be refused before."""

    def built(spec):
        raise AssertionError(f"a model was built for {spec}")

    monkeypatch.setattr("variability.arch.files.rebuild", built)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 200_000}, r"linear1.weight has shape \(7, 3\); the spec's width 200000"),
        ({"depth": 10**7}, "it describes 489,999,995 parameters; the file holds 142 values"),
        ({"d_out": 5}, r"out.weight has shape \(2, 7\)"),
    ],
)
def test_spec_larger_than_the_weights_is_refused_before_building(
    tmp_path, trained_like, nothing_is_built, change, message
):
    """A 4-KB file whose spec says width 200,000 would have allocated hundreds of GB."""
    path = save_model(trained_like, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["spec"].update(change)
    torch.save(payload, path)
    assert path.stat().st_size < 8192
    with pytest.raises(CorruptModelFileError, match="do not fit the spec") as refused:
        load_model(path)
    assert refused.match(message)


def test_spec_that_cannot_be_built(tmp_path, trained_like):
    path = save_model(trained_like, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["spec"]["family"] = "transformer"
    torch.save(payload, path)
    with pytest.raises(CorruptModelFileError, match="spec that cannot be built"):
        load_model(path)


def test_newer_format(tmp_path, trained_like):
    path = save_model(trained_like, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 2
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="newer"):
        load_model(path)


def test_all_file_errors_are_value_errors():
    for error in (ModelFileNotFoundError, NotAModelFileError, CorruptModelFileError):
        assert issubclass(error, ModelFileError) and issubclass(error, ValueError)
