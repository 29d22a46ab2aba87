"""The churn CLI: train, predict, models list/promote/rollback, as a user runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from models.predictor import Predictor
from models.registry import ModelRegistry
from schemas.features import FEATURES
from training.data import load_csv, to_telco_csv
from training.run import TrainOutcome
from training.synthetic import generate

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "predict", "models", "bench"):
        assert command in result.output


def test_train_writes_and_promotes_a_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = runner.invoke(
        app,
        ["train", "--rows", "600", "--store", str(store), "--candidate", "logistic_regression", "--no-plots"],
    )
    assert result.exit_code == 0, result.output
    registry = ModelRegistry(store)
    assert registry.current() == registry.versions()[0]
    assert "logistic_regression" in result.output and "promoted" in result.output


def test_train_on_a_csv_with_errors_fails_clearly(tmp_path: Path) -> None:
    frame = generate(200, seed=1)
    frame.loc[5, "contract"] = "Weekly"
    to_telco_csv(frame, tmp_path / "bad.csv")
    result = runner.invoke(
        app, ["train", "--data", str(tmp_path / "bad.csv"), "--store", str(tmp_path / "s")]
    )
    assert result.exit_code == 1
    assert "row 6, column 'contract'" in result.output


def test_predict_scores_a_telco_file(trained: TrainOutcome, tmp_path: Path) -> None:
    frame = generate(500, seed=77)
    frame.loc[:4, "total_charges"] = np.nan
    source = tmp_path / "in.csv"
    to_telco_csv(frame.drop(columns=["churn"]), source)
    out = tmp_path / "out.csv"
    store = str(trained.path.parent)
    result = runner.invoke(app, ["predict", "--input", str(source), "--output", str(out), "--store", store])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["customerID", "churn_probability", "churn"]
    assert scored["customerID"].tolist() == frame["customer_id"].tolist()
    predictor = Predictor.from_registry(ModelRegistry(trained.path.parent))
    expected = predictor.pipeline.predict_proba(load_csv(source, require_target=False))[:, 1]
    np.testing.assert_allclose(scored["churn_probability"], expected, rtol=0, atol=1e-12)
    assert (scored["churn"] == (expected >= predictor.threshold)).all()


def test_predict_keeps_a_snake_case_id_column(trained: TrainOutcome, tmp_path: Path) -> None:
    source = tmp_path / "snake.csv"
    generate(20, seed=3).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    store = str(trained.path.parent)
    result = runner.invoke(app, ["predict", "-i", str(source), "-o", str(out), "--store", store])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out).columns[0] == "customer_id"


def test_predict_reports_bad_rows_and_writes_nothing(trained: TrainOutcome, tmp_path: Path) -> None:
    frame = generate(50, seed=3)
    frame.loc[7, "tenure"] = -4
    to_telco_csv(frame, tmp_path / "bad.csv")
    out = tmp_path / "out.csv"
    store = str(trained.path.parent)
    result = runner.invoke(
        app, ["predict", "-i", str(tmp_path / "bad.csv"), "-o", str(out), "--store", store]
    )
    assert result.exit_code == 1
    assert "row 8, column 'tenure'" in result.output
    assert not out.exists()


def test_predict_without_a_model_says_what_to_do(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    to_telco_csv(generate(5, seed=1), source)
    result = runner.invoke(
        app, ["predict", "-i", str(source), "-o", str(tmp_path / "o.csv"), "--store", str(tmp_path / "empty")]
    )
    assert result.exit_code == 1
    assert "churn train" in result.output


@pytest.fixture
def two_versions(trained: TrainOutcome, tmp_path: Path) -> tuple[Path, str, str]:
    store = tmp_path / "store"
    shutil.copytree(trained.path.parent, store)
    result = runner.invoke(
        app,
        ["train", "--rows", "400", "--store", str(store), "--candidate", "logistic_regression", "--no-plots"],
    )
    assert result.exit_code == 0, result.output
    registry = ModelRegistry(store)
    return store, trained.version, registry.versions()[-1]


def test_models_list_promote_rollback(two_versions: tuple[Path, str, str]) -> None:
    store, first, second = two_versions
    listing = runner.invoke(app, ["models", "list", "--store", str(store)])
    assert listing.exit_code == 0
    assert first[:15] in listing.output and second[:15] in listing.output
    assert ModelRegistry(store).current() == second

    rollback = runner.invoke(app, ["models", "rollback", "--store", str(store)])
    assert rollback.exit_code == 0, rollback.output
    assert ModelRegistry(store).current() == first

    promote = runner.invoke(app, ["models", "promote", second, "--store", str(store)])
    assert promote.exit_code == 0, promote.output
    assert ModelRegistry(store).current() == second

    unknown = runner.invoke(app, ["models", "promote", "nope", "--store", str(store)])
    assert unknown.exit_code == 1
    assert "unknown version" in unknown.output


def test_predict_explain_adds_sortable_reason_columns(trained: TrainOutcome, tmp_path: Path) -> None:
    frame = generate(300, seed=78)
    frame.loc[:4, "total_charges"] = np.nan
    source = tmp_path / "in.csv"
    to_telco_csv(frame.drop(columns=["churn"]), source)
    out = tmp_path / "out.csv"
    store = str(trained.path.parent)
    args = ["predict", "-i", str(source), "-o", str(out), "--store", store, "--explain", "--down", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out, keep_default_na=False, na_values=[""])
    reason_columns = [f"reason_up_{i}{s}" for i in (1, 2, 3) for s in ("", "_value", "_contribution")]
    down_columns = ["reason_down_1", "reason_down_1_value", "reason_down_1_contribution"]
    assert list(scored.columns) == [
        "customerID",
        "churn_probability",
        "churn",
        *reason_columns,
        *down_columns,
    ]

    predictor = Predictor.from_registry(ModelRegistry(trained.path.parent))
    cleaned = load_csv(source, require_target=False)
    expected = predictor.pipeline.predict_proba(cleaned)[:, 1]
    np.testing.assert_allclose(scored["churn_probability"], expected, rtol=0, atol=1e-12)
    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in cleaned[list(FEATURES)].to_dict("records")
    ]
    explained = predictor.explain_batch(records, top=3, down=1)  # what the API and the stream call
    for row, reasons in enumerate(explained.reasons):
        up = [r for r in reasons if r["contribution"] > 0]
        for i in range(3):
            name = scored.loc[row, f"reason_up_{i + 1}"]
            if i < len(up):
                assert name == up[i]["feature"]
                assert scored.loc[row, f"reason_up_{i + 1}_contribution"] == pytest.approx(
                    up[i]["contribution"], abs=1e-12
                )
                value = cleaned.loc[row, name]
                shown = scored.loc[row, f"reason_up_{i + 1}_value"]
                assert pd.isna(shown) if pd.isna(value) else str(shown) == str(value)
            else:
                assert pd.isna(name) and pd.isna(scored.loc[row, f"reason_up_{i + 1}_contribution"])
    first = scored["reason_up_1_contribution"].dropna()
    assert (first > 0).all() and (scored["reason_down_1_contribution"].dropna() < 0).all()
    assert (
        scored["reason_up_1_contribution"].fillna(np.inf) >= scored["reason_up_2_contribution"].fillna(0)
    ).all()
    assert {"contract", "tenure"} & set(scored["reason_up_1"].dropna())


def test_predict_explain_refuses_a_model_without_reasons(tmp_path: Path) -> None:
    store = tmp_path / "store"
    trained = runner.invoke(
        app, ["train", "--rows", "400", "--store", str(store), "--candidate", "random_forest", "--no-plots"]
    )
    assert trained.exit_code == 0, trained.output
    source = tmp_path / "in.csv"
    to_telco_csv(generate(10, seed=1), source)
    out = tmp_path / "o.csv"
    result = runner.invoke(
        app, ["predict", "-i", str(source), "-o", str(out), "--store", str(store), "--explain"]
    )
    assert result.exit_code == 1
    assert "serves no reason codes" in result.output and "random forest" in result.output
    assert not out.exists()


def test_train_select_best_auc_and_tolerance_flags(tmp_path: Path) -> None:
    store = tmp_path / "store"
    base = ["train", "--rows", "800", "--store", str(store), "--no-plots", "--no-calibrate"]
    two = ["--candidate", "logistic_regression", "--candidate", "gradient_boosting"]
    result = runner.invoke(app, [*base, *two, "--select", "best-auc"])
    assert result.exit_code == 0, result.output
    registry = ModelRegistry(store)
    manifest = registry.manifest(registry.versions()[-1])
    metrics = manifest["metrics"]
    assert manifest["selected_model"] == max(metrics, key=lambda n: metrics[n]["roc_auc"])
    assert manifest["selection_details"]["rule"] == "best-auc"
    assert manifest["calibration"] == {"checked": False}
    assert (
        "p50 µs" in result.output
        and "report:" in result.output
        and "Of 1,000 scored customers" in result.output
    )

    wide = runner.invoke(app, [*base, *two, "--auc-tolerance", "1"])
    assert wide.exit_code == 0, wide.output
    manifest = registry.manifest(registry.versions()[-1])
    assert manifest["selection_details"]["tolerance"] == 1.0
    costs = manifest["serving_cost"]
    assert manifest["selected_model"] == min(costs, key=lambda n: costs[n]["single_p50_us"])


def test_models_promote_refuses_what_cannot_load_and_rollback_checks_current(
    two_versions: tuple[Path, str, str],
) -> None:
    store, first, second = two_versions
    broken = "99990101T000000000000Z-broken"
    shutil.copytree(store / first, store / broken)  # a copied folder: its manifest names `first`
    refused = runner.invoke(app, ["models", "promote", broken, "--store", str(store)])
    assert refused.exit_code == 1
    assert "CURRENT is unchanged" in refused.output
    assert ModelRegistry(store).current() == second
    (store / "CURRENT").write_text(first + "\n")  # moved by hand
    rollback = runner.invoke(app, ["models", "rollback", "--store", str(store)])
    assert rollback.exit_code == 1
    assert "churn models promote VERSION" in " ".join(rollback.output.split())


def test_models_sign_with_the_key_from_a_file(
    two_versions: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, first, second = two_versions
    key_file = tmp_path / "signing-key"
    key_file.write_text("k" * 40 + "\n")
    monkeypatch.setenv("CHURN_MODEL_SIGNING_KEY_FILE", str(key_file))
    unsigned = runner.invoke(app, ["models", "promote", first, "--store", str(store)])
    assert unsigned.exit_code == 1
    assert "not signed" in unsigned.output
    signed = runner.invoke(app, ["models", "sign", "--all", "--store", str(store)])
    assert signed.exit_code == 0, signed.output
    assert f"signed {first}" in signed.output and f"signed {second}" in signed.output
    assert runner.invoke(app, ["models", "promote", first, "--store", str(store)]).exit_code == 0
    listing = runner.invoke(app, ["models", "list", "--store", str(store)])
    assert "skops" in listing.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHURN_API_KEY": "short"}, "CHURN_API_KEY: key 'default' is 5 characters"),
        ({"CHURN_API_RATE_LIMIT": "5/second", "CHURN_API_RATE_LIMIT_BY": "key"}, "needs API keys"),
    ],
)
def test_api_refuses_unusable_key_settings_before_listening(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["api", "--port", "1", "--store", str(tmp_path)])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "short" not in result.output.replace("5 characters", "")


def test_an_unreadable_secret_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_API_KEY_FILE", str(tmp_path / "missing"))
    result = runner.invoke(app, ["models", "list", "--store", str(tmp_path)])
    assert result.exit_code == 1
    assert "CHURN_API_KEY_FILE: cannot read" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_predict_reads_a_raw_telco_export_as_the_stream_does(trained: TrainOutcome, tmp_path: Path) -> None:
    """A BOM before the header, padded header names, ' ' TotalCharges, the Churn label: all read."""
    frame = generate(30, seed=79)
    frame.loc[:2, "total_charges"] = np.nan
    plain = tmp_path / "plain.csv"
    to_telco_csv(frame, plain)
    text = plain.read_text().replace(",,", ", ,")  # the public file writes a blank TotalCharges as " "
    header, body = text.split("\n", 1)
    raw = tmp_path / "raw.csv"
    raw.write_bytes(b"\xef\xbb\xbf" + ", ".join(header.split(",")).encode() + b"\n" + body.encode())
    store = str(trained.path.parent)
    outputs = []
    for source in (plain, raw):
        out = tmp_path / f"{source.stem}-out.csv"
        result = runner.invoke(app, ["predict", "-i", str(source), "-o", str(out), "--store", store])
        assert result.exit_code == 0, result.output
        outputs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(*outputs)
    assert list(outputs[0].columns) == ["customerID", "churn_probability", "churn"]


def test_predict_names_the_row_column_and_type_of_each_refused_value(
    trained: TrainOutcome, tmp_path: Path
) -> None:
    frame = generate(10, seed=3).astype({"tenure": object, "monthly_charges": object})
    frame.loc[2, "tenure"] = "1,000"
    frame.loc[4, "monthly_charges"] = "NaN"
    frame.loc[5, "customer_id"] = "id\u202eevil"
    to_telco_csv(frame, tmp_path / "bad.csv")
    out = tmp_path / "out.csv"
    store = str(trained.path.parent)
    result = runner.invoke(
        app, ["predict", "-i", str(tmp_path / "bad.csv"), "-o", str(out), "--store", store]
    )
    assert result.exit_code == 1
    assert "row 3, column 'tenure'" in result.output and "(wrong_type)" in result.output
    assert "row 5, column 'MonthlyCharges'" in result.output and "(not_finite)" in result.output
    assert "row 6, column 'customerID'" in result.output and "(invalid_characters)" in result.output
    assert not out.exists()


def test_predict_refuses_a_file_without_the_feature_columns(trained: TrainOutcome, tmp_path: Path) -> None:
    source = tmp_path / "partial.csv"
    generate(5, seed=3).drop(columns=["contract", "tenure"]).to_csv(source, index=False)
    store = str(trained.path.parent)
    result = runner.invoke(
        app, ["predict", "-i", str(source), "-o", str(tmp_path / "o.csv"), "--store", store]
    )
    assert result.exit_code == 1
    assert "missing columns: tenure, Contract" in result.output
