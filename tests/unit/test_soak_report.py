"""The soak benchmark's arithmetic and report (benchmarks.soak) without processes or a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak import Sample, SoakPlan, SoakReport, SoakResult, quantile, render_report, write_docs


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    buckets = [(0.01, 0.0), (0.05, 50.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.05)
    assert quantile(buckets, 0.25) == pytest.approx(0.03)
    assert quantile(buckets, 0.99) == pytest.approx(0.099)
    assert quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None
    # Everything above the last finite bound: its lower bound, as histogram_quantile does.
    assert quantile([(0.1, 0.0), (float("inf"), 10.0)], 0.5) == pytest.approx(0.1)


def _sample(t: float, consumed: float, lag: int, rss: float) -> Sample:
    return Sample(t, consumed, lag, 0.0, 0.0, 0.0, rss, 10.0, 40.0)


def _result(**changes: object) -> SoakResult:
    plan = SoakPlan(engines=["native"], rate=1000, minutes=1)
    result = SoakResult(engine="native", rate=1000, minutes=1, produced=plan.events, predicted=plan.events)
    result.drain_s, result.rss_start_mb, result.rss_end_mb = 3.0, 200.0, 204.0
    result.samples = [_sample(5 * i, 5000 * i, 10, 200) for i in range(13)]
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def test_verdicts_follow_the_quality_bar() -> None:
    plan = SoakPlan(engines=["native"], rate=1000, minutes=1)
    assert _result().ok(plan)
    assert not _result(predicted=plan.events - 1).ok(plan)  # one event never predicted
    assert not _result(dead_letters=1).ok(plan)
    assert not _result(drain_s=31.0).ok(plan)
    assert not _result(drain_s=None).ok(plan)
    assert not _result(rss_end_mb=221.0).ok(plan)  # +10.5 %
    failing = [name for name, ok in _result(drain_s=45.0).verdicts(plan).items() if not ok]
    assert failing == ["lag < 1 s of traffic within 30 s"]


def test_report_has_a_row_per_engine_and_a_timeline(tmp_path: Path) -> None:
    plan = SoakPlan(engines=["native"], rate=1000, minutes=1)
    report = SoakReport(
        plan, [_result(recoveries={"seek": 2.0})], "test machine", "embedded", "now", "defaults"
    )
    text = render_report(report)
    row = next(line for line in text.splitlines() if line.startswith("| native |"))
    assert "| 60,000 (0) | 60,000 | 0 | 0 |" in row
    assert "0 / seek 2" in row
    assert "200 → 204 (+2.0%)" in row
    assert row.endswith("| meets the bar |")
    assert "Timeline, native" in text
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## API\n\nstays\n", encoding="utf-8")
    write_docs(docs, text, plan)
    write_docs(docs, text, plan)  # replaces its own section
    written = docs.read_text(encoding="utf-8")
    assert written.count("## Soak (`churn bench soak`)") == 1
    assert "stays" in written
    assert "churn bench soak --minutes 1 --rate 1000 --engine native" in written
