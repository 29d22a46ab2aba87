"""``churn bench stream``: scorer throughput against its baselines and peers, e2e latency, RSS.

Measured in one run on the same broker and preloaded topic, each variant as a
fresh subprocess with a fresh consumer group, repeated, medians reported:
raw confluent-kafka consume -> produce -> commit (the ceiling, no scoring), a
Faust agent that only takes and acknowledges (the Faust floor), the Faust
scorer, the Quix Streams peer (:mod:`scorer.quix_peer`, extra ``bench``) and
the native engine. Then each scorer runs for real at steady rates (1,000 and
10,000 events/s by default) for end-to-end latency.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import typer

from cli.console import console, fail

MODES = (
    ("raw", "raw ceiling: confluent-kafka consume, produce the same bytes, commit (no scoring)"),
    ("floor", "Faust floor: agent takes micro-batches + acks only"),
    ("scorer", "Faust scorer (`churn score --engine faust`)"),
    ("quix", "Quix Streams scorer (dataframe apply + to_topic, same Predictor)"),
    ("native", "native scorer (`churn score --engine native`)"),
)
ALL_VARIANTS = "raw,floor,scorer,quix,native"
#: Variants that write predictions, hence have an end-to-end latency.
SCORERS = ("scorer", "quix", "native")


def command(
    ctx: typer.Context,
    events: int = typer.Option(
        200_000,
        "--events",
        "-n",
        help="Events preloaded and consumed per run (enough that the client's prefetch of a "
        "preloaded topic does not flatter the fast engines).",
    ),
    repeats: int = typer.Option(3, "--repeats", help="Runs of each variant; the median is reported."),
    rates: str = typer.Option(
        "1000,10000", "--latency-rates", help="Steady events/s of the latency runs, comma-separated."
    ),
    seconds: float = typer.Option(10.0, "--latency-seconds", help="Length of each latency run."),
    latency_repeats: int = typer.Option(
        3, "--latency-repeats", help="Latency runs per scorer and rate; the median p50 and p99 are reported."
    ),
    store: Path | None = typer.Option(None, "--store", help="Model store (default CHURN_MODEL_STORE)."),
    docs: Path | None = typer.Option(None, "--write-docs", help="Update the stream section of this file."),
    variants: str = typer.Option(ALL_VARIANTS, "--variants", help="Which rows to measure, comma-separated."),
    profile: Path | None = typer.Option(
        None,
        "--profile",
        help="Record each throughput run with py-spy (extra `bench`) into this folder "
        "(collapsed stacks, one file per run, for any flame-graph viewer).",
    ),
) -> None:
    """Throughput of raw ceiling, Faust floor, Faust / Quix / native scorers; e2e p50/p99; RSS."""
    import os
    import platform
    import tempfile

    from kafka_io.broker_watch import kafka_ready
    from models.registry import ModelRegistry
    from scorer.broker import EmbeddedBroker

    settings = ctx.obj.with_overrides(model_store=store)
    load_at_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    broker = None
    if not kafka_ready(settings.kafka_bootstrap_servers, timeout=2.0, settings=settings):
        broker = EmbeddedBroker(log_path=work / "broker.log").start()
        settings = settings.with_overrides(kafka_bootstrap_servers=broker.bootstrap)
    try:
        if ModelRegistry(settings.model_store).current() is None:
            fail(f"no promoted model in {settings.model_store}; run `churn train` first")
        manifest = ModelRegistry(settings.model_store).manifest(
            ModelRegistry(settings.model_store).current() or ""
        )
        from scorer.quix_peer import MISSING, quix_available

        wanted = {v.strip() for v in variants.split(",") if v.strip()}
        unknown = wanted - {mode for mode, _ in MODES}
        if unknown:
            fail(f"unknown variants {sorted(unknown)}; choose from {[mode for mode, _ in MODES]}")
        modes = [mode for mode, _ in MODES if mode in wanted]
        if "quix" in modes and not quix_available():
            console.print(f"[bold red]{MISSING}[/]; the Quix Streams row is left out of this run")
            modes.remove("quix")
        results = _throughput(settings, work, events, repeats, modes, profile)
        latency: dict[tuple[str, float], list[dict[str, float]]] = {}
        for rate in [float(r) for r in rates.split(",") if r.strip()]:
            for _ in range(latency_repeats):  # one stall of a shared machine can own a run's p99
                for mode in SCORERS:
                    if mode in modes:
                        run = _latency(settings, work, rate, seconds, mode)
                        latency.setdefault((mode, rate), []).append(run)
    finally:
        if broker is not None:
            broker.stop()
    machine = (
        f"{_cpu_name() or platform.machine()}, {_cpus()} cores, Python {platform.python_version()}, "
        f"load average {load_at_start:.1f} when the run started (other processes share the machine)"
    )
    broker_note = "embedded Tansu (in-memory)" if broker is not None else settings.kafka_bootstrap_servers
    report = _report(results, latency, events, repeats, manifest, machine, broker_note, settings)
    console.print(report)
    if docs is not None:
        _write_docs(docs, report)
        console.print(f"wrote the stream section of {docs}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _preload(settings: Any, topic: str, n: int) -> None:
    from kafka_io.topics import ensure_topics
    from producer.events import synthetic_events
    from producer.publisher import publish

    ensure_topics(settings, [topic])
    stats = publish(synthetic_events(n, seed=5), settings, topic=topic)
    if not stats.ok:
        fail(f"preloading failed: {stats.failed} of {stats.sent} not delivered")


def _throughput(
    settings: Any, work: Path, n: int, repeats: int, modes: list[str], profile: Path | None = None
) -> dict[str, list[dict[str, float]]]:
    import subprocess
    import sys
    import uuid

    from kafka_io.topics import ensure_topics

    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-events-{run_id}"
    with console.status(f"preloading {n:,} events into {topic}..."):
        _preload(settings, topic, n)
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for repeat in range(repeats):
        for mode in modes:
            tag = f"{mode}-{repeat}-{run_id}"
            run_settings = settings.for_run("bench", tag, events_topic=topic)  # all read one preload
            ensure_topics(run_settings, [run_settings.predictions_topic, run_settings.dlq_topic])
            config = {
                "count": n,
                "result": str(work / f"{tag}.json"),
                "settings": json.loads(run_settings.model_dump_json()),
            }
            config_path = work / f"{tag}-config.json"
            config_path.write_text(json.dumps(config))
            run = [sys.executable, "-m", "scorer.benchmark", mode, str(config_path)]
            if profile is not None:
                run = _profiled(run, profile / f"{mode}-{repeat + 1}.txt")
            with console.status(f"run {repeat + 1}/{repeats}: {mode}..."):
                done = subprocess.run(
                    run,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
            result_path = Path(config["result"])
            if not result_path.exists():
                fail(f"{mode} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
            result = json.loads(result_path.read_text())
            results[mode].append(result)
            rate, rss = result["rate"], result["rss_mb"]
            console.print(f"  {mode:<8} run {repeat + 1}: {rate:>9,.0f} events/s  ({rss:.0f} MiB)")
    return results


def _profiled(command: list[str], out: Path) -> list[str]:
    """``command`` run under py-spy, sampling every thread (Python frames: Python cost is the question)."""
    import shutil
    import sys

    # The venv's bin directory need not be on PATH (e.g. when churn is run as venv/bin/churn).
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        fail("--profile needs py-spy: pip install -e '.[bench]'")
    out.parent.mkdir(parents=True, exist_ok=True)
    return [spy, "record", "--format", "raw", "--rate", "250", "--threads", "-o", str(out), "--", *command]


def _latency(settings: Any, work: Path, rate: float, seconds: float, mode: str) -> dict[str, float]:
    """Run a scorer for real, publish at a steady rate, time event_time -> prediction written."""
    import signal
    import subprocess
    import time
    import uuid

    from kafka_io.topics import ensure_topics
    from scorer.benchmark import rss_mb
    from scorer.broker import free_port, port_open
    from scorer.stack import churn_executable

    tag = uuid.uuid4().hex[:8]
    run = settings.for_run("lat", tag, scorer_web_port=free_port())
    ensure_topics(run)
    env = run.child_env("scorer_web_port")
    if mode == "quix":
        import sys

        config_path = work / f"lat-{tag}-config.json"
        config_path.write_text(
            json.dumps({"count": 0, "result": "", "settings": json.loads(run.model_dump_json())})
        )
        command = [sys.executable, "-m", "scorer.benchmark", "quix-serve", str(config_path)]
    else:
        engine = "native" if mode == "native" else "faust"
        command = [churn_executable(), "score", "--engine", engine]
    log_path = work / f"latency-{mode}-{rate:.0f}.log"
    log_file = log_path.open("wb")
    scorer = subprocess.Popen(command, env=env, stdout=log_file, stderr=log_file)
    expected = int(rate * seconds)
    peak = 0.0
    try:
        deadline = time.monotonic() + 60
        while mode != "quix" and not port_open("127.0.0.1", run.scorer_web_port):
            if scorer.poll() is not None or time.monotonic() > deadline:
                fail(f"the scorer did not start; see {log_path}")
            time.sleep(0.2)
        time.sleep(6)  # the scorer's group join settles before the clock starts
        # The load comes from a process of its own (`churn produce`, event_time = send time): a
        # publisher thread in this process shared the GIL with the reader, and its stalls showed
        # up as scorer latency. Nothing reads the predictions while the load runs: on 2 cores a
        # concurrent reader doubled the native p99 at 10,000/s (17 -> 33-39 ms). The latency
        # is stamped on each prediction (CreateTime), so reading them afterwards loses nothing.
        produce = [churn_executable(), "produce", "--rate", f"{rate:g}", "--count", str(expected)]
        with console.status(f"latency: {rate:,.0f} events/s for {seconds:.0f} s through {mode}..."):
            publisher = subprocess.Popen(produce, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
            until = time.monotonic() + seconds + 30
            while publisher.poll() is None and time.monotonic() < until:
                peak = max(peak, rss_mb(scorer.pid))
                time.sleep(0.25)
            if publisher.poll() is None:
                publisher.terminate()
            publisher.wait(timeout=30)
            latencies = _read_latencies(run, expected)
        rss_end = rss_mb(scorer.pid)
    finally:
        scorer.send_signal(signal.SIGTERM)
        try:
            scorer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            scorer.kill()
        log_file.close()
    first = min((at for at, _ in latencies), default=0.0)
    to_written = sorted(w for at, w in latencies if at - first >= 2.0)  # first 2 s are warm-up
    if not to_written:
        fail(f"no predictions arrived during the {mode} latency run; see {log_path}")

    def pct(values: list[float], q: float) -> float:
        return 1000 * values[min(len(values) - 1, int(len(values) * q))]

    return {
        "count": float(len(latencies)),
        "expected": float(int(rate * seconds)),
        "rate": rate,
        "seconds": seconds,
        "p50_ms": pct(to_written, 0.5),
        "p99_ms": pct(to_written, 0.99),
        "max_ms": 1000 * to_written[-1],
        "rss_mb": rss_end,
        "rss_peak_mb": peak,
    }


def _read_latencies(run: Any, expected: int) -> list[tuple[float, float]]:
    """(event_time, written - event_time) of each prediction on the run's topic, read from the start."""
    from datetime import datetime

    import orjson

    from kafka_io.topics import read_topic

    latencies: list[tuple[float, float]] = []
    for message in read_topic(run, run.predictions_topic, idle_s=3.0, limit=expected, timeout_s=30.0):
        event_time = orjson.loads(message.value() or b"{}").get("event_time")
        if event_time:
            sent = datetime.fromisoformat(event_time).timestamp()
            written = message.timestamp()[1] / 1000  # CreateTime: set by the scorer's producer
            latencies.append((sent, written - sent))
    return latencies


def _report(
    results: dict[str, list[dict[str, float]]],
    latency: dict[tuple[str, float], list[dict[str, float]]],
    n: int,
    repeats: int,
    manifest: dict[str, Any],
    machine: str,
    broker: str,
    settings: Any,
) -> str:
    from scorer.quix_peer import quix_available

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
        cells = [_latency_cell(mode, latency.get((mode, rate), [])) for rate in rates]
        row = [f"| {label}", f"{median[mode]:,.0f}", runs, f"{rss[mode]:.0f}", *cells]
        lines.append(" | ".join(row) + " |")

    def ratio(a: str, b: str) -> str:
        return f"{median[a] / median[b]:.2f}" if a in median and b in median else "n/a"

    lines += [
        "",
        f"- native / Quix Streams scorer: **{ratio('native', 'quix')}** (quality bar >= 1.2)",
        f"- native / Faust scorer: **{ratio('native', 'scorer')}** (quality bar >= 10)",
        f"- Quix Streams / Faust scorer: {ratio('quix', 'scorer')}; "
        f"Faust scorer / Faust floor: {ratio('scorer', 'floor')}; "
        f"native / raw ceiling: {ratio('native', 'raw')}",
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


def _latency_cell(mode: str, runs: list[dict[str, float]]) -> str:
    if not runs:
        return "n/a" if mode not in SCORERS else "not measured"
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


def _write_docs(path: Path, report: str) -> None:
    body = (
        f"{_BEGIN}\n## Stream scorer (`churn bench stream`)\n\n"
        "Command: `churn bench stream --events 200000 --repeats 3 --write-docs docs/benchmarks.md` "
        "(quixstreams from the `bench` extra: `pip install -e '.[bench]'`)\n\n"
        f"{report}\n{_END}"
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if _BEGIN in text and _END in text:
        head, rest = text.split(_BEGIN, 1)
        tail = rest.split(_END, 1)[1]
        text = head + body + tail
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
