"""Every error of the package descends from one of the two roots and survives pickling.

A worker process sends its error back pickled: an error that does not rebuild (as
``BudgetError`` did, with its keyword-only fields) broke the whole pool with a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path

import pytest

import variability
from variability.errors import USER_ERRORS, VariabilityError
from variability.probes import ProbeError


def error_classes() -> list[type[BaseException]]:
    """Every exception class defined in the package (all its modules imported)."""
    for module in pkgutil.walk_packages(variability.__path__, "variability."):
        if not module.name.endswith("__main__"):  # it runs the command line
            importlib.import_module(module.name)
    found: dict[str, type[BaseException]] = {}
    stack: list[type] = [BaseException]
    while stack:
        kind = stack.pop()
        stack.extend(kind.__subclasses__())
        if kind.__module__.startswith("variability"):
            found[f"{kind.__module__}.{kind.__qualname__}"] = kind
    return [found[name] for name in sorted(found)]


ERRORS = [
    kind
    for kind in error_classes()
    if issubclass(kind, Exception) and not issubclass(kind, Warning)
]
"""Errors: not warnings, nor control-flow signals outside ``Exception`` (remedy's ``_Stop``)."""


def test_the_package_defines_errors_under_both_roots():
    names = {kind.__name__ for kind in ERRORS}
    assert {"UserError", "BudgetError", "TaskError", "ModelFileError", "ProbeError"} <= names
    assert (VariabilityError, ProbeError) == USER_ERRORS


@pytest.mark.parametrize("kind", ERRORS, ids=lambda kind: kind.__name__)
def test_every_error_descends_from_a_root_and_is_a_value_error(kind):
    assert issubclass(kind, USER_ERRORS), f"{kind.__name__} is under neither root"
    assert issubclass(kind, ValueError)


def example(kind: type[BaseException]) -> BaseException:
    """An instance built through the class's own __init__, with a value for every parameter."""
    values = {}
    for name, parameter in inspect.signature(kind.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = str(parameter.annotation)
        if name == "message" or annotation == "str":
            values[name] = f"{kind.__name__}: what went wrong, and what to do"
        elif "Path" in annotation:
            values[name] = Path("models") / "model.pt"
        elif "int" in annotation:
            values[name] = 7
        else:
            values[name] = "fc"
    if not values:
        return kind(f"{kind.__name__}: what went wrong")
    positional = [
        values.pop(name)
        for name, p in inspect.signature(kind.__init__).parameters.items()
        if p.kind is p.POSITIONAL_OR_KEYWORD and name in values
    ]
    return kind(*positional, **values)


@pytest.mark.parametrize("kind", ERRORS, ids=lambda kind: kind.__name__)
def test_every_error_pickles_with_its_message_and_attributes(kind):
    error = example(kind)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is kind
    assert again.args == error.args and str(again) == str(error)
    assert vars(again) == vars(error)


def test_a_budget_error_keeps_its_fields_through_pickle():
    from variability.arch import BudgetError, solve_width

    with pytest.raises(BudgetError) as raised:
        solve_width("fc", 3000, 128, 2, 1)  # 4 units at depth 128 fall 15% short of 3,000
    again = pickle.loads(pickle.dumps(raised.value))
    assert (again.family, again.depth, again.budget) == ("fc", 128, 3000)
    assert again.count == raised.value.count and again.nearest_budget > 0
