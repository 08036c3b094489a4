"""``reinitialize(model, inputs, method)``: rescale and shift the layers that feed each probe
site until every site receives a healthy pre-activation (docs/figures.md, "Remedies").

The sites are visited in depth order; each site's input comes from one layer (the link the
per-site unit axis uses, probes/links.py), and only that layer's weights and bias change. In a
chain, a later site's layer lies after every earlier site, so fixing it cannot disturb them; in
other graphs it can (a layer that feeds a later site directly and an earlier one through another
layer), so LSUV measures every site once more at the end and reports any site moved off target.
Every change is undone if the remedy fails (unless ``partial``), so a model is never left
half-fixed; parameters the method does not touch stay bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import torch
from torch import Tensor, nn

from variability.probes.evaluation import set_mode
from variability.probes.links import MODEL_INPUT, SiteLink, site_links
from variability.probes.sites import no_sites_message
from variability.probes.wrappers import unwrap
from variability.remedy.capture import DEFAULT_MAX_VALUES, SiteSamples, measure_sites, read_site
from variability.remedy.gaussian import gaussian_moments
from variability.remedy.layers import Layer, LCWLayer, Saved, layer_for
from variability.remedy.outcome import (
    CHANGED,
    FAILED,
    UNCHANGED,
    Reinitialization,
    RemedyError,
    SiteOutcome,
)
from variability.remedy.solve import Solution, constant_units, gaussian_solution, quantile_solution

METHODS = ("lsuv", "autoinit", "center")
SHARED_MEAN_LEVEL = 0.1
"""Centre a layer's rows when its input's shared mean is at least this fraction of its RMS
(ReLU outputs of a centred Gaussian: 0.56; sigmoid outputs: about 0.96; inputs uniform on
[-1, 1]: about 0)."""


def reinitialize(
    model: nn.Module,
    inputs: Tensor | Iterable[Tensor],
    method: str = "lsuv",
    *,
    second_moment: float = 1.0,
    active_fraction: float = 0.5,
    center: bool = False,
    partial: bool = False,
    batch_size: int = 1024,
    tolerance: float = 0.01,
    max_passes: int = 5,
    max_values: int = DEFAULT_MAX_VALUES,
) -> Reinitialization:
    """Change ``model``'s weights in place so that every probe site's pre-activation has, per
    unit, the second moment ``second_moment`` and a fraction ``active_fraction`` of its values
    above 0 on ``inputs`` (a tensor, split into batches, or an iterable of batches).

    ``method``: ``"lsuv"`` (measured on the inputs, per unit, repeated until every unit's second
    moment is within ``tolerance``), ``"autoinit"`` (predicted from the input's moments where the
    layers allow, measured elsewhere) or ``"center"`` (LCW: centre the weight rows of layers
    whose input has a shared non-zero mean; nothing else). ``center=True`` centres those rows
    before ``lsuv`` or ``autoinit``. docs/figures.md states each exactly.

    Raises ``RemedyError`` (the model unchanged) when the model has no probe site, or, unless
    ``partial``, when some site cannot be fixed: its input is made by no layer the remedy can
    rescale, or its layer cannot reach the target. With ``partial`` those sites are left as they
    are and listed in the result's ``failed``.
    """
    settings = _Settings.checked(
        method, second_moment, active_fraction, center, tolerance, max_passes, max_values
    )
    batches = _batches(inputs, batch_size, model)
    training = model.training
    saved = Saved()
    try:
        set_mode(model, False)
        with torch.no_grad():
            links = site_links(model, batches[0])
            if not links:
                raise RemedyError(
                    f"{no_sites_message(unwrap(model).module)} Nothing to reinitialize: the "
                    "model was left unchanged"
                )
            run = _Run(model, batches, settings, saved, links)
            sites = run.all_sites(partial)
    except BaseException:
        saved.restore()
        raise
    finally:
        set_mode(model, training)
    return Reinitialization(
        method=settings.method,
        second_moment=settings.second_moment,
        active_fraction=settings.above,
        center=settings.center,
        samples=sum(int(b.shape[0]) for b in batches),
        sites=tuple(sites),
        changed_parameters=tuple(saved.names),
    )


@dataclass(frozen=True)
class _Settings:
    method: str
    second_moment: float
    above: float
    center: bool
    tolerance: float
    max_passes: int
    max_values: int

    @classmethod
    def checked(
        cls,
        method: str,
        second_moment: float,
        above: float,
        center: bool,
        tolerance: float,
        max_passes: int,
        max_values: int,
    ) -> _Settings:
        if method not in METHODS:
            raise RemedyError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
        if not (isinstance(second_moment, int | float) and math.isfinite(second_moment)):
            raise RemedyError(f"second_moment must be a number above 0, got {second_moment!r}")
        if second_moment <= 0:
            raise RemedyError(f"second_moment must be above 0, got {second_moment!r}")
        if not (isinstance(above, int | float) and 0 < above < 1):
            raise RemedyError(f"active_fraction must lie strictly between 0 and 1, got {above!r}")
        if method == "center" and center:
            raise RemedyError(
                "center=True adds centring to lsuv or autoinit; method 'center' is centring alone"
            )
        if not tolerance > 0 or max_passes < 1 or max_values < 1:
            raise RemedyError("tolerance must be above 0, max_passes and max_values at least 1")
        return cls(
            method, float(second_moment), float(above), bool(center), float(tolerance),
            int(max_passes), int(max_values),
        )  # fmt: skip


def _batches(inputs: Tensor | Iterable[Tensor], batch_size: int, model: nn.Module) -> list[Any]:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if isinstance(inputs, Tensor):
        if batch_size < 1:
            raise RemedyError(f"batch_size must be at least 1, got {batch_size}")
        parts: Iterable[Tensor] = inputs.split(batch_size)
    else:
        parts = inputs
    batches = [b.to(device) if isinstance(b, Tensor) else b for b in parts]
    if not batches or all(isinstance(b, Tensor) and b.shape[0] == 0 for b in batches):
        raise RemedyError("reinitialize needs inputs to measure the model on; got none")
    return batches


@dataclass
class _Plan:
    """One site, its layer's adapter (or why there is none)."""

    link: SiteLink
    layer: Layer | None
    problem: str | None = None


@dataclass
class _Run:
    model: nn.Module
    batches: list[Any]
    settings: _Settings
    saved: Saved
    links: list[SiteLink]
    tracked: dict[str, tuple[float, float]] = field(default_factory=dict)
    """AutoInit: a site's output mean and second moment, predicted analytically."""

    def all_sites(self, partial: bool) -> list[SiteOutcome]:
        plans = self._plans()
        problems = [p for p in plans if p.problem]
        if problems and not partial:
            raise RemedyError(_refusal([_failed(p) for p in problems], len(plans)))
        before = measure_sites(self.model, self.batches, self.links)
        outcomes = []
        for plan in plans:
            outcome = _failed(plan) if plan.problem else self._site(plan)
            if outcome.failed and not partial:
                raise RemedyError(_refusal([outcome], len(plans)))
            outcomes.append(outcome)
        after = measure_sites(self.model, self.batches, self.links)
        if self.settings.method == "lsuv":
            outcomes = [self._still_set(o, after) for o in outcomes]
            disturbed = [o for o in outcomes if o.failed and o.changed_units]
            if disturbed and not partial:
                raise RemedyError(_refusal(disturbed, len(plans)))
        return [_with_moments(o, before, after) for o in outcomes]

    def _still_set(self, outcome: SiteOutcome, after: dict) -> SiteOutcome:
        """A site set earlier whose layer also feeds a later site's layer can be moved again
        when that layer changes: say so rather than report a target it no longer has."""
        moments = after.get(outcome.site)
        if outcome.status != CHANGED or moments is None:
            return outcome
        off = (moments.second / self.settings.second_moment - 1.0).abs()
        moved = int((off > self.settings.tolerance).sum())
        if not moved:
            return outcome
        return replace(
            outcome,
            status=FAILED,
            reason=f"{moved} of {outcome.units} units were moved off the target again by a "
            "later site's change (a layer changed for a later site also feeds this one)",
        )

    def _plans(self) -> list[_Plan]:
        network = unwrap(self.model).module
        claimed: dict[str, str] = {}
        plans = []
        for link in self.links:
            plans.append(self._plan(link, network, claimed))
        return plans

    def _plan(self, link: SiteLink, network: nn.Module, claimed: dict[str, str]) -> _Plan:
        if link.producer is None and _has_weights(link.module):
            return _Plan(
                link,
                None,
                f"{type(link.module).__name__} makes its own pre-activation from its own weights "
                "(a Han layer's reflection keeps the norm, with no per-unit scale to set); the "
                "remedy rescales the layer that feeds a site, and there is none",
            )
        if link.producer is None:
            return _Plan(
                link,
                None,
                "its input is made by no layer the remedy can rescale (a Linear, LCW, "
                "convolution or normalisation layer, directly or through a residual add)",
            )
        try:
            module = network.get_submodule(link.producer)
        except AttributeError:
            return _Plan(link, None, f"its layer {link.producer} is not a module of the model")
        layer = layer_for(link.producer, module, self.saved)
        if isinstance(layer, str):
            return _Plan(link, None, layer)
        if link.producer_calls > 1:
            return _Plan(
                link,
                layer,
                f"{link.producer} runs {link.producer_calls} times per forward pass (shared "
                "weights): rescaling it would change every site it feeds",
            )
        if link.producer in claimed:
            return _Plan(
                link,
                layer,
                f"{link.producer} also feeds site {claimed[link.producer]}, fixed before it",
            )
        if layer.units != link.units:
            return _Plan(
                link,
                layer,
                f"{link.producer} has {layer.units} output units but the site reads "
                f"{link.units} units on axis {link.unit_axis}",
            )
        claimed[link.producer] = link.name
        return _Plan(link, layer)

    # --- one site ---------------------------------------------------------------------------

    def _site(self, plan: _Plan) -> SiteOutcome:
        assert plan.layer is not None
        method = self.settings.method
        centred = None
        if method == "center" or self.settings.center:
            centred = self._centre(plan.link, plan.layer)
            if method == "center":
                return centred
        outcome = self._lsuv(plan) if method == "lsuv" else self._autoinit(plan)
        if centred is not None and centred.status == CHANGED and outcome.how:
            outcome = replace(outcome, how=f"centred, {outcome.how}")
        return outcome

    def _outcome(
        self, link: SiteLink, layer: Layer | None, status: str, **more: Any
    ) -> SiteOutcome:
        return SiteOutcome(
            link.name, link.kind, None if layer is None else layer.path, status, link.units, **more
        )

    def _read(self, link: SiteLink, layer: Layer, **options: Any) -> SiteSamples:
        return read_site(
            self.model,
            self.batches,
            link,
            layer.module,
            max_values=self.settings.max_values,
            **options,
        )

    def _centre(self, link: SiteLink, layer: Layer) -> SiteOutcome:
        """LCW's insight: a row that sums to zero cancels a mean its inputs share."""
        if not layer.has_rows:
            return self._outcome(
                link, layer, UNCHANGED, reason=f"{type(layer.module).__name__} has no weight rows"
            )
        if isinstance(layer, LCWLayer):
            return self._outcome(link, layer, UNCHANGED, reason="its rows already sum to zero")
        shared = self._shared_mean(link, layer)
        if shared is None or abs(shared) < SHARED_MEAN_LEVEL:
            value = "unknown" if shared is None else f"{shared:.3g}"
            return self._outcome(
                link,
                layer,
                UNCHANGED,
                reason=f"its input's shared mean is {value} of its RMS, below "
                f"{SHARED_MEAN_LEVEL:g}: nothing to centre",
            )
        layer.centre(torch.arange(layer.units))
        return self._outcome(link, layer, CHANGED, changed_units=layer.units, how="centred")

    def _shared_mean(self, link: SiteLink, layer: Layer) -> float | None:
        """``mean_i E[x_i] / sqrt(mean_i E[x_i^2])`` of the layer's input x."""
        if self.settings.method == "autoinit":
            source = self._source(link)
            if source is not None:
                mean, square = source
                return mean / math.sqrt(square) if square > 0 else None
        axis = 1 if isinstance(layer.module, nn.modules.conv._ConvNd) else -1
        samples = self._read(link, layer, site=False, layer_input=True, input_axis=axis)
        if samples.input_mean is None or not samples.input_mean_square:
            return None
        return float(samples.input_mean.mean()) / math.sqrt(samples.input_mean_square)

    def _lsuv(self, plan: _Plan) -> SiteOutcome:
        """Measure, set every unit's scale and bias, measure again, until within tolerance."""
        link, layer = plan.link, plan.layer
        assert layer is not None
        target, tolerance = self.settings.second_moment, self.settings.tolerance
        todo = torch.ones(link.units, dtype=torch.bool)
        reason = None
        passes = 0
        for attempt in range(self.settings.max_passes + 1):
            samples = self._read(link, layer, output=not link.direct)
            passes += 1
            if samples.z.shape[0] == 0:
                return self._outcome(
                    link, layer, FAILED, reason="no finite pre-activation on the probe set"
                )
            if attempt > 0:
                off = ((samples.z.square().mean(dim=0) / target) - 1.0).abs() > tolerance
                if not bool((off & todo).any()):
                    break
                if attempt == self.settings.max_passes:
                    todo &= ~off
                    reason = (
                        f"{int(off.sum())} of {link.units} units did not settle within "
                        f"{tolerance:g} of the target in {attempt} passes"
                    )
                    break
            solution = self._quantile(link, layer, samples)
            if attempt == 0 and not bool(solution.reachable.all()):
                reason = _unreachable(solution, link.units)
            todo &= solution.reachable
            _apply(layer, solution, todo)
        return self._result(link, layer, todo, reason, "measured", passes)

    def _quantile(self, link: SiteLink, layer: Layer, samples: SiteSamples) -> Solution:
        bias = layer.bias()
        if link.direct:
            u, r = samples.z - bias, None
        else:
            u, r = samples.layer_output - bias, samples.z - samples.layer_output
        return quantile_solution(
            u, r, self.settings.second_moment, self.settings.above, shift=layer.has_bias
        )

    def _autoinit(self, plan: _Plan) -> SiteOutcome:
        """Predict each unit's output moments from the layer's input moments (analytic), or
        measure them (where the input's moments are not tracked), and solve for a Gaussian."""
        link, layer = plan.link, plan.layer
        assert layer is not None
        target, above = self.settings.second_moment, self.settings.above
        source = self._source(link)
        passes = 0
        if source is not None and layer.has_rows and link.direct:
            mean_in, square_in = source
            sums, squares = layer.row_moments()
            solution = gaussian_solution(
                mean_in * sums,
                (square_in - mean_in * mean_in) * squares,
                target,
                above,
                shift=layer.has_bias,
            )
            how = "analytic"
        else:
            samples = self._read(link, layer, output=not link.direct)
            passes = 1
            if samples.z.shape[0] == 0:
                return self._outcome(
                    link, layer, FAILED, reason="no finite pre-activation on the probe set"
                )
            bias = layer.bias()
            u = (samples.z if link.direct else samples.layer_output) - bias
            options: dict[str, Tensor] = {}
            if not link.direct:
                r = samples.z - samples.layer_output
                options = {
                    "other_mean": r.mean(dim=0),
                    "other_variance": r.var(dim=0, unbiased=False),
                    "covariance": ((u - u.mean(dim=0)) * (r - r.mean(dim=0))).mean(dim=0),
                }
            solution = gaussian_solution(
                u.mean(dim=0),
                u.var(dim=0, unbiased=False),
                target,
                above,
                shift=layer.has_bias,
                **options,
            )
            solution = Solution(
                solution.alpha, solution.beta, solution.reachable & ~constant_units(u)
            )
            how = "measured"
        todo = solution.reachable.clone()
        _apply(layer, solution, todo)
        reason = None if bool(todo.all()) else _unreachable(solution, link.units)
        if bool(todo.all()) and link.module is not None:
            self._track(link)
        return self._result(link, layer, todo, reason, how, passes)

    def _source(self, link: SiteLink) -> tuple[float, float] | None:
        """Mean and second moment of what the site's layer reads, where known analytically."""
        if link.input_from == MODEL_INPUT:
            return self._input_moments()
        if link.input_from is not None:
            return self.tracked.get(link.input_from)
        return None

    def _input_moments(self) -> tuple[float, float] | None:
        values = [b for b in self.batches if isinstance(b, Tensor) and b.is_floating_point()]
        if len(values) != len(self.batches):
            return None
        count = sum(b.numel() for b in values)
        mean = sum(float(b.double().sum()) for b in values) / count
        square = sum(float(b.double().square().sum()) for b in values) / count
        return (mean, square) if square - mean * mean > 0 else None

    def _track(self, link: SiteLink) -> None:
        """The site's output moments for its pre-activation as set: Gaussian, P(z > 0) = above,
        second moment as targeted."""
        module = link.module
        assert module is not None
        g = NormalDist().inv_cdf(self.settings.above)
        s = math.sqrt(self.settings.second_moment / (1.0 + g * g))
        dtype = next((p.dtype for p in self.model.parameters()), torch.float32)
        self.tracked[link.name] = gaussian_moments(module.forward, g * s, s, dtype)

    def _result(
        self, link: SiteLink, layer: Layer, todo: Tensor, reason: str | None, how: str, passes: int
    ) -> SiteOutcome:
        changed = int(todo.sum())
        return self._outcome(
            link,
            layer,
            CHANGED if reason is None else FAILED,
            changed_units=changed,
            how=how,
            reason=reason,
            passes=passes,
        )


def _has_weights(module: nn.Module | None) -> bool:
    return module is not None and next(module.parameters(), None) is not None


def _apply(layer: Layer, solution: Solution, todo: Tensor) -> None:
    units = torch.nonzero(todo).flatten()
    layer.scale(solution.alpha, units)
    layer.set_bias(solution.beta, units)


def _unreachable(solution: Solution, units: int) -> str:
    missed = int((~solution.reachable).sum())
    return (
        f"{missed} of {units} units cannot reach the target: their pre-activation is the same "
        "for every probe input (dead on every input), or other paths alone exceed it"
    )


def _failed(plan: _Plan) -> SiteOutcome:
    link = plan.link
    return SiteOutcome(link.name, link.kind, link.producer, FAILED, link.units, reason=plan.problem)


def _refusal(failed: Sequence[SiteOutcome], total: int) -> str:
    listed = "; ".join(o.line() for o in failed)
    return (
        f"cannot reinitialize {len(failed)} of {total} sites: {listed}. Nothing was changed: "
        "every parameter is as it was (partial=True fixes the other sites and leaves these "
        "unchanged)"
    )


def _with_moments(outcome: SiteOutcome, before: dict, after: dict) -> SiteOutcome:
    first, last = before.get(outcome.site), after.get(outcome.site)
    return replace(
        outcome,
        rms_before=None if first is None else first.rms,
        rms_after=None if last is None else last.rms,
        above_before=None if first is None else float(first.above.mean()),
        above_after=None if last is None else float(last.above.mean()),
    )
