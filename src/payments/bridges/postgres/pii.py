"""Personal data at rest: AES-256-GCM ciphertext plus a keyed hash for look-ups (DESIGN §8).

Each value is sealed as ``nonce (12 bytes) || ciphertext+tag`` under the current key, with the column
name as associated data, so a ciphertext copied into another column does not decrypt. The key id is
stored beside it, so old rows stay readable after a rotation as long as their key is still configured.
Look-ups never decrypt: they compare an HMAC-SHA256 of the normalised value, under a separate key
derived from the encryption key with HKDF.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from payments.domain.errors import PaymentsError

_NONCE_BYTES = 12
_HASH_KEY_INFO = b"commdesk-payments/pii-lookup-hash/v1"


class UndecryptableValue(PaymentsError):
    """A stored personal-data value cannot be decrypted with the configured keys."""

    code = "undecryptable_value"


def key_id_of(key: bytes) -> str:
    """A short, stable, non-secret name for a key (its fingerprint)."""
    return hashlib.sha256(b"key-id:" + key).hexdigest()[:12]


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    key_id: str


class PiiCipher:
    """Encrypts with the current key; decrypts with any configured key; hashes for look-ups."""

    def __init__(self, current_key: bytes, *, previous_keys: tuple[bytes, ...] = ()) -> None:
        if len(current_key) != 32:
            raise ValueError("the personal-data key must be 32 bytes (AES-256)")
        self._current_id = key_id_of(current_key)
        self._keys: Mapping[str, AESGCM] = {
            key_id_of(key): AESGCM(key) for key in (current_key, *previous_keys)
        }
        self._hash_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HASH_KEY_INFO).derive(
            current_key
        )

    @property
    def key_id(self) -> str:
        return self._current_id

    def seal(self, value: str, *, column: str) -> Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._keys[self._current_id].encrypt(nonce, value.encode("utf-8"), column.encode())
        return Sealed(nonce + ciphertext, self._current_id)

    def open(self, sealed: bytes, *, key_id: str, column: str) -> str:
        cipher = self._keys.get(key_id)
        if cipher is None:
            raise UndecryptableValue(f"no key {key_id} is configured for {column}")
        try:
            plain = cipher.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], column.encode())
        except InvalidTag:
            raise UndecryptableValue(f"{column} does not decrypt (tampered or wrong key)") from None
        return plain.decode("utf-8")

    def lookup_hash(self, value: str, *, kind: str) -> bytes:
        """HMAC of the normalised value; equal inputs give equal hashes, nothing else is learnt."""
        normalised = normalise(value, kind=kind)
        return hmac.new(self._hash_key, f"{kind}:{normalised}".encode(), hashlib.sha256).digest()


def normalise(value: str, *, kind: str) -> str:
    """Emails compare case-insensitively; phones by their digits (and a leading +)."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        return ("+" if value.startswith("+") else "") + "".join(ch for ch in value if ch.isdigit())
    return value
