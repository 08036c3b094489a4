"""How long the trainer takes for the cells of a small comparison (one seed each).

Every family at every depth, built at one parameter budget on the checkerboard and trained with
``train`` (Monitor every 50 steps on the 6,561-point grid, validation every 50 steps, checkpoints,
final scoring of model.pt): the cost each cell of ``variability compare`` pays for training. The
first cell also pays the one-off import of what Adam needs (torch._dynamo, about 1 to 2 s).

    python benchmarks/bench_trainer.py [--steps 600] [--params 4500] [--depths 1,2,4,8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from variability import build_model, load_task
from variability.runs.trainer import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--params", type=int, default=4500)
    parser.add_argument("--depths", default="1,2,4,8")
    parser.add_argument("--families", default="fc,lcw,han")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = load_task("checkerboard", 0)
    config = TrainConfig(steps=args.steps, lr=3e-3, optimizer="adam", batch_size=128, every=50)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
        f"{os.getloadavg()[0]:.2f}; {args.steps} steps, {args.params} parameters"
    )
    total = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for depth in map(int, args.depths.split(",")):
            for family in args.families.split(","):
                model = build_model(family, 2, 1, depth, params=args.params, seed=0)
                start = time.perf_counter()
                result = train(model, task, config, os.path.join(folder, f"{family}{depth}"))
                seconds = time.perf_counter() - start
                total += seconds
                print(
                    f"  {family:<4} depth {depth:<3} width {model.spec['width']:<5} "
                    f"{seconds:6.2f} s   test {result.metric} {result.test:.3f}"
                )
    print(f"  total {total:.1f} s")


if __name__ == "__main__":
    main()
