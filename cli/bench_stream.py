"""``churn bench stream``: scorer throughput against its baselines, end-to-end latency, RSS.

Measured in one run on the same broker and preloaded topic:
(a) a plain confluent-kafka consume -> score -> produce -> commit loop (the practical ceiling),
(b) a Faust agent that only takes and acknowledges the same events (the framework floor),
(c) the real Faust scorer; each as a fresh subprocess with a fresh consumer group, repeated,
medians reported. Then the real ``churn score`` at a steady rate for latency and memory.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import typer

from cli.console import console, fail

MODES = (
    ("plain", "(a) plain confluent-kafka loop: consume, score, produce, commit"),
    ("floor", "(b) Faust agent: take micro-batches + ack only (framework floor)"),
    ("iterate", "(b') Faust agent: `async for` per event, nothing else"),
    ("scorer", "(c) the Faust scorer (churn score's app)"),
)


def command(
    ctx: typer.Context,
    events: int = typer.Option(50_000, "--events", "-n", help="Events preloaded and consumed per run."),
    repeats: int = typer.Option(3, "--repeats", help="Runs of each variant; the median is reported."),
    rate: float = typer.Option(1000.0, "--latency-rate", help="Steady events/s for the latency run."),
    seconds: float = typer.Option(20.0, "--latency-seconds", help="Length of the latency run."),
    store: Path | None = typer.Option(None, "--store", help="Model store (default CHURN_MODEL_STORE)."),
    docs: Path | None = typer.Option(None, "--write-docs", help="Update the stream section of this file."),
) -> None:
    """Throughput of (a) plain loop, (b) Faust floor, (c) scorer; e2e latency p50/p99; scorer RSS."""
    import platform
    import tempfile

    from models.registry import ModelRegistry
    from scorer.broker import EmbeddedBroker, kafka_ready

    settings = ctx.obj.with_overrides(model_store=store)
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
        results = _throughput(settings, work, events, repeats)
        latency = _latency(settings, work, rate, seconds)
    finally:
        if broker is not None:
            broker.stop()
    machine = (
        f"{platform.processor() or platform.machine()}, {_cpus()} cores, Python {platform.python_version()}"
    )
    broker_note = "embedded Tansu (in-memory)" if broker is not None else settings.kafka_bootstrap_servers
    report = _report(results, latency, events, repeats, manifest, machine, broker_note, settings)
    console.print(report)
    if docs is not None:
        _write_docs(docs, report)
        console.print(f"wrote the stream section of {docs}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _preload(settings: Any, topic: str, n: int) -> None:
    from producer.events import synthetic_events
    from producer.publisher import publish
    from scorer.topics import ensure_topics

    ensure_topics(settings, [topic])
    stats = publish(synthetic_events(n, seed=5), settings, topic=topic)
    if not stats.ok:
        fail(f"preloading failed: {stats.failed} of {stats.sent} not delivered")


def _throughput(settings: Any, work: Path, n: int, repeats: int) -> dict[str, list[dict[str, float]]]:
    import subprocess
    import sys
    import uuid

    from scorer.topics import ensure_topics

    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-events-{run_id}"
    with console.status(f"preloading {n:,} events into {topic}..."):
        _preload(settings, topic, n)
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode, _ in MODES}
    for repeat in range(repeats):
        for mode, _ in MODES:
            tag = f"{mode}-{repeat}-{run_id}"
            run_settings = settings.with_overrides(
                events_topic=topic,
                predictions_topic=f"bench-predictions-{tag}",
                dlq_topic=f"bench-dlq-{tag}",
                scorer_app_id=f"bench-{tag}",
            )
            ensure_topics(run_settings, [run_settings.predictions_topic, run_settings.dlq_topic])
            config = {
                "count": n,
                "result": str(work / f"{tag}.json"),
                "settings": json.loads(run_settings.model_dump_json()),
            }
            config_path = work / f"{tag}-config.json"
            config_path.write_text(json.dumps(config))
            with console.status(f"run {repeat + 1}/{repeats}: {mode}..."):
                done = subprocess.run(
                    [sys.executable, "-m", "scorer.benchmark", mode, str(config_path)],
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


def _latency(settings: Any, work: Path, rate: float, seconds: float) -> dict[str, float]:
    """Run `churn score` for real, publish at a steady rate, time event_time -> prediction received."""
    import os
    import signal
    import subprocess
    import threading
    import time
    import uuid
    from datetime import datetime

    import orjson
    from confluent_kafka import Consumer

    from producer.events import stamp, synthetic_rows
    from producer.publisher import publish
    from scorer.benchmark import rss_mb
    from scorer.broker import free_port, port_open
    from scorer.kafka_config import confluent_consumer
    from scorer.stack import churn_executable
    from scorer.topics import ensure_topics

    tag = uuid.uuid4().hex[:8]
    run = settings.with_overrides(
        events_topic=f"lat-events-{tag}",
        predictions_topic=f"lat-predictions-{tag}",
        dlq_topic=f"lat-dlq-{tag}",
        scorer_app_id=f"lat-{tag}",
        scorer_web_port=free_port(),
    )
    ensure_topics(run)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(
        {
            "CHURN_KAFKA_BOOTSTRAP_SERVERS": run.kafka_bootstrap_servers,
            "CHURN_MODEL_STORE": str(run.model_store),
            "CHURN_EVENTS_TOPIC": run.events_topic,
            "CHURN_PREDICTIONS_TOPIC": run.predictions_topic,
            "CHURN_DLQ_TOPIC": run.dlq_topic,
            "CHURN_SCORER_APP_ID": run.scorer_app_id,
            "CHURN_SCORER_WEB_PORT": str(run.scorer_web_port),
        }
    )
    log_file = (work / "latency-scorer.log").open("wb")
    scorer = subprocess.Popen([churn_executable(), "score"], env=env, stdout=log_file, stderr=log_file)
    latencies: list[tuple[float, float, float]] = []
    peak = 0.0
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", run.scorer_web_port):
            if scorer.poll() is not None or time.monotonic() > deadline:
                fail(f"the scorer did not start; see {work / 'latency-scorer.log'}")
            time.sleep(0.2)
        consumer = Consumer(
            confluent_consumer(run, f"lat-reader-{tag}", **{"fetch.wait.max.ms": 5, "fetch.min.bytes": 1})
        )
        consumer.subscribe([run.predictions_topic])
        stop = threading.Event()
        expected = int(rate * seconds)
        generator = synthetic_rows(seed=9, chunk=expected)
        rows = [next(generator) for _ in range(expected)]  # generated before the clock starts
        events = (stamp(row) for row in rows)  # event_time = the moment each is sent
        time.sleep(6)  # both group joins settle before the clock starts
        publisher = threading.Thread(target=publish, args=(events, run), kwargs={"rate": rate, "stop": stop})
        with console.status(f"latency: {rate:,.0f} events/s for {seconds:.0f} s through churn score..."):
            started = time.time()
            publisher.start()
            until = time.monotonic() + seconds + 15
            while len(latencies) < expected and time.monotonic() < until:
                for message in consumer.consume(1000, timeout=0.1):
                    if message.error() is not None:
                        continue
                    received = time.time()
                    event_time = orjson.loads(message.value() or b"{}").get("event_time")
                    if event_time:
                        sent = datetime.fromisoformat(event_time).timestamp()
                        written = message.timestamp()[1] / 1000  # CreateTime: set by the scorer's producer
                        latencies.append((sent - started, written - sent, received - sent))
                peak = max(peak, rss_mb(scorer.pid))
            stop.set()
            publisher.join()
        consumer.close()
        rss_end = rss_mb(scorer.pid)
    finally:
        scorer.send_signal(signal.SIGTERM)
        try:
            scorer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            scorer.kill()
        log_file.close()
    to_written = sorted(w for at, w, _ in latencies if at >= 2.0)  # first 2 s are warm-up
    to_received = sorted(r for at, _, r in latencies if at >= 2.0)
    if not to_written:
        fail("no predictions arrived during the latency run")

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
        "recv_p50_ms": pct(to_received, 0.5),
        "recv_p99_ms": pct(to_received, 0.99),
        "rss_mb": rss_end,
        "rss_peak_mb": peak,
    }


def _report(
    results: dict[str, list[dict[str, float]]],
    latency: dict[str, float],
    n: int,
    repeats: int,
    manifest: dict[str, Any],
    machine: str,
    broker: str,
    settings: Any,
) -> str:
    median = {mode: statistics.median(r["rate"] for r in runs) for mode, runs in results.items()}
    lines = [
        f"Machine: {machine}. Broker: {broker}. Model: {manifest.get('selected_model')} "
        f"({manifest.get('version')}). {n:,} preloaded events per run, 4 partitions, "
        f"max_batch {settings.scorer_max_batch}, median of {repeats} runs.",
        "",
        "| variant | events/s (median) | runs |",
        "|---|---:|---|",
    ]
    for mode, label in MODES:
        runs = ", ".join(f"{r['rate']:,.0f}" for r in results[mode])
        lines.append(f"| {label} | {median[mode]:,.0f} | {runs} |")
    lines += [
        "",
        f"- c/a (scorer vs plain loop): **{median['scorer'] / median['plain']:.2f}**",
        f"- c/b (scorer vs Faust take+ack floor): **{median['scorer'] / median['floor']:.2f}**",
        f"- c/b' (scorer vs Faust per-event iteration): **{median['scorer'] / median['iterate']:.2f}**",
        f"- end-to-end latency of `churn score` at a steady {latency['rate']:,.0f} events/s for "
        f"{latency['seconds']:.0f} s, first 2 s dropped, "
        f"{latency['count']:,.0f}/{latency['expected']:,.0f} predictions: "
        f"event_time -> prediction written (its CreateTime) p50 **{latency['p50_ms']:.1f} ms**, "
        f"p99 **{latency['p99_ms']:.1f} ms**, max {latency['max_ms']:.0f} ms; "
        f"event_time -> received by a downstream consumer p50 {latency['recv_p50_ms']:.1f} ms, "
        f"p99 {latency['recv_p99_ms']:.1f} ms",
        f"- `churn score` RSS: {latency['rss_mb']:.0f} MiB at the end, {latency['rss_peak_mb']:.0f} MiB peak",
    ]
    return "\n".join(lines)


_BEGIN = "<!-- bench-stream:begin -->"
_END = "<!-- bench-stream:end -->"


def _write_docs(path: Path, report: str) -> None:
    body = (
        f"{_BEGIN}\n## Stream scorer (`churn bench stream`)\n\n"
        "Command: `churn bench stream --events 50000 --repeats 3 --write-docs docs/benchmarks.md`\n\n"
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
