"""`churn produce --outcomes` and `churn quality` refuse nonsense before they touch Kafka."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
NO_BROKER = {"CHURN_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outcomes", "--outcomes-only"], "exclude each other"),
        (["--outcomes", "--outcome-share", "1.5"], "--outcome-share must be between 0 and 1"),
        (["--outcomes", "--outcome-delay", "-1"], "--outcome-delay must not be negative"),
        (["--outcomes-only", "--csv", "/nonexistent/labels.csv"], "no such file"),
    ],
)
def test_produce_refuses_bad_outcome_options(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["produce", *args], env=NO_BROKER)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())


def test_produce_outcomes_from_a_csv_without_labels_says_what_to_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "labels.csv"
    path.write_text("customerID,Churn\nA-1,Yes\n", encoding="utf-8")  # labels only: no features for events
    result = runner.invoke(app, ["produce", "--outcomes", "--csv", str(path)], env=NO_BROKER)
    assert result.exit_code == 1
    assert "--outcomes-only" in result.output


@pytest.mark.parametrize(
    ("args", "setting"),
    [(["--window", "0"], "quality_window"), (["--horizon-days", "0"], "quality_horizon_days")],
)
def test_quality_refuses_settings_out_of_bounds(args: list[str], setting: str) -> None:
    result = runner.invoke(app, ["quality", *args], env=NO_BROKER)
    assert result.exit_code == 1
    assert setting in result.output


def test_help_lists_the_quality_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert "quality" in result.output
    produce = runner.invoke(app, ["produce", "--help"])
    assert "--outcomes" in produce.output and "--outcome-delay" in produce.output
