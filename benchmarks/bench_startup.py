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

    python benchmarks/bench_startup.py [--rounds 7] [--before SRC]

``--before SRC`` adds, in the same rounds, the same commands run from another version's source
tree (``git archive main variability | tar -x -C SRC``), for a before-and-after side by side.
Those runs use ``python -S`` with the source and this environment's site-packages on the path,
since the editable install would otherwise import this version.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
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


MAIN = "import sys; from variability.cli.main import main; main(sys.argv[1:])"


def seconds(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of one run, and its stdout (the run must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def versions(before: Path | None) -> dict[str, tuple[list[str], list[str], dict[str, str] | None]]:
    """For each version to time: (the console script, Python for a script, its environment)."""
    found = {"": ([str(BIN / "variability")], [sys.executable], None)}
    if before is not None:
        path = f"{before.resolve()}{os.pathsep}{sysconfig.get_paths()['purelib']}"
        python = [sys.executable, "-S"]
        found["before: "] = ([*python, "-c", MAIN], python, {**os.environ, "PYTHONPATH": path})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", type=Path, help="another version's source tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        subprocess.run(
            [sys.executable, "-c", "from variability import build_model, save_model; "
             "save_model(build_model('fc', 2, 1, 8, width=16, seed=0), 'model.pt')"],
            cwd=cwd, check=True,
        )  # fmt: skip
        commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "import torch": ([sys.executable, "-c", "import torch"], None)
        }
        scripts = {}
        for label, (console, python, env) in versions(args.before).items():
            commands[f"{label}variability --version"] = ([*console, "--version"], env)
            commands[f"{label}variability --help"] = ([*console, "--help"], env)
            probe = [*console, "probe", "model.pt", "--quiet"]
            commands[f"{label}variability probe model.pt"] = (probe, env)
            scripts[f"{label}the probe itself"] = ([*python, "-c", PROBE_ITSELF, "model.pt"], env)
        times: dict[str, list[float]] = {name: [] for name in [*commands, *scripts]}
        load = [os.getloadavg()[0]]
        for _ in range(args.rounds):
            for name, (command, env) in commands.items():
                times[name].append(seconds(command, cwd, env)[0])
            for name, (command, env) in scripts.items():
                times[name].append(float(seconds(command, cwd, env)[1]))
        load.append(os.getloadavg()[0])
    median = {name: statistics.median(values) for name, values in times.items()}
    torch_time = median["import torch"]
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} before and {load[1]:.2f} after; "
        f"medians of {args.rounds} rounds"
    )
    for name, value in median.items():
        print(f"  {name:<36} {value:6.3f} s   ({min(times[name]):.3f} s fastest)")
    for label in versions(args.before):
        version, helps = (
            median[f"{label}variability --version"],
            median[f"{label}variability --help"],
        )
        itself = median[f"{label}the probe itself"]
        probe = median[f"{label}variability probe model.pt"]
        print(f"  {label}--version / import torch: {version / torch_time:.2f}")
        print(f"  {label}--help / import torch:    {helps / torch_time:.2f}")
        ratio = probe / (torch_time + itself)
        print(f"  {label}probe / (import torch + the probe itself): {ratio:.2f}")


if __name__ == "__main__":
    main()
