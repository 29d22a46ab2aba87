"""The published contract (docs/schemas/*.json, docs/asyncapi.yaml): in sync, well formed and true."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.contract import rendered
from config.settings import Settings
from kafka_io.records import RawRecord
from producer.events import synthetic_events
from schemas.contract import Rejection, read_event
from schemas.dead_letters import ALL_TYPES, DeadLetter
from schemas.features import TELCO_ALIASES
from schemas.json_schema import _NUMBER_TEXT, ID_PATTERN, event_schema
from scorer.batch import BatchLimits, score_batch

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())


def test_the_committed_documents_are_what_the_code_generates() -> None:
    for path, text in rendered().items():
        committed = DOCS / path
        assert committed.is_file(), f"{committed} is missing: run `churn contract export`"
        assert committed.read_text() == text, f"{committed} is stale: run `churn contract export`"


# ------------------------------------------------------------------- JSON Schemas
@pytest.mark.parametrize("name", ["customer-event", "churn-prediction", "dead-letter-headers"])
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(_load(DOCS / "schemas" / f"{name}.json"))


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_load(DOCS / "schemas" / f"{name}.json"))


def _csv_row(event: dict[str, Any]) -> dict[str, Any]:
    return {TELCO_ALIASES.get(k, k): "" if v is None else str(v) for k, v in event.items()}


def test_real_events_predictions_and_dead_letters_match_their_schemas(predictor: Any) -> None:
    events = synthetic_events(200, seed=31)
    event_schema_ = _validator("customer-event")
    for event in events:
        event_schema_.validate(event)
        snake_text = {k: "" if v is None else str(v) for k, v in event.items()}
        event_schema_.validate({k: v for k, v in snake_text.items() if k not in ("event_id", "event_time")})
    values = [orjson.dumps(e) for e in events] + [b"not json", b'{"tenure": 5}']
    records = [RawRecord(v, None, "customer-events", 0, i, 1.7e9) for i, v in enumerate(values)]
    result = score_batch(records, predictor, BatchLimits())
    assert len(result.predictions) == 200 and len(result.dead_letters) == 2
    for prediction in result.predictions:
        _validator("churn-prediction").validate(orjson.loads(prediction.value or b""))
    for letter in result.dead_letters:
        headers = {name: value.decode() for name, value in letter.headers}
        _validator("dead-letter-headers").validate(headers)
        DeadLetter.from_headers(letter.headers)
    assert _load(DOCS / "schemas" / "dead-letter-headers.json")["properties"]["error_type"]["enum"] == list(
        ALL_TYPES
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"tenure": 5000},
        {"customer_id": "a\x1bb"},
        {"customer_id": " "},
        {"gender": "f"},
        {"tenure": "12 months"},
    ],
)
def test_the_event_schema_refuses_what_the_contract_refuses(changes: dict[str, Any]) -> None:
    event = synthetic_events(1, seed=32)[0] | changes
    assert not _validator("customer-event").is_valid(event)
    assert isinstance(read_event(orjson.dumps(event), 65536), Rejection)


_BASE = synthetic_events(1, seed=33)[0]


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(sorted(_NUMBER_TEXT)),
    data=st.data(),
)
def test_every_number_text_the_schema_admits_is_accepted(field: str, data: st.DataObject) -> None:
    text = data.draw(st.from_regex(_NUMBER_TEXT[field]))
    event = read_event(orjson.dumps(_BASE | {field: text}), 65536)
    assert not isinstance(event, Rejection), (text, event)


@settings(max_examples=300, deadline=None)
@given(text=st.from_regex(ID_PATTERN).filter(lambda t: len(t) <= 128))
def test_every_id_the_schema_admits_is_accepted(text: str) -> None:
    event = read_event(orjson.dumps(_BASE | {"customer_id": text, "event_id": text}), 65536)
    assert not isinstance(event, Rejection), (text, event)


def test_the_api_serves_the_committed_schemas(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(Settings(model_store=tmp_path), poll=False)) as client:
        for name in ("customer-event", "churn-prediction", "dead-letter-headers"):
            response = client.get(f"/schemas/{name}.json")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/schema+json"
            assert response.json() == _load(DOCS / "schemas" / f"{name}.json")
        assert client.get("/schemas/other.json").status_code == 422
        openapi = client.get("/openapi.json").json()
    assert openapi["components"]["schemas"]["CustomerEvent"]["properties"] == event_schema()["properties"]


# ---------------------------------------------------------------------- AsyncAPI
_TOP_LEVEL = {
    "asyncapi",
    "id",
    "info",
    "servers",
    "defaultContentType",
    "channels",
    "operations",
    "components",
}
_CHANNEL = {"address", "messages", "title", "summary", "description", "servers", "parameters", "tags"}
_CHANNEL |= {"externalDocs", "bindings"}
_OPERATION = {"action", "channel", "title", "summary", "description", "security", "tags", "externalDocs"}
_OPERATION |= {"bindings", "traits", "messages", "reply"}
_MESSAGE = {"headers", "payload", "correlationId", "contentType", "name", "title", "summary", "description"}
_MESSAGE |= {"tags", "externalDocs", "bindings", "examples", "traits"}
#: The Kafka bindings' fields (bindings version 0.5.0).
_KAFKA = {
    "channel": {"topic", "partitions", "replicas", "topicConfiguration", "bindingVersion"},
    "operation": {"groupId", "clientId", "bindingVersion"},
    "message": {
        "key",
        "schemaIdLocation",
        "schemaIdPayloadEncoding",
        "schemaLookupStrategy",
        "bindingVersion",
    },
}


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = _load(DOCS / "asyncapi.yaml")
    return document


def _resolve(ref: str, document: dict[str, Any]) -> Any:
    """What a ``$ref`` points at: ``#/a/b`` in the document, or ``file.json#/a`` next to it."""
    path, _, pointer = ref.partition("#")
    target = _load(DOCS / path) if path else document
    for part in filter(None, pointer.split("/")):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_the_asyncapi_document_has_the_required_structure(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert set(asyncapi) <= _TOP_LEVEL
    assert isinstance(asyncapi["info"]["title"], str) and isinstance(asyncapi["info"]["version"], str)
    for server in asyncapi["servers"].values():
        assert {"host", "protocol"} <= set(server) and server["protocol"] == "kafka"
    for channel in asyncapi["channels"].values():
        assert set(channel) <= _CHANNEL
        assert set(channel["bindings"]["kafka"]) <= _KAFKA["channel"]
    messages = asyncapi["components"]["messages"]
    for message in messages.values():
        assert set(message) <= _MESSAGE and "payload" in message
        assert set(message["bindings"]["kafka"]) <= _KAFKA["message"]
    for name, operation in asyncapi["operations"].items():
        assert set(operation) <= _OPERATION, name
        assert operation["action"] in ("send", "receive")
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        for message in operation["messages"]:  # an operation's messages are its channel's
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), (name, message)
        assert set(operation.get("bindings", {}).get("kafka", {})) <= _KAFKA["operation"]


def test_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    refs = _refs(asyncapi)
    assert len(refs) >= 12
    for ref in refs:
        assert _resolve(ref, asyncapi) is not None, ref
    payloads = {name: m["payload"] for name, m in asyncapi["components"]["messages"].items()}
    assert payloads["customerEvent"] == {"$ref": "schemas/customer-event.json"}
    assert asyncapi["components"]["messages"]["deadLetter"]["headers"] == {
        "$ref": "schemas/dead-letter-headers.json"
    }


def test_the_documented_topics_and_group_are_the_settings_defaults(asyncapi: dict[str, Any]) -> None:
    defaults = Settings.model_fields
    addresses = {channel["address"] for channel in asyncapi["channels"].values()}
    names = ("events_topic", "predictions_topic", "dlq_topic", "outcomes_topic")
    topics = {defaults[name].default for name in names}
    assert addresses == topics
    group = asyncapi["operations"]["scoreCustomerEvents"]["bindings"]["kafka"]["groupId"]["default"]
    assert group == defaults["scorer_app_id"].default
    assert "at-least-once" in asyncapi["info"]["description"]
    assert "topic:partition:offset" in asyncapi["info"]["description"]
