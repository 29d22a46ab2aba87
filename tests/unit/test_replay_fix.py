"""The fixes `churn dlq replay` can apply: RFC 7386 merge patch and field=value overrides."""

from __future__ import annotations

import orjson
import pytest

from producer.replay import Fix, FixError, error_type_of, merge_patch


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch({"a": [1]}, {"a": [2, 3]}) == {"a": [2, 3]}
    assert merge_patch(target, {"a": None}) == {"c": {"d": "e", "f": "g"}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}  # not modified in place


def test_overrides_parse_json_values_and_fall_back_to_strings() -> None:
    fix = Fix.parse(
        '{"contract": "One year", "gone": null}', ["tenure=12", "gender=Female", "paperless=true"]
    )
    out = orjson.loads(fix.apply(b'{"tenure": -1, "gone": 1, "contract": "x"}') or b"")
    assert out == {"tenure": 12, "contract": "One year", "gender": "Female", "paperless": True}


def test_no_fix_replays_the_bytes_untouched_and_a_fix_needs_an_object() -> None:
    assert Fix().apply(b"\xff not json") == b"\xff not json"
    with pytest.raises(FixError):
        Fix.parse(None, ["tenure=1"]).apply(b"[1, 2]")
    with pytest.raises(ValueError, match="merge patch"):
        Fix.parse("[1]")
    with pytest.raises(ValueError, match="field=value"):
        Fix.parse(None, ["no-equals-sign"])


def test_error_type_comes_from_the_header() -> None:
    assert error_type_of([("error_type", b"oversize")]) == "oversize"
    assert error_type_of({"error_type": b"not_utf8"}) == "not_utf8"
    assert error_type_of(None) == "unknown"
