"""Every byte medcell stores encrypted passes through here: AES-256-GCM, one key per record.

Nobody outside this module creates nonces or calls the cipher. Sealed values are
``nonce (12 bytes) || ciphertext || tag (16 bytes)``; the associated data binds each value to
its facility, table, record and field, so a ciphertext copied into another row does not open.
"""

import nacl.bindings as _aead
import nacl.exceptions
import nacl.utils

from .errors import CryptoError, CryptoUnavailable

KEY_BYTES = 32
NONCE_BYTES = _aead.crypto_aead_aes256gcm_NPUBBYTES
OVERHEAD = NONCE_BYTES + _aead.crypto_aead_aes256gcm_ABYTES


def check_available() -> None:
    """Raise CryptoUnavailable unless this CPU can do AES-256-GCM (it needs AES-NI)."""
    # PyNaCl has no public availability check: the cipher call itself raises where unsupported.
    try:
        seal(new_key(), b"probe", b"probe")
    except nacl.exceptions.UnavailableError as e:
        raise CryptoUnavailable("AES-256-GCM is not available on this CPU (AES-NI missing).") from e


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return nacl.utils.random(KEY_BYTES)


def aad(facility: str, table: str, record_id: str, field: str) -> bytes:
    """Associated data that pins a sealed value to exactly one place."""
    return f"medcell/1|{facility}|{table}|{record_id}|{field}".encode()


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt and authenticate plaintext under key with a fresh random nonce."""
    nonce = nacl.utils.random(NONCE_BYTES)
    return nonce + _aead.crypto_aead_aes256gcm_encrypt(plaintext, associated, nonce, key)


def unseal(key: bytes, sealed: bytes, associated: bytes) -> bytes:
    """Decrypt a value made by seal(); CryptoError if anything about it is not as sealed."""
    if len(sealed) < OVERHEAD:
        raise CryptoError("Sealed value is truncated.")
    try:
        return _aead.crypto_aead_aes256gcm_decrypt(
            sealed[NONCE_BYTES:], associated, sealed[:NONCE_BYTES], key
        )
    except nacl.exceptions.CryptoError as e:
        raise CryptoError("Sealed value failed authentication.") from e


def wrap(kek: bytes, record_key: bytes, associated: bytes) -> bytes:
    """Encrypt a record key under a key-encryption key."""
    return seal(kek, record_key, b"wrap|" + associated)


def unwrap(kek: bytes, wrapped: bytes, associated: bytes) -> bytes:
    """Recover a record key wrapped by wrap()."""
    return unseal(kek, wrapped, b"wrap|" + associated)
