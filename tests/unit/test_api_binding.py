"""`churn api` refuses a non-loopback address without an API key unless told it may."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from api.auth import KeyStore
from api.server import UnauthenticatedBindError, check_binding, is_loopback
from config.settings import Settings

KEY = SecretStr("k" * 40)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "api.example", "fe80::1"])
def test_addresses_other_machines_may_reach(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api"])
def test_a_public_address_without_a_key_is_refused(host: str, tmp_path: Path) -> None:
    settings = Settings(api_host=host, model_store=tmp_path)
    with pytest.raises(UnauthenticatedBindError, match=r"refusing to listen on .* without an API key"):
        check_binding(settings, KeyStore.from_settings(settings))


def test_a_public_address_with_a_key_or_explicit_permission_is_served(tmp_path: Path) -> None:
    keyed = Settings(api_host="0.0.0.0", api_key=KEY, model_store=tmp_path)
    check_binding(keyed, KeyStore.from_settings(keyed))
    allowed = Settings(api_host="0.0.0.0", api_allow_unauthenticated=True, model_store=tmp_path)
    check_binding(allowed, KeyStore.from_settings(allowed))


def test_loopback_needs_no_key(tmp_path: Path) -> None:
    settings = Settings(api_host="127.0.0.1", model_store=tmp_path)
    check_binding(settings, KeyStore.from_settings(settings))


def test_the_permission_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_API_ALLOW_UNAUTHENTICATED", "true")
    assert Settings().api_allow_unauthenticated
