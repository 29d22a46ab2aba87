"""`churn produce --outcomes`: labels consistent with the generator, the delay and share, CSV labels."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producer.events import synthetic_labelled_rows, synthetic_rows
from producer.outcomes import OutcomeFileError, OutcomeSchedule, csv_outcomes
from schemas.features import TARGET
from schemas.outcomes import CustomerOutcome
from training.synthetic import generate


def test_synthetic_labels_are_the_ones_the_generator_drew() -> None:
    """The labels `churn train` learns from: the same process, so live ROC AUC converges to offline."""
    labelled = list(itertools.islice(synthetic_labelled_rows(seed=11, chunk=500), 1200))
    rows = [row for row, _ in labelled]
    assert rows == list(itertools.islice(synthetic_rows(seed=11, chunk=500), 1200))
    expected = [
        bool(v) for chunk in (generate(500, 11), generate(500, 12), generate(500, 13)) for v in chunk[TARGET]
    ]
    assert [label for _, label in labelled] == expected[:1200]
    assert 0.2 < sum(expected) / len(expected) < 0.33
    assert all(TARGET not in row and "churned" not in row for row in rows), (
        "the label never rides in the event"
    )


def test_outcomes_fall_due_after_the_delay_in_order() -> None:
    schedule = OutcomeSchedule(delay_s=5.0)
    assert schedule.add("a", True, 100.0) and schedule.add("b", False, 101.0)
    assert schedule.next_due() == 105.0
    assert schedule.due(104.9) == []
    (first,) = schedule.due(105.0)
    assert first == {
        "customer_id": "a",
        "churned": True,
        "observed_at": datetime.fromtimestamp(105.0, UTC).isoformat(),
    }
    CustomerOutcome.model_validate(first)
    assert [o["customer_id"] for o in schedule.due(1000.0)] == ["b"]
    assert len(schedule) == 0 and schedule.next_due() is None


def test_the_share_of_observed_customers_is_seeded() -> None:
    schedule = OutcomeSchedule(0.0, share=0.3, seed=4)
    kept = [schedule.add(str(i), True, 0.0) for i in range(5000)]
    again = OutcomeSchedule(0.0, share=0.3, seed=4)
    assert kept == [again.add(str(i), True, 0.0) for i in range(5000)]
    assert sum(kept) / len(kept) == pytest.approx(0.3, abs=0.03)
    assert len(schedule) == sum(kept)
    assert not any(OutcomeSchedule(0.0, share=0.0).add("x", True, 0.0) for _ in range(100))
    with pytest.raises(ValueError, match="share"):
        OutcomeSchedule(1.0, share=1.5)
    with pytest.raises(ValueError, match="delay"):
        OutcomeSchedule(-1.0)


def test_csv_labels_in_the_telco_forms(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "\ufeffcustomerID,Churn,observed_at\n"
        "7590-VHVEG,No,\n5575-GNVDE, Yes ,2026-01-31T00:00:00Z\n3668-QPYBK,1,\n",
        encoding="utf-8",
    )
    when = datetime(2026, 2, 1, tzinfo=UTC)
    outcomes = list(csv_outcomes(path, observed_at=when))
    assert outcomes == [
        {"customer_id": "7590-VHVEG", "churned": False, "observed_at": when.isoformat()},
        {"customer_id": "5575-GNVDE", "churned": True, "observed_at": "2026-01-31T00:00:00+00:00"},
        {"customer_id": "3668-QPYBK", "churned": True, "observed_at": when.isoformat()},
    ]


def test_a_bad_labels_file_names_every_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("customerID,Churn\na,Yes\n,No\nc,perhaps\nd,No\n", encoding="utf-8")
    with pytest.raises(OutcomeFileError) as info:
        list(csv_outcomes(path))
    message = str(info.value)
    assert "2 invalid row(s)" in message
    assert "row 2: customer_id" in message and "row 3: churned" in message
    (tmp_path / "no_label.csv").write_text("customerID,gender\na,Male\n", encoding="utf-8")
    with pytest.raises(OutcomeFileError, match="label column"):
        list(csv_outcomes(tmp_path / "no_label.csv"))
