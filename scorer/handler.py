"""What every scorer engine does with a batch: score it, deliver the output, record metrics.

The Faust engine (:mod:`scorer.faust_engine`) and the native engine
(:mod:`scorer.native_engine`) both call :class:`BatchHandler`; only how records
are consumed and how offsets are committed differs between them. The handler
knows no client library. It also keeps ``churn_drift_psi``
(:class:`scorer.drift.DriftMonitor`) current from the probabilities it scores.

With ``CHURN_SCORER_EXPLAIN`` every batch is scored with reason codes, once per batch
(:class:`scorer.batch.ReasonCodes`); a model that cannot give exact ones is
logged once per version, and ``churn_scorer_reasons{model_version}`` says which.

Shadow challenger: when ``challenger`` (a :class:`~models.live.LiveModel` with role
``challenger``) holds a model, every scored batch is also scored by it; its
predictions go to the shadow topic in the same delivery as the champion's output, so
the batch's input is committed only once both are acknowledged. A challenger that
fails costs its shadow predictions for that batch, never the champion's output.
:meth:`BatchHandler.follow_models` refreshes both models (the engines call it on a timer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from config.settings import Settings
from kafka_io.records import OutRecord, RawRecord
from kafka_io.sink import DeliverySink
from models.live import LiveModel
from monitoring.metrics import ScorerMetrics
from schemas.dead_letters import SCORING_FAILED
from scorer.batch import BatchLimits, BatchResult, ReasonCodes, score_batch, shadow_predictions
from scorer.breaker import ScoringBreaker
from scorer.drift import DriftMonitor
from scorer.readiness import DELIVERY, MODEL, SCORING, Readiness

log = logging.getLogger(__name__)


class BatchHandler:
    """Scores batches with the live model, names their output topics, records their metrics.

    ``on_received`` is called with each batch before it is scored and ``on_batch`` with
    each delivered batch's result (the benchmarks time a run with them). ``readiness`` holds
    the scorer's readiness conditions (:mod:`scorer.readiness`); the engine and the parts
    around it set theirs on it.

    The handler owns the model-failure breaker (:mod:`scorer.breaker`): after :meth:`score`,
    :attr:`paused` says whether the engine must hold that batch and pause consuming; it then
    calls :meth:`score` again with the held batch whenever :meth:`probe_due`, until
    :attr:`paused` is false and the result can be delivered.
    """

    def __init__(
        self,
        settings: Settings,
        live: LiveModel,
        metrics: ScorerMetrics,
        sink: DeliverySink,
        clock: Callable[[], float] = time.time,
        *,
        on_received: Callable[[Sequence[RawRecord]], None] | None = None,
        on_batch: Callable[[BatchResult], None] | None = None,
        readiness: Readiness | None = None,
        challenger: LiveModel | None = None,
    ) -> None:
        self.settings = settings
        self.live = live
        self.challenger = challenger
        self.metrics = metrics
        self.sink = sink
        self.clock = clock
        self.on_received = on_received
        self.on_batch = on_batch
        self.limits = BatchLimits(
            max_event_bytes=settings.max_event_bytes,
            max_future_skew_s=settings.max_event_time_skew_s,
            max_dead_letter_bytes=settings.dlq_max_value_bytes,
        )
        self._consumed = metrics.events_consumed.labels(topic=settings.events_topic)
        self.reasons = (
            ReasonCodes(settings.scorer_explain_top, settings.scorer_explain_down)
            if settings.scorer_explain
            else None
        )
        self._reasons_seen: dict[str, bool] = {}  # model version -> serves reasons
        self.drift = DriftMonitor(metrics.drift_psi.set, window=settings.drift_window)
        self.readiness = readiness or Readiness(
            metrics.scorer_ready, metrics.scorer_condition, live_timeout_s=settings.scorer_live_timeout_s
        )
        self.readiness.set(MODEL, live.predictor is not None, "no verified model is loaded")
        self.breaker = ScoringBreaker(
            settings.scoring_breaker_window,
            settings.scoring_breaker_threshold,
            settings.scoring_probe_interval_s,
        )

    def score(self, records: Sequence[RawRecord]) -> BatchResult:
        """Score one batch and count its model failures; see :attr:`paused` before delivering it."""
        if self.on_received is not None and not self.breaker.open:
            self.on_received(records)
        result = score_batch(records, self.live.current, self.limits, self.clock, self.reasons)
        if self.reasons is not None and result.model_version not in self._reasons_seen:
            self._reasons_changed(result)
        failed = result.dead_letter_types.get(SCORING_FAILED, 0)
        was_open = self.breaker.open
        is_open = self.breaker.record(len(result.predictions) + failed, failed, result.model_version)
        if is_open != was_open:
            self._breaker_changed(is_open, result.model_version)
        elif is_open:
            log.warning(
                "model %s still fails on %d of %d records of the held batch; next probe in %.0f s",
                result.model_version,
                failed,
                len(result.predictions) + failed,
                self.breaker.seconds_to_probe(),
            )
        if not self.breaker.open:
            self._shadow(result)
        return result

    def _reasons_changed(self, result: BatchResult) -> None:
        """The first batch of a model version with reasons on: say whether it serves them."""
        version, why = result.model_version, result.reasons_unavailable
        served = why is None
        for seen in self._reasons_seen:
            self.metrics.reasons_served.remove(seen)
        self._reasons_seen = {version: served}
        self.metrics.reasons_served.labels(model_version=version).set(1 if served else 0)
        if served:
            log.info("model %s: predictions carry reason codes", version)
        else:
            log.warning("model %s serves no reason codes, predictions say why instead: %s", version, why)

    def _shadow(self, result: BatchResult) -> None:
        """Score the batch's predicted events with the challenger too; a failure is only counted."""
        challenger = self.challenger.predictor if self.challenger is not None else None
        if challenger is None or not result.predictions or challenger.version == result.model_version:
            return
        result.shadow_version = challenger.version
        try:
            result.shadow, result.shadow_probabilities = shadow_predictions(result, challenger)
        except Exception as exc:  # the challenger never stops the champion's output
            result.shadow_failed = len(result.predictions)
            log.warning(
                "challenger %s failed on a batch of %d (%s: %s); its champion predictions go out",
                challenger.version,
                len(result.predictions),
                type(exc).__name__,
                exc,
            )

    def follow_models(self) -> None:
        """Load a newly promoted champion and follow the challenger pointer (set, replaced, cleared)."""
        self.live.refresh()
        challenger = self.challenger
        if challenger is None:
            return
        before = challenger.version
        challenger.refresh()
        predictor = challenger.predictor
        if challenger.version != before:
            model = predictor.info.selected_model if predictor is not None else ""
            self.metrics.shadow.challenger_changed(challenger.version, model)

    @property
    def paused(self) -> bool:
        """Whether the model-failure breaker is open: hold the batch just scored, do not consume."""
        return self.breaker.open

    def probe_due(self) -> bool:
        """While :attr:`paused`: whether to score the held batch again (interval passed or new model)."""
        return self.breaker.probe_due(self.live.current.version)

    def _breaker_changed(self, is_open: bool, version: str) -> None:
        self.metrics.scoring_paused.set(1 if is_open else 0)
        if is_open:
            breaker = self.breaker
            reason = (
                f"model {version} failed on {breaker.failed} of the last {breaker.valid} records "
                f"(more than {breaker.threshold:.0%}); consuming paused"
            )
            log.error(
                "%s: holding the batch, probing it every %g s and when another model version is promoted",
                reason,
                breaker.probe_interval_s,
            )
        else:
            reason = ""
            log.info("model %s scores the held batch; consuming resumes", version)
        self.readiness.set(SCORING, not is_open, reason)

    def delivery_changed(self, failing: bool, reason: str) -> None:
        """The sink's verdict: a batch unacknowledged past the limit (or delivered at last)."""
        self.metrics.delivery_failing.set(1 if failing else 0)
        self.readiness.set(DELIVERY, not failing, reason)

    def delivery_retried(self, topic: str, reason: str, records: int) -> None:
        self.metrics.delivery_retries.labels(topic=topic, reason=reason).inc(records)

    def outputs(self, result: BatchResult) -> list[tuple[str, Sequence[OutRecord]]]:
        outputs: list[tuple[str, Sequence[OutRecord]]] = [
            (self.settings.predictions_topic, result.predictions),
            (self.settings.dlq_topic, result.dead_letters),
        ]
        if result.shadow:
            outputs.append((self.settings.shadow_predictions_topic, result.shadow))
        return outputs

    def _update_drift(self, result: BatchResult) -> None:
        predictor = self.live.current
        if predictor.version == result.model_version:  # else a reload happened mid-batch; skip it
            self.drift.set_reference(predictor.version, predictor.manifest)
            self.drift.update(result.probabilities)

    def record(self, result: BatchResult) -> None:
        """Metrics for a delivered batch (end-to-end latency is measured at acknowledgement)."""
        m = self.metrics
        acked_at = self.clock()
        self._consumed.inc(result.consumed)
        m.batch_size.observe(result.consumed)
        scored = len(result.predictions)
        if scored:
            version = result.model_version
            m.predictions.labels(model_version=version, outcome="churn").inc(result.churned)
            m.predictions.labels(model_version=version, outcome="no_churn").inc(scored - result.churned)
            m.inference_latency.observe(result.inference_seconds)
            latencies = acked_at - np.asarray(result.event_times, dtype=np.float64)
            m.end_to_end_latency.observe_many(np.maximum(latencies, 0.0))
            m.probability.observe_many(result.probabilities)
            self._update_drift(result)
        if result.shadow_version:
            shadow = m.shadow
            if result.shadow:
                shadow.predictions.labels(model_version=result.shadow_version).inc(len(result.shadow))
                shadow.probability.observe_many(result.shadow_probabilities)
            if result.shadow_failed:
                shadow.failures.labels(model_version=result.shadow_version).inc(result.shadow_failed)
        if self.on_batch is not None:
            self.on_batch(result)
        for error_type, count in result.dead_letter_types.items():
            m.dead_letters.labels(error_type=error_type).inc(count)
        if result.dead_letters:
            log.info(
                "dead-lettered %d of %d records types=%s",
                len(result.dead_letters),
                result.consumed,
                dict(result.dead_letter_types),
            )
