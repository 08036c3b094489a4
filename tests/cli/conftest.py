"""Model files of every format, probe-set files, and a CliRunner that keeps stdout and stderr apart.

Models are tiny (a few units per layer) so each invocation takes milliseconds once torch is loaded.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from variability import build_model, save_model
from variability.cli.app import app

WIDTH = 120
ENV = {"COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb", "CI": "true"}


@dataclass
class Run:
    """What one invocation left behind."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    def json(self) -> dict:
        return json.loads(self.stdout)

    def assert_user_error(self, *fragments: str) -> str:
        """Exit 2, one line on stderr containing every fragment, no traceback, nothing on stdout."""
        assert self.exit_code == 2, (self.exit_code, self.stdout, self.stderr, self.exception)
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, self.stderr
        assert "Traceback" not in self.stderr and self.stdout == ""
        for fragment in fragments:
            assert fragment in lines[0], (fragment, lines[0])
        return lines[0]


@pytest.fixture
def cli():
    """``cli("probe", "model.pt", ...)`` runs the app in-process and returns a Run."""
    runner = CliRunner()

    def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Run:
        result = runner.invoke(app, [str(a) for a in args], env={**ENV, **(env or {})})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr, result.exception)

    return invoke


def small_fc(seed: int = 0, depth: int = 3, width: int = 6, activation: str = "relu"):
    return build_model(
        "fc", d_in=2, d_out=1, depth=depth, width=width, activation=activation, seed=seed
    )


@pytest.fixture
def toolkit_file(tmp_path) -> Path:
    """A variability model file (FC, ReLU, 3 hidden layers of 6)."""
    return save_model(small_fc(), tmp_path / "model.pt")


def collapse(model: nn.Module) -> nn.Module:
    """Zero the last hidden Linear layer's weights: every input reaches the same constant."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        linears[-2].weight.zero_()
        linears[-2].bias.fill_(0.5)
    return model


@pytest.fixture
def collapsed_file(tmp_path) -> Path:
    return save_model(collapse(small_fc()), tmp_path / "collapsed.pt")


class Plain(nn.Module):
    """A user's own model class, as a state dict would come with."""

    def __init__(self, width: int = 5) -> None:
        super().__init__()
        self.first = nn.Linear(3, width)
        self.act = nn.Tanh()
        self.last = nn.Linear(width, 2)

    def forward(self, x):
        return self.last(self.act(self.first(x)))


def make_plain(width: int = 5) -> Plain:
    torch.manual_seed(0)
    return Plain(width)


class TouchOnUnpickle:
    """Unpickling this creates ``path``: proof of whether code from a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.fixture
def hostile_pickles(tmp_path) -> tuple[Path, list[Path]]:
    """(the file their payload would create, [a torch.save'd file, a bare pickle]) ."""
    marker = tmp_path / "pwned"
    torch_file = tmp_path / "hostile.pt"
    torch.save(TouchOnUnpickle(marker), torch_file)
    bare = tmp_path / "hostile.pkl"
    bare.write_bytes(pickle.dumps(TouchOnUnpickle(marker), protocol=4))
    assert not marker.exists()
    return marker, [torch_file, bare]


def export_program(model: nn.Module, path: Path, dynamic: bool = True) -> Path:
    example = (torch.randn(4, 2),)
    shapes = {"input": {0: torch.export.Dim("batch")}} if dynamic else None
    program = torch.export.export(model, example, dynamic_shapes=shapes)
    torch.export.save(program, path)
    return path


def save_torchscript(model: nn.Module, path: Path) -> Path:
    """A TorchScript archive of ``model`` (traced; torch's deprecation notice silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.trace(model, torch.randn(4, 2)), path)
    return path


PLAIN = "tests.cli.conftest:make_plain"
"""``--arch`` for a state dict of ``make_plain()``."""


@pytest.fixture
def probe_json(cli):
    """``probe_json(MODEL, *options)``: run ``probe --json -``, check exit 0, return the JSON."""

    def run(*args: str | Path) -> dict:
        result = cli("probe", *args, "--json", "-")
        assert result.exit_code == 0, result.stderr
        return result.json()

    return run
