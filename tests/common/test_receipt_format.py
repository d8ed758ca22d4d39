"""The receipt format: exactly the contract's fields, and the bytes the signature covers."""

import pytest

from medcell_common import receipts as fmt

RECEIPT = {
    "receipt_id": "a2VORETd1I9fA-xMIJF07A",
    "facility": "praxis-müller",
    "deleted_at": "2026-12-02T03:36:40Z",
    "reason": "patient",
    "counts": {"record_keys": 3, "messages": 2, "attachments": 0},
    "verified": True,
    "signature": "A" * 86 + "==",
}


def test_signed_bytes_are_sorted_compact_utf8_json_without_the_signature():
    assert (
        fmt.signed_bytes(RECEIPT)
        == (
            '{"counts":{"attachments":0,"messages":2,"record_keys":3},'
            '"deleted_at":"2026-12-02T03:36:40Z","facility":"praxis-müller",'
            '"reason":"patient","receipt_id":"a2VORETd1I9fA-xMIJF07A","verified":true}'
        ).encode()
    )


def test_a_well_formed_receipt_passes_the_shape_check():
    assert fmt.check_shape(RECEIPT) is RECEIPT


@pytest.mark.parametrize(
    "change,named",
    [
        ({"title": "Knie"}, "not allowed: title"),
        ({"reason": "admin"}, "reason"),
        ({"verified": 1}, "verified"),
        ({"counts": {"messages": True, "attachments": 0, "record_keys": 0}}, "counts"),
        ({"counts": {"messages": -1, "attachments": 0, "record_keys": 0}}, "counts"),
        ({"counts": {"messages": 1, "attachments": 0}}, "counts"),
        ({"deleted_at": "2026-12-02 03:36:40"}, "deleted_at"),
        ({"receipt_id": "short"}, "receipt_id"),
        ({"signature": "not base64"}, "signature"),
    ],
)
def test_anything_else_is_refused_with_the_field_named(change, named):
    with pytest.raises(ValueError, match=named):
        fmt.check_shape({**RECEIPT, **change})


def test_a_missing_field_is_named():
    incomplete = {k: v for k, v in RECEIPT.items() if k != "facility"}
    with pytest.raises(ValueError, match="missing: facility"):
        fmt.check_shape(incomplete)
