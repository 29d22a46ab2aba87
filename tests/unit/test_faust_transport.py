"""The Faust worker's fetch wait: handed to aiokafka at creation, raised in place while it runs.

Raising it in place writes a private attribute of aiokafka's Fetcher. These tests read
aiokafka's own code: they fail when an aiokafka release stops copying the setting into
that attribute or stops reading it for each FetchRequest, so the stall recovery of the
Faust engine cannot silently turn into a no-op.
"""

from __future__ import annotations

import inspect
import re
from types import SimpleNamespace

import pytest
from aiokafka.consumer.fetcher import Fetcher

from scorer.faust_transport import FetchWait, set_fetcher_wait


def test_aiokafka_fetcher_keeps_the_wait_in_the_attribute_each_request_reads() -> None:
    init = inspect.getsource(Fetcher.__init__)
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in init
    # _get_actions_per_node builds the FetchRequest of each node; its first argument is max_wait_ms.
    requests = inspect.getsource(Fetcher._get_actions_per_node)
    assert re.search(r"FetchRequest\(\s*self\._fetch_max_wait_ms\s*,", requests)


def test_aiokafka_consumer_hands_its_attribute_to_the_fetcher_at_start() -> None:
    from aiokafka import AIOKafkaConsumer

    start = inspect.getsource(AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start


def test_set_fetcher_wait_writes_the_fetchers_attribute() -> None:
    fetcher = SimpleNamespace(_fetch_max_wait_ms=25)
    set_fetcher_wait(fetcher, 400)
    assert fetcher._fetch_max_wait_ms == 400


def test_set_fetcher_wait_refuses_a_fetcher_without_the_attribute() -> None:
    with pytest.raises(RuntimeError, match="needs updating for this aiokafka version"):
        set_fetcher_wait(SimpleNamespace(), 400)


def test_fetch_wait_handle_sets_the_consumer_then_raises_the_running_fetcher() -> None:
    wait = FetchWait(25)
    assert not wait.raise_to(100)  # no consumer yet: only remembered
    consumer = SimpleNamespace(_fetch_max_wait_ms=1500)
    wait.attach(consumer)
    assert consumer._fetch_max_wait_ms == 100
    assert not wait.raise_to(200)  # created, not started: no fetcher yet
    assert consumer._fetch_max_wait_ms == 200
    consumer._fetcher = SimpleNamespace(_fetch_max_wait_ms=200)  # type: ignore[attr-defined]
    assert wait.raise_to(800)
    assert consumer._fetcher._fetch_max_wait_ms == 800  # type: ignore[attr-defined]
    assert consumer._fetch_max_wait_ms == 800
