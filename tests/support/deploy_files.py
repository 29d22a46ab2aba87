"""Reading the deployment files the way their tools do, for the tests that check them offline.

* ``compose()``: docker-compose.yml with ``${VAR:-default}`` interpolation applied for a given
  environment (empty by default: what a plain ``docker compose up`` gets).
* ``dockerfile_stages()``: the Dockerfile's stages, with each stage's parent, so a target's
  effective USER/HEALTHCHECK/CMD can be followed through ``FROM <stage>``.
* ``tool()``: a linter that a dev dependency ships (hadolint, zizmor, check-jsonschema), next
  to this interpreter; a missing one fails the test (``make install`` installs them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$\$")


class InterpolationError(ValueError):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution on every string of ``value`` (nested)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise InterpolationError(f"{name} is required: {arg}")
            return str(current)
        return current or ""

    return _VARIABLE.sub(one, value)


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    result: dict[str, Any] = interpolate(raw, env or {})
    return result


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, instruction: str) -> str | None:
        found = [args for inst, args in self.instructions if inst == instruction]
        return found[-1] if found else None


def dockerfile_instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8") if text is None else text
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def dockerfile_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """Global ARGs with a default (those before the first FROM)."""
    args: dict[str, str] = {}
    for instruction, value in instructions:
        if instruction == "FROM":
            break
        if instruction == "ARG" and "=" in value:
            name, _, default = value.partition("=")
            args[name] = default
    return args


def dockerfile_stages(text: str | None = None) -> dict[str, Stage]:
    """Stages by name, in order; ``base`` is the FROM argument (an image or an earlier stage)."""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for instruction, args in dockerfile_instructions(text):
        if instruction == "FROM":
            parts = args.split()
            name = parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else str(len(stages))
            current = Stage(name=name, base=parts[0])
            stages[name] = current
        elif current is not None:
            current.instructions.append((instruction, args))
    return stages


def effective(stages: dict[str, Stage], target: str, instruction: str) -> str | None:
    """The value of ``instruction`` a target ends up with, following FROM <stage> parents."""
    stage: Stage | None = stages[target]
    while stage is not None:
        value = stage.last(instruction)
        if value is not None:
            return value
        stage = stages.get(stage.base)
    return None


def tool(name: str) -> str:
    """Path of a linter installed by the dev extra; fails the test when it is missing."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found next to {sys.executable} or on PATH: run `make install`")
    return path


def run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )
