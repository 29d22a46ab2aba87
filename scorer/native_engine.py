"""The native engine of ``churn score --engine native``.

A confluent-kafka consumer in the scorer's consumer group around the same
batch core, sink and metrics as the Faust worker (:class:`scorer.handler.BatchHandler`):

1. a batch is up to ``max_batch`` records: the first waited for at most
   ``max_wait`` (``poll``), the rest what the client has already fetched
   (``consume(max_batch - 1, 0)``);
2. one ``BatchHandler.score`` pass (the same batch core as the Faust worker)
   turns them into predictions and dead letters;
3. once the previous batch is acknowledged, the sink starts producing this
   one, and while it travels to the broker the next batch is consumed and
   scored (one batch in flight at most); once the sink reports every output
   record of a batch acknowledged (``acks=all``), its metrics are recorded and its next
   offsets committed (asynchronously, explicit offsets; synchronously on revoke
   and on stop), so no offset is committed before its output is on the broker
   (at-least-once, exactly like the Faust worker).

Rebalance callbacks run inside ``consume``, between batches: ``on_revoke``
first waits for the batch in flight, then commits the finished offsets of the
revoked partitions synchronously; ``on_lost`` waits for it too but commits
nothing (the group has moved on; the new owner re-scores from the last
commit); any record of a partition this process no longer owns that a
``consume`` call still returned is dropped.
SIGTERM/SIGINT only set a flag: the batch in flight is finished, delivered and
committed, then the consumer leaves the group and the process exits 0.

When the model-failure breaker opens (:class:`scorer.breaker.ScoringBreaker`), the
batch that opened it is held, not delivered, and every assigned partition is paused
(``consumer.pause``; librdkafka drops what it had fetched and resumes from the
position after the held records). The loop keeps polling, so the group keeps this
member, and scores the held batch again whenever a probe is due; once the model
scores it, it is delivered and the partitions resume. A record that still arrives
from a partition while the batch is held (one assigned meanwhile) is not scored:
its partition is rewound to it.

A delivery that fails permanently (:class:`kafka_io.sink.PermanentDeliveryError`)
and a resource error from scoring propagate out of :meth:`NativeEngine.run`: the
batch they hit is not committed, nor is anything after it.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from types import FrameType

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from config.settings import Settings
from kafka_io.client_config import confluent_consumer
from kafka_io.lag import LagReporter
from kafka_io.records import RawRecord
from kafka_io.sink import Delivery
from scorer.batch import BatchResult
from scorer.handler import BatchHandler
from scorer.readiness import ASSIGNMENT

log = logging.getLogger(__name__)

TP = tuple[str, int]
#: Upper bound of the native consumer's fetch.wait.max.ms (see NativeEngine.__init__).
NATIVE_FETCH_WAIT_MS = 5


class NativeEngine:
    """A confluent-kafka consumer loop around a :class:`BatchHandler`; :meth:`serve` runs it until SIGTERM."""

    def __init__(
        self,
        settings: Settings,
        handler: BatchHandler,
        *,
        group_id: str | None = None,
        client_id: str = "churn-scorer-native",
        follow_model: bool = True,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.stop_event = threading.Event()
        self.follow_model = follow_model
        self.lag = LagReporter(handler.metrics.consumer_lag)
        self._assigned: set[TP] = set()
        self._done: dict[TP, int] = {}  # next offset to commit, for delivered records
        self._committed: dict[TP, int] = {}
        # The batch whose output is on its way: (delivery, scored batch, last offset per partition).
        self._in_flight: tuple[Delivery, BatchResult, dict[TP, int]] | None = None
        # The batch the model-failure breaker holds (records, last offset per partition), and
        # the partitions paused meanwhile.
        self._held: tuple[list[RawRecord], dict[TP, int]] | None = None
        self._paused: set[TP] = set()
        self._consumer = Consumer(
            confluent_consumer(
                settings,
                group_id or settings.scorer_app_id,
                **{
                    "enable.partition.eof": False,
                    "client.id": client_id,
                    # Offsets are stored and committed by this loop only.
                    "enable.auto.offset.store": False,
                    "partition.assignment.strategy": "range",
                    # The broker holds an empty fetch this long; waiting for the first record is
                    # what ``poll(max_wait)`` is for, so keep the fetch itself short (latency).
                    "fetch.wait.max.ms": min(settings.kafka_fetch_max_wait_ms, NATIVE_FETCH_WAIT_MS),
                    "on_commit": self._on_commit,
                },
            )
        )

    # -- lifecycle -------------------------------------------------------------------------

    def serve(self, max_events: int | None = None) -> None:
        """Run until SIGTERM/SIGINT (or ``max_events`` handled), then close the sink."""
        self.install_signal_handlers()
        tune_gc()
        try:
            self.run(max_events)
        finally:
            self.handler.sink.close()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: finishing the batch in flight, then stopping", signum)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, max_events: int | None = None) -> int:
        """Consume until stopped (or ``max_events`` handled); returns the events handled."""
        consumer = self._consumer
        consumer.subscribe(
            [self.settings.events_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        follower = self._start_model_follower() if self.follow_model else None
        handled = 0
        batch_size = self.settings.scorer_max_batch
        wait = self.settings.scorer_max_wait_s
        beat = self.handler.readiness.beat
        try:
            while not self.stop_event.is_set():
                beat()
                if max_events is not None and handled >= max_events:
                    break
                in_flight = self._in_flight
                if in_flight is not None and in_flight[0].done():
                    self._finish_in_flight()
                if self._held is not None:
                    self._while_held(wait)
                elif messages := self._next_batch(batch_size, wait):
                    handled += self._handle(messages)
                else:
                    self._finish_in_flight()  # idle: do not hold a batch's metrics and commit back
                if self.lag.due():
                    self._report_lag()
            self._finish_in_flight()
            self._commit(synchronous=True)
        finally:
            self.stop_event.set()
            if follower is not None:
                follower.join(timeout=5)
            consumer.close()  # leaves the group (on_revoke commits anything left)
            self.lag.forget(list(self._assigned))
        log.info("native scorer stopped after %d events", handled)
        return handled

    # -- one batch -------------------------------------------------------------------------

    def _next_batch(self, size: int, wait: float) -> list[Message]:
        """Up to ``size`` records: wait at most ``wait`` s for the first, then take what is fetched.

        ``consume(size, wait)`` alone would hold every batch until it is full or
        ``wait`` has passed (at 1,000 events/s: always the full 50 ms). Waiting
        only for the first record and then draining the fetched queue with
        ``consume(size - 1, 0)`` gives full batches under load and no added
        wait when records trickle in.
        """
        consumer = self._consumer
        first = consumer.poll(wait)
        if first is None:
            return []
        return [first, *consumer.consume(size - 1, timeout=0)] if size > 1 else [first]

    def _handle(self, messages: list[Message]) -> int:
        assigned = self._assigned
        records: list[RawRecord] = []
        last: dict[TP, int] = {}
        append = records.append
        for m in messages:
            if m.error() is not None:
                log.warning("consumer error: %s", m.error())
                continue
            tp = (m.topic(), m.partition())
            if tp not in assigned:  # revoked while this record was on its way: not ours now
                continue
            offset: int = m.offset()  # type: ignore[assignment]  # set on every record without an error
            ts = m.timestamp()[1] / 1000
            headers = m.headers()  # (str, bytes) pairs on a consumed record, or None
            append(RawRecord(m.value(), m.key(), tp[0], tp[1], offset, ts, headers))  # type: ignore[arg-type]
            last[tp] = offset
        if not records:
            return 0
        result = self.handler.score(records)
        if self.handler.paused:
            self._hold(records, last)
        else:
            self._submit(result, last)
        return len(records)

    def _submit(self, result: BatchResult, last: dict[TP, int]) -> None:
        # The previous batch was travelling to the broker while this one was consumed and scored;
        # it must be acknowledged before this one enters the producer (see kafka_io.sink).
        self._finish_in_flight()
        self._in_flight = (self.handler.sink.submit(self.handler.outputs(result)), result, last)

    # -- the model-failure breaker -----------------------------------------------------------

    def _hold(self, records: list[RawRecord], last: dict[TP, int]) -> None:
        self._held = (records, last)
        self._pause_assigned()

    def _pause_assigned(self) -> None:
        todo = self._assigned - self._paused
        if todo:
            self._consumer.pause([TopicPartition(t, p) for t, p in todo])
            self._paused |= todo

    def _while_held(self, wait: float) -> None:
        """One turn while the breaker holds a batch: keep the group, probe when due, resume after."""
        self._finish_in_flight()
        self._pause_assigned()  # partitions assigned since the hold
        rewound: set[TP] = set()
        for m in self._consumer.consume(100, timeout=min(wait, 0.1)):
            tp = (m.topic(), m.partition())
            if m.error() is None and tp in self._assigned and tp not in rewound:
                self._rewind(tp, m.offset())  # type: ignore[arg-type]  # the first one of its partition
                rewound.add(tp)
        held = self._held
        if held is None:  # every held partition was revoked: whatever comes next is the probe
            self._resume()
            return
        if not self.handler.probe_due():
            return
        records, last = held
        result = self.handler.score(records)
        if self.handler.paused:
            return
        self._held = None
        self._submit(result, last)
        self._resume()

    def _rewind(self, tp: TP, offset: int) -> None:
        """Leave a record that arrived while a batch is held to be read again after the resume."""
        try:
            self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        except KafkaException as exc:  # not assigned any more: its next owner reads it
            log.debug("rewinding %s:%d to %d failed: %s", tp[0], tp[1], offset, exc)

    def _resume(self) -> None:
        paused = self._paused & self._assigned
        if paused:
            self._consumer.resume([TopicPartition(t, p) for t, p in paused])
        self._paused.clear()

    def _finish_in_flight(self) -> None:
        """Wait until the batch in flight is acknowledged; record its metrics; commit its offsets."""
        if self._in_flight is None:
            return
        delivery, result, last = self._in_flight
        self._in_flight = None
        delivery.wait()
        self.handler.record(result)
        done, assigned = self._done, self._assigned
        for tp, offset in last.items():
            if tp in assigned:
                done[tp] = offset + 1
        self._commit(synchronous=False)

    def _commit(self, synchronous: bool, partitions: set[TP] | None = None) -> None:
        todo = [
            TopicPartition(t, p, o)
            for (t, p), o in self._done.items()
            if (partitions is None or (t, p) in partitions) and self._committed.get((t, p)) != o
        ]
        if not todo:
            return
        try:
            if synchronous:
                self._consumer.commit(offsets=todo, asynchronous=False)
            else:
                self._consumer.commit(offsets=todo, asynchronous=True)
        except KafkaException as exc:
            # e.g. the group rebalanced under us: the next owner re-scores from the last commit.
            log.warning("commit of %d partitions failed: %s", len(todo), exc)
            return
        if synchronous:
            for tp in todo:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            log.warning("offset commit failed: %s", err)
            return
        for tp in partitions:
            if tp.error is None:
                self._committed[(tp.topic, tp.partition)] = tp.offset

    # -- rebalance -------------------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = {(p.topic, p.partition) for p in partitions}
        self._assigned |= tps
        self._assignment_changed()
        log.info("assigned %s", sorted(tps))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = {(p.topic, p.partition) for p in partitions}
        # Called inside consume(), between batches: finish the one in flight, commit what is done.
        self._finish_in_flight()
        self._commit(synchronous=True, partitions=tps)
        self._forget(tps)
        log.info("revoked %s", sorted(tps))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = {(p.topic, p.partition) for p in partitions}
        self._finish_in_flight()  # its output is still delivered; the commit of lost ones fails harmlessly
        self._forget(tps)  # no commit: the group generation is gone
        log.warning("lost %s; their uncommitted records will be scored again by the next owner", sorted(tps))

    def _forget(self, tps: set[TP]) -> None:
        self._assigned -= tps
        self._paused -= tps
        if self._held is not None:  # their records are the next owner's to score
            records, last = self._held
            kept = [r for r in records if (r.topic, r.partition) not in tps]
            self._held = (kept, {tp: o for tp, o in last.items() if tp not in tps}) if kept else None
        for tp in tps:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)
        self.lag.forget(tps)
        self._assignment_changed()

    def _assignment_changed(self) -> None:
        self.handler.readiness.set(ASSIGNMENT, bool(self._assigned), "no partition assigned")

    # -- background duties -----------------------------------------------------------------

    def _report_lag(self) -> None:
        """High watermark (cached from fetch responses) minus position, per assigned partition."""
        if not self._assigned:
            self.lag.report({})
            return
        try:
            positions = self._consumer.position([TopicPartition(t, p) for t, p in self._assigned])
        except Exception as exc:  # pragma: no cover - client errors only
            log.debug("position failed: %s", exc)
            return
        lags: dict[TP, int] = {}
        for tp in positions:
            key = (tp.topic, tp.partition)
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high is None or high < 0:
                continue
            position = tp.offset if tp.offset >= 0 else self._committed.get(key)
            if position is None:
                continue
            lags[key] = high - position
        self.lag.report(lags)

    def _start_model_follower(self) -> threading.Thread:
        live = self.handler.live
        interval = self.settings.model_poll_interval_s

        def follow() -> None:
            while not self.stop_event.wait(interval):
                try:
                    live.refresh()
                except Exception:
                    log.exception("checking for a promoted model failed")

        thread = threading.Thread(target=follow, name="model-follower", daemon=True)
        thread.start()
        return thread


def tune_gc() -> None:
    """Freeze what is loaded (model, modules) and collect young objects less often.

    A batch allocates a few objects per record, nearly all freed by reference
    counting; with the default gen-0 threshold (700) the cyclic collector runs
    several times per batch. Measured: ~5 % more events/s per process.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
