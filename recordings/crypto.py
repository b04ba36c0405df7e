"""Recordings encrypted at rest: chunked AES-256-GCM with key ids, streaming, rotation.

This module owns the on-disk format of an encrypted recording and nothing else: no database,
no key storage (keys come from the runtime secrets as a ``KeyRing``), no access control or
audit (the caller logs who read what).

Format (version 1)
------------------
::

    header = b"HLREC" | version (1 byte, 1) | chunk_size (4 bytes, big-endian)
             | len(key_id) (1 byte) | key_id (ASCII) | salt (16 bytes) | nonce_prefix (7 bytes)
    body   = chunk_0 | chunk_1 | ... | chunk_n      each chunk = AES-GCM(ciphertext || 16-byte tag)

Every chunk but the last holds exactly ``chunk_size`` bytes of plaintext (default 64 KiB), so a
reader knows where each chunk ends and never holds more than two chunks in memory: a one-hour
WAV is streamed, not loaded.

Keys. ``key_id`` names a 256-bit master key in the ``KeyRing``. Each file gets its own data key
``HKDF-SHA256(master, salt, info="hotline-recording-v1" | key_id)`` from a fresh random salt,
so nonces never repeat across files under one master key however many files are written, and
the key id is bound into the key as well as into the header.

Nonces and why chunks cannot be reordered, dropped or truncated. This is the STREAM
construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015, as used by Tink's streaming AEAD): the
96-bit nonce of chunk ``i`` is ``nonce_prefix (7 bytes) | i (4 bytes, big-endian) | final
(1 byte: 1 for the last chunk, else 0)``. The nonce is an input to GCM's authentication, so:

- a chunk moved to another position is decrypted with another index and fails its tag;
- a dropped chunk shifts every later index and fails;
- truncation at a chunk boundary leaves a last chunk that was sealed with ``final=0`` but is
  read with ``final=1`` and fails; bytes appended after the real last chunk make that chunk be
  read with ``final=0`` and fail too; an empty file still has one (empty) final chunk;
- the whole header and the caller's ``associated_data`` (e.g. the call id) are the AAD of every
  chunk, so a header edit (key id, chunk size, salt) or a file swapped onto another call fails.

A file is only accepted when every chunk authenticated. ``decrypt_file`` writes to a temporary
file and renames it only then, so a tampered file never leaves partial plaintext behind.
``iter_decrypt`` yields chunks as they authenticate (for playback): a consumer must treat an
exception at any point as "the whole file is invalid".

Rotation. ``KeyRing.rotated(new_id, key)`` makes a new key current; files written earlier keep
their key id in the header and stay readable as long as the old key stays in the ring.
``reencrypt_file`` moves one file to the current key (stream to stream) when an old key is to
be retired.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"HLREC"
VERSION = 1
DEFAULT_CHUNK_SIZE = 64 * 1024
MIN_CHUNK_SIZE = 16  # small sizes only make sense in tests
MAX_CHUNK_SIZE = 16 * 1024 * 1024
TAG_SIZE = 16
SALT_SIZE = 16
PREFIX_SIZE = 7
KEY_SIZE = 32
MAX_CHUNKS = 2**32  # the chunk index is 4 bytes
_INFO = b"hotline-recording-v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RecordingCryptoError(Exception):
    """Base class for errors of this module."""


class UnknownKey(RecordingCryptoError):
    """The file names a key id that is not in the key ring."""


class InvalidRecording(RecordingCryptoError):
    """The file is not a recording of this format, or failed authentication."""


@dataclass(frozen=True)
class KeyRing:
    """Master keys by id and the id of the key used for new files."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            _check_key_id(key_id)
            if len(key) != KEY_SIZE:
                raise ValueError(f"key {key_id!r} must be {KEY_SIZE} bytes, got {len(key)}")
        if self.current not in self.keys:
            raise ValueError(f"current key id {self.current!r} is not in the key ring")
        object.__setattr__(self, "keys", dict(self.keys))

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKey(f"key id {key_id!r} is not in the key ring") from None

    def rotated(self, new_id: str, key: bytes | None = None) -> KeyRing:
        """A ring with ``new_id`` (a new random key unless given) as current; old keys kept."""
        if new_id in self.keys:
            raise ValueError(f"key id {new_id!r} already exists")
        return KeyRing({**self.keys, new_id: key if key is not None else new_key()}, new_id)

    @classmethod
    def from_text(cls, keys: Mapping[str, str], current: str) -> KeyRing:
        """From the runtime secrets, where keys are stored as URL-safe base64 text."""
        return cls({key_id: decode_key(text) for key_id, text in keys.items()}, current)

    def to_text(self) -> dict[str, str]:
        return {key_id: encode_key(key) for key_id, key in self.keys.items()}

    def __repr__(self) -> str:  # never print key material
        return (
            f"KeyRing(keys=<{len(self.keys)} keys: {sorted(self.keys)}>, current={self.current!r})"
        )


@dataclass(frozen=True, slots=True)
class EncryptedInfo:
    key_id: str
    sha256_plain: str  # hex, of the recording as recorded
    sha256_cipher: str  # hex, of the stored file (header included)
    size: int  # plaintext bytes
    cipher_size: int = field(default=0)  # stored bytes


def new_key() -> bytes:
    """A fresh random 256-bit master key."""
    return os.urandom(KEY_SIZE)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii")


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("a recording key must be URL-safe base64 text") from exc
    if len(key) != KEY_SIZE:
        raise ValueError(f"a recording key must decode to {KEY_SIZE} bytes, got {len(key)}")
    return key


def _check_key_id(key_id: str) -> None:
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise ValueError(f"key id {key_id!r}: 1-64 characters of A-Z a-z 0-9 . _ -")


def _derive(master: bytes, salt: bytes, key_id: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=_INFO + key_id.encode())
    return AESGCM(hkdf.derive(master))


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    if index >= MAX_CHUNKS:
        raise RecordingCryptoError("recording too long for the chunk counter")
    return prefix + struct.pack(">IB", index, 1 if final else 0)


@dataclass(frozen=True, slots=True)
class _Header:
    raw: bytes
    chunk_size: int
    key_id: str
    salt: bytes
    prefix: bytes


def _make_header(key_id: str, chunk_size: int) -> _Header:
    salt, prefix = os.urandom(SALT_SIZE), os.urandom(PREFIX_SIZE)
    kid = key_id.encode("ascii")
    raw = MAGIC + struct.pack(">BIB", VERSION, chunk_size, len(kid)) + kid + salt + prefix
    return _Header(raw, chunk_size, key_id, salt, prefix)


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    parts, remaining = [], size
    while remaining:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _read_header(stream: BinaryIO) -> _Header:
    fixed = _read_exact(stream, len(MAGIC) + 6)
    if len(fixed) < len(MAGIC) + 6 or not fixed.startswith(MAGIC):
        raise InvalidRecording("not an encrypted recording (bad magic)")
    version, chunk_size, kid_len = struct.unpack(">BIB", fixed[len(MAGIC) :])
    if version != VERSION:
        raise InvalidRecording(f"unsupported recording format version {version}")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise InvalidRecording(f"implausible chunk size {chunk_size}")
    rest = _read_exact(stream, kid_len + SALT_SIZE + PREFIX_SIZE)
    if len(rest) < kid_len + SALT_SIZE + PREFIX_SIZE:
        raise InvalidRecording("truncated header")
    try:
        key_id = rest[:kid_len].decode("ascii")
        _check_key_id(key_id)
    except ValueError as exc:
        raise InvalidRecording("bad key id in header") from exc
    salt = rest[kid_len : kid_len + SALT_SIZE]
    prefix = rest[kid_len + SALT_SIZE :]
    return _Header(fixed + rest, chunk_size, key_id, salt, prefix)


def _with_final(chunks: Iterator[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Pairs each chunk with whether it is the last one (one chunk of look-ahead)."""
    previous = next(chunks, None)
    if previous is None:
        yield b"", True  # an empty recording still gets one authenticated final chunk
        return
    for chunk in chunks:
        yield previous, False
        previous = chunk
    yield previous, True


def _fixed_chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    while chunk := _read_exact(stream, size):
        yield chunk


def _rechunk(blocks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buffer = bytearray()
    for block in blocks:
        buffer += block
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def encrypt_stream(
    blocks: Iterable[bytes],
    out: BinaryIO,
    keyring: KeyRing,
    associated_data: bytes = b"",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> EncryptedInfo:
    """Encrypt plaintext ``blocks`` (any sizes) to ``out`` with the ring's current key."""
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be in [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]")
    header = _make_header(keyring.current, chunk_size)
    aead = _derive(keyring.key(keyring.current), header.salt, header.key_id)
    aad = header.raw + associated_data
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    out.write(header.raw)
    cipher_hash.update(header.raw)
    size, cipher_size = 0, len(header.raw)
    chunks = _with_final(_rechunk(blocks, chunk_size))
    for index, (chunk, final) in enumerate(chunks):
        plain_hash.update(chunk)
        sealed = aead.encrypt(_nonce(header.prefix, index, final), chunk, aad)
        out.write(sealed)
        cipher_hash.update(sealed)
        size += len(chunk)
        cipher_size += len(sealed)
    return EncryptedInfo(
        header.key_id, plain_hash.hexdigest(), cipher_hash.hexdigest(), size, cipher_size
    )


def iter_decrypt(
    stream: BinaryIO, keyring: KeyRing, associated_data: bytes = b""
) -> Iterator[bytes]:
    """Yield authenticated plaintext chunks; raise ``InvalidRecording`` on any tampering.

    A chunk is yielded only after its own tag verified, but the file as a whole is valid only
    if the iteration ends without an exception (truncation shows at the end).
    """
    _header, chunks = _open_decrypt(stream, keyring, associated_data)
    yield from chunks


def _open_decrypt(
    stream: BinaryIO, keyring: KeyRing, associated_data: bytes
) -> tuple[_Header, Iterator[bytes]]:
    header = _read_header(stream)
    aead = _derive(keyring.key(header.key_id), header.salt, header.key_id)
    aad = header.raw + associated_data

    def chunks() -> Iterator[bytes]:
        sealed_chunks = _with_final(_fixed_chunks(stream, header.chunk_size + TAG_SIZE))
        for index, (sealed, final) in enumerate(sealed_chunks):
            if len(sealed) < TAG_SIZE:
                raise InvalidRecording(f"chunk {index} is truncated")
            try:
                yield aead.decrypt(_nonce(header.prefix, index, final), sealed, aad)
            except InvalidTag:
                raise InvalidRecording(
                    f"chunk {index} failed authentication (tampered, reordered, truncated, "
                    "or wrong associated data)"
                ) from None

    return header, chunks()


def read_key_id(path: str | os.PathLike[str]) -> str:
    """The key id a stored file was written with (to find files still on an old key)."""
    with open(path, "rb") as stream:
        return _read_header(stream).key_id


def _atomic_output(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.{os.getpid()}.{os.urandom(4).hex()}.part")


def encrypt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    keyring: KeyRing,
    associated_data: bytes = b"",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> EncryptedInfo:
    """Encrypt ``src`` to ``dst`` (written atomically, mode 0600) with the current key."""
    dst = Path(dst)
    tmp = _atomic_output(dst)
    try:
        with open(src, "rb") as source, _open_private(tmp) as out:
            info = encrypt_stream(
                _fixed_chunks(source, chunk_size), out, keyring, associated_data,
                chunk_size=chunk_size,
            )  # fmt: skip
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return info


def decrypt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    keyring: KeyRing,
    associated_data: bytes = b"",
    *,
    expected_sha256: str | None = None,
) -> EncryptedInfo:
    """Decrypt ``src`` to ``dst``; ``dst`` appears only if the whole file authenticated (and,
    when given, the plaintext matches ``expected_sha256``)."""
    dst = Path(dst)
    tmp = _atomic_output(dst)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as raw, _open_private(tmp) as out:
            source = _HashingReader(raw, cipher_hash)
            header, chunks = _open_decrypt(source, keyring, associated_data)  # type: ignore[arg-type]
            for chunk in chunks:
                plain_hash.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if expected_sha256 is not None and plain_hash.hexdigest() != expected_sha256.lower():
            raise InvalidRecording("decrypted recording does not match its stored sha256")
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return EncryptedInfo(
        header.key_id, plain_hash.hexdigest(), cipher_hash.hexdigest(), size, source.count
    )


def reencrypt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    keyring: KeyRing,
    associated_data: bytes = b"",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> EncryptedInfo:
    """Move a stored file to the ring's current key, streaming (``src`` may equal ``dst``).

    The plaintext hash of the result equals the original's; if ``src`` fails authentication,
    nothing is written.
    """
    dst = Path(dst)
    tmp = _atomic_output(dst)
    try:
        with open(src, "rb") as source, _open_private(tmp) as out:
            info = encrypt_stream(
                iter_decrypt(source, keyring, associated_data), out, keyring, associated_data,
                chunk_size=chunk_size,
            )  # fmt: skip
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return info


def _open_private(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


class _HashingReader:
    """Wraps a binary file: hashes and counts what is read (the stored file's sha256)."""

    def __init__(self, raw: BinaryIO, digest: Any) -> None:
        self._raw, self._digest, self.count = raw, digest, 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        self.count += len(data)
        return data
