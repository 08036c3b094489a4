"""How to run a reproduction's independent models fastest on this machine: threads and workers.

The same jobs (a slice of a reproduction, by default variability-depth at full size with a few
seeds) run one after another in each configuration, side by side in this one run:

- ``in-process, N threads``: every job in this process with torch's default thread count;
- ``in-process, 1 thread``: every job in this process with ``torch.set_num_threads(1)``;
- ``W workers x 1 thread``: the experiments' job pool, one single-threaded process per job.

Start it with ``OMP_WAIT_POLICY=PASSIVE`` in the environment to see that setting's effect on the
multi-threaded configuration (it must be set before torch is imported).

    python benchmarks/bench_reproductions.py [--name variability-depth] [--seeds 3] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from variability.experiments import jobs
from variability.experiments.jobs import usable_cores
from variability.experiments.reproductions import REPRODUCTIONS, Options


def timed(name: str, options: Options) -> float:
    start = time.perf_counter()
    REPRODUCTIONS[name].run(options, lambda n: None)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="variability-depth", choices=list(REPRODUCTIONS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default="/tmp/bench-reproductions")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    workers = usable_cores()
    print(
        f"{args.name} ({'smoke' if args.smoke else 'full'} size, {args.seeds} seeds); torch "
        f"{torch.__version__}, {workers} cores, default {default_threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )
    configurations = [
        (f"in-process, {default_threads} threads", default_threads, 1),
        ("in-process, 1 thread", 1, 1),
        (f"{workers} workers x 1 thread", 1, workers),
    ]
    times: dict[str, list[float]] = {label: [] for label, _, _ in configurations}
    for repeat in range(args.repeat):
        for label, threads, count in configurations:
            folder = Path(args.out) / f"{repeat}-{count}-{threads}"
            options = Options(smoke=args.smoke, seeds=args.seeds, workers=count, folder=folder)
            load = os.getloadavg()[0]
            if count == 1 and threads != 1:
                # The job pool pins one thread per job on the CPU; bypass it for the default.
                saved = jobs.job_threads
                jobs.job_threads = lambda device: None
                try:
                    seconds = timed(args.name, options)
                finally:
                    jobs.job_threads = saved
            else:
                seconds = timed(args.name, options)
            times[label].append(seconds)
            print(f"  {label:<28} {seconds:7.1f} s   (load average before: {load:.2f})")
    base = min(times[configurations[0][0]])
    print("best of each, and its speed-up over the first:")
    for label, values in times.items():
        print(f"  {label:<28} {min(values):7.1f} s   x{base / min(values):.2f}")


if __name__ == "__main__":
    main()
