"""Signing, backoff, partner configuration and secrets: the parts with no network."""

from __future__ import annotations

import random
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hotline.config import ConfigError
from hotline.secrets import load_or_create
from integrations.config import (
    EXAMPLE_PARTNERS_FILE,
    DeliverySettings,
    config_path,
    load_config,
    parse_config,
    partner_secrets,
)
from integrations.delivery import backoff_delay
from integrations.signing import SIGNATURE_HEADER, SignatureError, nonce_expiry, sign, verify

NOW = datetime(2026, 10, 1, 2, 0, 0, tzinfo=UTC)


def _verify(headers: dict[str, str], body: bytes, **kw: object) -> object:
    args = {"partner": "12345", "secret": b"s3cret", "now": NOW, "skew": 300, **kw}
    return verify(headers, body, **args)  # type: ignore[arg-type]


@given(body=st.binary(max_size=512), offset=st.integers(-300, 300))
def test_signed_requests_verify_within_the_window(body: bytes, offset: int) -> None:
    headers = sign(b"s3cret", body, sender="12345", now=NOW + timedelta(seconds=offset))
    verified = _verify(headers, body)
    assert verified.nonce == headers["X-Hotline-Nonce"]  # type: ignore[attr-defined]


@given(body=st.binary(min_size=1, max_size=256), index=st.integers(0, 255))
def test_any_changed_byte_breaks_the_signature(body: bytes, index: int) -> None:
    headers = sign(b"s3cret", body, sender="12345", now=NOW)
    i = index % len(body)
    tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
    with pytest.raises(SignatureError) as err:
        _verify(headers, tampered)
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"X-Hotline-Timestamp": "1790000000x"}, "bad_timestamp"),
        ({"X-Hotline-Nonce": "short"}, "bad_nonce"),
        ({"X-Hotline-Partner": "110"}, "partner_mismatch"),
        ({SIGNATURE_HEADER: "sha256=" + "0" * 64}, "bad_signature"),
        ({SIGNATURE_HEADER: "签名"}, "bad_signature"),
        ({SIGNATURE_HEADER: ""}, "unsigned"),
    ],
)
def test_malformed_headers_are_refused(change: dict[str, str], code: str) -> None:
    headers = {**sign(b"s3cret", b"{}", sender="12345", now=NOW), **change}
    with pytest.raises(SignatureError) as err:
        _verify(headers, b"{}")
    assert (err.value.status, err.value.code) == (401, code)


def test_timestamps_outside_the_window_are_stale() -> None:
    for offset in (-301, 301, -86400):
        headers = sign(b"s3cret", b"{}", sender="12345", now=NOW + timedelta(seconds=offset))
        with pytest.raises(SignatureError, match="timestamp"):
            _verify(headers, b"{}")


def test_nonces_are_kept_as_long_as_their_timestamp_is_accepted() -> None:
    headers = sign(b"s3cret", b"", sender="12345", now=NOW + timedelta(seconds=200))
    verified = _verify(headers, b"")
    expires = nonce_expiry(verified, NOW, 300)  # type: ignore[arg-type]
    # The last moment the same timestamp would still pass verify():
    assert expires >= NOW + timedelta(seconds=200 + 300)


@given(attempt=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_backoff_grows_with_jitter_and_is_capped(attempt: int, seed: int) -> None:
    settings = DeliverySettings(initial_delay_s=5, max_delay_s=3600)
    delay = backoff_delay(attempt, settings, random.Random(seed))
    ceiling = min(3600, 5 * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_example_partners_load() -> None:
    config = load_config(EXAMPLE_PARTNERS_FILE)
    assert [p.id for p in config.partners] == ["110", "12345", "12355", "12368"]
    assert config.partner("110").sip.fallback == "back_to_partner"  # type: ignore[union-attr]
    assert config.partner("999") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"partners": [{"id": "110", "name": "a"}, {"id": "110", "name": "b"}]}, "twice"),
        ({"partners": [{"id": "110", "name": "a", "secret": "x"}]}, "unknown key"),
        ({"partners": [{"id": "110", "name": "a", "outbound_url": "ftp://x"}]}, "http"),
        ({"partners": [{"id": "1 1", "name": "a"}]}, "partners.0.id"),
        ({"sms": {"backend": "http"}}, "url"),
    ],
)
def test_bad_partner_config_names_the_problem(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_runtime_partners_file_wins(tmp_path: Path) -> None:
    assert config_path(tmp_path) == EXAMPLE_PARTNERS_FILE
    (tmp_path / "partners.yaml").write_text("partners: []\n")
    assert config_path(tmp_path) == tmp_path / "partners.yaml"


def test_partner_secrets_are_generated_once_and_kept_beside_the_others(tmp_path: Path) -> None:
    base = load_or_create(tmp_path)
    partners = load_config(EXAMPLE_PARTNERS_FILE).partners
    first = partner_secrets(tmp_path, partners)
    assert set(first) == {"110", "12345", "12355", "12368"}
    assert len(set(first.values())) == 4 and all(len(s) >= 32 for s in first.values())
    assert partner_secrets(tmp_path, partners) == first
    path = tmp_path / "secrets.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The foundation's secrets are untouched, and survive their own rewrite.
    assert load_or_create(tmp_path) == base
    data = yaml.safe_load(path.read_text())
    data.pop("service_token")
    path.write_text(yaml.safe_dump(data))
    load_or_create(tmp_path)
    assert partner_secrets(tmp_path, partners) == first
    # Nothing secret in the repository's example file.
    assert "secret:" not in EXAMPLE_PARTNERS_FILE.read_text()
