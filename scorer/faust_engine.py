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

When the model-failure breaker opens (:class:`scorer.breaker.ScoringBreaker`), the
agent keeps the batch that opened it (unacknowledged), takes no further batch (the
stream buffer fills and fetching waits) and scores the held batch again whenever a
probe is due; once the model scores it, the batch is delivered and the agent goes on.
A delivery that fails permanently, and a resource error from scoring, crash the
worker: nothing after the failed batch is acknowledged.

A timer reports each assigned partition's lag (the broker's high watermark, from
aiokafka's ``end_offsets`` every ``lag_query_interval_s`` or from the last fetch
response, whichever is newer, minus the fetch position) and hands the same figures
to a :class:`scorer.stalls.StallGuard`; a stalled partition's fetcher is sought back
to its position, and if that does not get it moving the running fetcher's wait is
raised (:meth:`FaustEngine._recover`) — ahead of a stall too, once the broker's
partition lookups (timed on the ``end_offsets`` queries) outgrow the wait.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faust
from faust.types import TP as FaustTP  # noqa: N811 (ours is the plain tuple kafka_io.stall.TP)
from mode.supervisors import CrashingSupervisor

from config.settings import Settings
from kafka_io.client_config import faust_broker_url, faust_consumer_settings, faust_credentials
from kafka_io.lag import LagReporter, faust_marks
from kafka_io.records import RawRecord
from kafka_io.sink import PermanentDeliveryError
from kafka_io.stall import TP
from scorer.batch import BatchResult
from scorer.faust_transport import FetchWait, install_fetch_wait
from scorer.handler import BatchHandler
from scorer.readiness import ASSIGNMENT
from scorer.stalls import Plan, StallGuard

log = logging.getLogger(__name__)


def to_raw(events: Sequence[Any]) -> list[RawRecord]:
    """Faust events -> library-independent records (raw bytes, position, timestamp)."""
    messages = [event.message for event in events]
    return [
        RawRecord(m.value, m.key, m.topic, m.partition, m.offset, m.timestamp, m.headers) for m in messages
    ]


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
    return faust_app_with_fetch_wait(settings, **options)[0]


def faust_app_with_fetch_wait(settings: Settings, **options: Any) -> tuple[faust.App, FetchWait]:
    """:func:`faust_app` and the handle that raises its consumer's fetch wait while it runs."""
    app = faust.App(settings.scorer_app_id, **faust_consumer_options(settings), **options)
    return app, install_fetch_wait(app, settings.scorer_faust_fetch_wait_ms)


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
        self.app, self.fetch_wait = faust_app_with_fetch_wait(
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
        self.stalls = StallGuard(
            settings, handler.metrics, handler.readiness, settings.scorer_faust_fetch_wait_ms
        )
        self._fresh_highs: dict[TP, int] = {}
        self._fresh_at = -float("inf")
        self.app.timer(interval=self.lag.interval_s)(self._watch_partitions)
        # The event loop turns: the agent and its timers run (liveness, scorer.readiness).
        self.app.timer(interval=1.0)(self._beat)
        self._assigned: set[Any] = set()
        #: The delivery failure that crashed the worker, if one did.
        self.delivery_error: BaseException | None = None
        # mode's handler type names its `signal` argument by a string mypy cannot resolve.
        self.app.on_partitions_assigned.connect(cast(Any, self._on_assigned))
        self.app.on_partitions_revoked.connect(cast(Any, self._on_revoked))

    def serve(self) -> None:
        """Run the worker in this process until SIGTERM/SIGINT; it exits via SystemExit.

        A :class:`PermanentDeliveryError` that crashed the worker is raised again, so that
        ``churn score`` exits as the native engine does: Faust's worker turns a crash into exit
        code 1, or re-raises whatever crashed last (the agent cancelled by the first crash).
        """
        try:
            run_worker(self.app, self.settings.log_level)
        except BaseException:
            if isinstance(self.delivery_error, PermanentDeliveryError):
                raise self.delivery_error from None
            raise
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
                if handler.paused:
                    scored = await self._hold(scored)
                if in_flight is not None:
                    await asyncio.shield(in_flight)
                in_flight = asyncio.ensure_future(_deliver(stream, handler, scored, self._crashed))
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
                await _deliver(stream, handler, scored, self._crashed)
            raise
        if in_flight is not None:
            await in_flight

    async def _hold(self, scored: _Scored) -> _Scored:
        """While the breaker is open: keep the batch, take no more, score it again when a probe is due.

        Fetching stops by backpressure: the agent takes nothing, the stream buffer fills and the
        consumer waits on it. (Faust's ``pause_partitions`` would drop the records it already
        fetched for a paused partition without seeking back: they would be skipped until a restart.)
        """
        handler = self.handler
        records = to_raw(scored.events)
        while handler.paused:
            await asyncio.sleep(0.5)
            if handler.probe_due():
                scored = _Scored(scored.events, handler.score(records))
        return scored

    def _crashed(self, exc: BaseException) -> None:
        self.delivery_error = exc

    async def _beat(self) -> None:
        self.handler.readiness.beat()

    def _on_assigned(self, _sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        assigned: set[Any] = args[0]  # Faust sends the whole new assignment
        self._assigned = {tp for tp in assigned if tp.topic == self.settings.events_topic}
        self.stalls.assigned_again((tp.topic, tp.partition) for tp in self._assigned)
        self._assignment_changed()

    def _on_revoked(self, _sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        revoked: set[Any] = args[0]
        self._assigned -= revoked
        self.stalls.forget((tp.topic, tp.partition) for tp in revoked)
        self._assignment_changed()

    def _assignment_changed(self) -> None:
        self.handler.readiness.set(ASSIGNMENT, bool(self._assigned), "no partition assigned")

    async def _follow_promoted_model(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.handler.follow_models)

    async def _watch_partitions(self) -> None:
        """Report each assigned partition's lag; detect stalled partitions and recover them."""
        topic = self.settings.events_topic
        try:
            owned = self.app.consumer.assignment()
            assigned = sorted((tp.topic, tp.partition) for tp in owned if tp.topic == topic)
            await self._refresh_highwaters(assigned)
            positions, cached = await faust_marks(self.app, topic)
        except Exception as exc:  # not assigned yet, consumer restarting: try again next tick
            log.debug("consumer lag not available: %s", exc)
            return
        fresh = self._fresh_highs
        highs = {tp: max(cached.get(tp, -1), fresh.get(tp, -1)) for tp in assigned}
        highs = {tp: high for tp, high in highs.items() if high >= 0}
        self.lag.report({tp: highs[tp] - positions[tp] for tp in positions if tp in highs})
        plan = self.stalls.check(assigned, positions, highs)
        if plan:
            await self._recover(plan, positions)

    async def _refresh_highwaters(self, assigned: list[TP]) -> None:
        """The broker's high watermarks, asked every ``lag_query_interval_s`` (aiokafka ``end_offsets``)."""
        now = asyncio.get_running_loop().time()
        if now - self._fresh_at < self.settings.lag_query_interval_s:
            return
        self._fresh_at = now
        if not assigned:
            self._fresh_highs = {}
            return
        # One query per partition, each timed: a partition whose lookup has grown shows beside
        # the others even when it was long from the start (kafka_io.stall.LookupWatch).
        fresh: dict[TP, int] = {}
        took: list[float] = []
        for topic, partition in assigned:
            started = time.perf_counter()
            try:
                answer = await asyncio.wait_for(
                    self.app.consumer.highwaters(FaustTP(topic, partition)), timeout=10
                )
            except Exception as exc:  # the broker watch reports an unreachable broker
                log.debug("high watermark query failed: %s", exc)
                return
            took.append(time.perf_counter() - started)
            fresh.update({(tp.topic, tp.partition): int(high) for tp, high in answer.items()})
        self._fresh_highs = fresh
        wait = self.stalls.ahead([(max(took), len(assigned), min(took))])
        if wait is not None and not self.fetch_wait.raise_to(wait):
            log.info("no running fetcher to raise: the consumer starts with %d ms", wait)

    async def _recover(self, plan: Plan, positions: dict[TP, int]) -> None:
        """One recovery step per stalled partition due (see :mod:`scorer.stalls`)."""
        if plan.seek:
            await self._seek(plan.seek, positions)
            self.stalls.took(plan.seek, "seek")
        if not plan.escalate:
            return
        ladder = self.stalls.fetch_wait
        previous = ladder.current
        wait = ladder.raise_wait()
        names = ", ".join(f"{t}[{p}]" for t, p in plan.escalate)
        if wait is not None and self.fetch_wait.raise_to(wait):
            log.warning(
                "still stalled: %s; the fetcher now waits up to %d ms (was %d)", names, wait, previous
            )
            self.stalls.took(plan.escalate, "fetch_wait")
            return
        if wait is None:
            log.warning(
                "still stalled: %s; the fetch wait is at its cap (%d ms): seeking again", names, previous
            )
        else:  # no running fetcher to raise (the consumer is restarting): it starts with the new wait
            log.warning("still stalled: %s; no running fetcher to raise: seeking again", names)
        await self._seek(plan.escalate, positions)
        self.stalls.took(plan.escalate, "seek")

    async def _seek(self, tps: list[TP], positions: dict[TP, int]) -> None:
        """Seek the fetcher of ``tps`` to its position: what the stream already holds is not read twice."""
        targets = {FaustTP(t, p): positions[(t, p)] for t, p in tps if (t, p) in positions}
        try:
            await self.app.consumer.seek_wait(targets)
        except Exception as exc:
            log.warning("stall recovery: seeking %s failed: %s", sorted(targets), exc)
            return
        for tp, offset in sorted(targets.items()):
            log.warning("stall recovery: %s[%d] fetches again from offset %d", tp.topic, tp.partition, offset)


@dataclass
class _Scored:
    """A batch of events and its scored output."""

    events: Sequence[Any]
    result: BatchResult


def _failed(future: asyncio.Future[None]) -> bool:
    """Whether ``future`` ended with an exception (which this call marks as retrieved)."""
    return future.done() and not future.cancelled() and future.exception() is not None


async def _deliver(
    stream: Any, handler: BatchHandler, scored: _Scored, crashed: Callable[[BaseException], None]
) -> None:
    """Produce the batch's output, wait until the broker acknowledged it, acknowledge its input."""
    try:
        await handler.sink.submit(handler.outputs(scored.result)).wait_async()
    except Exception as exc:
        # Not bad input (score_batch dead-letters that): a record that can never be delivered, or
        # an unexpected client error. The events stay unacknowledged, so this worker never commits
        # their offsets; stop rather than skip. Crash the app now: the agent may be waiting for a
        # next batch that does not come.
        if not isinstance(exc, PermanentDeliveryError):  # that one was logged, with what to do
            log.exception("delivery of a batch of %d events failed; stopping the worker", len(scored.events))
        crashed(exc)
        await stream.app.crash(exc)
        raise
    handler.record(scored.result)
    for event in scored.events:
        await stream.ack(event)
