"""Manifest signatures: HMAC-SHA256 over the canonical manifest, with a key kept outside the store.

The manifest records the sha256 of every artifact, its own version name and the
model format, so one signature over it vouches for the whole version folder. The
canonical form is the manifest without its ``signature`` field as compact JSON
with sorted keys; the signature sits in the manifest itself::

    "signature": {"algorithm": "hmac-sha256", "value": "<64 hex digits>"}

Whoever can write the store but does not hold the key cannot produce a version
that readers configured with the key accept (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

SIGNATURE_FIELD = "signature"
ALGORITHM = "hmac-sha256"


def canonical(manifest: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: every field but the signature, as compact sorted JSON."""
    unsigned = {key: value for key, value in manifest.items() if key != SIGNATURE_FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(manifest: Mapping[str, Any], key: bytes) -> dict[str, str]:
    """The ``signature`` field for ``manifest`` under ``key``."""
    value = hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()
    return {"algorithm": ALGORITHM, "value": value}


def problem(manifest: Mapping[str, Any], key: bytes) -> str | None:
    """Why ``manifest`` is not signed with ``key`` (``None`` when it is): unsigned, or a mismatch."""
    signed = manifest.get(SIGNATURE_FIELD)
    if signed is None:
        return "it is not signed"
    if not isinstance(signed, dict) or signed.get("algorithm") != ALGORITHM:
        return f"its signature is not {ALGORITHM}"
    value = signed.get("value")
    expected = signature(manifest, key)["value"]
    if not isinstance(value, str) or not hmac.compare_digest(value.encode(), expected.encode()):
        return "its signature does not match (made with another key, or the manifest changed since)"
    return None
