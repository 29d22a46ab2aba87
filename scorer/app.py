"""The Faust stream worker: a thin runtime around :func:`scorer.batch.score_batch`.

One agent reads ``customer-events`` as raw bytes in micro-batches
(``noack_take(max_batch, within=max_wait)``), hands them to
:class:`scorer.runtime.BatchHandler` (score, produce predictions and dead
letters, wait for the broker's acknowledgement of every record), and only then
acknowledges the input events, so Faust commits their offsets only after their
output is safe (at-least-once; see docs/streaming.md).

On SIGTERM Faust cancels the agent; the batch in flight is shielded from that
cancellation and finished (delivered and acknowledged) before the worker
commits and exits.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitoring.metrics import ScorerMetrics
from schemas.settings import Settings
from scorer.batch import RawRecord
from scorer.faust_transport import install_fetch_wait
from scorer.kafka_config import faust_broker_url, faust_credentials
from scorer.lag import LagReporter, faust_lags
from scorer.model_provider import ModelProvider
from scorer.runtime import BatchHandler
from scorer.sink import DeliverySink

log = logging.getLogger(__name__)


@dataclass
class ScorerApp:
    """The Faust app plus the pieces a caller (CLI, tests, benchmark) may need."""

    app: Any  # faust.App
    handler: BatchHandler
    provider: ModelProvider
    settings: Settings

    def worker(self, loglevel: str = "INFO") -> Any:
        """A ``faust.Worker`` that runs the app in this process (installs signal handlers)."""
        import faust

        return faust.Worker(self.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)


def to_raw(events: Sequence[Any]) -> list[RawRecord]:
    """Faust events -> library-independent records (raw bytes, position, timestamp)."""
    out = []
    for event in events:
        message = event.message
        out.append(
            RawRecord(
                value=message.value,
                key=message.key,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp=message.timestamp,
            )
        )
    return out


def faust_consumer_options(settings: Settings) -> dict[str, Any]:
    """The Faust options of the scorer's consumer side; the framework-floor benchmark uses them too."""
    datadir = Path(tempfile.gettempdir()) / "churn-faust"  # Faust wants one; no tables live there
    datadir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": faust_broker_url(settings),
        "broker_credentials": faust_credentials(settings),
        "broker_session_timeout": settings.kafka_session_timeout_s,
        "broker_heartbeat_interval": settings.kafka_heartbeat_interval_s,
        "consumer_auto_offset_reset": "earliest",
        "store": "memory://",
        "datadir": str(datadir),
        "web_enabled": False,  # /metrics is served by prometheus-client (scorer.metrics_server)
        "stream_buffer_maxsize": max(4 * settings.scorer_max_batch, 4096),
        "broker_max_poll_records": max(settings.scorer_max_batch, 500),
    }


def create_app(
    settings: Settings,
    provider: ModelProvider,
    metrics: ScorerMetrics,
    *,
    sink: DeliverySink | None = None,
) -> ScorerApp:
    """Build the Faust app for ``settings``; nothing connects until the worker starts."""
    import faust

    handler = BatchHandler(settings, provider, metrics, sink or DeliverySink(settings))
    app = faust.App(
        settings.scorer_app_id,
        **faust_consumer_options(settings),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_allow_declare=True,
        producer_acks=-1,
        # Commit acknowledged offsets every second: fewer duplicates after a crash.
        broker_commit_interval=1.0,
    )
    install_fetch_wait(app, settings.kafka_fetch_max_wait_ms)
    events_topic = app.topic(
        settings.events_topic,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )

    async def score(stream: Any) -> None:
        async for events in stream.noack_take(settings.scorer_max_batch, within=settings.scorer_max_wait_s):
            batch = asyncio.ensure_future(_process(stream, handler, events))
            try:
                await asyncio.shield(batch)
            except asyncio.CancelledError:
                # Stopping (SIGTERM, rebalance): finish the batch in flight so that its output
                # is delivered and its offsets acknowledged before the worker commits.
                log.info("stop requested; finishing the batch in flight (%d events)", len(events))
                await batch
                raise

    app.agent(events_topic, name="score-events")(score)

    async def follow_promoted_model() -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, provider.refresh)

    app.timer(interval=settings.model_poll_interval_s)(follow_promoted_model)

    lag = LagReporter(metrics.consumer_lag)

    async def report_consumer_lag() -> None:
        try:
            lag.report(await faust_lags(app, settings.events_topic))
        except Exception as exc:  # not assigned yet, consumer restarting: try again next tick
            log.debug("consumer lag not available: %s", exc)

    app.timer(interval=lag.interval_s)(report_consumer_lag)

    return ScorerApp(app=app, handler=handler, provider=provider, settings=settings)


async def _process(stream: Any, handler: BatchHandler, events: Sequence[Any]) -> None:
    """Score and deliver one batch, then acknowledge its events; never raises on bad input."""
    records = to_raw(events)
    try:
        await handler.handle(records)
    except Exception:
        # Not bad input (score_batch dead-letters that): a bug or an unexpected client error.
        # The events stay unacknowledged, so their offsets are never committed by this worker;
        # stop the worker rather than skip past them.
        log.exception("batch of %d events failed; stopping without acknowledging it", len(records))
        raise
    for event in events:
        await stream.ack(event)
