"""Dead letters: the :class:`DeadLetter` headers and the taxonomy of ``error_type`` values.

Every record the scorer cannot score goes to the dead-letter topic with its
original bytes and, as headers, one of these types in ``error_type`` and a
human-readable ``error_message`` naming the field and the reason. Downstream tooling (alerts,
the DLQ table in ``churn consume --dlq``, replays) keys on the type, so the
names are a contract: add new ones, do not rename.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, Field

from schemas.features import FROM_TELCO

# --- raw bytes and JSON --------------------------------------------------------------
EMPTY_VALUE: Final = "empty_value"  # no value (tombstone), zero bytes or only whitespace
OVERSIZE: Final = "oversize"  # larger than max_event_bytes
NOT_UTF8: Final = "not_utf8"  # bytes that are not UTF-8 text
INVALID_JSON: Final = "invalid_json"  # UTF-8 text that is not one JSON document
NOT_AN_OBJECT: Final = "not_an_object"  # JSON array, string, number, true/false/null
DUPLICATE_KEYS: Final = "duplicate_keys"  # the same top-level key twice (ambiguous record)
TOO_DEEP: Final = "too_deep"  # JSON nested deeper than schemas.nesting.MAX_NESTING_DEPTH levels
# --- fields --------------------------------------------------------------------------
MISSING_FIELD: Final = "missing_field"
WRONG_TYPE: Final = "wrong_type"  # e.g. a list where a number belongs, a boolean for tenure
NOT_INTEGER: Final = "not_integer"  # 3.5 where a whole number belongs
OUT_OF_RANGE: Final = "out_of_range"  # a number outside its bounds (negative tenure, ...)
NOT_FINITE: Final = "not_finite"  # NaN / Infinity, including Python's json.dumps output
UNKNOWN_CATEGORY: Final = "unknown_category"  # a value outside a category's vocabulary
EMPTY_STRING: Final = "empty_string"  # "" for customer_id / event_id
TOO_LONG: Final = "too_long"  # an id longer than its limit
INVALID_CHARACTERS: Final = "invalid_characters"  # control or bidi-formatting characters in an id
INVALID_TIMESTAMP: Final = "invalid_timestamp"  # event_time that is not a date-time
EVENT_FROM_FUTURE: Final = "event_from_future"  # event_time too far ahead of the scorer's clock
UNSUPPORTED_SCHEMA_VERSION: Final = "unsupported_schema_version"  # newer wire format than we know
INVALID_VALUE: Final = "invalid_value"  # any other validation failure
# --- scoring -------------------------------------------------------------------------
SCORING_FAILED: Final = "scoring_failed"  # the model failed on this valid record (raised, NaN, wrong shape)
# --- the scorer itself -----------------------------------------------------------------
INTERNAL_ERROR: Final = "internal_error"  # an unexpected exception while handling this record (a bug)
# --- retired: never written any more, reserved so that no new type takes the name ------------
#: Unkeyed records are scored (predictions are keyed by ``customer_id``); kept for readers of old
#: dead letters, alert rules and replays that name it.
MISSING_KEY: Final = "missing_key"
RETIRED_TYPES: Final = (MISSING_KEY,)

#: Every error type the scorer writes.
ALL_TYPES: Final = (
    EMPTY_VALUE,
    OVERSIZE,
    NOT_UTF8,
    INVALID_JSON,
    NOT_AN_OBJECT,
    DUPLICATE_KEYS,
    TOO_DEEP,
    MISSING_FIELD,
    WRONG_TYPE,
    NOT_INTEGER,
    OUT_OF_RANGE,
    NOT_FINITE,
    UNKNOWN_CATEGORY,
    EMPTY_STRING,
    TOO_LONG,
    INVALID_CHARACTERS,
    INVALID_TIMESTAMP,
    EVENT_FROM_FUTURE,
    UNSUPPORTED_SCHEMA_VERSION,
    INVALID_VALUE,
    SCORING_FAILED,
    INTERNAL_ERROR,
)

#: pydantic error ``type`` codes -> our error types.
_PYDANTIC_TYPES: Final[dict[str, str]] = {
    "missing": MISSING_FIELD,
    "blank": MISSING_FIELD,  # blank text where a value is required
    "int_type": WRONG_TYPE,
    "int_parsing": WRONG_TYPE,
    "float_type": WRONG_TYPE,
    "float_parsing": WRONG_TYPE,
    "string_type": WRONG_TYPE,
    "bool_type": WRONG_TYPE,
    "bool_parsing": WRONG_TYPE,
    "model_type": WRONG_TYPE,
    "model_attributes_type": WRONG_TYPE,
    "string_unicode": WRONG_TYPE,
    "int_from_float": NOT_INTEGER,
    "int_parsing_size": OUT_OF_RANGE,  # an integer too large to hold (e.g. 1e40 days of tenure)
    "greater_than": OUT_OF_RANGE,
    "greater_than_equal": OUT_OF_RANGE,
    "less_than": OUT_OF_RANGE,
    "less_than_equal": OUT_OF_RANGE,
    "finite_number": NOT_FINITE,
    "literal_error": UNKNOWN_CATEGORY,
    "enum": UNKNOWN_CATEGORY,
    "string_too_short": EMPTY_STRING,
    "string_too_long": TOO_LONG,
    "invalid_characters": INVALID_CHARACTERS,
    "datetime_type": INVALID_TIMESTAMP,
    "datetime_parsing": INVALID_TIMESTAMP,
    "datetime_from_date_parsing": INVALID_TIMESTAMP,
    "datetime_object_invalid": INVALID_TIMESTAMP,
}

#: Messages of the schema's own ``ValueError``s that mean "wrong type".
_WRONG_TYPE_MESSAGES: Final = ("not a boolean", "must be a string")

_MAX_MESSAGE = 480
_MAX_INPUT_REPR = 60


def field_name(loc: Sequence[Any]) -> str:
    """The snake_case field a pydantic error ``loc`` points at ("" for the record as a whole)."""
    if not loc:
        return ""
    first = str(loc[0])
    name = FROM_TELCO.get(first, first)
    return ".".join([name, *(str(p) for p in loc[1:])])


def short(value: Any) -> str:
    """A value's repr, bounded for a header."""
    text = repr(value)
    return text if len(text) <= _MAX_INPUT_REPR else text[: _MAX_INPUT_REPR - 3] + "..."


def error_type_of(error: dict[str, Any]) -> str:
    """Our error type for one pydantic error dict."""
    kind = str(error.get("type", ""))
    mapped = _PYDANTIC_TYPES.get(kind)
    if mapped is not None:
        return mapped
    if kind == "value_error":
        message = str(error.get("msg", ""))
        if any(m in message for m in _WRONG_TYPE_MESSAGES):
            return WRONG_TYPE
    return INVALID_VALUE


def clip(message: str, limit: int = _MAX_MESSAGE) -> str:
    """Bound a header value; dead-letter headers must stay small."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate (from a message quoting odd input) becomes "?"."""
    return text.encode("utf-8", "replace")


#: Header names of a replayed record (``churn dlq replay``), copied onto its next dead letter.
REPLAY_COUNT: Final = "replay_count"
REPLAYED_FROM: Final = "replayed_from"


class DeadLetter(BaseModel):
    """Why a record could not be scored; sent as headers next to the original bytes.

    The optional fields are sent only when set: ``exception_class`` names the exception
    behind an ``internal_error`` or ``scoring_failed``; ``truncated`` (with the
    original's size and sha256) marks a value cut to the dead-letter size limit, and
    ``key_truncated`` a key cut likewise; ``replay_count`` and ``replayed_from`` are
    copied from a record that ``churn dlq replay`` re-published.
    """

    error_type: str = Field(description="one of the error types in docs/contract.md")
    error_message: str = Field(description="every failing field with its reason, at most 480 characters")
    error_field: str = Field(
        default="", description="the first failing field (snake_case); empty for the record as a whole"
    )
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at: datetime = Field(default_factory=_utcnow, description="ISO 8601, UTC")
    exception_class: str | None = None
    truncated: bool = False
    original_size: int | None = None
    original_sha256: str | None = None
    key_truncated: bool = False
    original_key_size: int | None = None
    original_key_sha256: str | None = None
    replay_count: int | None = None
    replayed_from: str | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers for the dead-letter record (values are UTF-8 text)."""
        headers = [
            ("error_type", _utf8(self.error_type)),
            ("error_message", _utf8(self.error_message)),
            ("error_field", _utf8(self.error_field)),
            ("source_topic", _utf8(self.source_topic)),
            ("source_partition", str(self.source_partition).encode()),
            ("source_offset", str(self.source_offset).encode()),
            ("failed_at", self.failed_at.isoformat().encode()),
        ]
        if self.exception_class is not None:
            headers.append(("exception_class", _utf8(self.exception_class)))
        if self.truncated:
            headers.append(("truncated", b"true"))
            headers.append(("original_size", str(self.original_size).encode()))
            headers.append(("original_sha256", _utf8(str(self.original_sha256))))
        if self.key_truncated:
            headers.append(("key_truncated", b"true"))
            headers.append(("original_key_size", str(self.original_key_size).encode()))
            headers.append(("original_key_sha256", _utf8(str(self.original_key_sha256))))
        if self.replay_count is not None:
            headers.append((REPLAY_COUNT, str(self.replay_count).encode()))
        if self.replayed_from is not None:
            headers.append((REPLAYED_FROM, _utf8(self.replayed_from)))
        return headers

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | None) -> DeadLetter:
        names = set(cls.model_fields)
        values = {k: v.decode(errors="replace") for k, v in headers or [] if k in names}
        return cls.model_validate(values)
