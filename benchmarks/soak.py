"""``churn bench soak``: a producer at a steady rate beside the scorer for minutes, then an audit.

Per engine, on fresh topics of one broker (the embedded one if none answers): a real
``churn score`` process and a real ``churn produce --rate R --count N`` process,
started through :mod:`devstack.processes`. Every ``sample_s`` seconds the run
samples the scorer's ``/metrics`` (events consumed, its own lag, stalled partitions,
recovery steps, RSS, the end-to-end latency histogram) and the lag the broker sees
(high watermarks minus the group's committed offsets). When the producer has sent
everything, it times how long the lag takes to fall under one second of traffic,
stops the scorer (SIGTERM) and reads the predictions topic: every produced event
must have a prediction (each ``event_id`` is a fresh uuid4, so the distinct ids
count the events predicted) and none may be dead-lettered.

The quality bar (:meth:`SoakResult.verdicts`): every event predicted, no dead letter,
the lag under one second of traffic within ``drain_limit_s`` of the producer stopping,
RSS growth (from the end of the warm-up to the end of the load) under ``rss_limit``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.doc_sections import replace_section
from benchmarks.machine import cpu_name, load_average
from benchmarks.progress import BenchmarkError, Progress
from config.settings import Settings
from devstack.broker import EmbeddedBroker
from devstack.ports import free_port
from devstack.processes import ChurnProcess, ScorerProcess
from kafka_io.broker_watch import kafka_ready
from kafka_io.client_config import confluent_common
from kafka_io.topics import ensure_topics, iter_topic

ENGINES = ("native", "faust")
#: Settings a soak hands to its ``churn`` children when they are set (environment or flags).
CHILD_SETTINGS = (
    "scorer_web_port",
    "topic_partitions",
    "scorer_max_batch",
    "scorer_max_wait_s",
    "scorer_native_fetch_wait_ms",
    "scorer_faust_fetch_wait_ms",
    "stall_after_s",
    "stall_max_fetch_wait_ms",
    "lag_query_interval_s",
    "producer_linger_ms",
)


@dataclass(frozen=True)
class SoakPlan:
    """What one soak run does, per engine."""

    engines: list[str]
    rate: float
    minutes: float
    sample_s: float = 5.0
    drain_limit_s: float = 30.0
    rss_limit: float = 0.10
    #: How long to wait for the backlog to be scored after the producer stopped.
    drain_timeout_s: float = 300.0

    @property
    def events(self) -> int:
        return int(self.rate * self.minutes * 60)

    @property
    def warmup_s(self) -> float:
        """RSS growth is measured from here: the first tenth of the load, at least 30 s."""
        return max(30.0, self.minutes * 6.0)


@dataclass(frozen=True)
class Sample:
    """One look at the run, ``t`` seconds after the producer started."""

    t: float
    consumed: float
    lag: int  # the broker's view: high watermarks minus the group's committed offsets
    scorer_lag: float  # the scorer's own churn_consumer_lag
    stalled: float
    recoveries: float
    rss_mb: float
    p50_ms: float | None  # end-to-end latency of the predictions written since the previous sample
    p99_ms: float | None


@dataclass
class SoakResult:
    engine: str
    rate: float
    minutes: float
    produced: int = 0
    produce_seconds: float = 0.0
    predicted: int = 0  # distinct event_ids on the predictions topic
    duplicates: int = 0
    dead_letters: int = 0
    drain_s: float | None = None  # producer stopped -> lag under one second of traffic
    final_lag: int = 0
    stalls: int = 0
    recoveries: dict[str, float] = field(default_factory=dict)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_peak_mb: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    broker_cpu: float | None = None  # share of one core the embedded broker used during the load
    fetch_wait_ms: float | None = None  # the scorer's fetch wait at the end (churn_fetch_wait_ms)
    samples: list[Sample] = field(default_factory=list)

    @property
    def max_lag(self) -> int:
        return max((s.lag for s in self.samples), default=0)

    @property
    def rss_growth(self) -> float:
        return self.rss_end_mb / self.rss_start_mb - 1 if self.rss_start_mb else 0.0

    @property
    def missing(self) -> int:
        return max(self.produced - self.predicted, 0)

    def verdicts(self, plan: SoakPlan) -> dict[str, bool]:
        """Each point of the quality bar: met or not."""
        return {
            "every event predicted": self.produced == plan.events and self.missing == 0,
            "no dead letter": self.dead_letters == 0,
            f"lag < 1 s of traffic within {plan.drain_limit_s:.0f} s": self.drain_s is not None
            and self.drain_s <= plan.drain_limit_s,
            f"RSS growth < {plan.rss_limit:.0%}": self.rss_growth < plan.rss_limit,
        }

    def ok(self, plan: SoakPlan) -> bool:
        return all(self.verdicts(plan).values())


@dataclass
class SoakReport:
    plan: SoakPlan
    results: list[SoakResult]
    machine: str
    broker: str
    started: str
    settings: str  # the settings that shape the run, as a sentence

    @property
    def ok(self) -> bool:
        return all(result.ok(self.plan) for result in self.results)


def run(settings: Settings, plan: SoakPlan, progress: Progress, workdir: Path | None = None) -> SoakReport:
    """Soak each engine of ``plan`` on ``settings``' broker (an embedded one if none answers)."""
    unknown = set(plan.engines) - set(ENGINES)
    if unknown:
        raise BenchmarkError(f"unknown engines {sorted(unknown)}; choose from {list(ENGINES)}")
    work = workdir or Path(tempfile.mkdtemp(prefix="churn-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    machine = (
        f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
        f"load average {load_average():.1f} when the run started (other processes share the machine)"
    )
    started = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    broker = None
    if not kafka_ready(settings.kafka_bootstrap_servers, timeout=2.0, settings=settings):
        broker = EmbeddedBroker(log_path=work / "broker.log").start()
        settings = settings.with_overrides(kafka_bootstrap_servers=broker.bootstrap)
    try:
        results = []
        for engine in plan.engines:
            with progress.status(f"soak: {engine} at {plan.rate:,.0f} events/s for {plan.minutes:g} min..."):
                pid = broker.pid if broker is not None else None
                result = soak_engine(settings, plan, engine, work, progress, broker_pid=pid)
            results.append(result)
            progress.print(summary_line(result, plan))
    finally:
        if broker is not None:
            broker.stop()
    where = (
        "embedded Tansu (in-memory), one broker for the whole run"
        if broker
        else settings.kafka_bootstrap_servers
    )
    return SoakReport(plan, results, machine, where, started, shaping(settings))


def shaping(settings: Settings) -> str:
    """The settings that shape a soak, as a sentence for the report."""
    return (
        f"fetch wait native {settings.scorer_native_fetch_wait_ms} ms / Faust "
        f"{settings.scorer_faust_fetch_wait_ms} ms (raised when needed up to "
        f"{settings.stall_max_fetch_wait_ms} ms), producer linger {settings.producer_linger_ms:g} ms, "
        f"stall window {settings.stall_after_s:g} s, {settings.topic_partitions} partitions, "
        f"max batch {settings.scorer_max_batch}"
    )


def soak_engine(
    settings: Settings,
    plan: SoakPlan,
    engine: str,
    work: Path,
    progress: Progress,
    broker_pid: int | None = None,
) -> SoakResult:
    """One engine: scorer and producer processes, samples, the drain, the audit."""
    run_settings = settings.for_run("soak", f"{engine}-{uuid.uuid4().hex[:8]}", scorer_web_port=free_port())
    ensure_topics(run_settings)
    env = run_settings.child_env(*CHILD_SETTINGS)
    result = SoakResult(engine=engine, rate=plan.rate, minutes=plan.minutes)
    scorer = ScorerProcess(env, work / f"{engine}-scorer.log", engine=engine)
    lag = BrokerLag(run_settings)
    try:
        scorer.wait_ready(timeout=120)
        count = plan.events
        produce = ["produce", "--rate", f"{plan.rate:g}", "--count", str(count)]
        producer = ChurnProcess(produce, env, work / f"{engine}-produce.log")
        started = time.monotonic()
        cpu_at_start = _cpu_seconds(broker_pid)
        latency = _Latency()
        next_sample = started
        next_line = started + 60.0
        while producer.running():
            if time.monotonic() >= next_sample:
                next_sample += plan.sample_s
                result.samples.append(_sample(scorer, lag, latency, time.monotonic() - started))
            if time.monotonic() >= next_line and result.samples:
                next_line += 60.0
                progress.print(sample_line(engine, result.samples[-1]))
            if not scorer.running():
                raise BenchmarkError(f"the {engine} scorer exited during the load:\n{scorer.tail()}")
            time.sleep(0.1)
        stopped = time.monotonic()
        result.produce_seconds = stopped - started
        code = producer.stop(timeout=60)
        if code != 0:
            raise BenchmarkError(f"churn produce failed (exit {code}):\n{producer.tail()}")
        result.produced = count
        if broker_pid is not None and cpu_at_start is not None:
            cpu = _cpu_seconds(broker_pid)
            result.broker_cpu = None if cpu is None else (cpu - cpu_at_start) / result.produce_seconds
        _rss(result, plan)
        # Drain: the backlog scored; how long until the lag is under one second of traffic.
        deadline = stopped + plan.drain_timeout_s
        while time.monotonic() < deadline:
            sample = _sample(scorer, lag, latency, time.monotonic() - started)
            result.samples.append(sample)
            if result.drain_s is None and sample.lag <= plan.rate:
                result.drain_s = time.monotonic() - stopped
            if sample.lag <= 0 and sample.consumed >= count:
                break
            time.sleep(1.0)
        result.final_lag = result.samples[-1].lag
        _finish_metrics(result, scorer, latency)
    finally:
        scorer.stop(timeout=60)
        lag.close()
    result.stalls = scorer.log_path.read_text(errors="replace").count(" stalled: position ")
    with progress.status(f"soak: reading the {engine} scorer's predictions..."):
        result.predicted, result.duplicates = _audit_predictions(run_settings)
        result.dead_letters = _topic_size(run_settings, run_settings.dlq_topic)
    return result


class BrokerLag:
    """The lag the broker sees for the scorer's group: high watermarks minus committed offsets.

    The embedded broker answers a ListOffsets request for the end of a partition with the
    base offset of its newest record batch plus one, not the end of that batch
    (docs/streaming.md), so this reads up to one producer batch per partition low;
    a partition is never counted below zero.
    """

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.events_topic
        self.partitions = settings.topic_partitions
        # The scorer's group id, to read its committed offsets; nothing subscribes, so nothing joins.
        config = {**confluent_common(settings), "group.id": settings.scorer_app_id, "client.id": "churn-soak"}
        self._consumer = Consumer(config)

    def __call__(self) -> int:
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        committed = self._consumer.committed(tps, timeout=10)
        total = 0
        for tp in committed:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=10, cached=False
            )
            total += max(high - (tp.offset if tp.offset >= 0 else low), 0)
        return total

    def close(self) -> None:
        self._consumer.close()


def _sample(scorer: ScorerProcess, lag: BrokerLag, latency: _Latency, t: float) -> Sample:
    try:
        families = {f.name: f for f in text_string_to_metric_families(scorer.metrics())}
    except OSError as exc:
        raise BenchmarkError(f"the scorer's /metrics does not answer: {exc}\n{scorer.tail()}") from exc
    try:
        broker_lag = lag()
    except KafkaException:
        broker_lag = -1
    p50, p99 = latency.window(_buckets(families))
    return Sample(
        t=round(t, 1),
        consumed=_total(families, "churn_events_consumed"),
        lag=broker_lag,
        scorer_lag=_total(families, "churn_consumer_lag"),
        stalled=_total(families, "churn_partition_stalled"),
        recoveries=_total(families, "churn_stall_recoveries"),
        rss_mb=_total(families, "process_resident_memory_bytes") / 2**20,
        p50_ms=p50,
        p99_ms=p99,
    )


def _total(families: Mapping[str, object], name: str) -> float:
    family = families.get(name)
    if family is None:
        return 0.0
    suffixes = ("", "_total")
    return sum(s.value for s in family.samples if s.name in {name + x for x in suffixes})  # type: ignore[attr-defined]


def _by_label(families: Mapping[str, object], name: str, label: str) -> dict[str, float]:
    family = families.get(name)
    out: dict[str, float] = {}
    if family is None:
        return out
    for s in family.samples:  # type: ignore[attr-defined]
        if s.name == name + "_total":
            out[s.labels[label]] = out.get(s.labels[label], 0.0) + s.value
    return out


def _buckets(families: Mapping[str, object]) -> list[tuple[float, float]]:
    """``(upper bound, cumulative count)`` of the end-to-end latency histogram."""
    family = families.get("churn_end_to_end_latency_seconds")
    if family is None:
        return []
    return sorted(
        (float(s.labels["le"]), s.value)
        for s in family.samples  # type: ignore[attr-defined]
        if s.name.endswith("_bucket")
    )


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus' ``histogram_quantile``: linear within the bucket; None for an empty histogram."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            span = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / span if span else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound


class _Latency:
    """Per-window quantiles from successive cumulative histograms."""

    def __init__(self) -> None:
        self.previous: list[tuple[float, float]] = []
        self.last: list[tuple[float, float]] = []

    def window(self, buckets: list[tuple[float, float]]) -> tuple[float | None, float | None]:
        before = dict(self.previous)
        delta = [(bound, count - before.get(bound, 0.0)) for bound, count in buckets]
        self.previous = self.last = buckets
        p50, p99 = quantile(delta, 0.5), quantile(delta, 0.99)
        return (None if p50 is None else 1000 * p50), (None if p99 is None else 1000 * p99)


def _rss(result: SoakResult, plan: SoakPlan) -> None:
    """RSS at the end of the warm-up and at the end of the load (the scorer's own gauge)."""
    loaded = [s for s in result.samples if s.rss_mb > 0]
    if not loaded:
        return
    after_warmup = [s for s in loaded if s.t >= plan.warmup_s] or loaded[-1:]
    result.rss_start_mb = after_warmup[0].rss_mb
    result.rss_end_mb = loaded[-1].rss_mb
    result.rss_peak_mb = max(s.rss_mb for s in loaded)


def _finish_metrics(result: SoakResult, scorer: ScorerProcess, latency: _Latency) -> None:
    families = {f.name: f for f in text_string_to_metric_families(scorer.metrics())}
    result.recoveries = _by_label(families, "churn_stall_recoveries", "action")
    result.fetch_wait_ms = (
        _total(families, "churn_fetch_wait_ms") if "churn_fetch_wait_ms" in families else None
    )
    buckets = _buckets(families)
    p50, p99 = quantile(buckets, 0.5), quantile(buckets, 0.99)
    result.p50_ms = None if p50 is None else 1000 * p50
    result.p99_ms = None if p99 is None else 1000 * p99


def _audit_predictions(settings: Settings) -> tuple[int, int]:
    """(distinct event_ids, duplicate predictions) on the predictions topic, read until it is idle.

    Not to its ListOffsets end: the embedded broker reports that up to a batch short.
    """
    seen: set[bytes] = set()
    read = 0
    for message in iter_topic(settings, settings.predictions_topic, idle_s=10.0, timeout_s=1800.0):
        seen.add(bytes.fromhex(orjson.loads(message.value() or b"{}")["event_id"]))
        read += 1
    return len(seen), read - len(seen)


def _topic_size(settings: Settings, topic: str) -> int:
    """Records in ``topic`` by its watermarks (on the embedded broker: at least 1 when it is not empty)."""
    consumer = Consumer({**confluent_common(settings), "group.id": "churn-soak-audit"})
    try:
        meta = consumer.list_topics(topic, timeout=10)
        total = 0
        for partition in meta.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (Linux /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample_line(engine: str, s: Sample) -> str:
    p99 = "" if s.p99_ms is None else f", e2e p99 {s.p99_ms:.0f} ms"
    return (
        f"  {engine} t={s.t:.0f} s: consumed {s.consumed:,.0f}, lag {s.lag:,}, stalled {s.stalled:.0f}, "
        f"recovery steps {s.recoveries:.0f}, RSS {s.rss_mb:.0f} MiB{p99}"
    )


def summary_line(result: SoakResult, plan: SoakPlan) -> str:
    verdicts = result.verdicts(plan)
    failed = [name for name, ok in verdicts.items() if not ok]
    drain = "never" if result.drain_s is None else f"{result.drain_s:.1f} s"
    return (
        f"  {result.engine}: produced {result.produced:,}, predicted {result.predicted:,} "
        f"(+{result.duplicates:,} duplicates), dead letters {result.dead_letters}, "
        f"max lag {result.max_lag:,}, stalls {result.stalls}, drain {drain}, "
        f"RSS {result.rss_start_mb:.0f} -> {result.rss_end_mb:.0f} MiB ({result.rss_growth:+.1%}): "
        + ("[green]meets the bar[/]" if not failed else f"[red]{'; '.join(failed)}[/]")
    )


def render_report(report: SoakReport) -> str:
    """The Markdown report: one row per engine, then each engine's timeline."""
    plan = report.plan
    lines = [
        f"Run {report.started}. Machine: {report.machine}. Broker: {report.broker}. "
        f"`churn produce --rate {plan.rate:g}` ({plan.events:,} events, {plan.minutes:g} min) beside "
        f"`churn score`, one engine after the other; {report.settings}.",
        "",
        "| engine | produced (in s) | predicted (distinct) | duplicates | dead letters "
        "| max lag (s of traffic) | stalls / recovery steps | fetch wait at the end "
        "| lag < 1 s of traffic after the producer stopped "
        "| RSS MiB after warm-up → end (growth) | e2e p50 / p99 ms | broker CPU | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---|",
    ]
    for r in report.results:
        steps = ", ".join(f"{action} {count:.0f}" for action, count in sorted(r.recoveries.items())) or "none"
        drain = "not within the run" if r.drain_s is None else f"{r.drain_s:.1f} s"
        failed = [name for name, ok in r.verdicts(plan).items() if not ok]
        cpu = "n/a" if r.broker_cpu is None else f"{r.broker_cpu:.0%}"
        latency = "n/a" if r.p50_ms is None or r.p99_ms is None else f"{r.p50_ms:.0f} / {r.p99_ms:.0f}"
        wait = "n/a" if r.fetch_wait_ms is None else f"{r.fetch_wait_ms:.0f} ms"
        verdict = "meets the bar" if not failed else "FAILS: " + "; ".join(failed)
        cells = [
            r.engine,
            f"{r.produced:,} ({r.produce_seconds:.0f})",
            f"{r.predicted:,}",
            f"{r.duplicates:,}",
            f"{r.dead_letters:,}",
            f"{r.max_lag:,} ({r.max_lag / plan.rate:.1f})",
            f"{r.stalls} / {steps}",
            wait,
            drain,
            f"{r.rss_start_mb:.0f} → {r.rss_end_mb:.0f} ({r.rss_growth:+.1%})",
            latency,
            cpu,
            verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "- Quality bar: every event predicted, no dead letter, the lag (the broker's view: high "
        f"watermarks minus the group's committed offsets) under one second of traffic within "
        f"{plan.drain_limit_s:.0f} s of the producer stopping, RSS growth under {plan.rss_limit:.0%} "
        f"from the end of the warm-up (the first {plan.warmup_s:.0f} s) to the end of the load.",
        "- e2e: the scorer's `churn_end_to_end_latency_seconds` over the whole run (event_time = send "
        "time → prediction acknowledged); broker CPU: share of one core during the load.",
    ]
    for r in report.results:
        lines += ["", f"Timeline, {r.engine} (t = seconds since the producer started):", ""]
        lines += _timeline(r, plan)
    return "\n".join(lines)


def _timeline(result: SoakResult, plan: SoakPlan, rows: int = 12) -> list[str]:
    samples = result.samples
    if not samples:
        return ["(no samples)"]
    every = max(plan.sample_s, samples[-1].t / (rows - 1))
    picked: list[Sample] = []
    for sample in samples:
        if not picked or sample.t - picked[-1].t >= every - 1e-6 or sample is samples[-1]:
            picked.append(sample)
    out = [
        "| t s | consumed | events/s since the row above | lag | stalled partitions | RSS MiB | e2e p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous: Sample | None = None
    for s in picked:
        rate = (
            ""
            if previous is None
            else f"{(s.consumed - previous.consumed) / max(s.t - previous.t, 1e-9):,.0f}"
        )
        p99 = "" if s.p99_ms is None else f"{s.p99_ms:.0f}"
        cells = [
            f"{s.t:.0f}",
            f"{s.consumed:,.0f}",
            rate,
            f"{s.lag:,}",
            f"{s.stalled:.0f}",
            f"{s.rss_mb:.0f}",
            p99,
        ]
        out.append("| " + " | ".join(cells) + " |")
        previous = s
    return out


_BEGIN = "<!-- bench-soak:begin -->"
_END = "<!-- bench-soak:end -->"


def write_docs(path: Path, report: str, plan: SoakPlan) -> None:
    """Replace the soak section of ``path`` (between its markers) with ``report``, or append it."""
    engines = "both" if len(plan.engines) > 1 else plan.engines[0]
    body = (
        f"{_BEGIN}\n## Soak (`churn bench soak`)\n\n"
        f"Command: `churn bench soak --minutes {plan.minutes:g} --rate {plan.rate:g} --engine {engines} "
        "--write-docs docs/benchmarks.md`\n\n"
        f"{report}\n{_END}"
    )
    replace_section(path, _BEGIN, _END, body)
