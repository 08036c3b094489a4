"""``variability probe MODEL``: probe a saved model and print, per site, where signal dies.

The options are declared once below (``*Option`` aliases) so the command's signature reads as a
list of names; docs/cli.md describes each in full.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import torch
import typer

from variability.cli.console import (
    EXIT_CONDITION,
    progress_bar,
    reports_user_errors,
    stderr,
    stdout,
)
from variability.cli.fail_on import FailOn, parse_fail_on
from variability.cli.outputs import STDOUT, write_output
from variability.cli.probe_view import print_probe, verdict_line
from variability.devices import resolve_device
from variability.errors import UserError
from variability.loading import (
    InputsError,
    LoadedModel,
    ModelFaultError,
    ProbeInputs,
    batch_size_for,
    check_inputs_fit,
    generate_inputs,
    load_user_model,
    parse_arch_kwargs,
    parse_shape,
    read_inputs,
    show_shape,
)
from variability.loading.faults import BatchCounter
from variability.probes import NoProbeSitesError, ProbeResults, Thresholds, probe_model
from variability.reports.diagnosis import Hint, diagnose, facts_of

__all__ = ["DEFAULT_SAMPLES", "probe"]

DEFAULT_SAMPLES = 4096
DEFAULT_SEQ_LEN = 64
"""Token ids per generated input of a text model (at most the model's maximum length)."""
F = TypeVar("F", bound=Callable[..., Any])


class Distribution(StrEnum):
    normal = "normal"
    uniform = "uniform"


def _option(*names: str, help: str, panel: str, metavar: str | None = None, **extra: Any) -> Any:
    return typer.Option(
        *names, help=help, rich_help_panel=panel, metavar=metavar, show_default=False, **extra
    )


_MODEL, _INPUTS, _PROBE, _OUTPUT = "Model", "Probe set", "Probe", "Output"

ModelArgument = Annotated[
    Path,
    typer.Argument(
        help="Model file: a variability model file, a state dict or .safetensors weights (with "
        "--arch), a Hugging Face model folder, a torch.export program (.pt2), a TorchScript "
        "archive, or a pickled module (with --trust-pickle).",
        metavar="MODEL",
        show_default=False,
    ),
]
ArchOption = Annotated[
    str | None,
    _option(
        "--arch",
        help="Code that builds the model for a state dict: package.module:factory (modules in "
        "the current directory are found).",
        panel=_MODEL,
        metavar="MODULE:FACTORY",
    ),
]
ArchKwargsOption = Annotated[
    str | None,
    _option(
        "--arch-kwargs",
        help="Keyword arguments for the --arch factory, a JSON object: '{\"width\": 64}'.",
        panel=_MODEL,
        metavar="JSON",
    ),
]
TrustPickleOption = Annotated[
    bool,
    _option(
        "--trust-pickle",
        help="Unpickle a whole pickled module. Unpickling runs any code the file contains: use "
        "it only for files you trust.",
        panel=_MODEL,
    ),
]
TrustRemoteCodeOption = Annotated[
    bool,
    _option(
        "--trust-remote-code",
        help="Let a Hugging Face model folder run modelling code of its own (its config's "
        "auto_map). It runs any code the folder contains: use it only for folders you trust.",
        panel=_MODEL,
    ),
]
InputsOption = Annotated[
    Path | None,
    _option(
        "--inputs",
        help="Probe set file: .npy, .pt (a tensor, or a dict with an 'x' tensor) or .csv of "
        "numbers, one sample per row.",
        panel=_INPUTS,
        metavar="FILE",
    ),
]
InputShapeOption = Annotated[
    str | None,
    _option(
        "--input-shape",
        help="Shape of one input without the batch dimension, like 3,32,32 (default: from the "
        "model, where it tells). With --inputs, each sample is reshaped to it.",
        panel=_INPUTS,
        metavar="SHAPE",
    ),
]
DistOption = Annotated[
    Distribution | None,
    _option(
        "--dist",
        help="Generated inputs: standard normal (the default), or uniform on \\[-1, 1].",
        panel=_INPUTS,
    ),
]
SeqLenOption = Annotated[
    int | None,
    _option(
        "--seq-len",
        help=f"Text models (a Hugging Face folder, a first Embedding layer): generated inputs are "
        f"random token ids, this many per input (default {DEFAULT_SEQ_LEN}, at most the model's "
        "maximum length).",
        panel=_INPUTS,
        metavar="N",
    ),
]
SamplesOption = Annotated[
    int | None,
    _option(
        "--samples",
        help=f"How many inputs to generate (default {DEFAULT_SAMPLES}).",
        panel=_INPUTS,
        metavar="N",
    ),
]
SeedOption = Annotated[
    int, _option("--seed", help="Seed of generated inputs (default 0).", panel=_INPUTS, metavar="N")
]
BatchSizeOption = Annotated[
    int,
    _option(
        "--batch-size", help="Inputs per forward pass (default 1024).", panel=_INPUTS, metavar="N"
    ),
]
DeviceOption = Annotated[
    str,
    _option(
        "--device",
        help="auto (a GPU if there is one; the default), cpu, cuda or cuda:N.",
        panel=_PROBE,
        metavar="DEVICE",
    ),
]
SitesOption = Annotated[
    list[str] | None,
    _option(
        "--sites",
        help="Probe these sites instead of every nonlinearity: module names or glob patterns, "
        "comma-separated or repeated.",
        panel=_PROBE,
        metavar="NAMES",
    ),
]
TauOption = Annotated[
    float,
    _option(
        "--tau",
        help=f"A unit is active where |phi'(z)| >= tau * max|phi'| (default {Thresholds.tau:g}).",
        panel=_PROBE,
        metavar="TAU",
    ),
]
CollapseOption = Annotated[
    float,
    _option(
        "--collapse-level",
        help="A site is collapsed when its variability V is at most this "
        f"(default {Thresholds.collapsed:g}).",
        panel=_PROBE,
        metavar="V",
    ),
]
CollapsingOption = Annotated[
    float,
    _option(
        "--collapsing-level",
        help="A site is collapsing when its variability V is at most this "
        f"(default {Thresholds.collapsing:g}).",
        panel=_PROBE,
        metavar="V",
    ),
]
ConstantOption = Annotated[
    float,
    _option(
        "--constant-level",
        help="A unit is constant when its output std is at most this times the site's RMS "
        f"(default {Thresholds.constant:g}).",
        panel=_PROBE,
        metavar="R",
    ),
]
JsonOption = Annotated[
    str | None,
    _option(
        "--json",
        help="Write the figures as JSON to this file, or to stdout with - (then nothing else "
        "goes to stdout).",
        panel=_OUTPUT,
        metavar="PATH|-",
    ),
]
CsvOption = Annotated[
    str | None,
    _option(
        "--csv",
        help="Write one row per site as CSV to this file, or to stdout with -.",
        panel=_OUTPUT,
        metavar="PATH|-",
    ),
]
ReportOption = Annotated[
    Path | None,
    _option(
        "--report",
        help="Write an HTML report (index.html and PNG figures) into this folder.",
        panel=_OUTPUT,
        metavar="DIR",
    ),
]
SelfContainedOption = Annotated[
    bool,
    _option(
        "--self-contained",
        help="With --report: embed the figures in index.html.",
        panel=_OUTPUT,
    ),
]
FailOnOption = Annotated[
    list[str] | None,
    _option(
        "--fail-on",
        help="Exit with code 3 when this holds: collapsed (the output or any site, or one that "
        "saw no finite value), collapsing, nonfinite (NaN/Inf seen at any site), or "
        "dead:FRACTION (a site with more than FRACTION of its units dead). Repeatable.",
        panel=_OUTPUT,
        metavar="CONDITION",
    ),
]
QuietOption = Annotated[
    bool,
    _option("--quiet", "-q", help="Print only the verdict; no progress bar.", panel=_OUTPUT),
]
VerboseOption = Annotated[
    bool,
    _option(
        "--verbose",
        help="On an error, also print the detail: torch's own log while it reads the model "
        "file, the traceback of an exception the model raised.",
        panel=_OUTPUT,
    ),
]


def _without_deprecation_notices(command: F) -> F:
    """Deprecation notices from inside torch are for developers, not for this command's output."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@reports_user_errors
@_without_deprecation_notices
def probe(
    model: ModelArgument,
    arch: ArchOption = None,
    arch_kwargs: ArchKwargsOption = None,
    trust_pickle: TrustPickleOption = False,
    trust_remote_code: TrustRemoteCodeOption = False,
    inputs: InputsOption = None,
    input_shape: InputShapeOption = None,
    dist: DistOption = None,
    seq_len: SeqLenOption = None,
    samples: SamplesOption = None,
    seed: SeedOption = 0,
    batch_size: BatchSizeOption = 1024,
    device: DeviceOption = "auto",
    sites: SitesOption = None,
    tau: TauOption = Thresholds.tau,
    collapse_level: CollapseOption = Thresholds.collapsed,
    collapsing_level: CollapsingOption = Thresholds.collapsing,
    constant_level: ConstantOption = Thresholds.constant,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
    report: ReportOption = None,
    self_contained: SelfContainedOption = False,
    fail_on: FailOnOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Probe a saved model: where signal dies, site by site, and why.

    Per site (nonlinearity): its layer and tensor shape, the activation ratio, dead units, the
    variability V, constant units and activation shift; then the verdict (the output's V,
    collapse to constants, the first collapsed site) and a diagnosis in plain words.

    Exit codes: 0 fine; 2 bad input or usage, or a model that fails on the probe set (one line
    on stderr); 3 a --fail-on condition held.
    """
    thresholds = Thresholds(tau, collapse_level, collapsing_level, constant_level)
    conditions = parse_fail_on(fail_on or [])
    _check_option_combinations(json_out, csv_out, report, self_contained, inputs, dist, samples)
    if arch_kwargs is not None and arch is None:
        raise UserError(
            "--arch-kwargs gives arguments to --arch; add --arch package.module:factory"
        )
    shape = parse_shape(input_shape) if input_shape is not None else None
    torch_device = resolve_device(device)

    loaded = load_user_model(
        model,
        arch=arch,
        arch_kwargs=parse_arch_kwargs(arch_kwargs),
        trust_pickle=trust_pickle,
        trust_remote_code=trust_remote_code,
        device=torch_device,
        verbose=verbose,
    )
    chosen_sites = [
        name.strip() for spec in sites or [] for name in spec.split(",") if name.strip()
    ]
    if chosen_sites and loaded.output_only:
        raise UserError(f"--sites cannot be used with {model}: {loaded.notes[0]}")
    notes = list(loaded.notes)
    _check_token_options(loaded, inputs, shape, dist, seq_len)
    if inputs is not None:
        probe_set = read_inputs(inputs, sample_shape=shape, dtype=loaded.dtype)
    elif loaded.input_hint.vocab is not None and shape is None:
        probe_set = _token_inputs(loaded, seq_len, samples, seed)
    else:
        probe_set = generate_inputs(
            shape or _model_input_shape(loaded, notes),
            DEFAULT_SAMPLES if samples is None else samples,
            distribution=(dist or Distribution.normal).value,
            seed=seed,
            dtype=loaded.dtype,
        )
    batch = batch_size_for(loaded, probe_set, batch_size)
    with _traceback_of_faults(verbose):
        check_inputs_fit(loaded, probe_set, torch_device)
        results = _run_probe(
            loaded, probe_set, batch, torch_device, chosen_sites, thresholds, quiet
        )
    facts = facts_of(loaded.module, lr=training_lr(loaded.path))
    run = ProbeRun(loaded, probe_set, torch_device, results, diagnose(results, facts), notes)
    run.notes.extend(_notes_on_results(probe_set, results))
    written = _write_outputs(run, json_out, csv_out, report, self_contained)
    _print(run, written, quiet, stdout_taken=STDOUT in (json_out, csv_out))
    _apply_fail_on(conditions, results)


@dataclass
class ProbeRun:
    """Everything one probe produced, for the writers and the printer."""

    model: LoadedModel
    inputs: ProbeInputs
    device: torch.device
    results: ProbeResults
    hints: list[Hint]
    notes: list[str]


def training_lr(model: Path) -> float | None:
    """The learning rate of the run that wrote ``model``, when it sits in a run directory
    (``variability train``, a comparison's cell): the diagnosis can then speak of it."""
    try:
        config = json.loads((model.parent / "run.json").read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    lr = config.get("lr") if isinstance(config, dict) else None
    return float(lr) if isinstance(lr, int | float) and not isinstance(lr, bool) else None


def _check_option_combinations(
    json_out: str | None,
    csv_out: str | None,
    report: Path | None,
    self_contained: bool,
    inputs: Path | None,
    dist: Distribution | None,
    samples: int | None,
) -> None:
    if json_out == STDOUT and csv_out == STDOUT:
        raise UserError("--json - and --csv - both want stdout: write one of them to a file")
    if self_contained and report is None:
        raise UserError("--self-contained applies to the report: add --report DIR")
    if inputs is not None and (dist is not None or samples is not None):
        raise UserError(
            "--dist and --samples describe generated inputs; they cannot be combined with "
            "--inputs FILE"
        )


def _check_token_options(
    loaded: LoadedModel,
    inputs: Path | None,
    shape: tuple[int, ...] | None,
    dist: Distribution | None,
    seq_len: int | None,
) -> None:
    if seq_len is None:
        if loaded.input_hint.vocab is not None and dist is not None and inputs is None:
            raise UserError(
                f"{loaded.path.name} takes token ids, drawn uniformly from its vocabulary: "
                "--dist does not apply (--seq-len sets their length)"
            )
        return
    if inputs is not None:
        raise UserError(
            "--seq-len describes generated token ids; it cannot be combined with --inputs FILE"
        )
    if loaded.input_hint.vocab is None:
        raise UserError(
            f"--seq-len gives the length of token-id inputs, but {loaded.path.name} does not "
            "take token ids (its first layer is not an Embedding); use --input-shape"
        )
    if shape is not None:
        raise UserError("--seq-len and --input-shape both give the input shape: use one")
    if seq_len < 1:
        raise UserError(f"--seq-len must be at least 1, got {seq_len}")


def _token_inputs(
    loaded: LoadedModel, seq_len: int | None, samples: int | None, seed: int
) -> ProbeInputs:
    hint = loaded.input_hint
    assert hint.vocab is not None
    longest = hint.max_length
    if seq_len is not None and longest is not None and seq_len > longest:
        raise UserError(
            f"--seq-len {seq_len} is longer than {loaded.path.name} takes ({longest} positions)"
        )
    length = seq_len or min(DEFAULT_SEQ_LEN, longest or DEFAULT_SEQ_LEN)
    return generate_inputs(
        (length,),
        DEFAULT_SAMPLES if samples is None else samples,
        distribution="tokens",
        seed=seed,
        vocab=hint.vocab,
    )


def _model_input_shape(loaded: LoadedModel, notes: list[str]) -> tuple[int, ...]:
    hint = loaded.input_hint
    if hint.shape is None:
        detail = f" ({hint.source})" if hint.source else ""
        raise InputsError(
            f"cannot tell what input shape {loaded.path.name} takes{detail}: pass --input-shape "
            "(one input without the batch dimension, like 3,32,32) or --inputs FILE"
        )
    if not hint.exact:
        notes.append(
            f"input shape {show_shape(hint.shape)} guessed from {hint.source}; "
            "--input-shape overrides it"
        )
    return hint.shape


@contextlib.contextmanager
def _traceback_of_faults(verbose: bool) -> Iterator[None]:
    """With --verbose, the traceback of what the model raised goes before the one-line error."""
    try:
        yield
    except ModelFaultError as error:
        if verbose:
            traceback.print_exception(error.fault, file=sys.stderr)
        raise


def _run_probe(
    loaded: LoadedModel,
    probe_set: ProbeInputs,
    batch: int,
    device: torch.device,
    sites: list[str],
    thresholds: Thresholds,
    quiet: bool,
) -> ProbeResults:
    counter = BatchCounter(probe_set.batches(batch), probe_set.samples, batch)
    site_selector: Any = () if loaded.output_only else (sites or "auto")

    def on_batch(rows: int) -> None:
        counter.done()
        advance(rows)

    try:
        with (
            progress_bar(
                probe_set.samples, "probing", quiet=quiet or counter.total <= 1, unit="inputs"
            ) as advance,
            counter.guard(loaded.path.name),
        ):
            return probe_model(
                loaded.module,
                counter,
                device=device,
                on_batch=on_batch,
                sites=site_selector,
                thresholds=thresholds,
            )
    except NoProbeSitesError as error:
        raise UserError(str(error).replace("sites=[...]", "--sites")) from None


def _notes_on_results(probe_set: ProbeInputs, results: ProbeResults) -> list[str]:
    notes = []
    if probe_set.nonfinite:
        notes.append(
            f"the inputs hold {probe_set.nonfinite} NaN/Inf values: the probe ran on, leaving "
            "them out of every figure (the NaN/Inf column counts them per site)"
        )
    if results.unused_sites:
        notes.append(f"sites that never ran: {', '.join(results.unused_sites)}")
    if results.unprobed_calls:
        listed = ", ".join(
            f"{call.name} ({call.function}, {count} calls: {call.reason})"
            for call, count in results.unprobed_calls.items()
        )
        notes.append(f"activation calls seen but not measured: {listed}")
    notes.extend(results.notes)
    return notes


def _json_document(run: ProbeRun) -> dict[str, Any]:
    return {
        **run.results.to_dict(),
        "model": {
            "path": str(run.model.path),
            "format": run.model.format,
            "description": run.model.description,
            "output_only": run.model.output_only,
        },
        "inputs": run.inputs.to_dict(),
        "device": str(run.device),
        "diagnosis": [hint.to_dict() for hint in run.hints],
        "notes": run.notes,
    }


def _write_report(run: ProbeRun, folder: Path, self_contained: bool) -> Path:
    from variability.reports.probe_report import write_probe_report
    from variability.reports.provenance import command_line, provenance

    return write_probe_report(
        run.results,
        folder,
        self_contained=self_contained,
        title=f"Probe report: {run.model.path.name}",
        subtitle=run.model.description,
        hints=[hint.text for hint in run.hints],
        provenance=provenance(
            command=command_line(),
            model=str(run.model.path),
            format=run.model.format,
            inputs=run.inputs.description,
            device=str(run.device),
        ),
    )


def _write_outputs(
    run: ProbeRun,
    json_out: str | None,
    csv_out: str | None,
    report: Path | None,
    self_contained: bool,
) -> list[str]:
    """Write what was asked for; the paths of the files written."""
    if json_out is not None:
        write_output(json_out, json.dumps(_json_document(run), indent=2, allow_nan=False))
    if csv_out is not None:
        write_output(csv_out, run.results.to_pandas().to_csv())
    written = [str(p) for p in (json_out, csv_out) if p not in (None, STDOUT)]
    if report is not None:
        written.append(str(_write_report(run, report, self_contained)))
    return written


def _print(run: ProbeRun, written: list[str], quiet: bool, stdout_taken: bool) -> None:
    """The human output on stdout; only the notes, on stderr, when stdout carries JSON or CSV."""
    if stdout_taken:
        console = stderr()
        for note in run.notes:
            console.print(f"note: {note}", highlight=False, markup=False)
        return
    console = stdout()
    if quiet:
        console.print(verdict_line(run.results), highlight=False)
        return
    header = [
        f"model: {run.model.path} ({run.model.description})",
        f"inputs: {run.inputs.description}; device {run.device}",
    ]
    print_probe(console, run.results, run.hints, header=header, notes=run.notes)
    for path in written:
        console.print(f"wrote {path}", highlight=False, markup=False)


def _apply_fail_on(conditions: list[FailOn], results: ProbeResults) -> None:
    held = [(c, reason) for c in conditions if (reason := c.check(results)) is not None]
    if not held:
        return
    console = stderr()
    for condition, reason in held:
        console.print(f"fail-on {condition.label}: {reason}", highlight=False, markup=False)
    raise typer.Exit(EXIT_CONDITION)
