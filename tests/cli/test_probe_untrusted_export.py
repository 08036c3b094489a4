"""A crafted ``.pt2`` archive never runs code without ``--trust-pickle``.

Each hostile archive below is a valid export with one member rewritten so that
``torch.export.load`` (or the module it returns) would run a payload that creates a marker file.
Without the flag: exit 2, one line naming the member, no marker. With the flag, the payload runs
(so each archive really is hostile, and the check is what stopped it).
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from variability.loading import UntrustedPickleError, load_user_model
from variability.loading.export_archive import _check_expression, check_export_archive

from .conftest import TouchOnUnpickle, export_program, small_fc

Members = dict[str, bytes]


def members_of(path: Path) -> tuple[str, Members]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        root = names[0].split("/", 1)[0]
        return root, {name[len(root) + 1 :]: archive.read(name) for name in names}


def write_archive(path: Path, root: str, members: Members) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(f"{root}/{name}", data)
    return path


def touch_code(marker: Path) -> str:
    return f"__import__('pathlib').Path('{marker}').touch()"


def pickled_weight(members: Members, marker: Path) -> str:
    config = json.loads(members["data/weights/model_weights_config.json"])
    entry = next(iter(config["config"].values()))
    entry["use_pickle"] = True
    members["data/weights/" + entry["path_name"]] = pickle.dumps(TouchOnUnpickle(marker))
    members["data/weights/model_weights_config.json"] = json.dumps(config).encode()
    return "data/weights/" + entry["path_name"]


def pickled_constant(members: Members, marker: Path) -> str:
    buffer = io.BytesIO()
    torch.save(TouchOnUnpickle(marker), buffer)
    entry = {"path_name": "tensor_0", "is_param": False, "use_pickle": True, "tensor_meta": None}
    members["data/constants/model_constants_config.json"] = json.dumps(
        {"config": {"c": entry}}
    ).encode()
    members["data/constants/tensor_0"] = buffer.getvalue()
    return "data/constants/tensor_0"


def opaque_constant(members: Members, marker: Path) -> str:
    entry = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True}
    entry["tensor_meta"] = None
    members["data/constants/model_constants_config.json"] = json.dumps(
        {"config": {"c": entry}}
    ).encode()
    members["data/constants/opaque_obj_0"] = pickle.dumps(TouchOnUnpickle(marker))
    return "data/constants/opaque_obj_0"


def sample_inputs(members: Members, marker: Path) -> str:
    buffer = io.BytesIO()
    torch.save(TouchOnUnpickle(marker), buffer)
    members["data/sample_inputs/model.pt"] = buffer.getvalue()
    return "data/sample_inputs/model.pt"


def shape_expression(members: Members, marker: Path) -> str:
    text = members["models/model.json"].decode()
    assert '{"as_int": 4}' in text  # the example batch of export_program(dynamic=False)
    evil = {"as_expr": {"expr_str": touch_code(marker), "hint": {"as_int": 4}}}
    members["models/model.json"] = text.replace('{"as_int": 4}', json.dumps(evil), 1).encode()
    return "models/model.json"


def guard_code(members: Members, marker: Path) -> str:
    program = json.loads(members["models/model.json"])
    program["guards_code"] = [f"{touch_code(marker)} is None"]
    members["models/model.json"] = json.dumps(program).encode()
    return "models/model.json"


HOSTILE: dict[str, Callable[[Members, Path], str]] = {
    "pickled weight": pickled_weight,
    "pickled tensor constant": pickled_constant,
    "opaque object constant": opaque_constant,
    "pickled sample inputs": sample_inputs,
    "sympy shape expression": shape_expression,
    "guard code": guard_code,
}


@pytest.fixture
def hostile_export(tmp_path) -> Callable[[str], tuple[Path, Path, str]]:
    """``hostile_export(kind)``: (archive, marker its payload would create, member named)."""

    def make(kind: str) -> tuple[Path, Path, str]:
        valid = export_program(small_fc(), tmp_path / "valid.pt2", dynamic=False)
        root, members = members_of(valid)
        marker = tmp_path / f"pwned-{kind.replace(' ', '-')}"
        member = HOSTILE[kind](members, marker)
        return write_archive(tmp_path / "evil.pt2", root, members), marker, member

    return make


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_archive_refused_without_running_code(cli, hostile_export, kind):
    path, marker, member = hostile_export(kind)
    line = cli("probe", path, "--samples", "8").assert_user_error(member, "--trust-pickle")
    assert "evil.pt2" in line
    assert not marker.exists()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_archive_refused_by_the_python_loader(hostile_export, kind):
    path, marker, member = hostile_export(kind)
    with pytest.raises(UntrustedPickleError, match=member.replace(".", r"\.")):
        load_user_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_trust_pickle_lifts_the_refusal(cli, hostile_export, kind):
    path, marker, _ = hostile_export(kind)
    cli("probe", path, "--samples", "8", "--trust-pickle")  # may fail later: the model is broken
    assert marker.exists()  # the payload ran: the archive was hostile, the check stopped it


def test_graph_node_calling_a_python_function_is_refused(cli, tmp_path):
    valid = export_program(small_fc(), tmp_path / "valid.pt2", dynamic=False)
    root, members = members_of(valid)
    program = json.loads(members["models/model.json"])
    node = program["graph_module"]["graph"]["nodes"][0]
    node["target"] = "torch.os.system"
    node["inputs"] = [{"name": "command", "arg": {"as_string": "true"}, "kind": 1}]
    members["models/model.json"] = json.dumps(program).encode()
    path = write_archive(tmp_path / "calls.pt2", root, members)
    cli("probe", path).assert_user_error("models/model.json", "'torch.os.system'")


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("data/aotinductor/model/model.so", "native code"),
        ("data/weights/model.pt", "older pickled layout"),
        ("data/constants/custom_obj_0", "pickled Python object"),
        ("serialized_state_dict.pt", "lies outside"),
    ],
)
def test_members_torch_would_run_are_refused(cli, tmp_path, member, reason):
    valid = export_program(small_fc(), tmp_path / "valid.pt2")
    root, members = members_of(valid)
    path = write_archive(tmp_path / "extra.pt2", root, members)
    with zipfile.ZipFile(path, "a") as archive:
        name = member if member.startswith("serialized") else f"{root}/{member}"
        archive.writestr(name, b"\x80\x04N.")
    cli("probe", path).assert_user_error(member, reason)


def test_torch_save_file_dressed_as_an_export_gives_one_line(cli, tmp_path):
    """A torch.save archive with an archive_format entry: one line with or without the flag
    (torch's own logged tracebacks are silenced, and shown with --verbose)."""
    path = tmp_path / "dressed.pt2"
    torch.save({"w": torch.ones(2)}, path)
    with zipfile.ZipFile(path, "a") as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{root}/archive_format", "pt2")
    cli("probe", path).assert_user_error("dressed.pt2", "data.pkl")
    cli("probe", path, "--trust-pickle").assert_user_error(
        "dressed.pt2", "cannot be loaded", "--verbose shows torch's log"
    )


def test_verbose_shows_torchs_log_of_a_file_it_cannot_read(cli, tmp_path):
    path = tmp_path / "dressed.pt2"
    torch.save({"w": torch.ones(2)}, path)
    with zipfile.ZipFile(path, "a") as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{root}/archive_format", "pt2")
    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append  # torch's own handler writes to the process's stderr
    logger = logging.getLogger("torch.export")  # which has its own handler, not propagating
    logger.addHandler(handler)
    try:
        cli("probe", path, "--trust-pickle").assert_user_error("cannot be loaded")
        assert logged == []
        verbose = cli("probe", path, "--trust-pickle", "--verbose")
    finally:
        logger.removeHandler(handler)
    assert verbose.exit_code == 2 and verbose.stderr.startswith("error: ")
    assert any("PytorchStreamReader" in str(r.exc_info) for r in logged), logged


class WithConstant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(2, 5)
        self.register_buffer("offset", torch.linspace(-1, 1, 5))
        self.scale = torch.full((5,), 0.5)  # a tensor constant, not a buffer

    def forward(self, x):
        return torch.tanh(self.first(x) * self.scale + self.offset).sum(1, keepdim=True)


def test_valid_exports_pass_the_check(tmp_path, probe_json):
    """Buffers, tensor constants, a dynamic batch (symbolic shapes and guards) all load."""
    path = tmp_path / "constant.pt2"
    batch = torch.export.Dim("batch", min=2, max=4096)
    example = (torch.randn(4, 2),)
    program = torch.export.export(WithConstant(), example, dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    _, members = members_of(path)
    document = json.loads(members["models/model.json"])
    assert "expr_str" in members["models/model.json"].decode()  # the check had symbols to read
    assert document["range_constraints"]
    check_export_archive(path)
    result = probe_json(path, "--samples", "64")
    assert [site["kind"] for site in result["sites"]] == ["tanh"]


@pytest.mark.parametrize(
    "text",
    [
        "s0 + 1",
        "Symbol('s77', positive=True, integer=True)",
        "L['y'].size()[0] <= L['x'].size()[0]",
        "Max(2, FloorDiv(s0, 2)) * 3",
        "s0**2 - 1 >= 0",
        "Eq(Mod(s1, 4), 0)",
        "math.isnan(L['x'])",
    ],
)
def test_plain_shape_arithmetic_is_accepted(text):
    _check_expression(Path("m.pt2"), "models/model.json", text)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "s0.__class__",
        "open('f')",
        "getattr(s0, 'real')",
        "L['a\"+s0+\"b']",  # would close the quote of torch's guard message
        "L['_private']",
        "9**9**9",  # would hang sympy
        "(lambda: 1)()",
        "[s0 for s0 in s1]",
        "Symbol('s0', **{'positive': True})",
        "math.system",
        "s0 if s1 else s2",
        "f'{s0}'",
        "x" * 3000,
    ],
)
def test_anything_else_in_an_expression_is_refused(text):
    with pytest.raises(UntrustedPickleError, match=r"models/model\.json"):
        _check_expression(Path("m.pt2"), "models/model.json", text)
