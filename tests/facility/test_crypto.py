"""The crypto module: AES-256-GCM with per-record keys and place-binding associated data."""

import importlib
import sys

import pytest

from services.facility.core import crypto
from services.facility.core.errors import CryptoError


def test_seal_and_unseal_round_trip():
    key = crypto.new_key()
    aad = crypto.aad("alpha", "messages", "m1", "body")
    assert crypto.unseal(key, crypto.seal(key, b"Ausschlag am Arm", aad), aad) == (
        b"Ausschlag am Arm"
    )


def test_every_seal_uses_a_fresh_nonce():
    key, aad = crypto.new_key(), b"x"
    assert crypto.seal(key, b"same", aad) != crypto.seal(key, b"same", aad)


def test_record_keys_are_256_bit_and_distinct():
    keys = {crypto.new_key() for _ in range(100)}
    assert len(keys) == 100 and all(len(k) == 32 for k in keys)


@pytest.mark.parametrize(
    "other",
    [
        ("beta", "messages", "m1", "body"),  # another facility
        ("alpha", "messages", "m2", "body"),  # another row
        ("alpha", "conversations", "m1", "title"),  # another table and field
    ],
)
def test_ciphertext_moved_elsewhere_fails_to_open(other):
    key = crypto.new_key()
    sealed = crypto.seal(key, b"secret", crypto.aad("alpha", "messages", "m1", "body"))
    with pytest.raises(CryptoError):
        crypto.unseal(key, sealed, crypto.aad(*other))


def test_wrapped_key_moved_to_another_record_fails_to_unwrap():
    kek, record_key = crypto.new_key(), crypto.new_key()
    wrapped = crypto.wrap(kek, record_key, b"record-a")
    assert crypto.unwrap(kek, wrapped, b"record-a") == record_key
    with pytest.raises(CryptoError):
        crypto.unwrap(kek, wrapped, b"record-b")


@pytest.mark.parametrize("position", [0, 12, 20, -1])
def test_a_flipped_bit_anywhere_fails(position):
    key, aad = crypto.new_key(), b"aad"
    sealed = bytearray(crypto.seal(key, b"lab results: normal", aad))
    sealed[position] ^= 0x01
    with pytest.raises(CryptoError):
        crypto.unseal(key, bytes(sealed), aad)


def test_a_truncated_value_fails():
    key = crypto.new_key()
    with pytest.raises(CryptoError):
        crypto.unseal(key, crypto.seal(key, b"x", b"a")[:20], b"a")


def test_another_records_key_cannot_open_it():
    aad = b"aad"
    sealed = crypto.seal(crypto.new_key(), b"message one", aad)
    with pytest.raises(CryptoError):
        crypto.unseal(crypto.new_key(), sealed, aad)


def test_sealed_values_are_standard_aes_256_gcm():
    """Any AES-256-GCM implementation opens them: here PyNaCl's own reference binding."""
    import nacl.bindings

    key, aad = crypto.new_key(), b"facility|messages|m1|body"
    sealed = crypto.seal(key, b"Blutwerte unauffaellig", aad)
    assert nacl.bindings.crypto_aead_aes256gcm_decrypt(sealed[12:], aad, sealed[:12], key) == (
        b"Blutwerte unauffaellig"
    )
    nonce = crypto.new_key()[:12]
    theirs = nacl.bindings.crypto_aead_aes256gcm_encrypt(b"", aad, nonce, key)
    assert crypto.unseal(key, nonce + theirs, aad) == b""


@pytest.mark.parametrize("key", [b"", b"x" * 31, b"x" * 33, "x" * 32])
def test_a_key_of_the_wrong_size_or_type_is_refused(key):
    with pytest.raises(CryptoError):
        crypto.seal(key, b"data", b"aad")


@pytest.fixture
def lose_private_binding(monkeypatch):
    """Reloads the crypto module as it loads when PyNaCl's private compiled module is missing."""

    def lose() -> None:
        monkeypatch.setitem(sys.modules, "nacl._sodium", None)  # makes its import fail
        importlib.reload(crypto)

    yield lose
    monkeypatch.undo()
    importlib.reload(crypto)
    assert crypto.FAST


def test_without_the_private_binding_the_public_one_opens_and_seals_the_same_format(
    lose_private_binding,
):
    key, aad = crypto.new_key(), crypto.aad("alpha", "messages", "m1", "body")
    assert crypto.FAST
    fast = crypto.seal(key, b"Ausschlag am Arm", aad)
    lose_private_binding()
    assert not crypto.FAST
    crypto.check_available()
    assert crypto.unseal(key, fast, aad) == b"Ausschlag am Arm"
    sealed = crypto.seal(key, b"Ausschlag am Arm", aad)
    assert crypto.unseal(key, sealed, aad) == b"Ausschlag am Arm"
    with pytest.raises(CryptoError):
        crypto.unseal(key, sealed[:-1] + bytes([sealed[-1] ^ 1]), aad)
    with pytest.raises(CryptoError):
        crypto.unseal(key, sealed, crypto.aad("beta", "messages", "m1", "body"))
