"""Every secret setting CHURN_X also reads CHURN_X_FILE: the file's content, one trailing newline off."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import SecretFileError, Settings, secret_fields

SECRET = "s3cret-value-that-is-long-enough-0123456789"


def test_the_secret_settings_are_the_three_secrets() -> None:
    assert set(secret_fields(Settings)) == {"api_key", "kafka_sasl_password", "model_signing_key"}


@pytest.mark.parametrize("name", secret_fields(Settings))
@pytest.mark.parametrize(
    ("content", "value"), [(SECRET, SECRET), (SECRET + "\n", SECRET), (SECRET + "\r\n", SECRET)]
)
def test_every_secret_reads_its_file(
    name: str, content: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret"
    path.write_text(content, newline="")
    monkeypatch.setenv(f"CHURN_{name.upper()}_FILE", str(path))
    secret = getattr(Settings(), name)
    assert secret is not None
    assert secret.get_secret_value() == value
    assert SECRET not in repr(Settings())


def test_only_one_trailing_newline_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key"
    path.write_text(SECRET + "\n\n")
    monkeypatch.setenv("CHURN_API_KEY_FILE", str(path))
    assert Settings().api_key.get_secret_value() == SECRET + "\n"  # type: ignore[union-attr]


def test_both_the_value_and_the_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "key"
    path.write_text(SECRET)
    monkeypatch.setenv("CHURN_API_KEY_FILE", str(path))
    monkeypatch.setenv("CHURN_API_KEY", "other")
    with pytest.raises(SecretFileError, match="CHURN_API_KEY and CHURN_API_KEY_FILE are both set"):
        Settings()


def test_an_unreadable_file_names_the_setting_not_the_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURN_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(SecretFileError, match="CHURN_KAFKA_SASL_PASSWORD_FILE: cannot read .*missing"):
        Settings()
    unreadable = tmp_path / "bytes"
    unreadable.write_bytes(b"\xff\xfe" + SECRET.encode())
    monkeypatch.setenv("CHURN_KAFKA_SASL_PASSWORD_FILE", str(unreadable))
    with pytest.raises(SecretFileError) as caught:
        Settings()
    assert "CHURN_KAFKA_SASL_PASSWORD_FILE" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_an_empty_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "empty"
    path.write_text("\n")
    monkeypatch.setenv("CHURN_MODEL_SIGNING_KEY_FILE", str(path))
    with pytest.raises(SecretFileError, match="CHURN_MODEL_SIGNING_KEY_FILE: .* is empty"):
        Settings()


def test_a_file_of_a_setting_that_is_no_secret_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CHURN_API_HOST_FILE is nothing: only secrets have a _FILE form (pydantic ignores unknown names)."""
    path = tmp_path / "host"
    path.write_text("0.0.0.0")
    monkeypatch.setenv("CHURN_API_HOST_FILE", str(path))
    assert Settings().api_host == "127.0.0.1"


@pytest.mark.parametrize("value", ["10.0.0.0/8,127.0.0.1", " 10.0.0.0/8 , ::1 ", "192.168.1.7"])
def test_trusted_proxies_are_addresses_or_networks(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_API_TRUSTED_PROXIES", value)
    proxies = Settings().api_trusted_proxies
    assert proxies and all("/" in p for p in proxies)


@pytest.mark.parametrize("value", ["*", "localhost", "10.0.0.0/33"])
def test_trusted_proxies_refuse_anything_else(value: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings(api_trusted_proxies=value)  # type: ignore[arg-type]
