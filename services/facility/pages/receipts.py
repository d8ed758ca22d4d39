"""Deletion receipts as the pages show them: the contract's fields plus a readable time."""

from datetime import datetime

from flask import g

from services.facility.pages import i18n


def shown(receipt: dict | None) -> dict | None:
    """The receipt with `when`, its deletion time in the reader's language."""
    if receipt is None:
        return None
    moment = datetime.strptime(receipt["deleted_at"], "%Y-%m-%dT%H:%M:%S%z")
    when = i18n.format_time(int(moment.timestamp()) * 1_000_000, g.get("lang", i18n.DEFAULT))
    return {**receipt, "when": when}


def listed(receipts: list[dict]) -> list[dict]:
    return [shown(r) for r in receipts]
