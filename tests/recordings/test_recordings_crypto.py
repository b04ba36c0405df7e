"""Encrypted recordings: round trips, tamper detection (reorder/drop/truncate/append/AAD),
key ids and rotation, and streaming memory use."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from recordings.crypto import (
    DEFAULT_CHUNK_SIZE,
    TAG_SIZE,
    InvalidRecording,
    KeyRing,
    UnknownKey,
    decrypt_file,
    encrypt_file,
    encrypt_stream,
    iter_decrypt,
    new_key,
    read_key_id,
    reencrypt_file,
)

CHUNK = 64  # tiny chunks so a few hundred bytes make many chunks
AAD = b"call:1700000000.42"


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing({"2026-01": new_key()}, "2026-01")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _header_len(path: Path) -> int:
    data = path.read_bytes()
    kid_len = data[10]
    return 11 + kid_len + 16 + 7


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 17])
def test_round_trip_of_every_boundary_size(tmp_path: Path, ring: KeyRing, size: int) -> None:
    plain = os.urandom(size)
    src = _write(tmp_path / "in.wav", plain)
    info = encrypt_file(src, tmp_path / "rec.enc", ring, AAD, chunk_size=CHUNK)
    stored = (tmp_path / "rec.enc").read_bytes()
    assert info.key_id == "2026-01"
    assert info.size == size
    assert info.sha256_plain == hashlib.sha256(plain).hexdigest()
    assert info.sha256_cipher == hashlib.sha256(stored).hexdigest()
    assert info.cipher_size == len(stored)
    chunks = max(1, -(-size // CHUNK))
    assert len(stored) == _header_len(tmp_path / "rec.enc") + size + chunks * TAG_SIZE
    assert plain[:16] not in stored or size < 16

    out = decrypt_file(
        tmp_path / "rec.enc", tmp_path / "out.wav", ring, AAD, expected_sha256=info.sha256_plain
    )
    assert (tmp_path / "out.wav").read_bytes() == plain
    assert out.sha256_plain == info.sha256_plain and out.sha256_cipher == info.sha256_cipher


def test_stored_file_is_private(tmp_path: Path, ring: KeyRing) -> None:
    encrypt_file(_write(tmp_path / "a", b"x" * 100), tmp_path / "a.enc", ring)
    assert (tmp_path / "a.enc").stat().st_mode & 0o077 == 0


def _sealed(tmp_path: Path, ring: KeyRing, chunks: int = 4) -> tuple[bytes, int, bytes]:
    plain = os.urandom(chunks * CHUNK)
    encrypt_file(_write(tmp_path / "p", plain), tmp_path / "c", ring, AAD, chunk_size=CHUNK)
    data = (tmp_path / "c").read_bytes()
    return data, _header_len(tmp_path / "c"), plain


def _assert_rejected(tmp_path: Path, ring: KeyRing, data: bytes, aad: bytes = AAD) -> None:
    bad = _write(tmp_path / "bad.enc", data)
    dst = tmp_path / "bad.wav"
    with pytest.raises(InvalidRecording):
        decrypt_file(bad, dst, ring, aad)
    assert not dst.exists(), "partial plaintext left behind"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_reordered_chunks_are_rejected(tmp_path: Path, ring: KeyRing) -> None:
    data, head, _ = _sealed(tmp_path, ring)
    size = CHUNK + TAG_SIZE
    body = [data[head + i * size : head + (i + 1) * size] for i in range(4)]
    _assert_rejected(tmp_path, ring, data[:head] + body[1] + body[0] + body[2] + body[3])


def test_dropped_chunk_is_rejected(tmp_path: Path, ring: KeyRing) -> None:
    data, head, _ = _sealed(tmp_path, ring)
    size = CHUNK + TAG_SIZE
    _assert_rejected(tmp_path, ring, data[: head + size] + data[head + 2 * size :])


def test_truncation_at_a_chunk_boundary_is_rejected(tmp_path: Path, ring: KeyRing) -> None:
    data, head, _ = _sealed(tmp_path, ring)
    _assert_rejected(tmp_path, ring, data[: head + 3 * (CHUNK + TAG_SIZE)])


def test_truncation_inside_a_chunk_and_to_the_header_is_rejected(
    tmp_path: Path, ring: KeyRing
) -> None:
    data, head, _ = _sealed(tmp_path, ring)
    _assert_rejected(tmp_path, ring, data[:-5])
    _assert_rejected(tmp_path, ring, data[:head])
    _assert_rejected(tmp_path, ring, data[: head - 3])


def test_appended_chunk_is_rejected(tmp_path: Path, ring: KeyRing) -> None:
    data, head, _ = _sealed(tmp_path, ring)
    size = CHUNK + TAG_SIZE
    _assert_rejected(tmp_path, ring, data + data[head : head + size])


def test_every_flipped_bit_position_class_is_rejected(tmp_path: Path, ring: KeyRing) -> None:
    data, head, _ = _sealed(tmp_path, ring, chunks=2)
    # header fields (chunk size, key id, salt, prefix), first chunk, a tag, the last byte
    for position in (7, 12, head - 10, head - 1, head + 3, head + CHUNK + 2, len(data) - 1):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        with pytest.raises((InvalidRecording, UnknownKey)):
            decrypt_file(_write(tmp_path / "t", bytes(tampered)), tmp_path / "t.wav", ring, AAD)
        assert not (tmp_path / "t.wav").exists()


def test_wrong_associated_data_is_rejected(tmp_path: Path, ring: KeyRing) -> None:
    data, _, _ = _sealed(tmp_path, ring)
    _assert_rejected(tmp_path, ring, data, aad=b"call:another")


def test_not_a_recording(tmp_path: Path, ring: KeyRing) -> None:
    _assert_rejected(tmp_path, ring, b"RIFF....WAVEfmt ")


def test_wrong_expected_hash_leaves_no_output(tmp_path: Path, ring: KeyRing) -> None:
    _sealed(tmp_path, ring)
    with pytest.raises(InvalidRecording, match="sha256"):
        decrypt_file(tmp_path / "c", tmp_path / "o", ring, AAD, expected_sha256="00" * 32)
    assert not (tmp_path / "o").exists()


def test_rotation_keeps_old_files_readable_and_reencrypts(tmp_path: Path, ring: KeyRing) -> None:
    plain = os.urandom(1000)
    src = _write(tmp_path / "p", plain)
    old = encrypt_file(src, tmp_path / "old.enc", ring, AAD, chunk_size=CHUNK)
    rotated = ring.rotated("2026-07")
    assert rotated.current == "2026-07" and set(rotated.keys) == {"2026-01", "2026-07"}
    new = encrypt_file(src, tmp_path / "new.enc", rotated, AAD)
    assert (old.key_id, new.key_id) == ("2026-01", "2026-07")
    assert read_key_id(tmp_path / "old.enc") == "2026-01"

    decrypt_file(tmp_path / "old.enc", tmp_path / "o1", rotated, AAD)
    assert (tmp_path / "o1").read_bytes() == plain

    moved = reencrypt_file(tmp_path / "old.enc", tmp_path / "old.enc", rotated, AAD)
    assert moved.key_id == "2026-07" and moved.sha256_plain == old.sha256_plain
    retired = KeyRing({"2026-07": rotated.keys["2026-07"]}, "2026-07")
    decrypt_file(tmp_path / "old.enc", tmp_path / "o2", retired, AAD)
    assert (tmp_path / "o2").read_bytes() == plain


def test_unknown_key_id_is_named(tmp_path: Path, ring: KeyRing) -> None:
    _sealed(tmp_path, ring)
    other = KeyRing({"other": new_key()}, "other")
    with pytest.raises(UnknownKey, match="2026-01"):
        decrypt_file(tmp_path / "c", tmp_path / "o", other, AAD)


def test_same_key_different_key_id_cannot_read(tmp_path: Path) -> None:
    key = new_key()
    data = _write(tmp_path / "p", b"hello" * 50)
    encrypt_file(data, tmp_path / "c", KeyRing({"a": key}, "a"))
    raw = (tmp_path / "c").read_bytes()
    forged = raw.replace(b"\x01a", b"\x01b", 1)  # rename the key id in the header
    with pytest.raises(InvalidRecording):
        decrypt_file(_write(tmp_path / "f", forged), tmp_path / "o", KeyRing({"b": key}, "b"))


def test_keyring_validation_and_text_form() -> None:
    key = new_key()
    assert len(key) == 32 and key != new_key()
    with pytest.raises(ValueError, match="current"):
        KeyRing({"a": key}, "b")
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing({"a": b"short"}, "a")
    with pytest.raises(ValueError, match="key id"):
        KeyRing({"bad id!": key}, "bad id!")
    ring = KeyRing({"a": key}, "a")
    assert KeyRing.from_text(ring.to_text(), "a") == ring
    assert key.hex() not in repr(ring) and str(key) not in repr(ring)
    with pytest.raises(ValueError, match="already exists"):
        ring.rotated("a")


def test_iter_decrypt_streams_chunks(tmp_path: Path, ring: KeyRing) -> None:
    _, _, plain = _sealed(tmp_path, ring, chunks=3)
    with open(tmp_path / "c", "rb") as stream:
        chunks = list(iter_decrypt(stream, ring, AAD))
    assert [len(c) for c in chunks] == [CHUNK] * 3
    assert b"".join(chunks) == plain


def test_encrypt_stream_accepts_blocks_of_any_size(tmp_path: Path, ring: KeyRing) -> None:
    blocks = [b"a" * 7, b"b" * 300, b"", b"c" * 64]
    with open(tmp_path / "s.enc", "wb") as out:
        info = encrypt_stream(blocks, out, ring, AAD, chunk_size=CHUNK)
    decrypt_file(tmp_path / "s.enc", tmp_path / "s", ring, AAD)
    assert (tmp_path / "s").read_bytes() == b"".join(blocks)
    assert info.size == 371


def test_large_file_is_streamed_not_loaded(tmp_path: Path, ring: KeyRing) -> None:
    # 48 MiB (about 25 minutes of 8 kHz 16-bit WAV); memory must stay near one chunk.
    src = tmp_path / "big.wav"
    block = os.urandom(1 << 20)
    with open(src, "wb") as handle:
        for _ in range(48):
            handle.write(block)
    tracemalloc.start()
    try:
        info = encrypt_file(src, tmp_path / "big.enc", ring, AAD)
        _, enc_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        decrypt_file(tmp_path / "big.enc", tmp_path / "big.out", ring, AAD)
        _, dec_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 48 << 20
    assert enc_peak < 16 * DEFAULT_CHUNK_SIZE and dec_peak < 16 * DEFAULT_CHUNK_SIZE
    assert (tmp_path / "big.out").stat().st_size == 48 << 20
