"""One input contract: the stream, the REST API and ``churn predict`` decide the same bytes alike.

12,000 generated records (valid in every shape, borderline, invalid) go through
the stream's batch function in batches of 500 and, one by one, through
``POST /predict``; every record must get the same verdict (accepted, or refused
with the same error type and field) and an accepted one the same probability
(1e-9). The records a CSV file can hold also go through ``churn predict``'s
reader and the command itself.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as churn
from config.settings import Settings
from kafka_io.records import RawRecord
from models.offline import RowsRefusedError, read_events
from models.predictor import Predictor
from schemas.dead_letters import DeadLetter
from schemas.features import FROM_TELCO
from scorer.batch import BatchLimits, score_batch
from tests.support.api_support import Store, store_copy
from tests.support.contract_corpus import CSV_HEADER, Case, corpus

RECORDS = 12_000
BATCH = 500

#: A verdict: ("accepted", probability) or ("refused", error_type, field); "" is the whole record.
Verdict = tuple[Any, ...]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return corpus(RECORDS)


@pytest.fixture(scope="module")
def stream(cases: list[Case], store: Store) -> list[Verdict]:
    """The stream's verdict on every case (batches of 500, as the engines hand them over)."""
    predictor = Predictor.from_registry(store.registry)
    verdicts: list[Verdict] = []
    for start in range(0, len(cases), BATCH):
        chunk = cases[start : start + BATCH]
        records = [
            RawRecord(case.value, None, "customer-events", 0, start + k, 1_767_225_600.0)
            for k, case in enumerate(chunk)
        ]
        result = score_batch(records, predictor, BatchLimits())
        refused = {}
        for letter in result.dead_letters:
            meta = DeadLetter.from_headers(letter.headers)
            refused[meta.source_offset - start] = ("refused", meta.error_type, meta.error_field)
        scored = iter(orjson.loads(p.value or b"")["churn_probability"] for p in result.predictions)
        verdicts += [refused[k] if k in refused else ("accepted", next(scored)) for k in range(len(chunk))]
        assert next(scored, None) is None
    return verdicts


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_store=store.path), poll=False)) as c:
        yield c


def _api(client: TestClient, value: bytes) -> Verdict:
    response = client.post("/predict", content=value, headers={"content-type": "application/json"})
    if response.status_code == 200:
        return ("accepted", response.json()["churn_probability"])
    assert response.status_code in (400, 422), response.text
    first = response.json()["errors"][0]
    return ("refused", first["type"], "" if first["field"] == "body" else first["field"])


def _same(one: Verdict, other: Verdict) -> bool:
    if one[0] != other[0]:
        return False
    if one[0] == "accepted":
        return bool(abs(one[1] - other[1]) <= 1e-9)
    return one == other


def test_the_corpus_covers_valid_borderline_and_invalid_records(
    cases: list[Case], stream: list[Verdict]
) -> None:
    assert len(cases) >= 10_000
    kinds = Counter(case.kind.split(":")[0] for case in cases)
    assert min(kinds.values()) >= RECORDS // 5, kinds
    verdicts = Counter(v[0] for v in stream)
    assert verdicts["accepted"] >= RECORDS // 3 and verdicts["refused"] >= RECORDS // 5, verdicts
    assert all(v[0] == "accepted" for v, c in zip(stream, cases, strict=True) if c.kind.startswith("valid"))
    types = Counter(v[1] for v in stream if v[0] == "refused")
    assert len(types) >= 15, types  # the refusals are of many kinds, not one catch-all


def test_the_api_and_the_stream_give_every_record_the_same_verdict(
    client: TestClient, cases: list[Case], stream: list[Verdict]
) -> None:
    disagreements = []
    for case, streamed in zip(cases, stream, strict=True):
        answered = _api(client, case.value)
        if not _same(streamed, answered):
            disagreements.append((case.kind, case.value[:200], streamed, answered))
    assert not disagreements, disagreements[:5]


def _csv_cases(cases: list[Case], stream: list[Verdict]) -> list[tuple[dict[str, str], Verdict]]:
    return [(case.csv_row, verdict) for case, verdict in zip(cases, stream, strict=True) if case.csv_row]


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, CSV_HEADER)
        writer.writeheader()
        writer.writerows(rows)


def test_churn_predict_reads_every_csv_row_as_the_stream_does(
    cases: list[Case], stream: list[Verdict], tmp_path: Path
) -> None:
    rows = _csv_cases(cases, stream)
    assert len(rows) >= 2500
    path = tmp_path / "rows.csv"
    _write(path, [row for row, _ in rows])
    with path.open(encoding="utf-8", newline="") as handle:
        assert list(csv.DictReader(handle)) == [row for row, _ in rows]  # the file holds them as sent
    with pytest.raises(RowsRefusedError) as refused:
        read_events(path)
    first: dict[int, tuple[str, str]] = {}
    for problem in refused.value.problems:
        first.setdefault(problem.row, (problem.type, FROM_TELCO.get(problem.column, problem.column)))
    for number, (_, verdict) in enumerate(rows, start=1):
        if verdict[0] == "refused":
            assert first.get(number) == verdict[1:], (number, verdict)
        else:
            assert number not in first, (number, first[number])


def test_churn_predict_scores_the_accepted_rows_as_the_stream_does(
    cases: list[Case], stream: list[Verdict], store: Store, tmp_path: Path
) -> None:
    accepted = [(row, verdict) for row, verdict in _csv_cases(cases, stream) if verdict[0] == "accepted"]
    assert len(accepted) >= 1000
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    _write(source, [row for row, _ in accepted])
    args = ["predict", "--input", str(source), "--output", str(output), "--store", str(store.path)]
    result = CliRunner().invoke(churn, args)
    assert result.exit_code == 0, result.output
    with output.open() as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == len(accepted)
    for line, (row, verdict) in zip(written, accepted, strict=True):
        assert line["customerID"] == row["customerID"].strip()
        assert abs(float(line["churn_probability"]) - verdict[1]) <= 1e-9


def test_the_batch_route_gives_each_element_the_streams_verdict(
    client: TestClient, cases: list[Case], stream: list[Verdict]
) -> None:
    """Elements that are JSON (an array cannot hold the others), 20 per request, as the stream read them."""
    elements = []
    for case, verdict in zip(cases, stream, strict=True):
        try:
            orjson.loads(case.value)
        except orjson.JSONDecodeError:
            continue
        if not case.value.startswith(b"\xef\xbb\xbf") and verdict[1:2] != ("oversize",):
            elements.append((case.value, verdict))
    assert len(elements) >= 8000
    for start in range(0, len(elements), 20):
        chunk = elements[start : start + 20]
        body = b"[" + b",".join(value for value, _ in chunk) + b"]"
        response = client.post("/predict/batch", content=body, headers={"content-type": "application/json"})
        refused = {(str(k), v[1], v[2]) for k, (_, v) in enumerate(chunk) if v[0] == "refused"}
        if not refused:
            assert response.status_code == 200, response.text
            got = [p["churn_probability"] for p in response.json()["predictions"]]
            assert got == pytest.approx([v[1] for _, v in chunk], abs=1e-9)
            continue
        assert response.status_code == 422, response.text
        firsts: dict[str, tuple[str, str, str]] = {}
        for error in response.json()["errors"]:
            index, _, field = error["field"].partition(".")
            firsts.setdefault(index, (index, error["type"], field))
        assert set(firsts.values()) == refused
