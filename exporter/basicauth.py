"""HTTP basic auth against bcrypt hashes, as the Prometheus exporter-toolkit does it.

bcrypt is slow on purpose (~70 ms at cost 10), so, like the toolkit, a result is cached per
(user, hash, password) and at most one bcrypt runs at a time: a scraper with the right password
pays once, and a flood of wrong guesses cannot take every core. The cache is keyed by a SHA-256
digest, so no password is kept in memory, and bounded. An unknown user is checked against a
fixed hash, so response time does not tell which user names exist. Nothing here logs a
password or a hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt

CACHE_SIZE = 256
# bcrypt of a random password nobody knows, at the usual cost: an unknown user costs the same.
_DECOY = b"$2b$10$jG6mTKiFkYsv2KUhi5spSu9f7WKBToNbg5fVf7SFd.Y31KAcZq9SG"


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic base64(user:password)`` → (user, password), or None."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class BasicAuth:
    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()

    def allowed(self, users: Mapping[str, str], header: str | None) -> bool:
        """Whether the Authorization header names a user of ``users`` with its password."""
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = users.get(user)
        known = hashed is not None
        hashed_bytes = hashed.encode() if hashed is not None else _DECOY
        key = hashlib.sha256(b"\0".join((user.encode(), hashed_bytes, password.encode()))).digest()
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is None:
            with self._bcrypt_lock:
                cached = _checkpw(password.encode(), hashed_bytes)
            with self._cache_lock:
                self._cache[key] = cached
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return cached and known


def _checkpw(password: bytes, hashed: bytes) -> bool:
    """bcrypt's own comparison is constant-time; a password over bcrypt's 72-byte limit (which
    the library refuses) or a malformed hash is simply a mismatch."""
    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:
        # Still spend the time a real check takes, so length does not show in the timing.
        bcrypt.checkpw(b"", _DECOY)
        return False
