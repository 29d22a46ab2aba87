"""The package layout and its import contract cover every top-level package, and the contract holds."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _packages_on_disk() -> set[str]:
    """Top-level folders that are Python packages (the tests excepted)."""
    return {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}


def test_every_package_is_shipped_type_checked_and_layered() -> None:
    on_disk = _packages_on_disk()
    shipped = {
        pattern.rstrip("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    checked = {path for path in PYPROJECT["tool"]["mypy"]["files"] if "/" not in path}
    linter = PYPROJECT["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in linter["contracts"] if c["type"] == "layers"]
    layered = {name.strip() for layer in layers for name in layer.split("|")}
    assert shipped == checked == set(linter["root_packages"]) == layered == on_disk


def test_cli_is_the_top_layer() -> None:
    (layers,) = [c["layers"] for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    assert layers[0] == "cli"
    assert PYPROJECT["project"]["scripts"]["churn"] == "cli.main:run"


def test_the_import_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 broken" in done.stdout
