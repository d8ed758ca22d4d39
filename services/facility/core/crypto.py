"""Every byte medcell stores encrypted passes through here: AES-256-GCM, one key per record.

Nobody outside this module creates nonces or calls the cipher. Sealed values are
``nonce (12 bytes) || ciphertext || tag (16 bytes)``; the associated data binds each value to
its facility, table, record and field, so a ciphertext copied into another row does not open,
and to the plain columns that give it meaning (see bindings.py).

The cipher is libsodium's, reached through PyNaCl's compiled module. PyNaCl's Python wrapper
(``nacl.bindings.crypto_aead_aes256gcm_*``) formats seven error messages on every call, which
cost ten times the cipher itself for a 300-byte message; the checks it makes are made here once,
on values this module builds itself. If a PyNaCl release drops that private module, the public
wrapper takes over: slower, same bytes.
"""

import hashlib
import hmac
import json

import nacl.bindings
import nacl.exceptions
import nacl.signing
import nacl.utils

from services.facility.core.errors import CryptoError, CryptoUnavailable

try:
    # Private to PyNaCl, so its shape is checked here and the pinned range in pyproject.toml is
    # the one it was checked with; without it the public binding below does the same, slower.
    from nacl._sodium import ffi, lib

    lib.crypto_aead_aes256gcm_encrypt, lib.crypto_aead_aes256gcm_decrypt  # noqa: B018
except (ImportError, AttributeError):
    ffi = lib = None

FAST = lib is not None
KEY_BYTES = nacl.bindings.crypto_aead_aes256gcm_KEYBYTES
NONCE_BYTES = nacl.bindings.crypto_aead_aes256gcm_NPUBBYTES
TAG_BYTES = nacl.bindings.crypto_aead_aes256gcm_ABYTES
OVERHEAD = NONCE_BYTES + TAG_BYTES


def check_available() -> None:
    """Raise CryptoUnavailable unless this CPU can do AES-256-GCM (it needs AES-NI)."""
    if FAST:
        if lib.sodium_init() < 0 or lib.crypto_aead_aes256gcm_is_available() != 1:
            raise CryptoUnavailable("AES-256-GCM is not available on this CPU (AES-NI missing).")
        return
    try:
        _encrypt(bytes(KEY_BYTES), b"", b"", bytes(NONCE_BYTES))
    except Exception as e:  # PyNaCl refuses before it encrypts anything
        raise CryptoUnavailable("AES-256-GCM is not available on this CPU (AES-NI missing).") from e


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return nacl.utils.random(KEY_BYTES)


def mark(key: bytes, data: bytes) -> str:
    """A keyed hash (BLAKE2b-256, hex): who lacks the key can neither invert nor test it."""
    return hashlib.blake2b(data, key=key, digest_size=32, person=b"medcell-mark").hexdigest()


def aad(facility: str, table: str, record_id: str, field: str, bound: tuple = ()) -> bytes:
    """Associated data that pins a sealed value to exactly one place.

    `bound` are the record's plain columns that must not change either (its conversation,
    author, time): a database writer without keys who changes one makes the value fail to open.
    """
    if not bound:
        return f"medcell/1|{facility}|{table}|{record_id}|{field}".encode()
    columns = json.dumps(list(bound), separators=(",", ":"))
    return f"medcell/2|{facility}|{table}|{record_id}|{field}|{columns}".encode()


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt and authenticate plaintext under key with a fresh random nonce."""
    _check_key(key)
    nonce = nacl.utils.random(NONCE_BYTES)
    return nonce + _encrypt(key, plaintext, associated, nonce)


def unseal(key: bytes, sealed: bytes, associated: bytes) -> bytes:
    """Decrypt a value made by seal(); CryptoError if anything about it is not as sealed."""
    _check_key(key)
    if len(sealed) < OVERHEAD:
        raise CryptoError("Sealed value is truncated.")
    return _decrypt(key, sealed[NONCE_BYTES:], associated, sealed[:NONCE_BYTES])


def wrap(kek: bytes, record_key: bytes, associated: bytes) -> bytes:
    """Encrypt a record key under a key-encryption key."""
    return seal(kek, record_key, b"wrap|" + associated)


def unwrap(kek: bytes, wrapped: bytes, associated: bytes) -> bytes:
    """Recover a record key wrapped by wrap()."""
    return unseal(kek, wrapped, b"wrap|" + associated)


def new_signing_seed() -> bytes:
    """A fresh Ed25519 private key (its 32-byte seed)."""
    return nacl.utils.random(nacl.bindings.crypto_sign_SEEDBYTES)


def sign(seed: bytes, message: bytes) -> bytes:
    """The detached 64-byte Ed25519 signature of message."""
    return nacl.signing.SigningKey(seed).sign(message).signature


def verify_key(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key that belongs to a seed."""
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise CryptoError("A key must be 32 bytes.")


def _encrypt(key: bytes, plaintext: bytes, associated: bytes, nonce: bytes) -> bytes:
    """Ciphertext and tag; the inputs are checked by the callers in this module."""
    if not FAST:
        return nacl.bindings.crypto_aead_aes256gcm_encrypt(plaintext, associated, nonce, key)
    out = ffi.new("unsigned char[]", len(plaintext) + TAG_BYTES)
    out_len = ffi.new("unsigned long long *")
    rc = lib.crypto_aead_aes256gcm_encrypt(
        out, out_len, plaintext, len(plaintext), associated, len(associated), ffi.NULL, nonce, key
    )
    if rc != 0:
        raise CryptoError("Encryption failed.")
    return ffi.buffer(out, out_len[0])[:]


def _decrypt(key: bytes, body: bytes, associated: bytes, nonce: bytes) -> bytes:
    if not FAST:
        try:
            return nacl.bindings.crypto_aead_aes256gcm_decrypt(body, associated, nonce, key)
        except nacl.exceptions.CryptoError as e:
            raise CryptoError("Sealed value failed authentication.") from e
    out = ffi.new("unsigned char[]", len(body) - TAG_BYTES or 1)
    out_len = ffi.new("unsigned long long *")
    rc = lib.crypto_aead_aes256gcm_decrypt(
        out, out_len, ffi.NULL, body, len(body), associated, len(associated), nonce, key
    )
    if rc != 0:
        raise CryptoError("Sealed value failed authentication.")
    return ffi.buffer(out, out_len[0])[:]


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from a facility secret without weakening its use."""
    return hashlib.blake2b(
        purpose.encode(), key=secret, digest_size=32, person=b"medcell-derive"
    ).digest()


def mac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA-256 of message: a name for it that only the key's holder can compute."""
    return hmac.new(key, message, hashlib.sha256).digest()
