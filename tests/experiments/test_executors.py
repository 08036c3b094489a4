"""The executor choice without a cluster: Ray missing, how a job's device and resources are
chosen on a cluster, and how a run directory travels (in_job, run_files)."""

from __future__ import annotations

import importlib.abc
import sys

import pytest
import torch
from typer.testing import CliRunner

from variability.cli.app import app
from variability.errors import UserError
from variability.experiments import in_job
from variability.experiments.executors import RAY_HINT, open_executor
from variability.experiments.jobs import LocalExecutor
from variability.experiments.run_files import bring_home, leave_mark, pack, same_files


class NoRay(importlib.abc.MetaPathFinder):
    """An import hook: Ray is not installed, as far as this process can tell."""

    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture
def without_ray(monkeypatch):
    for name in list(sys.modules):
        if name == "ray" or name.startswith("ray.") or name.endswith(".ray_pool"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NoRay(), *sys.meta_path])


@pytest.mark.parametrize(
    "command", [["compare", "--steps", "2"], ["reproduce", "redundancy", "--smoke"]]
)
def test_without_the_extra_executor_ray_exits_2_naming_it(without_ray, tmp_path, command):
    result = CliRunner().invoke(
        app, [*command, "--executor", "ray", "--out", str(tmp_path / "out")], env={"CI": "true"}
    )
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stderr.strip() == f"error: {RAY_HINT}"
    assert 'pip install "variability[ray]"' in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_local_executor_needs_no_ray_and_refuses_a_ray_address(without_ray):
    assert isinstance(open_executor("local"), LocalExecutor)
    with pytest.raises(UserError, match="--ray-address applies to --executor ray only"):
        open_executor("local", address="127.0.0.1:6379")
    with pytest.raises(UserError, match="unknown executor 'dask'"):
        open_executor("dask")


def test_on_a_cluster_auto_means_cuda_when_it_has_gpus_and_a_gpu_job_asks_for_one_gpu():
    from variability.experiments.ray_pool import cluster_device, task_resources

    assert cluster_device("auto", gpus=32) == torch.device("cuda")
    assert cluster_device("auto", gpus=0) == torch.device("cpu")
    assert cluster_device("cuda:3", gpus=8) == torch.device("cuda")  # Ray's GPU is its cuda:0
    assert cluster_device("cpu", gpus=8) == torch.device("cpu")
    with pytest.raises(UserError, match="the Ray cluster has no GPU"):
        cluster_device("cuda", gpus=0)
    assert task_resources(torch.device("cuda")) == {"num_gpus": 1, "num_cpus": 0}
    assert task_resources(torch.device("cpu")) == {"num_cpus": 1}


def test_a_job_writes_its_directory_in_place_or_in_its_copy(tmp_path):
    home = tmp_path / "cmp" / "cells" / "fc-d2-s0"
    assert in_job.job_dir(home) == home  # outside a job, and on this machine's engines
    moved = in_job.Moved(tmp_path, home, tmp_path / "scratch" / "fc-d2-s0")
    with in_job.running("fc-d2-s0", moved=moved):
        assert in_job.job_dir(home / "checkpoints") == moved.copy / "checkpoints"
        assert in_job.job_dir("cmp/cells/fc-d2-s0") == moved.copy  # relative to the driver
        assert in_job.job_dir(tmp_path / "elsewhere") == tmp_path / "elsewhere"
        assert in_job.job_name() == "fc-d2-s0"
    assert in_job.job_name() is None


def test_a_returned_run_directory_replaces_the_drivers_copy_whole(tmp_path):
    source = tmp_path / "worker" / "run"
    (source / "checkpoints").mkdir(parents=True)
    (source / "metrics.jsonl").write_text('{"step": 1}\n')
    (source / "checkpoints" / "last.pt").write_bytes(b"\x00\x01")
    home = tmp_path / "driver" / "run"
    (home / "checkpoints").mkdir(parents=True)
    (home / "checkpoints" / "stale.pt").write_bytes(b"old")  # from an earlier, local attempt
    (tmp_path / "driver" / ".run.incoming-1").mkdir()  # left by a driver killed mid-swap
    files = pack(source)
    assert files == {"checkpoints/last.pt": b"\x00\x01", "metrics.jsonl": b'{"step": 1}\n'}
    bring_home(files, home)
    assert pack(home) == files
    assert sorted(p.name for p in (tmp_path / "driver").iterdir()) == ["run"]


def test_a_worker_shares_the_drivers_files_only_if_it_reads_the_drivers_token(tmp_path):
    mark = leave_mark(tmp_path / "cells")
    assert same_files(mark)
    (tmp_path / "cells" / ".variability-shared-check").write_text("another run's token")
    assert not same_files(mark)
