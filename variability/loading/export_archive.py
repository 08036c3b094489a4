"""Reading a ``torch.export`` archive (``.pt2``) without letting it run code.

``torch.export.load`` trusts its file. In the archive format of PyTorch 2.13 it can run code from
the file in these places (tests/cli/test_probe_untrusted_export.py builds an archive for each):

- a weight or tensor constant whose config entry says ``use_pickle`` goes to
  ``torch.load(weights_only=False)``;
- ``opaque_obj_*`` constants go to ``pickle.loads``, ``custom_obj_*`` to TorchScript's unpickler;
- the sample inputs, and weights in the older one-file layout, go to ``torch.load``, which falls
  back to ``weights_only=False`` when the safe loader refuses them;
- every symbolic-shape expression (``expr_str``) is parsed by ``sympy.sympify``, which evaluates
  Python;
- ``guards_code`` is compiled with ``exec`` when the program becomes a module;
- a graph node's target may name any callable reachable by attribute from ``torch``, ``operator``
  or ``math`` (``torch.os.system``); torch's verifier refuses such a program today, and this
  check does not rely on it;
- members under ``aotinductor/`` are shared libraries that get loaded.

So before the archive reaches ``torch.export.load`` we read it ourselves, as bytes and JSON, and
accept only what is inert: listed members, raw tensor payloads, sample inputs that the safe
(``weights_only``) loader reads, expressions and guards made of arithmetic on shape symbols, and
graph nodes that call PyTorch operators. Anything else is refused, naming the member, unless the
user passes ``trust_pickle`` (``--trust-pickle``).
"""

from __future__ import annotations

import ast
import io
import json
import math
import operator
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from variability.loading.errors import UntrustedPickleError

__all__ = ["UnsafeArchiveError", "check_export_archive"]


class UnsafeArchiveError(UntrustedPickleError):
    """A ``.pt2`` archive with a member that would run code when torch loads it."""

    def __init__(self, path: Path, member: str, reason: str) -> None:
        super().__init__(
            f"{path} was not loaded: its member {member} {reason}. If you trust the file, pass "
            "--trust-pickle to load it anyway",
            path,
        )
        self.member = member


_MODEL = r"[A-Za-z0-9_\-.]+"
_INERT_MEMBERS = tuple(
    re.compile(pattern)
    for pattern in (
        r"archive_format",
        r"archive_version",
        r"byteorder",
        r"\.data/[A-Za-z0-9_\-.]+",
        rf"models/{_MODEL}\.json",
        rf"data/weights/{_MODEL}_weights_config\.json",
        r"data/weights/weight_\d+",
        rf"data/constants/{_MODEL}_constants_config\.json",
        r"data/constants/tensor_\d+",
        rf"data/sample_inputs/{_MODEL}\.pt",
        r"extra/.+",  # read as text into a dict
    )
)
_PAYLOAD_NAME = {"weights": re.compile(r"weight_\d+"), "constants": re.compile(r"tensor_\d+")}

_CODE_MEMBERS = (
    ("data/aotinductor/", "is compiled native code (AOTInductor) that torch would load and run"),
    ("data/weights/", "holds weights in the older pickled layout, which torch would unpickle"),
    ("data/constants/", "is a pickled Python object, which torch would unpickle"),
)

_MAX_EXPRESSION = 2000
"""Longest symbolic expression or guard accepted (torch's are tens of characters)."""


def check_export_archive(path: Path) -> None:
    """Raise ``UnsafeArchiveError`` unless every member of the archive at ``path`` is inert."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        root = names[0].split("/", 1)[0] if names else ""
        members: dict[str, str] = {}
        for name in names:
            if not name.startswith(root + "/"):
                raise UnsafeArchiveError(
                    path,
                    name,
                    "lies outside the archive's one folder (an older layout that torch "
                    "would unpickle)",
                )
            members[name[len(root) + 1 :]] = name
        for member in members:
            if not any(pattern.fullmatch(member) for pattern in _INERT_MEMBERS):
                raise UnsafeArchiveError(path, member, _why_not_inert(member))

        def read(member: str) -> bytes:
            return archive.read(members[member])

        for member in members:
            if member.endswith(("_weights_config.json", "_constants_config.json")):
                _check_payload_config(path, member, read(member))
            elif member.startswith("data/sample_inputs/"):
                _check_safe_torch_file(path, member, read(member))
            elif member.startswith("models/"):
                _check_program(path, member, read(member))


def _why_not_inert(member: str) -> str:
    for prefix, reason in _CODE_MEMBERS:
        if member.startswith(prefix):
            return reason
    return "is not part of a torch.export program that is known to load without running code"


def _check_payload_config(path: Path, member: str, data: bytes) -> None:
    """Every weight and constant must be a raw tensor payload, never a pickle."""
    folder = "weights" if member.endswith("_weights_config.json") else "constants"
    config = _json(path, member, data).get("config", {})
    if not isinstance(config, dict):
        raise UnsafeArchiveError(path, member, "is not a payload configuration")
    for name, entry in config.items():
        payload = entry.get("path_name") if isinstance(entry, dict) else None
        where = f"data/{folder}/{payload}"
        if not isinstance(payload, str) or not _PAYLOAD_NAME[folder].fullmatch(payload):
            raise UnsafeArchiveError(
                path,
                where,
                f"({name!r} in {member}) is a pickled Python object, which torch would unpickle",
            )
        if entry.get("use_pickle") is not False:
            raise UnsafeArchiveError(
                path,
                where,
                f"({name!r} in {member}) is pickled, and torch would unpickle it "
                "with torch.load(weights_only=False)",
            )


def _check_safe_torch_file(path: Path, member: str, data: bytes) -> None:
    """torch reads it with the safe loader first and falls back to unpickling anything; so it
    must load with the safe loader (then the fallback never runs)."""
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        raise UnsafeArchiveError(
            path,
            member,
            "holds pickled objects that torch.load(weights_only=True) refuses, and "
            "torch would then unpickle them without that safeguard",
        ) from None


def _check_program(path: Path, member: str, data: bytes) -> None:
    program = _json(path, member, data)
    for key, value in _walk(program):
        if key in ("target", "as_operator") and isinstance(value, str):
            if not _is_operator(value):
                raise UnsafeArchiveError(
                    path,
                    member,
                    f"calls {value!r}, a Python function rather than a PyTorch operator",
                )
        elif key == "expr_str" and isinstance(value, str):
            _check_expression(path, member, value)
    guards = program.get("guards_code", []) if isinstance(program, dict) else []
    for guard in guards if isinstance(guards, list) else [guards]:
        _check_expression(path, member, guard)
    ranges = program.get("range_constraints", {}) if isinstance(program, dict) else {}
    for symbol in ranges if isinstance(ranges, dict) else ():
        _check_expression(path, member, symbol)


def _json(path: Path, member: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise UnsafeArchiveError(path, member, "is not valid JSON") from None


def _walk(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Every (key, value) pair of a JSON document, depth first (lists keep their parent's key)."""
    yield key, value
    if isinstance(value, dict):
        for child_key, child in value.items():
            yield from _walk(child, child_key)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child, key)


# --- graph node targets ---------------------------------------------------------------------------

_OPERATOR_FUNCTIONS = (
    "eq ne le ge lt gt neg pos mul add sub floordiv mod pow truediv and_ or_ lshift rshift "
    "getitem not_"
)
_TORCH_SYMBOLIC = "sym_not sym_int sym_float sym_ite sym_max sym_min sym_sqrt sym_sum"
_SYMBOLIC_OPS = frozenset(
    [
        *(getattr(operator, name) for name in _OPERATOR_FUNCTIONS.split()),
        math.trunc,
        *(getattr(torch, name) for name in _TORCH_SYMBOLIC.split() if hasattr(torch, name)),
    ]
)
"""Plain Python functions that export graphs call on shapes (torch's serializer's own list)."""

_HIGHER_ORDER_OPS = frozenset(
    [
        "cond",
        "while_loop",
        "map_impl",
        "scan",
        "associative_scan",
        "invoke_subgraph",
        "wrap_with_set_grad_enabled",
        "wrap_with_autocast",
        "auto_functionalized",
        "auto_functionalized_v2",
        "with_effects",
        "flex_attention",
        "hints_wrapper",
        "out_dtype",
    ]
)
"""Higher-order operators whose only callables are subgraphs and operators of the archive
(both checked here); others (torchbind calls, kernels by reference) are refused."""


def _resolve(target: str) -> Any:
    """What torch's deserializer makes of a node target: attribute lookups only, nothing called."""
    roots = (("_operator", operator), ("torch", torch), ("math", math))
    module = next((m for prefix, m in roots if target.startswith(prefix)), None)
    if module is None:
        return None if target.startswith("#") else target  # '#...': an extension's handler
    resolved: Any = module
    for name in target.split(".")[1:]:
        if not hasattr(resolved, name):
            return target  # left a string: torch refuses the node
        resolved = getattr(resolved, name)
    return resolved


def _is_operator(target: str) -> bool:
    resolved = _resolve(target)
    if isinstance(resolved, str):
        return True  # not callable: torch refuses it before anything runs
    if isinstance(resolved, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
        return True
    if isinstance(resolved, torch._ops.HigherOrderOperator):
        return resolved.__name__ in _HIGHER_ORDER_OPS
    try:
        return resolved in _SYMBOLIC_OPS
    except TypeError:  # unhashable
        return False


# --- symbolic expressions and guards ----------------------------------------------------------

_FUNCTIONS = frozenset(
    [
        "Symbol",
        "Integer",
        "Rational",
        "Float",
        "Max",
        "Min",
        "Eq",
        "Ne",
        "Lt",
        "Le",
        "Gt",
        "Ge",
        "And",
        "Or",
        "Not",
        "Abs",
        "floor",
        "ceiling",
        "sqrt",
        "Mod",
        "Piecewise",
        "ITE",
        "Add",
        "Mul",
        "Pow",
        "FloorDiv",
        "ModularIndexing",
        "Where",
        "PythonMod",
        "CleanDiv",
        "CeilToInt",
        "FloorToInt",
        "CeilDiv",
        "LShift",
        "RShift",
        "PowByNatural",
        "FloatPow",
        "FloatTrueDiv",
        "IntTrueDiv",
        "IsNonOverlappingAndDenseIndicator",
        "TruncToFloat",
        "TruncToInt",
        "RoundToInt",
        "RoundDecimal",
        "ToFloat",
        "Identity",
        "BitwiseFn_bitwise_and",
        "BitwiseFn_bitwise_or",
        "BitwiseFn_bitwise_xor",
    ]
)
"""Pure arithmetic (sympy's and torch's shape functions): calling them cannot reach the system."""
_CONSTANTS = frozenset(["L", "math", "inf", "oo", "zoo", "nan", "true", "false", "True", "False"])
_TENSOR_METHODS = frozenset(["size", "stride", "storage_offset", "dim", "numel"])
_MATH_NAMES = frozenset(["isnan", "isinf", "inf", "floor", "ceil", "trunc", "sqrt"])
_SYMBOL = re.compile(r"[a-z]{1,4}\d+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""Strings and keyword names: plain words, so nothing can close a quote in the guard's code."""
_OPERATORS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd,
    ast.Not, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.And, ast.Or,
    ast.LShift, ast.RShift, ast.BitAnd, ast.BitOr,
)  # fmt: skip


def _check_expression(path: Path, member: str, text: Any) -> None:
    """A shape expression or guard: numbers, shape symbols, arithmetic, comparisons, pure shape
    functions and ``L['x'].size()[0]``; no attribute but tensor size methods and ``math``'s, no
    string but a plain word, no other call. Everything ``eval`` could misuse is left out."""
    shown = repr(text)[:80]
    if not isinstance(text, str) or len(text) > _MAX_EXPRESSION:
        raise UnsafeArchiveError(
            path, member, f"has a shape expression {shown} too long to be torch's own"
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise UnsafeArchiveError(
            path,
            member,
            f"has a shape expression {shown} that is not arithmetic, and torch "
            "would evaluate it as Python",
        ) from None
    for node in ast.walk(tree):
        if not _inert(node):
            raise UnsafeArchiveError(
                path,
                member,
                f"has a shape expression {shown} that is not plain arithmetic, and "
                "torch would evaluate it as Python",
            )


def _inert(node: ast.AST) -> bool:
    if isinstance(node, ast.Expression | ast.Load | ast.BinOp | ast.UnaryOp | ast.BoolOp):
        return not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)) or _small(
            node.right
        )
    if isinstance(node, ast.Compare | ast.keyword):
        return not isinstance(node, ast.keyword) or (
            node.arg is not None
            and _WORD.fullmatch(node.arg) is not None
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, bool)
        )
    if isinstance(node, _OPERATORS):
        return True
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, str):
            return _WORD.fullmatch(value) is not None
        return isinstance(value, bool | int | float) and len(repr(value)) <= 32
    if isinstance(node, ast.Name):
        name = node.id
        return name in _FUNCTIONS or name in _CONSTANTS or bool(_SYMBOL.fullmatch(name))
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant)
    if isinstance(node, ast.Attribute):
        base = node.value
        if isinstance(base, ast.Name) and base.id == "math":
            return node.attr in _MATH_NAMES
        return node.attr in _TENSOR_METHODS
    if isinstance(node, ast.Call):
        function = node.func
        if isinstance(function, ast.Name):
            return function.id in _FUNCTIONS
        return isinstance(function, ast.Attribute)  # checked as an Attribute above
    return False


def _small(exponent: ast.AST) -> bool:
    """Powers only by small literal exponents: ``9**9**9`` would hang the loader."""
    return (
        isinstance(exponent, ast.Constant)
        and isinstance(exponent.value, int)
        and abs(exponent.value) <= 64
    )
