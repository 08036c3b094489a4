"""``variability.probes`` imports nothing else of the project's (DESIGN.md): it works on any
model. Checked on the source, imports inside functions included."""

import ast
from pathlib import Path

PROBES = Path(__file__).resolve().parents[2] / "variability" / "probes"


def test_probes_import_only_themselves_from_the_project():
    offending = []
    for path in sorted(PROBES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] == "variability" and not name.startswith(
                    "variability.probes"
                ):
                    offending.append(f"{path.name}: {name}")
    assert len(list(PROBES.glob("*.py"))) > 10
    assert offending == []
