"""Does the remedy matter for training? Default initialisation against LSUV on the checkerboard.

FC ReLU networks at about 3,000 parameters (the width whose count is nearest to 3,000) at depths
8, 32 and 64, 5 seeds each, built by ``build_model`` (Kaiming-normal weights, zero biases). Each
model is trained twice on the same protocol, once as built ("default") and once after
``variability.reinitialize(model, x_train, "lsuv")`` on the training inputs (no labels, no
validation or test inputs). The protocol is ``variability compare``'s: the toolkit's trainer
(``variability.runs.trainer.train``), Adam at lr 0.01, batch 512, ``--steps`` steps, the
checkpoint with the best validation accuracy scored on the test split. Recorded per model:
collapse to constants (C2C) on the checkerboard's 6,561-point grid at initialisation (after the
remedy, for lsuv) and after training (the weights of the last step), the test accuracy of the
chosen checkpoint beside the majority-class baseline of the test split, and the step it was
chosen at (step 0 is the initial model: training never improved on it on validation).

One torch thread per process, ``--workers`` processes (2 by default). Results go to
``OUT/results.jsonl`` (one line per model, written as each finishes) and the tables to stdout,
ready for docs/remedy.md.

    python benchmarks/remedy_training.py [--steps 2000] [--seeds 5] [--depths 8,32,64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

BUDGET = 3000
INITS = ("default", "lsuv")


def nearest_width(depth: int, budget: int = BUDGET) -> tuple[int, int]:
    """The FC width whose parameter count is nearest to ``budget``, and that count."""
    from variability.arch import param_count

    counts = {w: param_count("fc", 2, 1, depth, w) for w in range(2, 200)}
    width = min(counts, key=lambda w: (abs(counts[w] - budget), w))
    return width, counts[width]


def run_one(depth: int, seed: int, init: str, steps: int, folder: str) -> dict:
    """Build, (remedy,) probe, train, score one model; runs in a worker process."""
    torch.set_num_threads(1)
    from variability import build_model, load_task, probe_model, reinitialize
    from variability.runs.trainer import TrainConfig, probe_set, train

    started = time.perf_counter()
    task = load_task("checkerboard", 0)
    width, params = nearest_width(depth)
    model = build_model("fc", task.d_in, task.d_out, depth, width=width, seed=seed)
    remedy_seconds = 0.0
    if init == "lsuv":
        begin = time.perf_counter()
        reinitialize(model, task.x_train, "lsuv")
        remedy_seconds = time.perf_counter() - begin
    grid = probe_set(task, 8192)
    at_init = probe_model(model, grid, batch_size=8192, redundancy=False)
    config = TrainConfig(
        steps=steps, lr=1e-2, optimizer="adam", batch_size=512, seed=seed, every=steps // 10
    )
    result = train(model, task, config, Path(folder) / f"d{depth}-s{seed}-{init}", quiet=True)
    at_end = probe_model(model, grid, batch_size=8192, redundancy=False)  # the last step's weights
    return {
        "depth": depth,
        "width": width,
        "params": params,
        "seed": seed,
        "init": init,
        "collapsed_at_init": bool(at_init.network_collapsed),
        "output_v_at_init": at_init.output.variability,
        "collapsed_after_training": bool(at_end.network_collapsed),
        "output_v_after_training": at_end.output.variability,
        "chosen_collapsed": bool(result.network_collapsed),
        "test": result.test,
        "val": result.val,
        "best_step": result.best_step,
        "remedy_seconds": round(remedy_seconds, 2),
        "seconds": round(time.perf_counter() - started, 1),
    }


def majority_baseline() -> float:
    from variability import load_task

    y = load_task("checkerboard", 0).y_test.float()
    share = float(y.mean())
    return max(share, 1.0 - share)


def tables(rows: list[dict], baseline: float) -> str:
    lines = [
        f"Test accuracy baseline (majority class of the test split): {baseline:.3f}",
        "",
        "| depth | width (params) | init | C2C at init | C2C after training | test accuracy "
        "mean (min-max) | above baseline | chosen at step 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for depth in sorted({r["depth"] for r in rows}):
        for init in INITS:
            group = [r for r in rows if r["depth"] == depth and r["init"] == init]
            if not group:
                continue
            tests = [r["test"] for r in group]
            lines.append(
                f"| {depth} | {group[0]['width']} ({group[0]['params']:,}) | {init} | "
                f"{sum(r['collapsed_at_init'] for r in group)}/{len(group)} | "
                f"{sum(r['collapsed_after_training'] for r in group)}/{len(group)} | "
                f"{statistics.mean(tests):.3f} ({min(tests):.3f}-{max(tests):.3f}) | "
                f"{sum(t > baseline + 0.005 for t in tests)}/{len(group)} | "
                f"{sum(r['best_step'] == 0 for r in group)}/{len(group)} |"
            )
    lines += ["", "Per model (test accuracy; * collapsed at init; + collapsed after training):", ""]
    for depth in sorted({r["depth"] for r in rows}):
        for init in INITS:
            group = sorted(
                (r for r in rows if r["depth"] == depth and r["init"] == init),
                key=lambda r: r["seed"],
            )
            cells = [
                f"{r['test']:.3f}{'*' if r['collapsed_at_init'] else ''}"
                f"{'+' if r['collapsed_after_training'] else ''}"
                for r in group
            ]
            lines.append(f"- depth {depth}, {init}: {', '.join(cells)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--depths", default="8,32,64")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="reports/remedy-training")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = tempfile.mkdtemp(prefix="runs-", dir=out)
    jobs = [(d, s, i) for d in depths for s in range(args.seeds) for i in INITS]
    jobs.sort(key=lambda job: -job[0])  # the deepest first: the slowest finish early
    started = time.perf_counter()
    print(
        f"torch {torch.__version__}; {len(jobs)} models, {args.steps} steps each, "
        f"{args.workers} workers of 1 thread; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    rows = []
    with (
        ProcessPoolExecutor(args.workers) as pool,
        open(out / "results.jsonl", "w") as log,
    ):
        futures = [pool.submit(run_one, d, s, i, args.steps, runs) for d, s, i in jobs]
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(
                f"depth {row['depth']:>2} seed {row['seed']} {row['init']:<7} test "
                f"{row['test']:.3f} C2C init {row['collapsed_at_init']!s:<5} after "
                f"{row['collapsed_after_training']!s:<5} {row['seconds']:.0f} s",
                flush=True,
            )
    print(f"\n{len(rows)} models in {time.perf_counter() - started:.0f} s\n")
    print(tables(rows, majority_baseline()))


if __name__ == "__main__":
    main()
