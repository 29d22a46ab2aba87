"""Is the broker reachable? A one-off probe, and a background watch that reports readiness and heals topics.

:func:`kafka_ready` asks a broker for metadata once. During a broker outage
the Faust worker does not crash: aiokafka keeps reconnecting and the agent
simply gets no records, so the scorer runs :class:`BrokerWatch`, which probes
the broker the same way from a daemon thread; on the first failed probe it logs one WARNING ("not ready")
and sets ``churn_broker_up`` to 0, then retries with exponential backoff
(``initial_s`` doubling up to ``max_s``). When the broker answers again it
recreates missing topics (a memory-only broker comes back empty), logs the
recovery with the outage length, and sets the gauge back to 1.

aiokafka logs each failed reconnect, fetch and coordinator request at ERROR
(about twenty lines a second during an outage); :class:`ReconnectLogThrottle`
lets each kind through once per ``every_s`` seconds and says how many it held back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client import Gauge

from config.settings import Settings
from kafka_io.client_config import confluent_common
from kafka_io.topics import ensure_topics

log = logging.getLogger(__name__)


def readiness_config(bootstrap: str, timeout: float, settings: Settings | None = None) -> dict[str, Any]:
    """The AdminClient config of :func:`kafka_ready`: the security settings of ``settings``, if given."""
    config: dict[str, Any] = confluent_common(settings) if settings is not None else {}
    # log_level 0: a probe of a closed port is expected to fail; don't spam stderr about it.
    config.update({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000), "log_level": 0})
    return config


def kafka_ready(bootstrap: str, timeout: float = 2.0, settings: Settings | None = None) -> bool:
    """Whether a Kafka broker at ``bootstrap`` answers a metadata request.

    Pass ``settings`` to probe with its security options (TLS / SASL listeners).
    """
    return _answers(AdminClient(readiness_config(bootstrap, timeout, settings)), timeout)


def _answers(admin: AdminClient, timeout: float) -> bool:
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


class ReconnectLogThrottle(logging.Filter):
    """Pass each aiokafka warning/error message template once per ``every_s``; drop the repeats.

    Keyed by the unformatted message (``"Failed fetch messages from %s: %s"``),
    so different problems still show; the next line that passes says how many
    of its kind were held back.
    """

    def __init__(self, every_s: float = 10.0) -> None:
        super().__init__()
        self.every_s = every_s
        self.suppressed: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = str(record.msg)
        now = time.monotonic()
        if now - self._last.get(key, float("-inf")) < self.every_s:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self.suppressed.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar lines suppressed)"
        return True


def _aiokafka_loggers() -> list[logging.Logger]:
    """aiokafka logs on ``aiokafka`` and per-module children; a logger filter sees only its own."""
    names = [n for n in logging.Logger.manager.loggerDict if n == "aiokafka" or n.startswith("aiokafka.")]
    return [logging.getLogger(n) for n in {"aiokafka", *names}]


class BrokerWatch:
    def __init__(
        self,
        settings: Settings,
        gauge: Gauge,
        *,
        on_change: Callable[[bool], None] | None = None,
        interval_s: float = 2.0,
        initial_s: float = 0.5,
        max_s: float = 8.0,
    ) -> None:
        self.settings = settings
        self.gauge = gauge
        self.on_change = on_change  # told True/False when the broker comes back or goes away
        self.interval_s = interval_s
        self.initial_s = initial_s
        self.max_s = max_s
        self.up = True
        self.outages = 0
        self._down_since = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-watch", daemon=True)
        self._admin: AdminClient | None = None
        self._throttle = ReconnectLogThrottle()
        gauge.set(1)

    def start(self) -> BrokerWatch:
        for logger in _aiokafka_loggers():
            logger.addFilter(self._throttle)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop probing; safe to call whether or not :meth:`start` ran."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for logger in _aiokafka_loggers():
            logger.removeFilter(self._throttle)

    def probe(self) -> bool:
        """One metadata request; True when the broker answered."""
        if self._admin is None:
            self._admin = AdminClient({**confluent_common(self.settings), "client.id": "churn-broker-watch"})
        return _answers(self._admin, timeout=2.0)

    def _run(self) -> None:
        backoff = self.initial_s
        while not self._stop.is_set():
            if self.probe():
                if not self.up:
                    self._recovered()
                backoff = self.initial_s
                wait = self.interval_s
            else:
                if self.up:
                    self.up = False
                    self.outages += 1
                    self._down_since = time.monotonic()
                    self.gauge.set(0)
                    if self.on_change is not None:
                        self.on_change(False)
                    log.warning(
                        "broker %s unreachable: scorer not ready; retrying with backoff up to %g s",
                        self.settings.kafka_bootstrap_servers,
                        self.max_s,
                    )
                wait = backoff
                backoff = min(backoff * 2, self.max_s)
            self._stop.wait(wait)

    def _recovered(self) -> None:
        try:
            created = ensure_topics(self.settings)
        except Exception as exc:  # still coming up: the next probe tries again
            log.warning("broker answers but topics could not be checked yet: %s", exc)
            return
        self.up = True
        self.gauge.set(1)
        if self.on_change is not None:
            self.on_change(True)
        log.warning(
            "broker %s reachable again after %.1f s: scorer ready (topics recreated: %s)",
            self.settings.kafka_bootstrap_servers,
            time.monotonic() - self._down_since,
            ", ".join(created) or "none",
        )
