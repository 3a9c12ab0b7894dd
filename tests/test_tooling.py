"""The repository's own tripwires, run by the README's test command: ruff (lint + format) and the layer contracts."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(args, cwd=REPO, env=None):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_ruff_lint_and_format():
    lint = _run([sys.executable, "-m", "ruff", "check", "."])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run([sys.executable, "-m", "ruff", "format", "--check", "."])
    assert fmt.returncode == 0, "run 'ruff format .':\n" + fmt.stdout + fmt.stderr


def test_layer_contracts(tmp_path):
    """import-linter's contracts in pyproject.toml: physics imports nothing of medrecon; diffusion no
    task, reader or CLI; nothing imports the CLI. The package is laid out as installed (physics/ and
    datasets/ inside medrecon/) in a temporary copy, since import-linter walks folders."""
    import os

    ignore = shutil.ignore_patterns("__pycache__", "*.safetensors", "*.npz")
    shutil.copytree(REPO / "medrecon", tmp_path / "medrecon", ignore=ignore)
    for sub in ("physics", "datasets"):
        shutil.copytree(REPO / sub, tmp_path / "medrecon" / sub, ignore=ignore)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    res = _run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
            "--config",
            str(REPO / "pyproject.toml"),
            "--no-cache",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "4 kept, 0 broken" in res.stdout


def test_every_package_folder_is_installed():
    """A non-editable install ships only the packages pyproject.toml lists: every folder with an
    ``__init__.py`` under medrecon/, physics/ and datasets/ must be among them."""
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    roots = {folder: name for name, folder in cfg["package-dir"].items()}
    found = set()
    for folder, name in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *rel)))
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
