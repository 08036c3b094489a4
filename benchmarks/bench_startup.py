"""How long the command line takes to start, beside ``python -c "import torch"``.

Each round runs, one after the other in fresh processes: ``import torch``; ``variability
--version``; ``variability --help``; ``variability probe`` on a small saved model (an FC net, 8
hidden layers of 16 units, 4,096 generated inputs); and the same probe in a script, timed from
after its ``import torch``: importing the toolkit, loading the model, making the inputs and
probing (the probe itself). Rounds alternate the commands so that changes in the machine's load
hit all alike; the figures are medians over the rounds.

Targets (issue 15): ``--version`` and ``--help`` at most a quarter of ``import torch`` (they do
not import torch); ``variability probe`` at most 1.3 times ``import torch`` plus the probe
itself.

    python benchmarks/bench_startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PROBE_ITSELF = """
import sys, time
import torch
start = time.perf_counter()
from variability import load_model, probe_model
from variability.loading import generate_inputs
model = load_model(sys.argv[1])
inputs = generate_inputs((2,), 4096, distribution="normal", seed=0)
probe_model(model, inputs.batches(1024))
print(time.perf_counter() - start)
"""


def seconds(command: list[str], cwd: Path) -> tuple[float, str]:
    """Wall time of one run, and its stdout (the run must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    script = str(BIN / "variability")
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        subprocess.run(
            [sys.executable, "-c", "from variability import build_model, save_model; "
             "save_model(build_model('fc', 2, 1, 8, width=16, seed=0), 'model.pt')"],
            cwd=cwd, check=True,
        )  # fmt: skip
        commands = {
            "import torch": [sys.executable, "-c", "import torch"],
            "variability --version": [script, "--version"],
            "variability --help": [script, "--help"],
            "variability probe model.pt": [script, "probe", "model.pt", "--quiet"],
        }
        times: dict[str, list[float]] = {name: [] for name in [*commands, "the probe itself"]}
        load = [os.getloadavg()[0]]
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(seconds(command, cwd)[0])
            _, printed = seconds([sys.executable, "-c", PROBE_ITSELF, "model.pt"], cwd)
            times["the probe itself"].append(float(printed))
        load.append(os.getloadavg()[0])
    median = {name: statistics.median(values) for name, values in times.items()}
    torch_time = median["import torch"]
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} before and {load[1]:.2f} after; "
        f"medians of {args.rounds} rounds"
    )
    for name, value in median.items():
        print(f"  {name:<28} {value:6.3f} s   ({min(times[name]):.3f} s fastest)")
    print(f"  --version / import torch:    {median['variability --version'] / torch_time:.2f}")
    print(f"  --help / import torch:       {median['variability --help'] / torch_time:.2f}")
    probe_ratio = median["variability probe model.pt"] / (torch_time + median["the probe itself"])
    print(f"  probe / (import torch + the probe itself): {probe_ratio:.2f}")


if __name__ == "__main__":
    main()
