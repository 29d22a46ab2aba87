"""`churn bench api` runs end to end (briefly) and writes only its own section of the docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app as churn

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_bench_api_writes_its_section_and_keeps_the_others(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## Stream\n\nstream figures stay here\n", encoding="utf-8")
    args = ["bench", "api", "--store", str(tmp_path / "empty-store"), "--seconds", "0.5"]
    args += ["-c", "1", "-c", "4", "--batch", "10", "--iterations", "300", "--write-docs", str(docs)]
    args += ["--mlserver-python", str(tmp_path / "no-mlserver" / "python")]

    for _ in range(2):  # the second run replaces the section instead of adding another
        result = CliRunner().invoke(churn, args)
        assert result.exit_code == 0, result.output

    text = docs.read_text(encoding="utf-8")
    assert "stream figures stay here" in text
    assert text.count("## API") == 1
    assert "| POST /predict (1 row) | 4 |" in text
    assert "| POST /predict/batch (10 rows) | 1 |" in text
    assert "naive: `pipeline.predict_proba(pd.DataFrame([row]))`" in text
    assert "MLServer peer: not measured (MLServer is not installed: `make mlserver-venv`" in text
    for line in text.splitlines():
        if line.startswith("| POST"):
            assert line.rstrip("|").rstrip().endswith("| 0"), line  # no failed request
