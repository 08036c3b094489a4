"""``variability init MODEL --out FIXED``: fix a model's initial weights so that no site dies.

Reads any model ``variability probe`` reads, probes it, runs ``variability.reinitialize`` on the
probe set, probes it again, writes the fixed model in the input's format, and prints the two
probes side by side. Nothing is written unless the whole remedy succeeded (or ``--partial``
allows sites to be left as they are); docs/cli.md describes the command.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import torch

from variability.cli.console import progress_bar, reports_user_errors, stdout
from variability.cli.init_view import print_remedy, summary_line
from variability.cli.probe import (
    DEFAULT_SAMPLES,
    ArchKwargsOption,
    ArchOption,
    BatchSizeOption,
    DeviceOption,
    DistOption,
    Distribution,
    InputShapeOption,
    InputsOption,
    ModelArgument,
    QuietOption,
    SamplesOption,
    SeedOption,
    SelfContainedOption,
    SeqLenOption,
    TrustPickleOption,
    TrustRemoteCodeOption,
    _check_token_options,
    _model_input_shape,
    _option,
    _token_inputs,
    _without_deprecation_notices,
)
from variability.devices import resolve_device
from variability.errors import UserError
from variability.loading import (
    LoadedModel,
    ProbeInputs,
    batch_size_for,
    check_inputs_fit,
    generate_inputs,
    load_user_model,
    parse_arch_kwargs,
    parse_shape,
    read_inputs,
)
from variability.loading.writing import write_like_input
from variability.probes import NoProbeSitesError, ProbeResults, probe_model
from variability.remedy import Reinitialization, RemedyError, reinitialize

__all__ = ["init"]

_REMEDY, _OUTPUT = "Remedy", "Output"


class Method(StrEnum):
    lsuv = "lsuv"
    autoinit = "autoinit"
    centre = "center"  # (named so: a member called center would hide str.center)


OutOption = Annotated[
    Path,
    _option(
        "--out",
        "-o",
        help="Where to write the fixed model, in the input's format (a folder for a Hugging "
        "Face model).",
        panel=_OUTPUT,
        metavar="FIXED",
    ),
]
MethodOption = Annotated[
    Method,
    _option(
        "--method",
        help="lsuv (measured on the probe set, the default), autoinit (predicted from the "
        "input's moments where the layers allow, measured elsewhere), or center (LCW: centre "
        "the weight rows of layers whose input has a shared non-zero mean).",
        panel=_REMEDY,
    ),
]
CenterOption = Annotated[
    bool,
    _option(
        "--center",
        help="With lsuv or autoinit: first centre the weight rows of layers whose input has a "
        "shared non-zero mean.",
        panel=_REMEDY,
    ),
]
SecondMomentOption = Annotated[
    float,
    _option(
        "--second-moment",
        help="Target second moment of every unit's pre-activation (default 1).",
        panel=_REMEDY,
        metavar="Q",
    ),
]
FractionOption = Annotated[
    float,
    _option(
        "--active-fraction",
        help="Target fraction of every unit's pre-activations above 0 (default 0.5: half "
        "active for ReLU).",
        panel=_REMEDY,
        metavar="P",
    ),
]
PartialOption = Annotated[
    bool,
    _option(
        "--partial",
        help="Fix the sites that can be fixed and leave the others as they are (listed), "
        "instead of writing nothing.",
        panel=_REMEDY,
    ),
]
ReportOption = Annotated[
    Path | None,
    _option(
        "--report",
        help="Write an HTML report of the model before and after into this folder.",
        panel=_OUTPUT,
        metavar="DIR",
    ),
]


@reports_user_errors
@_without_deprecation_notices
def init(
    model: ModelArgument,
    out: OutOption,
    method: MethodOption = Method.lsuv,
    center: CenterOption = False,
    second_moment: SecondMomentOption = 1.0,
    active_fraction: FractionOption = 0.5,
    partial: PartialOption = False,
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
    report: ReportOption = None,
    self_contained: SelfContainedOption = False,
    quiet: QuietOption = False,
) -> None:
    """Reinitialise a model so that every probe site gets a healthy pre-activation: rescale and
    shift, site by site in depth order, the layer that feeds it; write the fixed model in the
    input's format; print each site's figures before and after.

    Exit codes: 0 written; 2 bad input or usage, or a site that cannot be fixed (one line on
    stderr; nothing written).
    """
    if arch_kwargs is not None and arch is None:
        raise UserError(
            "--arch-kwargs gives arguments to --arch; add --arch package.module:factory"
        )
    if self_contained and report is None:
        raise UserError("--self-contained applies to the report: add --report DIR")
    if inputs is not None and (dist is not None or samples is not None):
        raise UserError(
            "--dist and --samples describe generated inputs; they cannot be combined with "
            "--inputs FILE"
        )
    if method is Method.centre and center:
        raise UserError("--center adds centring to lsuv or autoinit; --method center is centring")
    shape = parse_shape(input_shape) if input_shape is not None else None
    torch_device = resolve_device(device)
    loaded = load_user_model(
        model,
        arch=arch,
        arch_kwargs=parse_arch_kwargs(arch_kwargs),
        trust_pickle=trust_pickle,
        trust_remote_code=trust_remote_code,
        device=torch_device,
    )
    _check_fixable(loaded)
    notes = list(loaded.notes)
    probe_set = _probe_set(loaded, inputs, shape, dist, seq_len, samples, seed, notes)
    batch = batch_size_for(loaded, probe_set, batch_size)
    check_inputs_fit(loaded, probe_set, torch_device)
    batches = list(probe_set.batches(batch))

    with progress_bar(3, "reinitializing", quiet=quiet) as advance:
        before = _probe(loaded, batches, torch_device)
        advance(1)
        remedy = _remedy(loaded, batches, method, center, second_moment, active_fraction, partial)
        advance(1)
        after = _probe(loaded, batches, torch_device)
        advance(1)
    written = [str(write_like_input(loaded, out))]
    if report is not None:
        page = _write_report(loaded, probe_set, before, after, remedy, report, self_contained)
        written.append(str(page))

    console = stdout()
    if quiet:
        console.print(summary_line(before, after, remedy), highlight=False, markup=False)
        return
    header = [
        f"model: {loaded.path} ({loaded.description})",
        f"inputs: {probe_set.description}; device {torch_device}",
        f"method: {_describe(remedy)}",
    ]
    print_remedy(console, before, after, remedy, header=header, notes=notes)
    for path in written:
        console.print(f"wrote {path}", highlight=False, markup=False)


def _check_fixable(loaded: LoadedModel) -> None:
    what = None
    if loaded.output_only:
        what = "a TorchScript archive (compiled code: its layers cannot be reached)"
    elif loaded.format == "torch.export program":
        what = (
            "a torch.export program (its layers are operations of one graph, not modules the "
            "remedy can rescale); reinitialize the model before exporting it, or pass its state "
            "dict with --arch"
        )
    if what is not None:
        raise UserError(f"{loaded.path} is {what}; nothing was written")


def _probe_set(
    loaded: LoadedModel,
    inputs: Path | None,
    shape: tuple[int, ...] | None,
    dist: Distribution | None,
    seq_len: int | None,
    samples: int | None,
    seed: int,
    notes: list[str],
) -> ProbeInputs:
    _check_token_options(loaded, inputs, shape, dist, seq_len)
    if inputs is not None:
        return read_inputs(inputs, sample_shape=shape, dtype=loaded.dtype)
    if loaded.input_hint.vocab is not None and shape is None:
        return _token_inputs(loaded, seq_len, samples, seed)
    return generate_inputs(
        shape or _model_input_shape(loaded, notes),
        DEFAULT_SAMPLES if samples is None else samples,
        distribution=(dist or Distribution.normal).value,
        seed=seed,
        dtype=loaded.dtype,
    )


def _probe(loaded: LoadedModel, batches: list[Any], device: torch.device) -> ProbeResults:
    try:
        return probe_model(loaded.module, batches, device=device, redundancy=False)
    except NoProbeSitesError as error:
        raise UserError(f"{error} Nothing to reinitialize; nothing was written") from None


def _remedy(
    loaded: LoadedModel,
    batches: list[Any],
    method: Method,
    center: bool,
    second_moment: float,
    active_fraction: float,
    partial: bool,
) -> Reinitialization:
    try:
        return reinitialize(
            loaded.module,
            batches,
            method.value,
            second_moment=second_moment,
            active_fraction=active_fraction,
            center=center,
            partial=partial,
        )
    except RemedyError as error:
        message = str(error).replace("partial=True", "--partial")
        raise UserError(f"{message}. Nothing was written") from None


def _describe(remedy: Reinitialization) -> str:
    target = (
        f"second moment {remedy.second_moment:g} (RMS {math.sqrt(remedy.second_moment):.3g}), "
        f"{remedy.active_fraction:g} of each unit's pre-activations above 0"
    )
    centred = ", rows centred first" if remedy.center else ""
    if remedy.method == "center":
        return "center (LCW row centring)"
    return f"{remedy.method}{centred}; target per unit: {target}"


def _write_report(
    loaded: LoadedModel,
    probe_set: ProbeInputs,
    before: ProbeResults,
    after: ProbeResults,
    remedy: Reinitialization,
    folder: Path,
    self_contained: bool,
) -> Path:
    from variability.reports.provenance import command_line, provenance
    from variability.reports.remedy_report import write_remedy_report

    return write_remedy_report(
        before,
        after,
        remedy.to_dict(),
        folder,
        self_contained=self_contained,
        title=f"Remedy report: {loaded.path.name}",
        subtitle=f"{loaded.description}; {_describe(remedy)}",
        provenance=provenance(
            command=command_line(),
            model=str(loaded.path),
            format=loaded.format,
            inputs=probe_set.description,
        ),
    )
