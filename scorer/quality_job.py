"""``churn quality``: live model quality per version, a stateful Faust app.

Two agents read raw bytes: one the predictions topic and the challenger's shadow
topic, one the outcomes topic. Each record is decoded (:mod:`scorer.quality_records`)
and handed to :class:`scorer.quality_state.QualityState`, whose three tables are Faust
tables backed by changelog topics (``<app id>-predictions-changelog``, ...). A record
that cannot be read goes to the job's dead-letter topic with the usual reason headers;
nothing else stops the agents. Faust commits an input offset only after the changelog
and dead-letter records written for it are flushed, so a crash repeats records rather
than losing them, and repeating a record changes no state.

A timer recomputes the ``churn_live_*`` metrics of every model version from its window
(:func:`scorer.quality_stats.window_quality`), sweeps the horizon, and exports each
version's training ROC AUC from its manifest; ``/metrics``, ``/health/live`` and
``/health/ready`` are served by :class:`scorer.web.ScorerWebServer`.

**One worker per consumer group.** The tables are keyed by customer and written with
the producer's partitioner (``use_partitioner``), so housekeeping can change them from a
timer; each worker would restore only its own partitions' share, and each would export
metrics of part of the customers. The job is ready only when it holds every partition of
its input topics (readiness condition ``assignment``).

Table recovery on the embedded broker needs the end-offset correction of
:mod:`kafka_io.end_offsets` (installed on the transport here); on Kafka it changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, cast

import faust
from mode.supervisors import CrashingSupervisor

from config.settings import Settings
from kafka_io.client_config import faust_broker_url, faust_credentials
from kafka_io.end_offsets import true_end_offsets
from kafka_io.records import RawRecord
from models.manifests import served_roc_auc
from models.registry import ModelRegistry, RegistryError
from monitoring.metrics import QualityMetrics
from schemas import dead_letters
from schemas.dead_letters import DeadLetter
from scorer.faust_transport import install_transport
from scorer.quality_records import CHALLENGER, CHAMPION, Refused, read_outcome, read_prediction
from scorer.quality_state import QualityState, VersionWindow
from scorer.quality_stats import BUCKET_LABELS, window_quality
from scorer.readiness import ASSIGNMENT, Readiness

log = logging.getLogger(__name__)

RECOVERY: Final = "recovery"
CONDITIONS: Final = (ASSIGNMENT, RECOVERY)
TABLES: Final = ("predictions", "labelled", "pending")
_DAY = 86400.0
#: How long a version whose manifest could not be read waits before the next try.
_RETRY_MANIFEST_S = 60.0


class QualityMetricsObserver:
    """Counts joins and unmatched outcomes in the job's Prometheus metrics."""

    def __init__(self, metrics: QualityMetrics) -> None:
        self.metrics = metrics

    def joined(self, version: str, role: str, label_delay_s: float) -> None:
        self.metrics.labelled_predictions.labels(model_version=version, role=role).inc()
        self.metrics.label_delay.labels(model_version=version, role=role).observe(max(label_delay_s, 0.0))

    def unmatched(self) -> None:
        self.metrics.outcomes_unmatched.inc()


class QualityJob:
    """The Faust app of ``churn quality``; nothing connects until :meth:`serve`."""

    def __init__(
        self, settings: Settings, metrics: QualityMetrics, registry: ModelRegistry | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.registry = registry
        self.readiness = Readiness(
            metrics.ready,
            metrics.condition,
            conditions=CONDITIONS,
            initially_failing={ASSIGNMENT: "no partition assigned yet", RECOVERY: "tables not recovered yet"},
            live_timeout_s=settings.scorer_live_timeout_s,
            name="quality job",
        )
        metrics.alert_margin.set(settings.quality_alert_margin)
        metrics.alert_min_labelled.set(settings.quality_alert_min_labelled)
        self.app = faust.App(settings.quality_app_id, **_app_options(settings))
        install_transport(self.app, end_offsets=functools.partial(true_end_offsets, settings))
        tables = [self._table(name) for name in TABLES]
        self.state = QualityState(
            *tables,
            window=settings.quality_window,
            horizon_s=settings.quality_horizon_days * _DAY,
            grace_s=settings.quality_outcome_grace_s,
            observer=QualityMetricsObserver(metrics),
        )
        self._recovered: set[str] = set()
        for table in tables:
            table.on_recover(functools.partial(self._table_recovered, table.name))
        raw: dict[str, Any] = {
            "key_serializer": "raw",
            "value_serializer": "raw",
            "partitions": settings.topic_partitions,
        }
        self.input_topics = (
            settings.predictions_topic,
            settings.shadow_predictions_topic,
            settings.outcomes_topic,
        )
        predictions = self.app.topic(settings.predictions_topic, settings.shadow_predictions_topic, **raw)
        outcomes = self.app.topic(settings.outcomes_topic, **raw)
        self.dlq = self.app.topic(settings.outcomes_dlq_topic, **raw)
        # As in the scorer: an agent that fails on something other than bad input crashes the worker,
        # which its supervisor restarts from the last commit, rather than carrying on past the record.
        agent = functools.partial(self.app.agent, supervisor_strategy=CrashingSupervisor)
        agent(predictions, name="predictions")(self._read_predictions)
        agent(outcomes, name="outcomes")(self._read_outcomes)
        self.app.timer(interval=settings.quality_interval_s)(self._refresh)
        self.app.timer(interval=1.0)(self._beat)
        self._assigned: set[Any] = set()
        self.app.on_partitions_assigned.connect(cast(Any, self._on_assigned))
        self.app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        self._exported: set[tuple[str, str]] = set()
        self._training_auc: dict[str, tuple[float | None, float]] = {}  # version -> (ROC AUC, read at)

    def _table(self, name: str) -> Any:
        return self.app.Table(
            name,
            default=None,
            partitions=self.settings.topic_partitions,
            use_partitioner=True,
            schema=faust.Schema(key_serializer="json", value_serializer="json"),
            help=f"churn quality: {name}",
        )

    def serve(self) -> None:
        """Run the worker in this process until SIGTERM/SIGINT; it exits via SystemExit."""
        worker = faust.Worker(self.app, loglevel=self.settings.log_level, quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()

    # ------------------------------------------------------------------ agents
    async def _read_predictions(self, stream: Any) -> None:
        shadow = self.settings.shadow_predictions_topic
        max_bytes = self.settings.max_event_bytes
        async for event in stream.events():
            record = _raw(event)
            self.metrics.records.labels(topic=record.topic).inc()
            role = CHALLENGER if record.topic == shadow else CHAMPION
            seen = read_prediction(record, role, max_bytes)
            if isinstance(seen, Refused):
                await self._dead_letter(record, seen)
            else:
                self.state.on_prediction(seen)

    async def _read_outcomes(self, stream: Any) -> None:
        settings = self.settings
        async for event in stream.events():
            record = _raw(event)
            self.metrics.records.labels(topic=record.topic).inc()
            seen = read_outcome(record, settings.max_event_bytes, time.time(), settings.max_event_time_skew_s)
            if isinstance(seen, Refused):
                await self._dead_letter(record, seen)
            else:
                self.state.on_outcome(seen)

    async def _dead_letter(self, record: RawRecord, refused: Refused) -> None:
        letter = DeadLetter(
            error_type=refused.error_type,
            error_message=dead_letters.clip(refused.message),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
        )
        self.metrics.dead_letters.labels(topic=record.topic, error_type=refused.error_type).inc()
        log.info(
            "dead-lettered %s:%d:%d %s", record.topic, record.partition, record.offset, refused.error_type
        )
        await self.dlq.send(key=record.key, value=record.value, headers=letter.headers())

    # ------------------------------------------------------------------ timers
    async def _beat(self) -> None:
        self.readiness.beat()

    async def _table_recovered(self, name: str) -> None:
        self._recovered.add(name)
        if self._recovered >= set(TABLES):
            self.state.rebuild()
            log.info(
                "tables recovered: %d predictions tracked, labelled per version %s, %d outcomes pending",
                self.state.tracked,
                self.state.sizes(),
                len(self.state.pending),
            )
            self.readiness.set(RECOVERY, True)
            self.refresh_metrics()

    async def _refresh(self) -> None:
        if RECOVERY in self.readiness.verdict().failing:
            return
        report = self.state.sweep()
        if report.predictions_dropped or report.labelled_dropped or report.unmatched:
            log.info(
                "swept: %d predictions and %d labelled pairs past the horizon, %d outcomes unmatched",
                report.predictions_dropped,
                report.labelled_dropped,
                report.unmatched,
            )
        self.refresh_metrics()

    def refresh_metrics(self) -> None:
        """Set every ``churn_live_*`` gauge from the windows; remove the series of versions gone."""
        m = self.metrics
        windows = self.state.windows()
        exported: set[tuple[str, str]] = set()
        for version, window in windows.items():
            labels = (version, window.role)
            self._export(window)
            exported.add(labels)
            self._export_training_auc(version)
        for version, role in self._exported - exported:
            _remove_series(m, version, role)
        self._exported = exported
        m.predictions_tracked.set(self.state.tracked)
        m.outcomes_pending.set(len(self.state.pending))

    def _export(self, window: VersionWindow) -> None:
        m = self.metrics
        quality = window_quality(window.probabilities, window.labels, window.thresholds)
        labels = {"model_version": window.version, "role": window.role}
        m.live_labelled.labels(**labels).set(quality.labelled)
        for gauge, value in (
            (m.live_roc_auc, quality.roc_auc),
            (m.live_precision, quality.precision),
            (m.live_recall, quality.recall),
            (m.live_brier, quality.brier),
        ):
            if value is None:
                with contextlib.suppress(KeyError):
                    gauge.remove(window.version, window.role)
            else:
                gauge.labels(**labels).set(value)
        shown = set()
        for bucket in quality.calibration:
            shown.add(bucket.label)
            m.live_calibration_observed.labels(**labels, bucket=bucket.label).set(bucket.observed_rate)
            m.live_calibration_predicted.labels(**labels, bucket=bucket.label).set(bucket.mean_predicted)
        for gauge in (m.live_calibration_observed, m.live_calibration_predicted):
            for name in set(BUCKET_LABELS) - shown:  # buckets the window no longer fills
                with contextlib.suppress(KeyError):
                    gauge.remove(window.version, window.role, name)

    def _export_training_auc(self, version: str) -> None:
        """From the manifest, read once per version (a version not found is looked for again later)."""
        auc, read_at = self._training_auc.get(version, (None, -_RETRY_MANIFEST_S))
        if auc is None and time.monotonic() - read_at >= _RETRY_MANIFEST_S:
            auc = self._read_training_auc(version)
            self._training_auc[version] = (auc, time.monotonic())
        if auc is not None:
            self.metrics.training_roc_auc.labels(model_version=version).set(auc)

    def _read_training_auc(self, version: str) -> float | None:
        if self.registry is None:
            return None
        try:
            auc = served_roc_auc(self.registry.manifest(version))
        except (RegistryError, OSError, ValueError) as exc:
            log.warning("no training ROC AUC for model version %s: %s", version, exc)
            return None
        if auc is None:
            log.warning("the manifest of model version %s has no held-out ROC AUC", version)
        return auc

    # ------------------------------------------------------------------ partitions
    def _on_assigned(self, _sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        assigned: set[Any] = args[0]  # Faust sends the whole new assignment
        self._assigned = {tp for tp in assigned if tp.topic in self.input_topics}
        self._assignment_changed()

    def _on_revoked(self, _sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        revoked: set[Any] = args[0]
        self._assigned -= revoked
        self._assignment_changed()
        self._recovered.clear()
        self.readiness.set(RECOVERY, False, "tables are being recovered after a rebalance")

    def _assignment_changed(self) -> None:
        held: dict[str, int] = {}
        for tp in self._assigned:
            held[tp.topic] = held.get(tp.topic, 0) + 1
        missing = []
        for topic in self.input_topics:
            total = self.app.consumer.topic_partitions(topic) if self.app.consumer else None
            if total is None or held.get(topic, 0) < total:
                missing.append(f"{topic} {held.get(topic, 0)}/{total if total is not None else '?'}")
        reason = "this worker does not hold every input partition (run one quality job per group): "
        self.readiness.set(ASSIGNMENT, not missing, reason + ", ".join(missing))


def _app_options(settings: Settings) -> dict[str, Any]:
    datadir = settings.quality_data_dir
    if settings.quality_store.startswith("memory"):
        datadir = Path(tempfile.gettempdir()) / "churn-faust"  # Faust wants one; the tables live in memory
    datadir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": faust_broker_url(settings),
        "broker_credentials": faust_credentials(settings),
        "broker_session_timeout": settings.kafka_session_timeout_s,
        "broker_heartbeat_interval": settings.kafka_heartbeat_interval_s,
        "broker_commit_interval": 1.0,
        "consumer_auto_offset_reset": "earliest",
        "store": settings.quality_store,
        "datadir": str(datadir),
        "web_enabled": False,  # its own web server (scorer.web) serves /metrics and /health
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "topic_allow_declare": True,
        "producer_acks": -1,
        # Not producer_threaded (measured 2.2-2.9x the records/s here): Faust's commit does not wait
        # for its thread's queue, so an offset could be committed before its changelog record is sent.
    }


def _raw(event: Any) -> RawRecord:
    m = event.message
    headers = m.headers.items() if isinstance(m.headers, Mapping) else m.headers
    return RawRecord(
        m.value, m.key, m.topic, m.partition, m.offset, m.timestamp, [(k, v) for k, v in headers or ()]
    )


def _remove_series(m: QualityMetrics, version: str, role: str) -> None:
    for gauge in (m.live_roc_auc, m.live_precision, m.live_recall, m.live_brier, m.live_labelled):
        with contextlib.suppress(KeyError):
            gauge.remove(version, role)
    for gauge in (m.live_calibration_observed, m.live_calibration_predicted):
        for bucket in BUCKET_LABELS:
            with contextlib.suppress(KeyError):
                gauge.remove(version, role, bucket)
