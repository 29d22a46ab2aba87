"""`churn bench stream` runs end to end (briefly) on the embedded broker and writes its section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app as churn

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_bench_stream_measures_throughput_and_latency_and_writes_its_section(
    tmp_path: Path, model_store: Path, kafka_bootstrap: str
) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## API\n\napi figures stay here\n", encoding="utf-8")
    args = ["bench", "stream", "--store", str(model_store), "--events", "3000", "--repeats", "1"]
    args += ["--variants", "raw,native,native-reasons", "--latency-rates", "500", "--latency-seconds", "4"]
    args += ["--latency-repeats", "2", "--write-docs", str(docs)]

    result = CliRunner().invoke(churn, args, env={"CHURN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    assert result.exit_code == 0, result.output

    text = docs.read_text(encoding="utf-8")
    assert "api figures stay here" in text
    assert text.count("## Stream scorer") == 1
    native = next(line for line in text.splitlines() if line.startswith("| native scorer"))
    # events/s, one run, RSS, then "p50 / p99 (p99 of run 1, p99 of run 2)" with every prediction.
    cells = [cell.strip() for cell in native.strip("|").split("|")]
    assert float(cells[1].replace(",", "")) > 0
    assert re.fullmatch(r"[\d.]+ / [\d.]+ \([\d.]+, [\d.]+\)", cells[4]), cells[4]
    explained = next(line for line in text.splitlines() if line.startswith("| native scorer with reason"))
    assert float(explained.strip("|").split("|")[1].replace(",", "")) > 0
    assert re.search(r"native with reasons / native: \*\*[\d.]+\*\*", text)
    raw = next(line for line in text.splitlines() if line.startswith("| raw ceiling"))
    assert raw.rstrip().endswith("| n/a |")
