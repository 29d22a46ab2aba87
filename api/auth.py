"""API keys: named keys with scopes, from ``CHURN_API_KEY`` and a keys file re-read when it changes.

``CHURN_API_KEY`` is one key named ``default`` with both scopes. ``CHURN_API_KEYS_FILE``
names a text file of further keys, one per line (``#`` starts a comment)::

    # name      scopes          key (at least 32 characters)
    billing     predict         6f1d0c...
    ops         predict,admin   a93e5b...

Scopes: ``predict`` opens ``/predict``, ``/predict/batch`` and ``/model``; ``admin``
opens ``/admin/*``; any valid key opens the other guarded routes (``/docs``,
``/openapi.json``). The file is checked for changes at most once a second and,
when it changed, parsed completely before the new set replaces the old one, so a
reader never sees half a file; a file that does not parse leaves the previous keys
in place and is logged. Only the sha256 of each key is kept in memory, and
requests are compared against every key in constant time (``hmac.compare_digest``,
no early exit). Keys are never logged; their names are, and the rate limit counts
per name.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from config.settings import Settings

log = logging.getLogger(__name__)

Scope = Literal["predict", "admin"]
SCOPES: tuple[Scope, ...] = ("predict", "admin")
#: The shortest key accepted: 32 characters (e.g. ``openssl rand -hex 16`` gives 32, ``-hex 32`` 64).
MIN_KEY_LENGTH = 32
#: The name of the key given as ``CHURN_API_KEY``.
DEFAULT_KEY_NAME = "default"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Key characters: visible ASCII, what an HTTP header carries unchanged.
_KEY = re.compile(r"[!-~]+")
#: Routes and the scope each needs; other guarded routes need any valid key.
PREDICT_ROUTES = frozenset({"/predict", "/predict/batch", "/model"})
ADMIN_PREFIX = "/admin/"


class KeyConfigError(ValueError):
    """The configured keys cannot be used; the message names the setting and the key, never its value."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes  # sha256 of the key; the key itself is not kept
    scopes: frozenset[str]


def required_scope(path: str) -> Scope | None:
    """The scope a guarded route needs (``None``: any valid key)."""
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    if path in PREDICT_ROUTES:
        return "predict"
    return None


def presented_key(api_key_header: bytes | None, authorization: bytes | None) -> bytes | None:
    """The key a request presents: its ``X-API-Key`` header, else ``Authorization: Bearer <key>``.

    The bearer form is what Alertmanager's ``http_config.authorization`` sends (the retrain
    webhook reads both). Another scheme (``Basic``) or an empty credential presents no key.
    """
    if api_key_header is not None:
        return api_key_header
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return credentials.strip() or None


def make_key(name: str, secret: str, scopes: Sequence[str], where: str) -> ApiKey:
    """An :class:`ApiKey`, after checking its name, scopes and length (errors say ``where``)."""
    if not _NAME.fullmatch(name):
        raise KeyConfigError(f"{where}: key name {name[:64]!r} must be letters, digits, '_', '.' or '-'")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        got = ", ".join(unknown) or "none"
        raise KeyConfigError(f"{where}: key {name!r} needs scopes among {', '.join(SCOPES)} (got {got})")
    if len(secret) < MIN_KEY_LENGTH:
        raise KeyConfigError(
            f"{where}: key {name!r} is {len(secret)} characters long; at least {MIN_KEY_LENGTH} are "
            "required (e.g. `openssl rand -hex 32`)"
        )
    if not _KEY.fullmatch(secret):
        raise KeyConfigError(f"{where}: key {name!r} must be visible ASCII characters, without spaces")
    return ApiKey(name, hashlib.sha256(secret.encode("ascii")).digest(), frozenset(scopes))


def parse_keys_file(text: str, where: str) -> list[ApiKey]:
    """The keys in a keys file's ``text`` (see the module docstring)."""
    keys: list[ApiKey] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3:
            raise KeyConfigError(f"{where} line {number}: expected `name scopes key` ({len(fields)} fields)")
        name, scopes, secret = fields
        keys.append(make_key(name, secret, scopes.split(","), f"{where} line {number}"))
    return keys


def _unique(keys: Sequence[ApiKey], where: str) -> list[ApiKey]:
    names: set[str] = set()
    digests: set[bytes] = set()
    for key in keys:
        if key.name in names:
            raise KeyConfigError(f"{where}: the key name {key.name!r} is used twice")
        if key.digest in digests:
            raise KeyConfigError(f"{where}: key {key.name!r} has the same value as another key")
        names.add(key.name)
        digests.add(key.digest)
    return list(keys)


class KeyStore:
    """The keys the API accepts now; :meth:`match` re-reads the keys file when it has changed."""

    def __init__(
        self,
        fixed: Sequence[ApiKey],
        path: Path | None = None,
        *,
        check_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fixed = list(fixed)
        self.path = path
        self._check_every_s = check_every_s
        self._clock = clock
        self._checked_at = clock()
        self._signature: tuple[int, int, int] | None = None
        self._keys: list[ApiKey] = list(self._fixed)
        if path is not None:
            signature = self._stat()
            if signature is None:
                raise KeyConfigError(f"CHURN_API_KEYS_FILE: cannot read {path}")
            self._keys = self._read(signature)  # start-up: a bad file stops the service

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore | None:
        """The keys of ``settings`` (``None`` when none is configured), or :class:`KeyConfigError`."""
        fixed = []
        if settings.api_key is not None:
            secret = settings.api_key.get_secret_value()
            fixed.append(make_key(DEFAULT_KEY_NAME, secret, SCOPES, "CHURN_API_KEY"))
        store = cls(fixed, settings.api_keys_file) if fixed or settings.api_keys_file else None
        if settings.api_rate_limit and settings.api_rate_limit_by == "key" and store is None:
            raise KeyConfigError(
                "CHURN_API_RATE_LIMIT_BY=key needs API keys (CHURN_API_KEY or CHURN_API_KEYS_FILE): "
                "without them every request would count as its own client"
            )
        return store

    @property
    def names(self) -> list[str]:
        return [key.name for key in self._keys]

    def match(self, presented: bytes) -> ApiKey | None:
        """The key whose value is ``presented``, or ``None``; compares with every key, in constant time."""
        self._maybe_reload()
        digest = hashlib.sha256(presented).digest()
        found = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    def _maybe_reload(self) -> None:
        if self.path is None:
            return
        now = self._clock()
        if now - self._checked_at < self._check_every_s:
            return
        self._checked_at = now
        signature = self._stat()
        if signature is None or signature == self._signature:
            if signature is None and self._signature is not None:
                log.error("api_keys_file_unreadable path=%s; keeping %d keys", self.path, len(self._keys))
                self._signature = None
            return
        try:
            keys = self._read(signature)
        except KeyConfigError as exc:
            self._signature = signature  # logged once per change of the file, not every second
            log.error("api_keys_file_refused error=%s; keeping the %d keys loaded", exc, len(self._keys))
            return
        self._keys = keys  # one reference swap: requests see the old set or the new one, never a mix
        log.info("api_keys_reloaded names=%s", ",".join(self.names))

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size, info.st_ino

    def _read(self, signature: tuple[int, int, int]) -> list[ApiKey]:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = type(exc).__name__
            raise KeyConfigError(f"CHURN_API_KEYS_FILE: cannot read {self.path} ({reason})") from None
        listed = parse_keys_file(text, "CHURN_API_KEYS_FILE")
        if not listed:
            raise KeyConfigError("CHURN_API_KEYS_FILE: the file lists no key")
        keys = _unique([*self._fixed, *listed], "API keys")
        self._signature = signature
        return keys
