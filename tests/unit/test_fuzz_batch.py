"""Fuzzing the batch core: whatever the bytes, exactly one outcome per record and never an exception.

Each example is a batch of 500 records: hypothesis draws a few records outright
(arbitrary bytes, arbitrary JSON values, arbitrary keys and headers) and a seed from
which :mod:`tests.support.mutations` derives the rest as structured mutations of valid
events, with some valid events left untouched. 200 examples make 100,000 records per
run. ``--fuzz-minutes N`` runs the same property for N minutes (``make fuzz``); it is
deselected otherwise.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_io.records import RawRecord
from producer.events import synthetic_events
from schemas import dead_letters
from schemas.dead_letters import DeadLetter
from scorer.batch import BatchLimits, score_batch
from tests.support.mutations import mutant

BATCH = 500
EXAMPLES = 200
LIMITS = BatchLimits()
NOW = time.time()
EVENTS = synthetic_events(400, seed=2024)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
#: Records hypothesis draws itself: raw bytes, any JSON value, a valid event with one field set to anything.
drawn_values = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)),
    st.tuples(st.integers(0, len(EVENTS) - 1), st.sampled_from(sorted(EVENTS[0])), json_values).map(
        lambda t: orjson.dumps({**EVENTS[t[0]], t[1]: t[2]}, option=orjson.OPT_NON_STR_KEYS)
    ),
    st.none(),
)
keys = st.one_of(st.just(b"key"), st.none(), st.binary(max_size=40), st.just(b"k" * 5000))
headers = st.one_of(
    st.none(),
    st.lists(
        st.tuples(st.sampled_from(["replay_count", "replayed_from", "x"]), st.binary(max_size=20)), max_size=3
    ),
)


def _batch(
    seed: int, drawn: list[tuple[bytes | None, bytes | None, Any]]
) -> tuple[list[RawRecord], set[int]]:
    """``BATCH`` records: the drawn ones, then mutants and untouched events; and the untouched rows."""
    rng = random.Random(seed)
    records: list[RawRecord] = []
    untouched: set[int] = set()
    for key, value, extra in drawn:
        records.append(RawRecord(value, key, "events", 0, len(records), NOW, extra))
    while len(records) < BATCH:
        event = rng.choice(EVENTS)
        key: bytes | None = event["customer_id"].encode()
        if rng.random() < 0.2:
            untouched.add(len(records))
            value = orjson.dumps(event)
        else:
            value = mutant(rng, event)
            if rng.random() < 0.05:
                key = rng.choice([None, b"", b"\xff" * 3])
        records.append(RawRecord(value, key, "events", len(records) % 4, len(records), NOW))
    return records, untouched


def _check(records: list[RawRecord], untouched: set[int], predictor: Any) -> None:
    result = score_batch(records, predictor, LIMITS, clock=lambda: NOW)
    assert result.consumed == len(records)
    letters = [DeadLetter.from_headers(letter.headers) for letter in result.dead_letters]
    offsets = [letter.source_offset for letter in letters]
    assert len(set(offsets)) == len(offsets), "a record got two dead letters"
    assert set(offsets) <= {r.offset for r in records}
    wrongly = [letter for letter in letters if letter.source_offset in untouched]
    assert not wrongly, wrongly[:3]  # a valid event dead-lettered
    kinds = {letter.error_type for letter in letters}
    assert kinds <= set(dead_letters.ALL_TYPES)
    internal = [letter for letter in letters if letter.error_type == dead_letters.INTERNAL_ERROR]
    assert not internal, internal[:3]  # the guard held, but an input nobody foresaw is a bug to fix
    assert len(result.probabilities) == len(result.predictions) == len(result.event_times)
    assert np.isfinite(result.probabilities).all()
    for prediction in result.predictions:
        payload = orjson.loads(prediction.value or b"")
        assert 0.0 <= payload["churn_probability"] <= 1.0


def _property(predictor: Any, examples: int, scored: list[int]) -> Any:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        seed=st.integers(0, 2**32 - 1),
        drawn=st.lists(st.tuples(keys, drawn_values, headers), max_size=12),
    )
    def run(seed: int, drawn: list[tuple[bytes | None, bytes | None, Any]]) -> None:
        records, untouched = _batch(seed, drawn)
        _check(records, untouched, predictor)
        scored.append(len(records))

    return run


def test_any_batch_of_records_gets_one_outcome_per_record_and_no_exception(predictor: Any) -> None:
    """100,000 records (200 batches of 500) per run."""
    scored: list[int] = []
    _property(predictor, EXAMPLES, scored)()
    assert sum(scored) >= 100_000


@pytest.mark.fuzz_long
def test_fuzz_for_minutes(predictor: Any, request: pytest.FixtureRequest) -> None:
    """The same property for ``--fuzz-minutes`` minutes, in rounds of fresh random examples."""
    until = time.monotonic() + 60 * float(request.config.getoption("--fuzz-minutes"))
    scored: list[int] = []
    while time.monotonic() < until:
        _property(predictor, EXAMPLES, scored)()
    print(f"fuzzed {sum(scored):,} records in {len(scored):,} batches")
