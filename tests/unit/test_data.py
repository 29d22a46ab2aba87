"""Loading telco-format CSV files, quirks included, and synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schemas.features import CATEGORIES, FEATURES
from training.data import DataError, fingerprint, load_csv, to_telco_csv
from training.synthetic import generate

HEADER = (
    "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,"
    "InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,"
    "StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn"
)
ROWS = [
    "7590-VHVEG,Female,0,Yes,No,1,No,No phone service,DSL,No,Yes,No,No,No,No,Month-to-month,Yes,"
    "Electronic check,29.85,29.85,No",
    "5575-GNVDE,Male,0,No,No,34,Yes,No,DSL,Yes,No,Yes,No,No,No,One year,No,Mailed check,56.95,1889.5,No",
    "4472-LVYGI,Female,0,Yes,Yes,0,No,No phone service,DSL,Yes,No,Yes,Yes,Yes,No,Two year,Yes,"
    "Bank transfer (automatic),52.55, ,No",
    "3668-QPYBK,Male,1,No,No,2,Yes,No,Fiber optic,No,No,No,No,No,No,Month-to-month,Yes,"
    "Mailed check,53.85,108.15,Yes",
    "9237-HQITU,Female,0,No,No,2,Yes,No,No,No internet service,No internet service,"
    "No internet service,No internet service,No internet service,No internet service,"
    "Month-to-month,No,Electronic check,20.25,40.5,Yes",
]


def write(tmp_path: Path, lines: list[str], *, bom: bool = True) -> Path:
    path = tmp_path / "telco.csv"
    text = "\n".join([HEADER, *lines]) + "\n"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def test_real_world_quirks_are_absorbed(tmp_path: Path) -> None:
    frame = load_csv(write(tmp_path, ROWS))
    assert list(frame["customer_id"]) == [r.split(",")[0] for r in ROWS]
    assert frame["churn"].tolist() == [0, 0, 0, 1, 1]
    assert np.isnan(frame.loc[2, "total_charges"])  # blank TotalCharges, brand-new customer
    assert frame.loc[1, "total_charges"] == pytest.approx(1889.5)
    assert frame["tenure"].dtype == np.int64
    assert frame.loc[4, "online_security"] == "No internet service"
    assert frame.loc[0, "multiple_lines"] == "No phone service"
    assert frame.loc[3, "senior_citizen"] == 1


def test_snake_case_headers_and_no_bom_also_load(tmp_path: Path) -> None:
    source = generate(50, seed=5)
    path = tmp_path / "snake.csv"
    source.assign(churn=source["churn"].map({1: "Yes", 0: "No"})).to_csv(path, index=False)
    frame = load_csv(path)
    pd.testing.assert_frame_equal(frame[list(FEATURES)], source[list(FEATURES)], check_dtype=False)


def test_invalid_values_are_reported_with_row_and_column(tmp_path: Path) -> None:
    bad = [
        ROWS[0].replace("Month-to-month", "Weekly"),
        ROWS[1].replace(",34,", ",-3,"),
        ROWS[3].replace("53.85", "lots"),
        ROWS[4][: -len("Yes")] + "Maybe",
    ]
    with pytest.raises(DataError) as info:
        load_csv(write(tmp_path, bad))
    found = {(p.row, p.column) for p in info.value.problems}
    assert found == {(1, "contract"), (2, "tenure"), (3, "monthly_charges"), (4, "churn")}
    message = str(info.value)
    assert "row 1, column 'contract'" in message and "Weekly" in message


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("customerID,gender\nx,Male\n")
    with pytest.raises(DataError, match="missing columns: senior_citizen"):
        load_csv(path)


def test_target_is_optional_for_scoring(tmp_path: Path) -> None:
    lines = [r.rsplit(",", 1)[0] for r in ROWS]
    path = tmp_path / "nolabel.csv"
    path.write_text("\n".join([HEADER.rsplit(",", 1)[0], *lines]) + "\n")
    frame = load_csv(path, require_target=False)
    assert "churn" not in frame.columns and len(frame) == 5
    with pytest.raises(DataError, match="missing columns: churn"):
        load_csv(path)


def test_synthetic_data_is_deterministic_by_seed() -> None:
    first, second, other = generate(2000, seed=1), generate(2000, seed=1), generate(2000, seed=2)
    pd.testing.assert_frame_equal(first, second)
    assert fingerprint(first) == fingerprint(second) != fingerprint(other)


def test_synthetic_marginals_look_like_the_telco_data() -> None:
    frame = generate(20_000, seed=42)
    assert 0.24 <= frame["churn"].mean() <= 0.29
    by_contract = frame.groupby("contract")["churn"].mean()
    assert by_contract["Month-to-month"] > by_contract["One year"] > by_contract["Two year"]
    by_internet = frame.groupby("internet_service")["churn"].mean()
    assert by_internet["Fiber optic"] > by_internet["DSL"]
    by_payment = frame.groupby("payment_method")["churn"].mean()
    assert by_payment.idxmax() == "Electronic check"
    short, long = frame[frame["tenure"] <= 6], frame[frame["tenure"] >= 48]
    assert short["churn"].mean() > 2 * long["churn"].mean()
    for name, levels in CATEGORIES.items():
        assert set(frame[name]) <= set(levels)
    assert frame["total_charges"].isna().sum() == (frame["tenure"] == 0).sum()


def test_synthetic_data_survives_the_telco_csv_round_trip(tmp_path: Path) -> None:
    frame = generate(300, seed=9)
    to_telco_csv(frame, tmp_path / "round.csv")
    text = (tmp_path / "round.csv").read_text()
    assert text.startswith("customerID,gender,SeniorCitizen")
    loaded = load_csv(tmp_path / "round.csv")
    pd.testing.assert_frame_equal(loaded[list(FEATURES)], frame[list(FEATURES)], check_dtype=False)
    assert loaded["churn"].tolist() == frame["churn"].tolist()
