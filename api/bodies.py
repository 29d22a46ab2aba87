"""The bodies of ``/predict`` and ``/predict/batch``, read with the input contract.

The routes take the raw body bytes and decide them with
:func:`schemas.contract.read_event` — the function the stream scorer uses for a
record — instead of FastAPI's JSON parsing and model binding, so a body is
accepted or refused exactly as the same bytes on the topic would be: repeated
keys, a byte-order mark, ``NaN``, numbers as text, control characters in ids.
A refusal is 400 when the bytes are not JSON (or not UTF-8), else 422; each of
its ``errors`` names the field, the reason and the stream's ``error_type``.

``/predict/batch`` takes a JSON array: msgspec splits it into each element's
raw bytes, and each element is read as one record (its errors' fields are
prefixed with its index, e.g. ``2.tenure``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from api.errors import ApiError
from schemas import dead_letters
from schemas.contract import BOM, Rejection, future_rejection, json_rejection, read_event, refused
from schemas.events import CustomerEvent

#: Error types that mean "these bytes cannot be read as JSON": 400, not 422.
_NOT_JSON: Final = frozenset({dead_letters.INVALID_JSON, dead_letters.NOT_UTF8, dead_letters.TOO_DEEP})
_split_array = msgspec.json.Decoder(list[msgspec.Raw]).decode


@dataclass(frozen=True)
class BodyRules:
    """What a scoring body may be: the stream's event limits, and the batch size."""

    max_event_bytes: int
    max_future_skew_s: float
    max_batch: int


def read_one(body: bytes, rules: BodyRules) -> CustomerEvent:
    """The event in a ``/predict`` body; raises :class:`ApiError` (400/422) with every reason."""
    if not body or body.isspace():
        raise _refusal([], "a JSON body is required", refused(dead_letters.EMPTY_VALUE, "the body is empty"))
    event = _checked(read_event(body, rules.max_event_bytes), rules, time.time())
    if isinstance(event, Rejection):
        raise _refusal([event])
    return event


def read_many(body: bytes, rules: BodyRules) -> list[CustomerEvent]:
    """The events of a ``/predict/batch`` body, in order; raises :class:`ApiError` with every reason."""
    if not body or body.isspace():
        raise _refusal([], "a JSON body is required", refused(dead_letters.EMPTY_VALUE, "the body is empty"))
    elements = _elements(body.removeprefix(BOM))
    if not elements:
        raise _refusal([], "the list is empty", refused(dead_letters.EMPTY_VALUE, "send at least 1 customer"))
    if len(elements) > rules.max_batch:
        reason = f"List should have at most {rules.max_batch} items, not {len(elements)}"
        raise _refusal([], reason, refused(dead_letters.TOO_LONG, reason))
    now = time.time()
    events: list[CustomerEvent] = []
    rejections: list[Rejection] = []
    prefixes: list[str] = []
    for index, element in enumerate(elements):
        event = _checked(read_event(bytes(element), rules.max_event_bytes), rules, now)
        if isinstance(event, Rejection):
            rejections.append(event)
            prefixes.append(str(index))
        else:
            events.append(event)
    if rejections:
        raise _refusal(rejections, prefixes=prefixes)
    return events


def _elements(body: bytes) -> list[msgspec.Raw]:
    """The raw bytes of each element of a JSON array, or an :class:`ApiError` saying why it is not one."""
    try:
        return _split_array(body)
    except msgspec.DecodeError as exc:  # not JSON, or (ValidationError) JSON but not an array
        rejection = json_rejection(body)  # the contract says what is wrong: NaN, not UTF-8, ...
        if rejection is not None:
            raise _refusal([rejection]) from None
        if isinstance(exc, msgspec.ValidationError):
            reason = "send a JSON array of customers"
            raise _refusal(
                [], "the body is not a JSON array", refused(dead_letters.WRONG_TYPE, reason)
            ) from None
        # orjson reads what msgspec does not (e.g. nesting deeper than msgspec's limit)
        raise _refusal([refused(dead_letters.INVALID_JSON, f"not valid JSON: {exc}")]) from None


def _checked(event: CustomerEvent | Rejection, rules: BodyRules, now: float) -> CustomerEvent | Rejection:
    """The stream's one clock rule: an ``event_time`` too far ahead is refused."""
    if isinstance(event, Rejection) or event.event_time is None:
        return event
    if event.event_time.timestamp() > now + rules.max_future_skew_s:
        return future_rejection(event.event_time, rules.max_future_skew_s)
    return event


def _refusal(
    rejections: Sequence[Rejection],
    message: str | None = None,
    body_rejection: Rejection | None = None,
    prefixes: Sequence[str] = (),
) -> ApiError:
    """One error answer for the refused records (or the refused body), every field error listed."""
    errors: list[dict[str, str]] = []
    types: list[str] = []
    every = [body_rejection] if body_rejection is not None else list(rejections)
    for k, rejection in enumerate(every):
        prefix = prefixes[k] if k < len(prefixes) else ""
        for error in rejection.errors:
            field = ".".join(part for part in (prefix, error.field) if part) or "body"
            errors.append({"field": field, "reason": error.reason, "type": error.type})
            types.append(error.type)
    if types and types[0] in _NOT_JSON and not prefixes:  # the body itself; an element is a 422
        first = every[0]
        return ApiError(
            400, types[0], f"the body cannot be read as JSON: {first.errors[0].reason}", errors=errors
        )
    noun = "field" if len(errors) == 1 else "fields"
    return ApiError(422, "validation_error", message or f"{len(errors)} invalid {noun}", errors=errors)
