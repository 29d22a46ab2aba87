"""A short soak per engine: 300,000 events at 3,000/s beside ``churn score`` on the real broker.

Past the point where the scorers used to stall on the embedded broker (~150,000-280,000
records into a sustained load): every event predicted, none dead-lettered, the lag back
under one second of traffic within 30 s of the producer stopping, RSS flat after the
warm-up. The 10-minute runs at 4,000/s are ``make soak`` (``churn bench soak``).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak import SoakPlan, soak_engine
from config.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

RATE = 3000.0
EVENTS = 300_000


class _Quiet:
    def status(self, _status: str) -> Any:
        return nullcontext()

    def print(self, *objects: Any) -> None:
        print(*objects)


@pytest.mark.parametrize("engine", ["native", "faust"])
def test_a_short_soak_predicts_every_event_drains_and_keeps_its_memory(
    engine: str, kafka_bootstrap: str, model_store: Path, tmp_path: Path
) -> None:
    plan = SoakPlan(engines=[engine], rate=RATE, minutes=EVENTS / RATE / 60, sample_s=5.0, rss_limit=0.10)
    assert plan.events == EVENTS
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, model_store=model_store)
    result = soak_engine(settings, plan, engine, tmp_path, _Quiet())
    print(
        f"{engine}: {result.produced:,} produced in {result.produce_seconds:.0f} s, {result.predicted:,} "
        f"predicted, {result.duplicates} duplicates, max lag {result.max_lag:,}, stalls {result.stalls}, "
        f"drain {result.drain_s} s, RSS {result.rss_start_mb:.0f} -> {result.rss_end_mb:.0f} MiB"
    )
    assert result.produced == EVENTS
    assert result.produce_seconds < EVENTS / RATE * 1.2  # the producer held the rate
    assert result.missing == 0, f"{result.missing} events never predicted"
    assert result.dead_letters == 0
    assert result.drain_s is not None and result.drain_s <= plan.drain_limit_s, result.drain_s
    assert result.final_lag <= RATE  # under one second of traffic at the end
    assert result.rss_growth < plan.rss_limit, (result.rss_start_mb, result.rss_end_mb)
    assert result.samples[-1].consumed >= EVENTS
