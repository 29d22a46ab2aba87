"""The GitHub Actions workflow is linted offline and builds what the project ships.

zizmor (a static analyser for workflows, PyPI wheel) runs with its pedantic persona; the
workflow schema vendored by check-jsonschema checks the structure. actionlint is not used:
its PyPI wrapper downloads the binary from GitHub at build time, which cannot work here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests.support.deploy_files import ROOT, run, tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s*#\s*v\d+(\.\d+){1,2}\s*$")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load(ROOT / ".github" / "workflows" / "ci.yml")


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def scripts(workflow: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in steps(workflow))


def test_there_are_workflows() -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_zizmor_finds_nothing(path: Path) -> None:
    result = run(tool("zizmor"), "--offline", "--persona", "pedantic", "--no-progress", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_is_not_vacuous(tmp_path: Path) -> None:
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    unpinned = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", text)
    (tmp_path / "ci.yml").write_text(unpinned)
    result = run(tool("zizmor"), "--offline", "--no-progress", tmp_path / "ci.yml")
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_follows_the_github_workflow_schema(path: Path) -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_release_noted(path: Path) -> None:
    found = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = USES.match(line)
        if not match:
            continue
        found += 1
        ref, comment = match.groups()
        assert PINNED.fullmatch(ref), f"{path.name}:{number}: {ref} is not pinned to a 40-hex commit"
        assert VERSION_COMMENT.fullmatch(comment), f"{path.name}:{number}: say which release: # vX.Y.Z"
    assert found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_token(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        for scope, level in (job.get("permissions") or {}).items():
            assert level in ("read", "none"), f"{name}: {scope}: {level}"
        assert job.get("timeout-minutes"), f"{name}: no timeout"
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{name}: checkout keeps the token"


def test_python_matrix_covers_the_supported_versions(ci: dict[str, Any]) -> None:
    versions = ci["jobs"]["test"]["strategy"]["matrix"]["python"]
    requires = SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    )
    assert versions[0] == "3.11", "the images' Python"
    assert len(versions) >= 2
    for version in versions:
        assert requires.contains(version), version
    assert "bash .ci/run" in scripts({"jobs": {"test": ci["jobs"]["test"]}})


def test_ci_builds_starts_and_smoke_tests_what_it_ships(ci: dict[str, Any]) -> None:
    text = scripts(ci)
    assert "docker compose --profile demo build" in text
    assert "docker compose up -d" in text
    assert "python deploy/smoke_test.py" in text
    assert "bash deploy/make_secrets.sh" in text
    for path in ("deploy/smoke_test.py", "deploy/make_secrets.sh"):
        assert (ROOT / path).exists(), path
    scans = [s for s in steps(ci) if str(s.get("uses", "")).startswith("anchore/scan-action@")]
    assert {s["with"]["image"] for s in scans} >= {"churn-stream-api:0.1.0", "churn-stream-training:0.1.0"}
    assert all(str(s["with"]["fail-build"]).lower() == "true" for s in scans)


def test_ci_audits_every_lock_file(ci: dict[str, Any]) -> None:
    audit = scripts({"jobs": {"audit": ci["jobs"]["audit"]}})
    assert "pip-audit" in audit and "--require-hashes" in audit
    for lock in sorted((ROOT / "deploy" / "requirements").glob("*.txt")):
        assert f"-r deploy/requirements/{lock.name}" in audit, lock.name
