"""The trainer: selection on validation, resume equal to an uninterrupted run, refusals."""

from __future__ import annotations

import json
import time

import pytest
import torch

from variability import build_model, load_model, load_task
from variability.runs import run_dir as run_dir_module
from variability.runs.batches import BatchOrder
from variability.runs.run_dir import RunDirError, read_metrics, read_records
from variability.runs.trainer import TrainConfig, train

CONFIG = TrainConfig(steps=60, every=5, eval_every=5, checkpoint_every=10, batch_size=64)


@pytest.fixture(scope="module")
def task():
    return load_task("checkerboard", 0)


def tiny(seed: int = 0):
    return build_model("fc", 2, 1, 2, width=8, seed=seed)


def interrupt_at(step: int):
    def progress(current: int, info: dict) -> None:
        if current == step:
            raise KeyboardInterrupt

    return progress


def comparable(records: list[dict]) -> list[tuple]:
    """Records without what legitimately differs between two runs (times, segments)."""
    keep = []
    for r in records:
        if r["type"] in ("probe", "step", "eval", "event", "finish"):
            keep.append(
                tuple(
                    sorted((k, v) for k, v in r.items() if k not in ("time", "segment", "seconds"))
                )
            )
    return keep


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, task):
    reference = train(tiny(), task, CONFIG, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):  # stops at step 37: last checkpoint at step 30
        train(tiny(), task, CONFIG, tmp_path / "b", on_progress=interrupt_at(37))
    written = read_records(tmp_path / "b" / "metrics.jsonl")
    assert max(r["step"] for r in written if r["type"] == "probe") == 35
    resumed = train(tiny(), task, CONFIG, tmp_path / "b", resume=True)
    assert resumed.resumed_from == 30
    assert (resumed.train, resumed.val, resumed.test, resumed.best_step) == (
        reference.train,
        reference.val,
        reference.test,
        reference.best_step,
    )
    a, b = load_model(tmp_path / "a" / "model.pt"), load_model(tmp_path / "b" / "model.pt")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    kept = read_records(tmp_path / "b" / "metrics.jsonl")
    assert comparable(kept) == comparable(read_records(tmp_path / "a" / "metrics.jsonl"))
    everything = read_records(tmp_path / "b" / "metrics.jsonl", superseded=True)
    superseded = [r for r in everything if r.get("superseded")]
    assert superseded and all(r["step"] > 30 and r["segment"] == 0 for r in superseded)
    assert [r["step"] for r in kept if r["type"] == "resume"] == [30]


def test_a_torn_line_at_a_checkpoint_step_is_written_again(tmp_path, task):
    """Killed right after the checkpoint of step 30, its last line (step 30's step record) torn:
    the resumed run continues after step 30, and writes that record again from the checkpoint."""
    reference = train(tiny(), task, CONFIG, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):  # stops right after the checkpoint of step 30
        train(tiny(), task, CONFIG, tmp_path / "b", on_progress=interrupt_at(30))
    metrics = tmp_path / "b" / "metrics.jsonl"
    data = metrics.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1]
    assert b'"type":"step","step":30' in last
    metrics.write_bytes(data[:-20])  # the last line torn, as a kill or a power loss leaves it
    resumed = train(tiny(), task, CONFIG, tmp_path / "b", resume=True)
    assert resumed.resumed_from == 30 and resumed.test == reference.test
    kept = read_records(metrics)
    assert [r["step"] for r in kept if r["type"] == "step"] == [1, *range(5, 61, 5)]
    assert comparable(kept) == comparable(read_records(tmp_path / "a" / "metrics.jsonl"))
    (resume,) = [r for r in kept if r["type"] == "resume"]
    assert resume["step"] == 30 and resume["dropped_bytes"] == len(last) - 19


def test_an_intact_file_gets_nothing_written_twice(tmp_path, task):
    reference = train(tiny(), task, CONFIG, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), task, CONFIG, tmp_path / "b", on_progress=interrupt_at(30))
    train(tiny(), task, CONFIG, tmp_path / "b", resume=True)
    kept = read_records(tmp_path / "b" / "metrics.jsonl")
    assert comparable(kept) == comparable(read_records(tmp_path / "a" / "metrics.jsonl"))
    assert reference.steps == 60


def test_seconds_count_the_whole_run_over_a_resume(tmp_path, task):
    """result.json's seconds: the first segment up to its checkpoint (step 30), then the rest."""

    def slow_until_37(step: int, info: dict) -> None:
        time.sleep(0.04)  # 30 steps of at least 0.04 s before the checkpoint: 1.2 s
        if step == 37:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny(), task, CONFIG, tmp_path / "run", on_progress=slow_until_37)
    started = time.perf_counter()
    resumed = train(tiny(), task, CONFIG, tmp_path / "run", resume=True)
    last_segment = time.perf_counter() - started
    assert resumed.seconds >= last_segment + 1.2
    stored = json.loads((tmp_path / "run" / "result.json").read_text())
    assert stored["seconds"] == resumed.seconds


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, task):
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), task, CONFIG, tmp_path / "run", on_progress=interrupt_at(15))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # cut short, as by a full disk
    with pytest.raises(RunDirError, match=r"checkpoint .* is damaged .* delete it"):
        train(tiny(), task, CONFIG, tmp_path / "run", resume=True)


def test_the_checkpoint_is_chosen_on_validation(tmp_path, task):
    result = train(tiny(1), task, CONFIG, tmp_path / "run")
    evals = read_metrics(tmp_path / "run", "eval")
    best = evals.loc[evals["metric"].idxmax()]  # the first of equal maxima, as the trainer keeps
    assert result.best_step == best["step"]
    assert result.val == pytest.approx(best["metric"], abs=1e-12)
    chosen = load_model(tmp_path / "run" / "model.pt")
    assert result.test == pytest.approx(task.evaluate(chosen, "test"), abs=1e-12)
    assert result.train == pytest.approx(task.evaluate(chosen, "train"), abs=1e-12)
    assert (tmp_path / "run" / "result.json").exists()
    finish = read_metrics(tmp_path / "run", "finish")
    assert list(finish["best_step"]) == [result.best_step]


def test_a_diverging_run_keeps_its_last_finite_checkpoint(tmp_path, task):
    config = TrainConfig(steps=20, every=5, batch_size=64, optimizer="sgd", lr=1e8)
    seen = []
    result = train(tiny(), task, config, tmp_path / "run", on_event=seen.append)
    evals = read_metrics(tmp_path / "run", "eval")
    assert evals["loss"].isna().iloc[-1]  # diverged: NaN, written as null
    assert result.best_step == 0 and result.val == evals["metric"].iloc[0]
    assert all(
        torch.isfinite(p).all() for p in load_model(tmp_path / "run" / "model.pt").parameters()
    )
    assert ("nonfinite", "loss") in {(e.kind, e.site) for e in seen}


def test_better_never_picks_nan():
    from variability.runs.trainer import _better

    nan = float("nan")
    assert _better(0.5, None) and _better(0.6, 0.5) and not _better(0.5, 0.5)
    assert not _better(nan, 0.5) and _better(0.1, nan) and not _better(nan, nan)


def test_a_finished_run_is_not_trained_again(tmp_path, task):
    first = train(tiny(), task, CONFIG, tmp_path / "run")
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    again = train(tiny(), task, CONFIG, tmp_path / "run", resume=True)
    assert again.already_finished and not first.already_finished
    assert (again.test, again.best_step) == (first.test, first.best_step)
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before


def test_an_existing_run_is_refused_without_resume_or_with_other_settings(tmp_path, task):
    train(tiny(), task, CONFIG, tmp_path / "run")
    with pytest.raises(RunDirError, match="already holds a run"):
        train(tiny(), task, CONFIG, tmp_path / "run")
    other = TrainConfig(steps=60, every=5, eval_every=5, checkpoint_every=10, batch_size=64, lr=0.1)
    with pytest.raises(RunDirError, match=r"other settings \(lr\)"):
        train(tiny(), task, other, tmp_path / "run", resume=True)
    with pytest.raises(RunDirError, match="model spec"):
        train(tiny(seed=5), task, CONFIG, tmp_path / "run", resume=True)


def test_full_disk_fails_before_the_first_step(tmp_path, task, monkeypatch):
    monkeypatch.setattr(run_dir_module, "free_bytes", lambda path: 2**20)
    steps = []
    with pytest.raises(RunDirError, match="free on the disk"):
        train(tiny(), task, CONFIG, tmp_path / "run", on_progress=lambda s, i: steps.append(s))
    assert steps == []
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_batches_are_epoch_permutations_and_a_function_of_the_step():
    order = BatchOrder(rows=10, batch_size=4, seed=3, device=torch.device("cpu"))
    stream = torch.cat([order.indices(step) for step in range(1, 6)])  # 20 rows: two epochs
    assert sorted(stream[:10].tolist()) == list(range(10))
    assert sorted(stream[10:].tolist()) == list(range(10))
    assert stream[:10].tolist() != stream[10:].tolist()
    fresh = BatchOrder(rows=10, batch_size=4, seed=3, device=torch.device("cpu"))
    assert torch.equal(fresh.indices(4), stream[12:16])
    other = BatchOrder(rows=10, batch_size=4, seed=4, device=torch.device("cpu"))
    assert not torch.equal(other.indices(1), stream[:4])


def test_bad_settings_are_refused_with_one_sentence():
    from variability.runs.trainer import TrainConfigError

    with pytest.raises(TrainConfigError, match="unknown optimizer 'rmsprop'"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(TrainConfigError, match="steps must be an integer >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(TrainConfigError, match="lr must be above 0"):
        TrainConfig(lr=0.0)
