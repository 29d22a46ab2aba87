"""``churn bench format``: the served model's file format, skops against the joblib pickle.

For every candidate ``churn train`` knows (and the selected linear model with each
calibration), fitted on the same synthetic data: the file size in each format, the
time to load it (median of several loads), whether the probabilities of the loaded
pipelines are bit-identical, and the scoring time of a :class:`models.predictor.Predictor`
built on each — one record and batches of 500, the two formats timed call by call in
turns, reported as the ratio of the medians skops / joblib. Results go to the terminal and, with
``--write-docs``, into the "Model format" section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from benchmarks.doc_sections import measured_header, replace_section
from benchmarks.machine import cpu_name, load_average
from benchmarks.progress import Progress
from models import artifact
from models.calibration import IsotonicCalibrated, SigmoidCalibrated
from models.predictor import Predictor
from models.probes import probe_records
from schemas.features import FEATURES
from training import candidates
from training.run import _single_threaded
from training.synthetic import generate

DOC_START = "<!-- churn bench format: start -->"
DOC_END = "<!-- churn bench format: end -->"


@dataclass(frozen=True)
class FormatPlan:
    rows: int = 3000
    loads: int = 7
    rounds: int = 5  # scoring: 400 single-record and 20 batch calls per format per round
    write_docs: Path | None = None


def _median_seconds(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _call(fn: Callable[[Any], object], argument: Any) -> Callable[[], object]:
    return lambda: fn(argument)


def _pipelines(rows: int) -> dict[str, Pipeline]:
    frame = generate(rows, seed=5)
    x, y = frame[["customer_id", *FEATURES]], frame["churn"].to_numpy()
    fitted: dict[str, Pipeline] = {}
    for name, pipeline in candidates.build().items():
        pipeline.fit(x, y)
        _single_threaded(pipeline)
        fitted[name] = pipeline
    spline = fitted["spline_logistic"]
    encoded = spline.steps[0][1].transform(x)
    for label, kind in (("sigmoid", SigmoidCalibrated), ("isotonic", IsotonicCalibrated)):
        model = kind(spline.steps[1][1], cv=3).fit(encoded, y)
        fitted[f"spline_logistic + {label}"] = Pipeline([spline.steps[0], ("model", model)])
    return fitted


def _measure(pipeline: Pipeline, plan: FormatPlan, work: Path) -> dict[str, Any]:
    blobs: dict[str, bytes] = {}
    for model_format in (artifact.JOBLIB, artifact.SKOPS):
        folder = work / model_format
        folder.mkdir(parents=True, exist_ok=True)
        name = artifact.dump(pipeline, folder, model_format)
        blobs[model_format] = (folder / name).read_bytes()

    def loader(model_format: str) -> Callable[[], Any]:
        return lambda: artifact.load(blobs[model_format], model_format, allow_pickle=True)

    load_s = {fmt: _median_seconds(loader(fmt), plan.loads) for fmt in blobs}
    manifest = {"version": "bench", "threshold": 0.5}
    predictors = {fmt: Predictor(loader(fmt)(), manifest) for fmt in blobs}
    records = probe_records(500)
    one = records[7]
    identical = bool(
        np.array_equal(
            predictors[artifact.JOBLIB].predict_batch(records),
            predictors[artifact.SKOPS].predict_batch(records),
        )
        and predictors[artifact.JOBLIB].predict_one(one) == predictors[artifact.SKOPS].predict_one(one)
    )
    joblib_one, skops_one = (_call(predictors[f].predict_one, one) for f in (artifact.JOBLIB, artifact.SKOPS))
    joblib_many, skops_many = (
        _call(predictors[f].predict_batch, records) for f in (artifact.JOBLIB, artifact.SKOPS)
    )
    single = _alternating(joblib_one, skops_one, 400 * plan.rounds)
    batch = _alternating(joblib_many, skops_many, 20 * plan.rounds)
    return {
        "size_kb": {fmt: len(blob) / 1024 for fmt, blob in blobs.items()},
        "load_ms": {fmt: seconds * 1000 for fmt, seconds in load_s.items()},
        "identical": identical,
        "single_us": {"joblib": single[0] * 1e6, "skops": single[1] * 1e6},
        "batch_ms": {"joblib": batch[0] * 1000, "skops": batch[1] * 1000},
        "single_ratio": single[1] / single[0],
        "batch_ratio": batch[1] / batch[0],
    }


def _alternating(first: Callable[[], object], second: Callable[[], object], n: int) -> tuple[float, float]:
    """Median seconds of each, timed call by call in turns (ABBA...), so drift hits both alike."""
    clock = time.perf_counter
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(n):
        order = ((0, first), (1, second)) if i % 2 == 0 else ((1, second), (0, first))
        for slot, fn in order:
            started = clock()
            fn()
            times[slot].append(clock() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def run(plan: FormatPlan, progress: Progress) -> dict[str, Any]:
    machine = (
        f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
        f"(load average {load_average():.1f} when the run started)"
    )
    with progress.status(f"fitting every candidate on {plan.rows:,} synthetic rows"):
        pipelines = _pipelines(plan.rows)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="churn-bench-format-") as tmp:
        for name, pipeline in pipelines.items():
            with progress.status(f"{name}: saving, loading and scoring in both formats"):
                rows[name] = _measure(pipeline, plan, Path(tmp) / name.replace(" ", "_"))
    command = f"churn bench format --rows {plan.rows} --loads {plan.loads} --rounds {plan.rounds}"
    return {
        "rows": rows,
        "machine": machine,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": command,
    }


def table_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, r in results["rows"].items():
        out.append(
            (
                name,
                f"{r['size_kb']['joblib']:,.0f} / {r['size_kb']['skops']:,.0f}",
                f"{r['load_ms']['joblib']:.1f} / {r['load_ms']['skops']:.1f}",
                "yes" if r["identical"] else "NO",
                f"{r['single_ratio']:.2f}",
                f"{r['batch_ratio']:.2f}",
            )
        )
    return out


HEADERS = (
    "pipeline",
    "size kB joblib / skops",
    "load ms joblib / skops",
    "identical",
    "1 record skops/joblib",
    "500 records skops/joblib",
)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        *measured_header("## Model format", DOC_START, results),
        "Every candidate of `churn train` fitted on the same synthetic data, saved as a joblib pickle "
        "and as skops (`models/artifact.py`), each loaded back: file size, median load time, whether "
        "the probabilities of 500 probe customers are bit-identical, and the scoring time of a "
        "`Predictor` on each (timed call by call in turns) as the ratio of the medians skops / joblib.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|---|---:|---:|---|---:|---:|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    lines += [
        "",
        "The same objects come back from both files, so the probabilities are identical and the "
        "scoring ratios are noise around 1.00; loading skops costs more, once per promotion.",
        DOC_END,
    ]
    return "\n".join(lines) + "\n"


def write_docs(path: Path, results: dict[str, Any]) -> None:
    """Replace this benchmark's section (between its markers) or append it; other sections stay."""
    replace_section(path, DOC_START, DOC_END, markdown(results), heading="## Model format")
