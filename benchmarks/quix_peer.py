"""The Quix Streams peer of the scorer, for ``churn bench stream`` only (extra ``bench``).

The same work written the way Quix Streams is meant to be used: a
``StreamingDataFrame`` over the events topic with Quix's JSON deserializer,
one ``apply`` that validates the event with the input contract (``validate_event``) and scores it
with the same :class:`Predictor` (``predict_one``; the dataframe API hands
records over one at a time), and ``to_topic`` with Quix's JSON serializer,
keyed by ``customer_id``. Quix commits at-least-once on its checkpoint
interval. It is a measuring stick, not a product path: no dead-letter routing
and no output headers.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from config.settings import Settings
from kafka_io.client_config import confluent_common
from models.predictor import Predictor
from schemas.contract import Rejection, derived_event_id, validate_event
from schemas.predictions import prediction_payloads

MISSING = (
    "quixstreams is not installed: it is a benchmark-only extra; run `pip install -e '.[bench]'` "
    "(or `pip install quixstreams`) to measure the Quix Streams row"
)


def quix_available() -> bool:
    return importlib.util.find_spec("quixstreams") is not None


def build_quix_app(
    settings: Settings, predictor: Predictor, on_scored: Callable[[], None] | None = None
) -> Any:
    """A Quix ``Application`` scoring ``settings.events_topic`` into ``settings.predictions_topic``."""
    from quixstreams import Application, message_context  # the optional `bench` extra: only when it runs

    common = {k: v for k, v in confluent_common(settings).items() if k != "bootstrap.servers"}
    app = Application(
        broker_address=settings.kafka_bootstrap_servers,
        consumer_group=settings.scorer_app_id,
        auto_offset_reset="earliest",
        consumer_extra_config={
            **common,
            "session.timeout.ms": int(settings.kafka_session_timeout_s * 1000),
            "heartbeat.interval.ms": int(settings.kafka_heartbeat_interval_s * 1000),
            "fetch.wait.max.ms": settings.scorer_native_fetch_wait_ms,  # a librdkafka scorer, as native
        },
        producer_extra_config={**common, "acks": "all", "linger.ms": 1},
        loglevel="WARNING",
        consumer_poll_timeout=settings.scorer_max_wait_s,
        auto_create_topics=True,
        use_changelog_topics=False,
    )
    events = app.topic(settings.events_topic, value_deserializer="json", key_deserializer="bytes")
    predictions = app.topic(settings.predictions_topic, value_serializer="json", key_serializer="str")
    version = predictor.version
    threshold = predictor.threshold

    def score(value: dict[str, Any], _key: Any, timestamp_ms: int, _headers: Any) -> dict[str, Any]:
        event = validate_event(value)
        if isinstance(event, Rejection):  # the peer has no dead-letter topic: a bad event stops it
            raise ValueError(event.message)
        probability = predictor.predict_one(event)
        if on_scored is not None:
            on_scored()
        if event.event_id is None:  # as the scorer does: the record's coordinates
            where = message_context()
            event_id = derived_event_id(where.topic, where.partition, where.offset)
        else:
            event_id = event.event_id
        when = event.event_time or datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        # Quix's JSON serializer takes no datetime: the times go out as ISO text.
        (payload,) = prediction_payloads(
            [event_id],
            [event.customer_id],
            [when.isoformat()],
            [probability],
            threshold,
            version,
            datetime.now(UTC).isoformat(),
        )
        return payload

    sdf = app.dataframe(events).apply(score, metadata=True)
    # Quix keeps the input's timestamp on the output by default; stamp the time of scoring
    # instead, as the other scorers' producers do (the benchmark's latency reads it).
    sdf = sdf.set_timestamp(lambda _value, _key, _timestamp, _headers: int(time.time() * 1000))
    sdf.to_topic(predictions, key=lambda value: value["customer_id"])
    return app
