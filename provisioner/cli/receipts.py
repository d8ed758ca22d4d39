"""Deletion receipts offline: read a receipt and a receipt key, check the signature.

Only the contract's rules (medcell_common.receipts) and PyNaCl: no facility needs to run, so a
receipt can be checked long after its facility was deleted, given the key printed then.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

import nacl.exceptions
import nacl.signing

from medcell_common import receipts as fmt
from provisioner.host.errors import InvalidArgument, ReceiptInvalid


def read_json(path: Path, what: str) -> object:
    """The JSON document in a file; InvalidArgument if it cannot be read."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidArgument(f"cannot read the {what} {path}: {e}") from e


def load_receipt(path: Path) -> dict:
    """A receipt file: the receipt itself, or an answer that carries it under "receipt"."""
    document = read_json(path, "receipt")
    if isinstance(document, dict) and isinstance(document.get("receipt"), dict):
        document = document["receipt"]  # e.g. saved from DELETE or `facility delete --json`
    return document


def load_key(path: Path) -> dict:
    """A receipt key file: {"algorithm", "public_key"} as the facility serves it, or bare base64."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"cannot read the key {path}: {e}") from e
    if text.startswith("{"):
        document = read_json(path, "key")
        if isinstance(document, dict) and isinstance(document.get("receipt_key"), dict):
            document = document["receipt_key"]  # e.g. saved from `facility delete --json`
        return document
    return {"algorithm": fmt.ALGORITHM, "public_key": text}


def public_key_bytes(key: object) -> bytes:
    """The 32 bytes of an Ed25519 receipt key; InvalidArgument for anything else."""
    if not isinstance(key, dict) or key.get("algorithm") != fmt.ALGORITHM:
        raise InvalidArgument('a receipt key is {"algorithm": "Ed25519", "public_key": "<base64>"}')
    try:
        raw = base64.b64decode(str(key.get("public_key", "")), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidArgument("the receipt key's public_key is not standard base64") from e
    if len(raw) != 32:
        raise InvalidArgument("an Ed25519 public key has 32 bytes")
    return raw


def verify(receipt: object, key: object, facility: str | None = None) -> dict:
    """Return the receipt if its signature is valid under key; ReceiptInvalid otherwise."""
    public = public_key_bytes(key)
    try:
        fmt.check_shape(receipt)
    except ValueError as e:
        raise ReceiptInvalid(f"not a valid receipt: {e}") from e
    if facility is not None and receipt["facility"] != facility:
        raise ReceiptInvalid(f"the receipt is from facility {receipt['facility']}, not {facility}")
    signature = base64.b64decode(receipt["signature"])
    try:
        nacl.signing.VerifyKey(public).verify(fmt.signed_bytes(receipt), signature)
    except nacl.exceptions.BadSignatureError as e:
        raise ReceiptInvalid(
            "the signature does not match: the receipt was changed or signed with another key"
        ) from e
    return receipt
