"""The caller number at rest: sealed with AES-GCM, bound to its order, keys rotate."""

from __future__ import annotations

import pytest
import yaml

from workorders.protect import SealError, load_sealer, rotate


def test_sealed_numbers_open_only_for_their_order(tmp_path) -> None:
    sealer = load_sealer(tmp_path)
    sealed = sealer.seal("13800138000", "order-1")
    assert "13800138000" not in sealed and sealed.startswith(f"v1:{sealer.current}:")
    assert sealed != sealer.seal("13800138000", "order-1")  # a fresh nonce each time
    assert sealer.open(sealed, "order-1") == "13800138000"
    with pytest.raises(SealError):
        sealer.open(sealed, "order-2")  # copied onto another order
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SealError):
        sealer.open(tampered, "order-1")


def test_the_key_is_kept_with_the_other_secrets_and_rotates(tmp_path) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(yaml.safe_dump({"ari_password": "keep-me"}))
    first = load_sealer(tmp_path)
    assert load_sealer(tmp_path).current == first.current  # made once, then kept
    data = yaml.safe_load(secrets.read_text())
    assert data["ari_password"] == "keep-me" and first.current in data["workorder_keys"]
    assert secrets.stat().st_mode & 0o777 == 0o600
    old = first.seal("02112345678", "o")
    second = rotate(tmp_path)
    assert second.current != first.current
    assert second.open(old, "o") == "02112345678"  # old values still open
    assert second.seal("1", "o").split(":")[1] == second.current
