"""CI's short mutation run: mutmut on the sink's retry core must kill at least 9 mutants in 10.

`make mutation` runs every module of the delivery core (tens of minutes); this subset (the error
classification and `Delivery.wait`, where a dropped re-produce would lose records silently) runs in
about a minute, so that a change which weakens those tests fails CI.
"""

from __future__ import annotations

import pytest

from tests.mutation import run

SUBSET = ["kafka_io.sink.x_classify__*", "kafka_io.sink.xǁDeliveryǁwait__*"]


@pytest.mark.timeout(600)
def test_the_sink_retry_core_kills_nine_mutants_in_ten() -> None:
    result = run.run_module("kafka_io/sink.py", SUBSET, run.equivalent_mutants(), quiet=True)
    counts = result.counts
    assert counts["killed"] + counts["survived"] >= 30, counts  # the subset really ran
    assert counts["not_checked"] == 0, counts
    assert result.score is not None
    assert result.score >= 90.0, run.report([result])
