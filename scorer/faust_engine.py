"""The Faust engine of ``churn score``: a thin runtime around :func:`scorer.batch.score_batch`.

One agent reads ``customer-events`` as raw bytes in micro-batches
(``noack_take(max_batch, within=max_wait)``). Each batch is scored by
:class:`scorer.handler.BatchHandler` and its predictions and dead letters are
handed to the sink; while they travel to the broker the agent takes and scores
the next batch (one batch in flight). Once the broker has acknowledged every
output record of a batch, its input events are acknowledged, in order, so Faust
commits their offsets only after their output is safe (at-least-once; see
docs/streaming.md).

On SIGTERM Faust cancels the agent; the batch in flight (and one already
scored) is finished — delivered and acknowledged — before the worker commits
and exits.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faust
from mode.supervisors import CrashingSupervisor

from config.settings import Settings
from kafka_io.client_config import faust_broker_url, faust_consumer_settings, faust_credentials
from kafka_io.lag import LagReporter, faust_lags
from kafka_io.records import RawRecord
from scorer.batch import BatchResult
from scorer.faust_transport import install_fetch_wait
from scorer.handler import BatchHandler
from scorer.readiness import ASSIGNMENT

log = logging.getLogger(__name__)


def to_raw(events: Sequence[Any]) -> list[RawRecord]:
    """Faust events -> library-independent records (raw bytes, position, timestamp)."""
    messages = [event.message for event in events]
    return [RawRecord(m.value, m.key, m.topic, m.partition, m.offset, m.timestamp) for m in messages]


def faust_consumer_options(settings: Settings) -> dict[str, Any]:
    """The Faust options of the scorer's consumer side; the framework-floor benchmark uses them too.

    The pass-through consumer options Faust can take come last (``KafkaOptionError`` for the rest).
    """
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
        "web_enabled": False,  # the scorer's own web server (scorer.web) serves /metrics and /health
        "stream_buffer_maxsize": max(4 * settings.scorer_max_batch, 4096),
        "broker_max_poll_records": max(settings.scorer_max_batch, 500),
        **faust_consumer_settings(settings),
    }


def faust_app(settings: Settings, **options: Any) -> faust.App:
    """A Faust app with the scorer's consumer options and fetch wait; ``options`` add to them."""
    app = faust.App(settings.scorer_app_id, **faust_consumer_options(settings), **options)
    install_fetch_wait(app, settings.kafka_fetch_max_wait_ms)
    return app


def run_worker(app: faust.App, loglevel: str) -> None:
    """Run ``app`` in a Faust worker in this process until SIGTERM/SIGINT (it installs the handlers).

    Everything loaded so far lives for the whole run: it is frozen out of the cyclic GC's way.
    """
    gc.freeze()
    faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()


class FaustEngine:
    """The Faust app around a :class:`BatchHandler`; nothing connects until :meth:`serve`."""

    def __init__(self, settings: Settings, handler: BatchHandler) -> None:
        self.settings = settings
        self.handler = handler
        self.app = faust_app(
            settings,
            topic_partitions=settings.topic_partitions,
            topic_replication_factor=settings.topic_replication,
            topic_allow_declare=True,
            producer_acks=-1,
            # Commit acknowledged offsets every second: fewer duplicates after a crash.
            broker_commit_interval=1.0,
        )
        events_topic = self.app.topic(
            settings.events_topic,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
        )
        # If the agent fails (not bad input: score_batch dead-letters that; an unexpected client
        # error), Faust's default supervisor would start a fresh agent that carries on after the
        # failed batch's unacknowledged events: they would not be scored again until a restart,
        # and no offset could be committed past them. Crash the worker instead: it exits
        # non-zero, its supervisor (docker-compose, churn up, systemd...) restarts it, and it
        # resumes from the last commit.
        self.app.agent(events_topic, name="score-events", supervisor_strategy=CrashingSupervisor)(self._score)
        self.app.timer(interval=settings.model_poll_interval_s)(self._follow_promoted_model)
        self.lag = LagReporter(handler.metrics.consumer_lag)
        self.app.timer(interval=self.lag.interval_s)(self._report_consumer_lag)
        # The event loop turns: the agent and its timers run (liveness, scorer.readiness).
        self.app.timer(interval=1.0)(self._beat)
        self._assigned: set[Any] = set()
        # mode's handler type names its `signal` argument by a string mypy cannot resolve.
        self.app.on_partitions_assigned.connect(cast(Any, self._on_assigned))
        self.app.on_partitions_revoked.connect(cast(Any, self._on_revoked))

    def serve(self) -> None:
        """Run the worker in this process until SIGTERM/SIGINT; it exits via SystemExit."""
        try:
            run_worker(self.app, self.settings.log_level)
        finally:
            self.handler.sink.close()

    async def _score(self, stream: Any) -> None:
        # One batch in flight: while batch N travels to the broker, batch N+1 is taken and
        # scored. Batches finish (acknowledged output, then acknowledged input) in order.
        handler, settings = self.handler, self.settings
        in_flight: asyncio.Future[None] | None = None
        scored: _Scored | None = None
        try:
            batches = stream.noack_take(settings.scorer_max_batch, within=settings.scorer_max_wait_s)
            async for events in batches:
                scored = _Scored(events, handler.score(to_raw(events)))
                if in_flight is not None:
                    await asyncio.shield(in_flight)
                in_flight = asyncio.ensure_future(_deliver(stream, handler, scored))
                scored = None
        except asyncio.CancelledError:
            if in_flight is not None and _failed(in_flight):
                raise  # the worker is crashing (see _deliver): deliver nothing more
            # Stopping (SIGTERM, rebalance): finish what is in flight so that its output is
            # delivered and its input acknowledged before the worker commits.
            if in_flight is not None and not in_flight.done():
                log.info("stop requested; finishing the batch in flight")
                await in_flight
            if scored is not None:
                await _deliver(stream, handler, scored)
            raise
        if in_flight is not None:
            await in_flight

    async def _beat(self) -> None:
        self.handler.readiness.beat()

    def _on_assigned(self, _sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        assigned: set[Any] = args[0]  # Faust sends the whole new assignment
        self._assigned = {tp for tp in assigned if tp.topic == self.settings.events_topic}
        self._assignment_changed()

    def _on_revoked(self, _sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        revoked: set[Any] = args[0]
        self._assigned -= revoked
        self._assignment_changed()

    def _assignment_changed(self) -> None:
        self.handler.readiness.set(ASSIGNMENT, bool(self._assigned), "no partition assigned")

    async def _follow_promoted_model(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.handler.live.refresh)

    async def _report_consumer_lag(self) -> None:
        try:
            self.lag.report(await faust_lags(self.app, self.settings.events_topic))
        except Exception as exc:  # not assigned yet, consumer restarting: try again next tick
            log.debug("consumer lag not available: %s", exc)


@dataclass
class _Scored:
    """A batch of events and its scored output."""

    events: Sequence[Any]
    result: BatchResult


def _failed(future: asyncio.Future[None]) -> bool:
    """Whether ``future`` ended with an exception (which this call marks as retrieved)."""
    return future.done() and not future.cancelled() and future.exception() is not None


async def _deliver(stream: Any, handler: BatchHandler, scored: _Scored) -> None:
    """Produce the batch's output, wait until the broker acknowledged it, acknowledge its input."""
    try:
        await handler.sink.submit(handler.outputs(scored.result)).wait_async()
    except Exception as exc:
        # Not bad input (score_batch dead-letters that): an unexpected client error. The events
        # stay unacknowledged, so this worker never commits their offsets; stop rather than skip.
        # Crash the app now: the agent may be waiting for a next batch that does not come.
        log.exception("delivery of a batch of %d events failed; stopping the worker", len(scored.events))
        await stream.app.crash(exc)
        raise
    handler.record(scored.result)
    for event in scored.events:
        await stream.ack(event)
