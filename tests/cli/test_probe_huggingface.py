"""``variability probe`` on Hugging Face model folders (written here by ``save_pretrained``, random
weights) and on plain ``.safetensors`` weights with ``--arch``.

Each working case compares the command's JSON with ``probe_model`` on the in-memory model and the
same token ids: loading must not change a figure. The refusals check that no code from the
folder ran.
"""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
import transformers

from variability import probe_model
from variability.loading import generate_inputs

from .conftest import PLAIN, TouchOnUnpickle, make_plain
from .test_probe_formats import assert_same_figures, generated

BERT_SITES = [
    "encoder.layer.0.intermediate.intermediate_act_fn",
    "encoder.layer.1.intermediate.intermediate_act_fn",
    "pooler.activation",
]


def tiny_bert() -> transformers.BertModel:
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=24,
    )
    torch.manual_seed(0)
    return transformers.BertModel(config).eval()


def tokens(length: int, vocab: int = 50, samples: int = 64) -> torch.Tensor:
    inputs = generate_inputs((length,), samples, distribution="tokens", vocab=vocab, seed=0)
    return torch.cat(list(inputs.batches(samples)))


@pytest.fixture
def bert_folder(tmp_path):
    model = tiny_bert()
    folder = tmp_path / "bert"
    model.save_pretrained(folder)
    return model, folder


def test_folder_with_safetensors_weights(probe_json, bert_folder):
    model, folder = bert_folder
    document = probe_json(folder, "--samples", "64", "--seq-len", "10")
    assert document["model"]["format"] == "Hugging Face model folder"
    assert "BertModel" in document["model"]["description"]
    assert document["inputs"]["sample_shape"] == [10] and document["inputs"]["vocab"] == 50
    assert [s["name"] for s in document["sites"]] == BERT_SITES
    assert_same_figures(document, probe_model(model, tokens(10)).to_dict())


def test_folder_with_pytorch_model_bin_read_as_weights_only(probe_json, bert_folder):
    model, folder = bert_folder
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    document = probe_json(folder, "--samples", "64")
    assert "pytorch_model.bin" in document["model"]["description"]
    # no --seq-len: 64 token ids, capped at the model's 24 positions
    assert document["inputs"]["sample_shape"] == [24]
    assert_same_figures(document, probe_model(model, tokens(24)).to_dict())


def test_pickled_code_in_pytorch_model_bin_is_never_run(cli, bert_folder, tmp_path):
    _, folder = bert_folder
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save({"weight": TouchOnUnpickle(marker)}, folder / "pytorch_model.bin")
    run = cli("probe", folder)
    run.assert_user_error("pytorch_model.bin", "pickled Python objects", "not loaded")
    assert not marker.exists()


def test_remote_code_is_refused_without_the_flag(cli, bert_folder, tmp_path):
    _, folder = bert_folder
    marker = tmp_path / "pwned"
    (folder / "modeling_evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    run = cli("probe", folder)
    run.assert_user_error("auto_map", "--trust-remote-code")
    assert not marker.exists()


REMOTE_CODE = """
import pathlib
import torch
from transformers import PretrainedConfig, PreTrainedModel

pathlib.Path({marker!r}).touch()


class TinyConfig(PretrainedConfig):
    model_type = "variability-tiny"

    def __init__(self, vocab_size=20, width=6, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.width = vocab_size, width


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.emb = torch.nn.Embedding(config.vocab_size, config.width)
        self.lin = torch.nn.Linear(config.width, config.width)
        self.post_init()

    def forward(self, input_ids):
        return torch.relu(self.lin(self.emb(input_ids)))
"""


def test_remote_code_runs_with_the_flag(cli, tmp_path):
    folder, marker = tmp_path / "tiny", tmp_path / "ran"
    folder.mkdir()
    (folder / "modeling_tiny.py").write_text(REMOTE_CODE.format(marker=str(marker)))
    config = {
        "model_type": "variability-tiny",
        "architectures": ["TinyModel"],
        "auto_map": {
            "AutoConfig": "modeling_tiny.TinyConfig",
            "AutoModel": "modeling_tiny.TinyModel",
        },
        "vocab_size": 20,
        "width": 6,
    }
    (folder / "config.json").write_text(json.dumps(config))
    generator = torch.Generator().manual_seed(0)
    weights = {
        "emb.weight": torch.randn(20, 6, generator=generator),
        "lin.weight": torch.randn(6, 6, generator=generator),
        "lin.bias": torch.randn(6, generator=generator),
    }
    safetensors.torch.save_file(weights, folder / "model.safetensors")
    run = cli("probe", folder, "--trust-remote-code", "--samples", "40", "--seq-len", "5")
    assert run.exit_code == 0, run.stderr
    assert marker.exists()
    document = cli(
        "probe", folder, "--trust-remote-code", "--samples", "40", "--seq-len", "5", "--json", "-"
    ).json()
    assert [s["name"] for s in document["sites"]] == ["relu"]
    ids = tokens(5, vocab=20, samples=40)
    z = torch.nn.functional.linear(
        weights["emb.weight"][ids], weights["lin.weight"], weights["lin.bias"]
    ).reshape(-1, 6)
    expected = float((z > 0).double().mean())
    assert document["sites"][0]["activation_ratio"] == pytest.approx(expected, abs=1e-12)


def test_gpt2_folder(probe_json, tmp_path):
    config = transformers.GPT2Config(
        vocab_size=40, n_embd=16, n_layer=2, n_head=2, n_positions=16, bos_token_id=0,
        eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(1)
    model = transformers.GPT2Model(config).eval()
    model.save_pretrained(tmp_path / "gpt2")
    document = probe_json(tmp_path / "gpt2", "--samples", "32", "--seq-len", "12")
    assert [s["name"] for s in document["sites"]] == ["h.0.mlp.act", "h.1.mlp.act"]
    assert_same_figures(document, probe_model(model, tokens(12, 40, 32)).to_dict())


def test_safetensors_weights_with_arch(probe_json, tmp_path):
    model = make_plain()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)  # not the weights the factory draws
    safetensors.torch.save_file(model.state_dict(), tmp_path / "weights.safetensors")
    document = probe_json(tmp_path / "weights.safetensors", "--arch", PLAIN, "--samples", "300")
    assert document["model"]["format"] == "safetensors weights"
    assert_same_figures(document, probe_model(model, generated((3,))).to_dict())


def test_safetensors_told_from_bytes_not_name(probe_json, tmp_path):
    model = make_plain()
    safetensors.torch.save_file(model.state_dict(), tmp_path / "weights.bin")
    document = probe_json(tmp_path / "weights.bin", "--arch", PLAIN, "--samples", "300")
    assert document["model"]["format"] == "safetensors weights"


@pytest.mark.parametrize(
    ("setup", "args", "fragments"),
    [
        ("safetensors", (), ("--arch", "safetensors weights")),
        ("damaged", ("--arch", PLAIN), ("damaged .safetensors",)),
        ("empty folder", (), ("directory", "config.json")),
        ("no weights", (), ("no weights", "model.safetensors")),
        ("bert", ("--arch", PLAIN), ("--arch", "directory")),
        ("bert", ("--dist", "uniform"), ("token ids", "--dist")),
        ("bert", ("--seq-len", "30"), ("longer than", "24 positions")),
        ("bert", ("--seq-len", "8", "--input-shape", "8"), ("--seq-len and --input-shape",)),
        ("plain", ("--arch", PLAIN, "--seq-len", "8"), ("does not take token ids",)),
    ],
)
def test_bad_input_is_one_clear_message(cli, tmp_path, setup, args, fragments):
    if setup in ("safetensors", "damaged", "plain"):
        path = tmp_path / "weights.safetensors"
        safetensors.torch.save_file(make_plain().state_dict(), path)
        if setup == "damaged":
            path.write_bytes(path.read_bytes()[:-20])
        if setup == "plain":
            path = tmp_path / "weights.pt"
            torch.save(make_plain().state_dict(), path)
    else:
        path = tmp_path / "folder"
        path.mkdir()
        if setup == "no weights":
            (path / "config.json").write_text("{}")
        if setup == "bert":
            tiny_bert().save_pretrained(path)
    cli("probe", path, *args).assert_user_error(*fragments)
