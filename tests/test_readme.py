"""The README's Python examples run as written, and its set-up commands are what CI runs."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "the README shows no Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "probe.json").exists()


def test_ci_reads_its_commands_from_the_readme():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_block install" in ci and "readme_block test" in ci
    for tag in ("<!-- ci:install -->", "<!-- ci:test -->"):
        following = README.split(tag, 1)[1].lstrip()
        assert following.startswith("```bash\n"), tag
    install = README.split("<!-- ci:install -->", 1)[1].split("```")[1]
    assert "pip install torch==" in install and 'pip install -e ".[dev]"' in install
    # the one command installs and runs the main job: the quick default comparison
    assert install.strip().endswith("&& .venv/bin/variability compare")


def test_ci_checks_lint_format_and_types_and_the_package_ships_its_types():
    ci = (ROOT / ".ci" / "run").read_text()
    for check in (".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"):
        assert f"\n{check}\n" in ci, check
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(r.startswith("mypy") for r in project["project"]["optional-dependencies"]["dev"])
    assert project["tool"]["mypy"]["packages"] == ["variability"]
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["variability"]
    assert (ROOT / "variability" / "py.typed").is_file()


def test_the_readme_picture_comes_from_the_comparison_report():
    assert "![" in README and "(docs/images/compare.png)" in README
    image = ROOT / "docs" / "images" / "compare.png"
    assert image.read_bytes().startswith(b"\x89PNG")
    assert "cp reports/compare/report/variability_and_c2c.png docs/images/compare.png" in README
