"""The reconnect-log throttle used during broker outages."""

from __future__ import annotations

import logging

from kafka_io.broker_watch import ReconnectLogThrottle


def _record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, msg, None, None)


def test_one_reconnect_error_per_window_passes_and_reports_what_it_held_back() -> None:
    throttle = ReconnectLogThrottle(every_s=3600)
    passed = [throttle.filter(_record("Unable connect to node with id 1: refused")) for _ in range(50)]
    assert passed.count(True) == 1
    assert throttle.suppressed == {"Unable connect to node with id 1: refused": 49}
    throttle.every_s = 0.0
    record = _record("Unable connect to node with id 1: refused")
    assert throttle.filter(record)
    assert "49 similar lines suppressed" in str(record.msg)
    assert throttle.filter(_record("something else entirely"))
    info = logging.LogRecord("aiokafka", logging.INFO, __file__, 1, "x", None, None)
    assert all(throttle.filter(info) for _ in range(3))
