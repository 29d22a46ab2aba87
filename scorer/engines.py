"""The one place that builds a scorer: settings + the live model -> a runnable engine.

``churn score`` and the benchmarks build the engine that ``settings.scorer_engine``
names here — the Faust worker (:mod:`scorer.faust_engine`) or the native
confluent-kafka loop (:mod:`scorer.native_engine`) — around the same
:class:`~scorer.handler.BatchHandler`, sink and metrics. ``serve()`` runs an
engine until SIGTERM/SIGINT and closes its sink. Building an engine pins the
process's native thread pools to ``CHURN_SCORER_THREADS`` (:mod:`scorer.threads`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from config.settings import Settings
from kafka_io.records import RawRecord
from kafka_io.sink import DeliveryHooks, DeliverySink
from models.live import LiveModel
from monitoring.metrics import ScorerMetrics
from scorer.batch import BatchResult
from scorer.handler import BatchHandler
from scorer.native_engine import NativeEngine
from scorer.threads import pin_native_threads

if TYPE_CHECKING:
    from scorer.faust_engine import FaustEngine


def build_engine(
    settings: Settings,
    live: LiveModel,
    metrics: ScorerMetrics,
    *,
    sink: DeliverySink | None = None,
    on_received: Callable[[Sequence[RawRecord]], None] | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
    challenger: LiveModel | None = None,
) -> FaustEngine | NativeEngine:
    """The engine ``settings.scorer_engine`` names, scoring with ``live`` into ``sink``.

    With ``settings.shadow_scoring``, the engine also follows the registry's challenger
    pointer (``challenger``, or a challenger :class:`LiveModel` on ``live``'s registry).

    ``on_received`` and ``on_batch`` are the handler's hooks (see :class:`BatchHandler`).
    The sink tells the handler of delivery retries and failures (metrics, readiness
    ``delivery``) and beats the liveness clock while it waits for the broker.
    """
    pin_native_threads(settings.scorer_threads)  # after the model loaded its libraries
    client_id = "churn-scorer-native" if settings.scorer_engine == "native" else "churn-scorer"
    sink = sink or DeliverySink(settings, client_id=client_id)
    if challenger is None and settings.shadow_scoring:
        challenger = LiveModel(live.registry, role="challenger")
    if challenger is not None:
        challenger.refresh()
        predictor = challenger.predictor
        if predictor is not None:
            metrics.shadow.challenger_changed(predictor.version, predictor.info.selected_model)
    handler = BatchHandler(
        settings, live, metrics, sink, on_received=on_received, on_batch=on_batch, challenger=challenger
    )
    sink.hooks = DeliveryHooks(
        on_retry=handler.delivery_retried,
        on_failing=handler.delivery_changed,
        heartbeat=handler.readiness.beat,
    )
    if settings.scorer_engine == "native":
        return NativeEngine(settings, handler)
    # Faust (and aiokafka) load only for the Faust engine: a native scorer's memory stays lean.
    from scorer.faust_engine import FaustEngine

    return FaustEngine(settings, handler)
