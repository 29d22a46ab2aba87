"""Mutation testing of the delivery core with mutmut: ``make mutation`` (all modules) or a subset.

Each module runs in its own scratch copy of the repository (``build/mutation/<module>/``) with a
``setup.cfg`` that names only that module and the fast unit tests that exercise it, so that
mutmut's per-mutant test selection starts from a short list and one module's results never wait
on another's. The report counts killed / survived / timeout / no-tests / equivalent per module;
the score is killed (timeouts count as killed: the mutant hung the tests) over the mutants that
are not listed as equivalent in ``tests/mutation/equivalent.txt``.

    python -m tests.mutation.run                      # every module (long: tens of minutes)
    python -m tests.mutation.run kafka_io/sink.py     # one module
    python -m tests.mutation.run kafka_io/sink.py --mutants 'kafka_io.sink.x_classify*' --min-score 90
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = ROOT / "build" / "mutation"
EQUIVALENT = Path(__file__).with_name("equivalent.txt")
#: The tests' small model, trained once for every mutant's session (``--model-store-cache``).
MODEL_STORE = SCRATCH / "model-store"
#: Copied into every scratch tree: the packages (mutated or imported), the tests, the docs the tests read.
COPIED = (
    "schemas", "config", "monitoring", "models", "kafka_io", "training", "scorer", "api", "producer",
    "devstack", "benchmarks", "cli", "tests", "docs", "pyproject.toml",
)  # fmt: skip

#: Module under test -> the fast unit tests that exercise it (no broker, no subprocess).
MODULES: dict[str, tuple[str, ...]] = {
    "scorer/batch.py": (
        "tests/unit/test_batch.py",
        "tests/unit/test_batch_isolation.py",
        "tests/unit/test_batch_histogram.py",
        "tests/unit/test_batch_edges.py",
        "tests/unit/test_batch_reasons.py",
    ),
    "kafka_io/sink.py": (
        "tests/unit/test_sink.py",
        "tests/unit/test_sink_retries.py",
    ),
    "schemas/contract.py": (
        "tests/unit/test_schemas.py",
        "tests/unit/test_contract_doc.py",
        "tests/unit/test_batch.py",
        "tests/unit/test_batch_edges.py",
        "tests/unit/test_batch_isolation.py",
    ),
    "scorer/fast_check.py": (
        "tests/unit/test_fast_check.py",
        "tests/unit/test_batch.py",
        "tests/unit/test_batch_isolation.py",
    ),
    "models/registry.py": ("tests/unit/test_registry.py", "tests/unit/test_challenger.py"),
    "models/store.py": ("tests/unit/test_registry.py", "tests/unit/test_challenger.py"),
    "models/predictor.py": (
        "tests/unit/test_predictor.py",
        "tests/unit/test_explain.py",
        "tests/unit/test_calibration.py",
        "tests/unit/test_blend.py",
    ),
    "models/fastpath.py": (
        "tests/unit/test_predictor.py",
        "tests/unit/test_tree_walk.py",
        "tests/unit/test_blend.py",
        "tests/unit/test_calibration.py",
        "tests/unit/test_explain.py",
    ),
    "api/middleware.py": (
        "tests/unit/test_api_middleware.py",
        "tests/unit/test_api_limits.py",
        "tests/unit/test_api_auth.py",
        "tests/unit/test_api_routes.py",
    ),
}

#: mutmut forks one process per mutant from a process that has fitted models. A forked child
#: whose parent started an OpenMP thread pool (HistGradientBoosting, BLAS) hangs in its first
#: parallel region, so the native thread pools stay at one thread.
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: mutmut's exit code of a mutant's test run -> its outcome (mutmut.__main__.status_by_exit_code).
OUTCOME = {1: "killed", 3: "killed", 0: "survived", 5: "no_tests", 33: "no_tests", 34: "skipped",
           36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
           37: "killed", -11: "killed", -9: "timeout", None: "not_checked"}  # fmt: skip


@dataclass
class ModuleResult:
    module: str
    outcomes: dict[str, str]  # mutant name -> outcome (equivalent ones relabelled)
    seconds: float

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    @property
    def score(self) -> float | None:
        """Killed (timeouts included) over the mutants that count (not equivalent, not unchecked)."""
        c = self.counts
        dead = c["killed"] + c["timeout"]
        counted = dead + c["survived"] + c["no_tests"]
        return 100.0 * dead / counted if counted else None

    @property
    def survivors(self) -> list[str]:
        return sorted(n for n, o in self.outcomes.items() if o in ("survived", "no_tests"))


def equivalent_mutants(path: Path = EQUIVALENT) -> dict[str, str]:
    """``name  reason`` lines of ``equivalent.txt`` (``#`` comments and blank lines skipped)."""
    listed: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            listed[name] = reason.strip()
    return listed


def _setup_cfg(module: str, tests: tuple[str, ...]) -> str:
    package = module.split("/", 1)[0]

    def listed(key: str, values: list[str]) -> str:
        return f"{key}=\n" + "".join(f"    {v}\n" for v in values)

    return "[mutmut]\n" + "".join(
        [
            # A mutant that hangs (a read loop that never ends) is stopped after 5x the time of
            # its tests plus 20 s, not mutmut's default 15x plus 1 s: the store's tests take a
            # minute, and a mutant's fresh session first builds the module fixtures (fitting
            # models: seconds of CPU on every core) that the measured tests found ready.
            "timeout_multiplier=5\ntimeout_constant=20\n",
            listed("source_paths", [package]),
            listed("only_mutate", [module]),
            listed("also_copy", [p for p in COPIED if p != package]),
            listed(
                "pytest_add_cli_args",
                [
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "tests.mutation.pytest_compat",
                    "-q",
                    f"--model-store-cache={MODEL_STORE}",
                ],
            ),
            listed("pytest_add_cli_args_test_selection", list(tests)),
        ]
    )


def _scratch_tree(module: str, tests: tuple[str, ...]) -> Path:
    """A fresh copy of the repository's packages and tests with a mutmut config for ``module``."""
    tree = SCRATCH / module.replace("/", ".").removesuffix(".py")
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants", ".hypothesis")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=ignore)
        else:
            shutil.copy2(source, tree / name)
    (tree / "setup.cfg").write_text(_setup_cfg(module, tests), encoding="utf-8")
    return tree


def _train_model_store() -> None:
    """The ``model_store`` fixture's model, trained here once instead of in every mutant's session."""
    if (MODEL_STORE / "CURRENT").is_file():
        return
    shutil.rmtree(MODEL_STORE, ignore_errors=True)
    MODEL_STORE.mkdir(parents=True)
    # the same call as the fixture in tests/conftest.py, which reuses the store when CURRENT exists
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--model-store-cache={MODEL_STORE}",
         "tests/unit/test_batch.py::test_valid_events_get_the_predictors_probabilities"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def run_module(module: str, mutants: list[str], equivalent: dict[str, str], *, quiet: bool) -> ModuleResult:
    tests = MODULES[module]
    tree = _scratch_tree(module, tests)
    started = time.monotonic()
    log = tree / "mutmut.log"
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", *mutants],
            cwd=tree,
            env=os.environ | SINGLE_THREADED,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    meta = tree / "mutants" / (module + ".meta")
    if proc.returncode != 0 or not meta.exists():
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"mutmut failed on {module} (exit {proc.returncode}); end of {log}:\n{tail}")
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    outcomes: dict[str, str] = {}
    for name, code in codes.items():
        outcome = OUTCOME.get(code, "suspicious")
        if outcome == "not_checked" and mutants:
            continue  # outside the requested subset
        outcomes[name] = "equivalent" if name in equivalent else outcome
    if not quiet:
        print(f"{module}: {dict(Counter(outcomes.values()))} in {seconds:.0f} s", flush=True)
    return ModuleResult(module, outcomes, seconds)


def report(results: list[ModuleResult]) -> str:
    kinds = ("killed", "timeout", "survived", "no_tests", "equivalent", "suspicious")
    lines = ["| module | " + " | ".join(kinds) + " | score |", "|---" * (len(kinds) + 2) + "|"]
    total: Counter[str] = Counter()
    for r in results:
        c = r.counts
        total.update(c)
        score = "n/a" if r.score is None else f"{r.score:.1f} %"
        lines.append(f"| {r.module} | " + " | ".join(str(c[k]) for k in kinds) + f" | {score} |")
    dead = total["killed"] + total["timeout"]
    counted = dead + total["survived"] + total["no_tests"]
    overall = f"{100.0 * dead / counted:.1f} %" if counted else "n/a"
    lines.append("| **all** | " + " | ".join(str(total[k]) for k in kinds) + f" | **{overall}** |")
    for r in results:
        if r.survivors:
            lines.append(f"\nSurvivors in {r.module} (`mutmut show NAME` in build/mutation/<module>):")
            lines.extend(f"- {name}" for name in r.survivors)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    parser.add_argument("--mutants", nargs="*", default=[], help="mutmut name globs (one module only)")
    parser.add_argument("--min-score", type=float, default=90.0, help="exit 1 below this overall score")
    parser.add_argument("--report", type=Path, default=SCRATCH / "report.md")
    args = parser.parse_args(argv)
    modules = args.modules or list(MODULES)
    if unknown := [m for m in modules if m not in MODULES]:
        parser.error(f"not a module of the delivery core: {', '.join(unknown)}")
    if args.mutants and len(modules) != 1:
        parser.error("--mutants needs exactly one module")
    equivalent = equivalent_mutants()
    _train_model_store()
    results = [run_module(m, args.mutants, equivalent, quiet=False) for m in modules]
    text = report(results)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text, encoding="utf-8")
    print(text)
    dead = sum(r.counts["killed"] + r.counts["timeout"] for r in results)
    counted = dead + sum(r.counts["survived"] + r.counts["no_tests"] for r in results)
    score = 100.0 * dead / counted if counted else 0.0
    print(f"overall {score:.1f} % (bar {args.min_score:.0f} %); report: {args.report}")
    return 0 if score >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())
