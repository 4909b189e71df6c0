"""Password hashing with the standard library's scrypt (no extra dependency).

An encoded hash is ``scrypt$<n>$<r>$<p>$<salt b64>$<key b64>``: the parameters travel with
the hash, so they can be raised later without breaking stored users.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2 ** 14   # CPU/memory cost; 128 * N * r bytes = 16 MiB per hash
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _kdf(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          dklen=dklen, maxmem=_MAXMEM)


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` in the encoded form above."""
    if not password:
        raise ValueError("refusing to hash an empty password")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _kdf(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; the key comparison takes constant time.

    Raises ``ValueError`` when ``encoded`` is not a hash made by :func:`hash_password`.
    """
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("unrecognised password hash format")
    n, r, p = (int(v) for v in parts[1:4])
    salt, key = base64.b64decode(parts[4]), base64.b64decode(parts[5])
    candidate = _kdf(password, salt, n, r, p, len(key))
    return hmac.compare_digest(candidate, key)


def dummy_verify(password: str) -> None:
    """Spend the time of one verification (used when the user does not exist)."""
    _kdf(password, b"\0" * SALT_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
