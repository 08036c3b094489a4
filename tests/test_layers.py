"""The package's imports point one way and never go round in a circle.

Read from the source (``ast``), every import counts: at module level, inside functions, under
``TYPE_CHECKING``. Each part of the package has a layer; a part may import only parts of lower
layers (and itself):

    cli -> variability (the public API) -> experiments -> runs, reports, loading, remedy
        -> arch, tasks
        -> the foundation (errors, atomic, devices, folders, versions) -> probes

``probes`` imports nothing of the project's, so that it works on any model. The foundation's
modules are the small shared pieces every layer above probes needs (the error root, atomic
files, the device rule, versions); ``arch`` and ``tasks`` import only them and ``probes``.
Parts of one layer do not import each other.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "variability"

LAYERS: dict[str, int] = {
    "probes": 0,
    "foundation": 1,
    "arch": 2,
    "tasks": 2,
    "runs": 3,
    "reports": 3,
    "loading": 3,
    "remedy": 3,
    "experiments": 4,
    "api": 5,
    "cli": 6,
    "__main__": 7,
}
FOUNDATION = {"errors", "atomic", "devices", "folders", "versions"}


def part_of(module: str) -> str:
    """The part a module belongs to: its subpackage, ``foundation``, ``api`` (the package's
    ``__init__``) or ``__main__``."""
    names = module.split(".")
    if len(names) == 1:
        return "api"
    top = names[1]
    if top in FOUNDATION:
        return "foundation"
    return top


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} imports {self.target} (line {self.line})"


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        names = [root.name, *path.relative_to(root).with_suffix("").parts]
        if names[-1] == "__init__":
            names.pop()
        found[".".join(names)] = path
    return found


def imports(known: dict[str, Path]) -> list[Import]:
    """Every import of one of the package's modules by another, wherever it is written."""
    edges = []
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from a import b`` imports the submodule a.b when there is one, else a.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                while target not in known and "." in target:
                    target = target.rpartition(".")[0]
                if target in known and target != module:
                    edges.append(Import(module, target, node.lineno))
    return edges


def cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


KNOWN = modules()
EDGES = imports(KNOWN)


def test_the_reader_sees_imports_at_every_level():
    """The graph is not empty, and it holds imports made inside functions."""
    assert len(KNOWN) > 50 and len(EDGES) > 100
    sources = {(edge.source, edge.target) for edge in EDGES}
    assert ("variability.cli.probe", "variability.reports.probe_report") in sources  # in a function
    assert ("variability", "variability.probes") in sources


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(module) for module in KNOWN}
    assert parts <= set(LAYERS), f"give these parts a layer: {sorted(parts - set(LAYERS))}"


def violations(edges: list[Import]) -> list[str]:
    """The imports that go up a layer or sideways into another part of the same layer."""
    return [
        f"{edge}: {part_of(edge.source)} may not import {part_of(edge.target)}"
        for edge in edges
        if part_of(edge.source) != part_of(edge.target)
        and LAYERS[part_of(edge.target)] >= LAYERS[part_of(edge.source)]
    ]


def test_no_import_goes_up_or_sideways():
    wrong = violations(EDGES)
    assert not wrong, "\n".join(wrong)


def test_the_probe_engine_imports_nothing_of_the_project():
    outside = [
        str(edge) for edge in EDGES if part_of(edge.source) == "probes" != part_of(edge.target)
    ]
    assert not outside, "\n".join(outside)


def test_no_module_imports_itself_back_through_others():
    found = cycles(EDGES)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(group) for group in found)


def write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    """A throwaway ``variability`` package with the given modules (paths under the package)."""
    package = root / "variability"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(package).parents:
            (package / folder / "__init__.py").touch()
        path.write_text(text)
    return modules(package)


def test_the_checker_catches_imports_up_and_sideways_even_inside_functions(tmp_path):
    known = write_package(
        tmp_path,
        {
            "errors.py": "",
            "probes/probe.py": "def f():\n    from variability.errors import UserError\n",
            "arch/files.py": "import variability\n",
            "runs/trainer.py": "from variability.reports import page\n",
            "reports/page.py": "",
            "experiments/jobs.py": "from variability.runs.trainer import train\n",
            "cli/app.py": "from ..experiments import jobs\n",
        },
    )
    edges = imports(known)
    assert Import("variability.cli.app", "variability.experiments.jobs", 1) in edges  # relative
    wrong = violations(edges)
    assert [line.split(" (")[0] for line in wrong] == [
        "variability.arch.files imports variability",
        "variability.probes.probe imports variability.errors",
        "variability.runs.trainer imports variability.reports.page",
    ]


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    known = write_package(
        tmp_path,
        {
            "runs/a.py": "from variability.runs import b\n",
            "runs/b.py": "def f():\n    from variability.runs.a import x\n",
        },
    )
    assert cycles(imports(known)) == [["variability.runs.a", "variability.runs.b"]]
