"""How `churn bench stream` reports its runs, and how the CLI words an error."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from benchmarks.stream_bench import latency_cell, render_report
from cli.console import fail
from config.settings import Settings


def _lat(p50: float, p99: float, count: int = 100, expected: int = 100) -> dict[str, float]:
    return {"p50_ms": p50, "p99_ms": p99, "count": count, "expected": expected}


def test_a_latency_cell_is_the_median_of_the_runs_with_each_p99() -> None:
    runs = [_lat(8.0, 18.0), _lat(9.0, 74.0), _lat(7.0, 25.0, count=90)]
    assert latency_cell("native", runs) == "8.0 / 25.0 (18.0, 74.0, 25.0 90/100)"
    assert latency_cell("floor", []) == "n/a"
    assert latency_cell("native", []) == "not measured"


def test_the_report_has_one_column_per_latency_rate_and_the_same_run_ratios() -> None:
    results: dict[str, list[dict[str, float]]] = {
        "floor": [{"rate": r, "rss_mb": 200.0} for r in (13_000.0, 14_000.0, 15_000.0)],
        "scorer": [{"rate": r, "rss_mb": 220.0} for r in (12_000.0, 13_000.0, 11_000.0)],
        "native": [{"rate": r, "rss_mb": 190.0} for r in (120_000.0, 130_000.0, 140_000.0)],
    }
    latency = {("scorer", 1000.0): [_lat(30.0, 60.0)], ("native", 1000.0): [_lat(5.0, 10.0)]}
    manifest: dict[str, Any] = {"selected_model": "m", "version": "v"}
    text = render_report(results, latency, 50_000, 3, manifest, "machine", "broker", Settings())
    header = next(line for line in text.splitlines() if line.startswith("| variant"))
    assert header.count("|") == 6  # variant, events/s, runs, RSS, one latency rate
    assert "| 130,000 | 120,000, 130,000, 140,000 | 190 | 5.0 / 10.0 (10.0) |" in text
    assert "native / Faust scorer: **10.83**" in text  # 130,000 / 12,000
    assert "Faust scorer / Faust floor: 0.86" in text  # 12,000 / 14,000


def test_the_report_gives_the_cost_of_reasons_and_of_unpinned_thread_pools() -> None:
    results: dict[str, list[dict[str, float]]] = {
        "native": [{"rate": 40_000.0, "rss_mb": 190.0}],
        "native-reasons": [{"rate": 30_000.0, "rss_mb": 195.0}],
        "native-threads": [{"rate": 32_000.0, "rss_mb": 190.0}],
        "scorer": [{"rate": 10_000.0, "rss_mb": 220.0}],
        "scorer-reasons": [{"rate": 9_000.0, "rss_mb": 225.0}],
    }
    latency = {("native", 1000.0): [_lat(5.0, 10.0)]}
    text = render_report(results, latency, 50_000, 1, {}, "machine", "broker", Settings())
    assert "native with reasons / native: **0.75** (bar: at least 0.7)" in text
    assert "Faust with reasons / Faust scorer: 0.90" in text
    assert "/ not pinned: 1.25" in text
    row = next(line for line in text.splitlines() if line.startswith("| native scorer with reason codes"))
    assert row.rstrip().endswith("| not measured |")  # no latency run, but it writes predictions


def test_without_latency_runs_the_table_has_no_empty_column() -> None:
    results = {"native": [{"rate": 1.0, "rss_mb": 1.0}]}
    text = render_report(results, {}, 1, 1, {}, "machine", "broker", Settings())
    assert "| variant | events/s (median) | runs | RSS MiB |\n" in text


def test_an_error_message_is_printed_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit):
        fail("--profile needs py-spy: pip install -e '.[bench]'")
    assert "pip install -e '.[bench]'" in capsys.readouterr().err


def test_the_format_report_replaces_its_own_section_only(tmp_path: Any) -> None:
    from benchmarks import format_bench

    row = {
        "size_kb": {"joblib": 22.0, "skops": 27.0},
        "load_ms": {"joblib": 0.7, "skops": 4.6},
        "identical": True,
        "single_ratio": 1.01,
        "batch_ratio": 0.98,
    }
    results = {"rows": {"spline_logistic": row}, "machine": "m", "date": "d", "command": "churn bench format"}
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## API\n\nkept\n")
    format_bench.write_docs(doc, results)
    format_bench.write_docs(doc, {**results, "rows": {"blend": {**row, "identical": False}}})
    text = doc.read_text()
    assert text.count("## Model format") == 1 and "kept" in text
    assert "| blend | 22 / 27 | 0.7 / 4.6 | NO | 1.01 | 0.98 |" in text
    assert "spline_logistic |" not in text


def test_the_shapes_table_has_every_shape_and_the_ratios_to_the_first() -> None:
    from benchmarks.event_shapes import SHAPES, records, shapes_of
    from benchmarks.stream_bench import StreamPlan, render_shapes

    plan = StreamPlan(["raw", "native"], 1000, 2, [], 1.0, 1, shapes=tuple(shapes_of("all")))
    results = {
        (mode, shape): [{"rate": base * (0.9 if shape == "mix" else 1.0)}, {"rate": base}]
        for mode, base in (("raw", 100_000.0), ("native", 80_000.0))
        for shape in plan.shapes
    }
    text = render_shapes(results, plan)  # type: ignore[arg-type]
    assert [line.split("|")[1].split(":")[0].strip() for line in text.splitlines() if line.startswith("| ")][
        1:
    ] == list(SHAPES)
    assert "native scorer mix / canonical: **0.95**" in text  # medians 76,000 / 80,000 of two runs
    assert "raw ceiling on mix: 0.80" in text
    # the mix shape is what a CSV export gives: telco names, text, no ids, a third unkeyed
    mix = records("mix", 6)
    assert [key is None for key, _ in mix] == [True, False, False, True, False, False]
    assert b'"customerID"' in mix[1][1] and b"event_id" not in mix[1][1] and b'"tenure":"' in mix[1][1]
    with pytest.raises(ValueError, match="unknown shapes"):
        shapes_of("canonical,tsv")


def test_the_cpu_table_bounds_each_variant_by_its_batch_thread_or_the_cores() -> None:
    from benchmarks.stream_bench import StreamPlan, render_cpu

    plan = StreamPlan(["raw", "native"], 1000, 1, [], 1.0, 1, shapes=("canonical", "mix"))
    # per event: raw 3 µs process (1 on its batch thread) + 7 µs broker -> 2 cores / 10 µs = 200,000/s;
    # native 14 µs process, 12 on its batch thread + 7 µs broker -> min(1/12 µs, 2/21 µs) = 83,333/s
    results = {
        (mode, shape): [{"events": 1000, "cpu_s": process, "main_cpu_s": main, "broker_cpu_s": 0.007}]
        for mode, process, main in (("raw", 0.003, 0.001), ("native", 0.014, 0.012))
        for shape in plan.shapes
    }
    text = render_cpu(results, plan, cores=2)  # type: ignore[arg-type]
    assert "| raw | canonical | 3.0 | 1.0 | 7.0 | 200,000 |" in text
    assert "| native | mix | 14.0 | 12.0 | 7.0 | 83,333 |" in text
    assert "CPU-bound native / raw ceiling: canonical 0.42, mix 0.42" in text
    without_broker = {
        key: [{k: v for k, v in run.items() if k != "broker_cpu_s"}] for key, (run,) in results.items()
    }
    text = render_cpu(without_broker, plan, cores=2)  # type: ignore[arg-type]
    assert "| raw | canonical | 3.0 | 1.0 | n/a (external broker) | 666,667 |" in text
    assert render_cpu({("raw", "canonical"): [{"events": 1, "rate": 1.0}]}, plan, cores=2) == ""  # type: ignore[dict-item]
