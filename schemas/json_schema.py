"""The published contract: JSON Schema documents generated from the models.

:func:`schema` returns each document: ``customer-event`` (the input, what
``/predict``, the stream and ``churn predict`` accept), ``churn-prediction``
(the output), ``dead-letter-headers`` (the headers of a dead letter) and
``customer-outcome`` (an observed outcome, joined with the predictions by
``churn quality``).
:mod:`schemas.published` lists them with the AsyncAPI document.

The event schema says what pydantic's generated schema cannot: numbers may be
text (a conservative pattern: every string it admits is accepted), flags and
Yes/No features take booleans, ids need a visible character and hold no
control or bidirectional-formatting character, and each field's telco column
name. The contract accepts a little more than the schema admits (padded text,
``"1e2"``, case-insensitive flag words): docs/contract.md has the full table.
"""

from __future__ import annotations

import copy
from typing import Any, Final, Literal, get_args

from schemas.dead_letters import ALL_TYPES, DeadLetter
from schemas.events import ID_MAX_LENGTH, CustomerEvent
from schemas.features import FLAG_FEATURES, SCHEMA_VERSION, TELCO_ALIASES, YES_NO_FEATURES
from schemas.outcomes import CustomerOutcome
from schemas.predictions import ChurnPrediction

#: Where the documents are published (the ``$id`` of each).
BASE_URI: Final = "https://churn-stream.dev/schemas/"
SchemaName = Literal["customer-event", "churn-prediction", "dead-letter-headers", "customer-outcome"]
EVENT, PREDICTION, DEAD_LETTER, OUTCOME = SCHEMA_NAMES = get_args(SchemaName)

_FORBIDDEN: Final = "\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"
#: An id: no forbidden character anywhere, and one that is neither whitespace nor forbidden.
ID_PATTERN: Final = f"^[^{_FORBIDDEN}]*[^\\s{_FORBIDDEN}][^{_FORBIDDEN}]*$"
#: Numbers as text the schema vouches for: plain decimals inside each field's range.
_NUMBER_TEXT: Final = {
    "tenure": "^(?:[0-9]{1,3}|1[01][0-9]{2}|1200)$",
    "monthly_charges": "^(?:[0-9]{1,4}(?:\\.[0-9]{1,6})?|10000(?:\\.0{1,6})?)$",
    "total_charges": "^(?:[0-9]{1,7}(?:\\.[0-9]{1,6})?|10000000(?:\\.0{1,6})?)$",
}
_FLAG_TEXT: Final = ["0", "1", "No", "Yes", "no", "yes", "false", "true"]

_EVENT_DESCRIPTION: Final = (
    "One customer event on the customer-events topic, in a POST /predict body, or a row of a CSV "
    "for `churn predict`. Field names are snake_case; each field's telco CSV column name is "
    "accepted too (see its description). Numbers may be JSON numbers or text as CSV exports write "
    "them; a blank total_charges means unknown (a brand-new customer). event_id and event_time "
    "are optional: the stream uses `topic:partition:offset` and the record timestamp, the API a "
    "fresh id and the time of the request. Unknown fields are ignored. The full rules, and what "
    "is refused with which error_type: docs/contract.md."
)


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema document ``name`` (one of :data:`SCHEMA_NAMES`)."""
    builders = {
        EVENT: event_schema,
        PREDICTION: prediction_schema,
        DEAD_LETTER: dead_letter_schema,
        OUTCOME: outcome_schema,
    }
    document = builders[name]()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URI}{name}.json",
        **document,
    }


def event_schema() -> dict[str, Any]:
    """The input event: what every entry point accepts (a conservative description of it)."""
    generated = CustomerEvent.model_json_schema()
    properties: dict[str, Any] = generated["properties"]
    for name in ("customer_id", "event_id"):
        text = {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH, "pattern": ID_PATTERN}
        properties[name] = {**_keep(properties[name], "title", "default"), **_nullable(name, text)}
    for name in YES_NO_FEATURES:
        properties[name] = {
            "title": properties[name]["title"],
            "anyOf": [_drop(properties[name], "title"), {"type": "boolean"}],
        }
    for name in FLAG_FEATURES:
        properties[name] = {
            "title": properties[name]["title"],
            "anyOf": [
                _drop(properties[name], "title"),
                {"type": "boolean"},
                {"type": "string", "enum": _FLAG_TEXT},
            ],
        }
    for name, pattern in _NUMBER_TEXT.items():
        number = properties[name]
        kinds = number.pop("anyOf", None) or [_drop(number, "title", "default")]
        kinds = [kind for kind in kinds if kind.get("type") != "null"]
        written: list[dict[str, Any]] = [{"type": "string", "pattern": pattern}]
        if name == "total_charges":
            written.append({"type": "string", "pattern": "^ *$", "description": "blank: unknown"})
            written.append({"type": "null"})
        properties[name] = {**_keep(number, "title", "default"), "anyOf": [*kinds, *written]}
    properties["schema_version"]["maximum"] = SCHEMA_VERSION
    properties["event_time"] = {
        "title": "Event Time",
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
        "default": None,
        "description": "ISO 8601; a time without an offset is UTC. Absent: the record timestamp "
        "(stream) or the time of the request (API).",
    }
    properties["event_id"]["description"] = (
        "Absent: `topic:partition:offset` on the stream (the same on a re-read), a fresh uuid4 "
        "hex in the API."
    )
    for name, column in TELCO_ALIASES.items():
        if name in properties and column != name:
            extra = f"Also accepted as the telco column `{column}`."
            described = properties[name].get("description")
            properties[name]["description"] = f"{described} {extra}" if described else extra
    return {
        "title": "CustomerEvent",
        "description": _EVENT_DESCRIPTION,
        "type": "object",
        "properties": properties,
        "required": generated["required"],
        "additionalProperties": True,
    }


def prediction_schema() -> dict[str, Any]:
    """One record on the predictions topic (and the body of a ``/predict`` answer)."""
    generated = ChurnPrediction.model_json_schema()
    generated["description"] = (
        "One prediction per scored event, keyed by customer_id on the churn-predictions topic; "
        "churn is churn_probability >= threshold. Consumers deduplicate by event_id (delivery is "
        "at-least-once)."
    )
    return generated


def dead_letter_schema() -> dict[str, Any]:
    """The headers of a dead letter, as an object of header name -> UTF-8 text value."""
    generated = DeadLetter.model_json_schema()
    properties = generated["properties"]
    properties["error_type"]["enum"] = list(ALL_TYPES)
    for name in ("source_partition", "source_offset"):
        properties[name] = {**properties[name], "type": "string", "pattern": "^[0-9]+$"}
        properties[name]["description"] = "a decimal integer, as text"
    properties["failed_at"] = {**properties["failed_at"], "type": "string", "format": "date-time"}
    generated["description"] = (
        "The Kafka headers of a record on the dead-letter topic (each value UTF-8 text); the "
        "record's key and value are the original record's, unchanged. Readers ignore headers they "
        "do not know (e.g. replayed_from)."
    )
    generated["additionalProperties"] = {"type": "string"}
    return generated


def outcome_schema() -> dict[str, Any]:
    """One record on the customer-outcomes topic (what a producer of labels may send)."""
    generated = CustomerOutcome.model_json_schema(mode="validation")
    generated["description"] = (
        "A record on the customer-outcomes topic (key = customer_id): whether a customer churned, "
        "as observed at observed_at (the record timestamp when absent). Unknown fields are ignored."
    )
    return generated


def openapi_components() -> dict[str, dict[str, Any]]:
    """The event schema as an OpenAPI component (``#/components/schemas/CustomerEvent``)."""
    document = copy.deepcopy(event_schema())
    return {"CustomerEvent": document}


def _nullable(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    if name == "customer_id":
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _keep(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: schema[name] for name in names if name in schema}


def _drop(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in schema.items() if name not in names}
