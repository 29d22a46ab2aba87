"""``churn bench stream``: scorer throughput against its baselines and peers, e2e latency, RSS.

Measured in one run on the same broker and preloaded topic, each variant as a
fresh subprocess (:mod:`benchmarks.runner`) with a fresh consumer group,
repeated, medians reported: raw confluent-kafka consume -> produce -> commit
(the ceiling, no scoring), a Faust agent that only takes and acknowledges (the
Faust floor), the Faust scorer, the Quix Streams peer
(:mod:`benchmarks.quix_peer`, extra ``bench``) and the native engine; the two
engines again with reason codes on (``CHURN_SCORER_EXPLAIN``, top 3), and the
native engine with the libraries' own thread pools (``CHURN_SCORER_THREADS=0``),
interleaved with the others in every repeat so that their ratios compare runs
under the same load. With ``--shapes``, each variant also runs on topics preloaded
with the same customers in the shapes real producers send
(:mod:`benchmarks.event_shapes`: telco names, numbers as text, no ids, unkeyed),
interleaved with the canonical runs. The ``*-shadow`` variants run an engine with
a challenger scored in shadow (a copy of the store with ``CHALLENGER`` set), for
the cost of shadow scoring. Then each scorer runs for real at steady rates (1,000
and 10,000 events/s by default) for
end-to-end latency.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.doc_sections import replace_section
from benchmarks.event_shapes import SHAPES, records
from benchmarks.machine import cpu_name, load_average, process_cpu_s, rss_mb
from benchmarks.progress import BenchmarkError, Progress
from benchmarks.quix_peer import quix_available
from config.settings import Settings
from devstack.broker import EmbeddedBroker
from devstack.ports import free_port, port_open
from devstack.processes import ChildProcess, ChurnProcess, ScorerProcess
from kafka_io.broker_watch import kafka_ready
from kafka_io.topics import ensure_topics, read_topic
from models.registry import ModelRegistry
from producer.publisher import Publisher

MODES = (
    ("raw", "raw ceiling: confluent-kafka consume, produce the same bytes, commit (no scoring)"),
    ("floor", "Faust floor: agent takes micro-batches + acks only"),
    ("scorer", "Faust scorer (`churn score --engine faust`)"),
    ("quix", "Quix Streams scorer (dataframe apply + to_topic, same Predictor)"),
    ("native", "native scorer (`churn score --engine native`)"),
    ("scorer-reasons", "Faust scorer with reason codes (`CHURN_SCORER_EXPLAIN=true`, top 3)"),
    ("native-reasons", "native scorer with reason codes (`CHURN_SCORER_EXPLAIN=true`, top 3)"),
    ("native-threads", "native scorer, thread pools not pinned (`CHURN_SCORER_THREADS=0`)"),
    ("scorer-shadow", "Faust scorer with a shadow challenger (two models per batch, two output topics)"),
    ("native-shadow", "native scorer with a shadow challenger (two models per batch, two output topics)"),
)
#: The cost bar of reason codes: native with reasons / native without, at least this.
REASONS_BAR = 0.7
#: Variants that score a challenger in shadow, and the variant each one's cost is a ratio to.
SHADOWED = {"scorer-shadow": "scorer", "native-shadow": "native"}
#: Variants that write predictions, hence have an end-to-end latency.
SCORERS = ("scorer", "quix", "native")
#: The module each throughput run executes as ``python -m RUNNER MODE CONFIG``.
RUNNER = "benchmarks.runner"


@dataclass(frozen=True)
class StreamPlan:
    """What one ``churn bench stream`` measures."""

    modes: list[str]
    events: int
    repeats: int
    latency_rates: list[float]
    latency_seconds: float
    latency_repeats: int
    profile: Path | None = None
    #: Event shapes of the throughput runs (:data:`benchmarks.event_shapes.SHAPES`); the first
    #: one is the main table's.
    shapes: tuple[str, ...] = ("canonical",)


def modes_of(variants: str) -> list[str]:
    """The variants named in a comma-separated list, in report order; unknown names are refused."""
    wanted = {v.strip() for v in variants.split(",") if v.strip()}
    unknown = wanted - {mode for mode, _ in MODES}
    if unknown:
        raise BenchmarkError(f"unknown variants {sorted(unknown)}; choose from {[mode for mode, _ in MODES]}")
    return [mode for mode, _ in MODES if mode in wanted]


def run(settings: Settings, plan: StreamPlan, progress: Progress) -> str:
    """Measure every variant of ``plan`` on ``settings``' broker (the embedded one if none answers).

    Returns the report (Markdown).
    """
    load_at_start = load_average()
    work = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    broker = None
    if not kafka_ready(settings.kafka_bootstrap_servers, timeout=2.0, settings=settings):
        broker = EmbeddedBroker(log_path=work / "broker.log").start()
        settings = settings.with_overrides(kafka_bootstrap_servers=broker.bootstrap)
    try:
        registry = ModelRegistry(settings.model_store)
        current = registry.current()
        if current is None:
            raise BenchmarkError(f"no promoted model in {settings.model_store}; run `churn train` first")
        manifest = registry.manifest(current)
        shadow_store = _shadow_store(settings, work) if set(plan.modes) & set(SHADOWED) else None
        broker_pid = broker.pid if broker is not None else None
        shaped = _throughput(settings, work, plan, progress, shadow_store, broker_pid)
        results = {mode: shaped[(mode, plan.shapes[0])] for mode in plan.modes}
        latency: dict[tuple[str, float], list[dict[str, float]]] = {}
        for rate in plan.latency_rates:
            for _ in range(plan.latency_repeats):  # one stall of a shared machine can own a run's p99
                for mode in SCORERS:
                    if mode in plan.modes:
                        measured = _latency(settings, work, rate, plan.latency_seconds, mode, progress)
                        latency.setdefault((mode, rate), []).append(measured)
    finally:
        if broker is not None:
            broker.stop()
    machine = (
        f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
        f"load average {load_at_start:.1f} when the run started (other processes share the machine)"
    )
    broker_note = "embedded Tansu (in-memory)" if broker is not None else settings.kafka_bootstrap_servers
    report = render_report(
        results, latency, plan.events, plan.repeats, manifest, machine, broker_note, settings
    )
    if len(plan.shapes) > 1:
        report += "\n\n" + render_shapes(shaped, plan)
    report += "\n\n" + render_cpu(shaped, plan, len(os.sched_getaffinity(0)))
    return report


def _preload(settings: Settings, topic: str, n: int, shape: str) -> None:
    """``n`` events of ``shape`` on ``topic`` (the same customers in every shape)."""
    ensure_topics(settings, [topic])
    publisher = Publisher(settings, topic)
    for key, value in records(shape, n):
        publisher.send(key, value)
    remaining = publisher.flush(60.0)
    stats = publisher.stats
    if remaining or not stats.ok:
        raise BenchmarkError(f"preloading failed: {stats.failed} of {stats.sent} not delivered")


Shaped = dict[tuple[str, str], list[dict[str, float]]]


def _shadow_store(settings: Settings, work: Path) -> Path:
    """A copy of the champion and a challenger (the store's, else its newest other version) with
    ``CHALLENGER`` set: the shadow variants' store; the user's store is not touched."""
    source = ModelRegistry.from_settings(settings)
    champion = source.current()
    challenger = source.challenger() or next((v for v in reversed(source.versions()) if v != champion), None)
    if champion is None or challenger is None:
        raise BenchmarkError(
            "the shadow variants need a second version in the store: `churn train --no-promote --seed 7`"
        )
    target = work / "shadow-store"
    target.mkdir()
    for version in (champion, challenger):
        shutil.copytree(source.root / version, target / version)
    (target / "CURRENT").write_text(champion + "\n")
    ModelRegistry.from_settings(settings, target).set_challenger(challenger, reason="churn bench stream")
    return target


def _throughput(
    settings: Settings,
    work: Path,
    plan: StreamPlan,
    progress: Progress,
    shadow_store: Path | None = None,
    broker_pid: int | None = None,
) -> Shaped:
    """Every mode on every shape, ``repeats`` times, interleaved: ``results[(mode, shape)]``.

    With ``broker_pid`` (the embedded broker), each result also has ``broker_cpu_s``: the
    broker's CPU time during the run's subprocess (group join and leave included)."""
    n, repeats = plan.events, plan.repeats
    run_id = uuid.uuid4().hex[:8]
    topics = {shape: f"bench-events-{shape}-{run_id}" for shape in plan.shapes}
    for shape, topic in topics.items():
        with progress.status(f"preloading {n:,} {shape} events into {topic}..."):
            _preload(settings, topic, n, shape)
    results: Shaped = {(mode, shape): [] for mode in plan.modes for shape in plan.shapes}
    # Each repeat starts one variant later, so that no variant always runs right after the
    # same other one (a slow Faust run leaves the broker busier for whoever follows it).
    order = [
        (repeat, shape, mode)
        for repeat in range(repeats)
        for shape in plan.shapes
        for mode in plan.modes[repeat % len(plan.modes) :] + plan.modes[: repeat % len(plan.modes)]
    ]
    for repeat, shape, mode in order:
        topic = topics[shape]
        tag = f"{mode}-{shape}-{repeat}-{run_id}"
        run_settings = settings.for_run("bench", tag, events_topic=topic)  # the shape's shared preload
        outputs = [run_settings.predictions_topic, run_settings.dlq_topic]
        if mode in SHADOWED:
            run_settings = run_settings.with_overrides(
                model_store=shadow_store, shadow_scoring=True, shadow_predictions_topic=f"bench-shadow-{tag}"
            )
            outputs.append(run_settings.shadow_predictions_topic)
        else:  # a challenger in the user's store must not weigh on the other rows
            run_settings = run_settings.with_overrides(shadow_scoring=False)
        ensure_topics(run_settings, outputs)
        result_path = work / f"{tag}.json"
        config_path = _write_config(work / f"{tag}-config.json", run_settings, n, result_path)
        command = [sys.executable, "-m", RUNNER, mode, str(config_path)]
        if plan.profile is not None:
            command = _profiled(command, plan.profile / f"{mode}-{shape}-{repeat + 1}.txt")
        broker_cpu = process_cpu_s(broker_pid) if broker_pid is not None else 0.0
        with progress.status(f"run {repeat + 1}/{repeats}: {mode} on {shape} events..."):
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if not result_path.exists():
            raise BenchmarkError(f"{mode} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        result = json.loads(result_path.read_text())
        if broker_pid is not None:
            result["broker_cpu_s"] = process_cpu_s(broker_pid) - broker_cpu
        results[(mode, shape)].append(result)
        rate, rss = result["rate"], result["rss_mb"]
        progress.print(f"  {mode:<8} {shape:<9} run {repeat + 1}: {rate:>9,.0f} events/s  ({rss:.0f} MiB)")
    return results


def _write_config(path: Path, settings: Settings, count: int, result: Path | None) -> Path:
    """The configuration file of one :mod:`benchmarks.runner` process."""
    config = {
        "count": count,
        "result": str(result) if result is not None else "",
        "settings": json.loads(settings.model_dump_json()),
    }
    path.write_text(json.dumps(config))
    return path


def _profiled(command: list[str], out: Path) -> list[str]:
    """``command`` run under py-spy, sampling every thread (Python frames: Python cost is the question)."""
    # The venv's bin directory need not be on PATH (e.g. when churn is run as venv/bin/churn).
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise BenchmarkError("--profile needs py-spy: pip install -e '.[bench]'")
    out.parent.mkdir(parents=True, exist_ok=True)
    return [spy, "record", "--format", "raw", "--rate", "250", "--threads", "-o", str(out), "--", *command]


def _start_scorer(mode: str, run: Settings, env: dict[str, str], work: Path, log_path: Path) -> ChildProcess:
    """The scorer of a latency run: ``churn score`` for the engines, the runner's ``quix-serve`` for Quix."""
    if mode == "quix":
        config_path = _write_config(work / f"lat-{run.scorer_app_id}-config.json", run, 0, None)
        command = [sys.executable, "-m", RUNNER, "quix-serve", str(config_path)]
        return ChildProcess(command, env, log_path, name="quix")
    return ScorerProcess(env, log_path, engine="native" if mode == "native" else "faust")


def _latency(
    settings: Settings, work: Path, rate: float, seconds: float, mode: str, progress: Progress
) -> dict[str, float]:
    """Run a scorer for real, publish at a steady rate, time event_time -> prediction written."""
    run = settings.for_run("lat", uuid.uuid4().hex[:8], scorer_web_port=free_port())
    ensure_topics(run)
    env = run.child_env("scorer_web_port")
    log_path = work / f"latency-{mode}-{rate:.0f}.log"
    scorer = _start_scorer(mode, run, env, work, log_path)
    expected = int(rate * seconds)
    peak = 0.0
    try:
        deadline = time.monotonic() + 60
        while mode != "quix" and not port_open("127.0.0.1", run.scorer_web_port):
            if not scorer.running() or time.monotonic() > deadline:
                raise BenchmarkError(f"the scorer did not start; see {log_path}")
            time.sleep(0.2)
        time.sleep(6)  # the scorer's group join settles before the clock starts
        # The load comes from a process of its own (`churn produce`, event_time = send time): a
        # publisher thread in this process would share the GIL with the reader, and its stalls
        # would show up as scorer latency. Nothing reads the predictions while the load runs: on
        # 2 cores a concurrent reader doubles the native p99 at 10,000/s (measured 17 -> 33-39 ms).
        # The latency is stamped on each prediction (CreateTime), so reading them afterwards
        # loses nothing.
        produce = ["produce", "--rate", f"{rate:g}", "--count", str(expected)]
        with progress.status(f"latency: {rate:,.0f} events/s for {seconds:.0f} s through {mode}..."):
            publisher = ChurnProcess(produce, env, work / f"latency-{mode}-{rate:.0f}-produce.log")
            until = time.monotonic() + seconds + 30
            while publisher.running() and time.monotonic() < until:
                peak = max(peak, rss_mb(scorer.pid))
                time.sleep(0.25)
            publisher.stop(timeout=30)
            latencies = _read_latencies(run, expected)
        rss_end = rss_mb(scorer.pid)
    finally:
        scorer.stop(timeout=30)
    first = min((at for at, _ in latencies), default=0.0)
    to_written = sorted(w for at, w in latencies if at - first >= 2.0)  # first 2 s are warm-up
    if not to_written:
        raise BenchmarkError(f"no predictions arrived during the {mode} latency run; see {log_path}")

    def pct(values: list[float], q: float) -> float:
        return 1000 * values[min(len(values) - 1, int(len(values) * q))]

    return {
        "count": float(len(latencies)),
        "expected": float(expected),
        "rate": rate,
        "seconds": seconds,
        "p50_ms": pct(to_written, 0.5),
        "p99_ms": pct(to_written, 0.99),
        "max_ms": 1000 * to_written[-1],
        "rss_mb": rss_end,
        "rss_peak_mb": peak,
    }


def _read_latencies(run: Settings, expected: int) -> list[tuple[float, float]]:
    """(event_time, written - event_time) of each prediction on the run's topic, read from the start."""
    latencies: list[tuple[float, float]] = []
    for message in read_topic(run, run.predictions_topic, idle_s=3.0, limit=expected, timeout_s=30.0):
        event_time = orjson.loads(message.value() or b"{}").get("event_time")
        if event_time:
            sent = datetime.fromisoformat(event_time).timestamp()
            written = message.timestamp()[1] / 1000  # CreateTime: set by the scorer's producer
            latencies.append((sent, written - sent))
    return latencies


def render_report(
    results: dict[str, list[dict[str, float]]],
    latency: dict[tuple[str, float], list[dict[str, float]]],
    n: int,
    repeats: int,
    manifest: dict[str, Any],
    machine: str,
    broker: str,
    settings: Settings,
) -> str:
    """The Markdown report: one row per variant, one latency column per rate, then the ratios."""
    median = {mode: statistics.median(r["rate"] for r in runs) for mode, runs in results.items() if runs}
    rss = {mode: statistics.median(r["rss_mb"] for r in runs) for mode, runs in results.items() if runs}
    rates = sorted({rate for _, rate in latency})
    lines = [
        f"Machine: {machine}. Broker: {broker}. Model: {manifest.get('selected_model')} "
        f"({manifest.get('version')}). {n:,} preloaded events per run, 4 partitions, "
        f"max_batch {settings.scorer_max_batch}, median of {repeats} runs.",
        "",
        "| "
        + " | ".join(
            ["variant", "events/s (median)", "runs", "RSS MiB"]
            + [f"e2e p50 / p99 ms @ {r:,.0f}/s (p99 of each run)" for r in rates]
        )
        + " |",
        "|---|---:|---|---:|" + "---:|" * len(rates),
    ]
    for mode, label in MODES:
        if mode not in median:
            if mode == "quix" and not quix_available():
                missing = f"| {label} | not measured (quixstreams not installed) | | |"
                lines.append(missing + " |" * len(rates))
            continue
        runs = ", ".join(f"{r['rate']:,.0f}" for r in results[mode])
        cells = [latency_cell(mode, latency.get((mode, rate), [])) for rate in rates]
        row = [f"| {label}", f"{median[mode]:,.0f}", runs, f"{rss[mode]:.0f}", *cells]
        lines.append(" | ".join(row) + " |")

    def ratio(a: str, b: str) -> str:
        return f"{median[a] / median[b]:.2f}" if a in median and b in median else "n/a"

    def labels_of(mode: str) -> str:
        return dict(MODES)[mode].split(" (")[0]

    lines += [
        "",
        f"- native / Quix Streams scorer: **{ratio('native', 'quix')}**",
        f"- native / Faust scorer: **{ratio('native', 'scorer')}**",
        f"- native with reasons / native: **{ratio('native-reasons', 'native')}** "
        f"(bar: at least {REASONS_BAR}); Faust with reasons / Faust scorer: "
        f"{ratio('scorer-reasons', 'scorer')}; native with pinned thread pools (the default, "
        f"`CHURN_SCORER_THREADS=1`) / not pinned: {ratio('native', 'native-threads')}",
        f"- Quix Streams / Faust scorer: {ratio('quix', 'scorer')}; "
        f"Faust scorer / Faust floor: {ratio('scorer', 'floor')}; "
        f"native / raw ceiling: {ratio('native', 'raw')}",
        *(
            f"- cost of shadow scoring: {labels_of(shadowed)} / without: **{ratio(shadowed, base)}**"
            for shadowed, base in SHADOWED.items()
            if shadowed in median
        ),
        "- events/s: from the first batch to the last output acknowledged (group join not counted); "
        "RSS at the end of the throughput run.",
        "- e2e: a `churn produce` process publishes at the steady rate for the run's length with "
        "event_time = send time; "
        "latency = event_time -> the prediction's CreateTime (set by the scorer's producer), "
        "first 2 s dropped; the predictions are read after the load, so that no reader competes "
        "with the scorer for the cores; median p50 and p99 of the runs, each run's p99 in "
        "brackets; `got/expected` marks a run where not every prediction was written "
        "(the scorer could not keep up with that rate). The raw ceiling and the Faust floor write "
        "no predictions (n/a).",
    ]
    return "\n".join(lines)


def render_shapes(results: Shaped, plan: StreamPlan) -> str:
    """The shapes table: events/s (median) of each variant on each shape, and the ratios."""
    median = {key: statistics.median(r["rate"] for r in runs) for key, runs in results.items() if runs}
    labels = {mode: label.split(":")[0].split(" (")[0] for mode, label in MODES}
    lines = [
        f"### Event shapes ({plan.events:,} events per run, median of {plan.repeats}; runs interleaved)",
        "",
        "| shape | " + " | ".join(f"{labels[mode]} events/s" for mode in plan.modes) + " | runs |",
        "|---|" + "---:|" * len(plan.modes) + "---|",
    ]
    for shape in plan.shapes:
        cells = [f"{median[(mode, shape)]:,.0f}" for mode in plan.modes]
        runs = "; ".join(
            f"{mode} " + ", ".join(f"{r['rate']:,.0f}" for r in results[(mode, shape)]) for mode in plan.modes
        )
        lines.append(f"| {shape}: {SHAPES[shape][0]} | " + " | ".join(cells) + f" | {runs} |")
    base = plan.shapes[0]
    for mode in (m for m in ("native", "scorer", "quix") if m in plan.modes):
        for shape in plan.shapes[1:]:
            parts = [
                f"{labels[mode]} {shape} / {base}: **{median[(mode, shape)] / median[(mode, base)]:.2f}**"
            ]
            if "raw" in plan.modes:
                parts.append(
                    f"/ raw ceiling on {shape}: {median[(mode, shape)] / median[('raw', shape)]:.2f}"
                )
                parts.append(f"/ raw ceiling on {base}: {median[(mode, shape)] / median[('raw', base)]:.2f}")
            lines.append("- " + " ".join(parts))
    return "\n".join(lines)


def render_cpu(results: Shaped, plan: StreamPlan, cores: int) -> str:
    """CPU time per event of each variant and shape, and the throughput it allows on ``cores``.

    Events/s on a shared machine move with whatever else runs; CPU time per event moves much
    less. A variant cannot go faster than its busiest thread allows (one core for the thread
    that handles the batches) nor than the cores allow for the process and the broker together:
    ``min(1 / main, cores / (process + broker))``. The ratios of these bounds are what the
    throughput ratios would be on an otherwise idle machine where the run is CPU-bound.
    """
    keys = [key for key, runs in results.items() if runs and "cpu_s" in runs[0]]
    if not keys:
        return ""
    has_broker = all("broker_cpu_s" in run for key in keys for run in results[key])

    def per_event(key: tuple[str, str], field: str) -> float:
        return statistics.median(1e6 * run.get(field, 0.0) / run["events"] for run in results[key])

    bound: dict[tuple[str, str], float] = {}
    lines = [
        f"### CPU per event (median of {plan.repeats}; {cores} cores)",
        "",
        "| variant | shape | process µs/event | batch thread µs/event | broker µs/event "
        "| CPU-bound events/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for mode, _ in MODES:
        for shape in plan.shapes:
            key = (mode, shape)
            if key not in keys:
                continue
            process, main = per_event(key, "cpu_s"), per_event(key, "main_cpu_s")
            broker = per_event(key, "broker_cpu_s") if has_broker else 0.0
            bound[key] = min(1e6 / max(main, 1e-9), cores * 1e6 / max(process + broker, 1e-9))
            broker_cell = f"{broker:.1f}" if has_broker else "n/a (external broker)"
            lines.append(
                f"| {mode} | {shape} | {process:.1f} | {main:.1f} | {broker_cell} | {bound[key]:,.0f} |"
            )
    for mode in (m for m in ("native", "scorer", "quix") if m in plan.modes and "raw" in plan.modes):
        ratios = [
            f"{shape} {bound[(mode, shape)] / bound[('raw', shape)]:.2f}"
            for shape in plan.shapes
            if (mode, shape) in bound and ("raw", shape) in bound
        ]
        if ratios:
            lines.append(f"- CPU-bound {mode} / raw ceiling: " + ", ".join(ratios))
    lines.append(
        "- CPU-bound events/s = min(1 / batch thread, cores / (process + broker)): the rate the CPU "
        "time allows on an idle machine"
        + ("" if has_broker else " (the broker's CPU is not counted: it runs elsewhere)")
        + "; process = every thread of the variant's process (librdkafka's included)."
    )
    return "\n".join(lines)


def latency_cell(mode: str, runs: list[dict[str, float]]) -> str:
    """``median p50 / median p99 (each run's p99)`` of one scorer at one rate."""
    if not runs:
        return "n/a" if mode in ("raw", "floor") else "not measured"  # those write no predictions
    p50 = statistics.median(run["p50_ms"] for run in runs)
    p99 = statistics.median(run["p99_ms"] for run in runs)
    each = ", ".join(
        f"{run['p99_ms']:.1f}"
        + ("" if run["count"] >= run["expected"] else f" {run['count']:,.0f}/{run['expected']:,.0f}")
        for run in runs
    )
    return f"{p50:.1f} / {p99:.1f} ({each})"


_BEGIN = "<!-- bench-stream:begin -->"
_END = "<!-- bench-stream:end -->"


def write_docs(path: Path, report: str) -> None:
    """Replace the stream section of ``path`` (between its markers) with ``report``, or append it."""
    body = (
        f"{_BEGIN}\n## Stream scorer (`churn bench stream`)\n\n"
        "Command: `churn bench stream --events 200000 --repeats 3 --write-docs docs/benchmarks.md` "
        "(quixstreams from the `bench` extra: `pip install -e '.[bench]'`)\n\n"
        f"{report}\n{_END}"
    )
    replace_section(path, _BEGIN, _END, body)
