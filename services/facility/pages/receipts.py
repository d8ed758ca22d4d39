"""Deletion receipts as the pages show them: the contract's fields (signed, never changed) plus a
readable time and, in words, what was deleted."""

from datetime import datetime

from flask import g

from services.facility.http.context import ctx
from services.facility.pages import i18n


def shown(receipt: dict | None) -> dict | None:
    """The receipt with `when`, its deletion time in the reader's language."""
    if receipt is None:
        return None
    moment = datetime.strptime(receipt["deleted_at"], "%Y-%m-%dT%H:%M:%S%z")
    lang = g.get("lang", i18n.DEFAULT)
    when = i18n.format_time(int(moment.timestamp()) * 1_000_000, lang, ctx().config.timezone)
    return {**receipt, "when": when, "what": what(receipt["counts"], lang)}


def what(counts: dict, lang: str) -> str:
    """The counts as a sentence: "2 Nachrichten und 1 Datei, samt 4 Schlüsseln zum …"."""
    return i18n.text(
        lang,
        "receipt.counts_text",
        messages=i18n.text(lang, "receipt.n_messages", n=counts["messages"]),
        attachments=i18n.text(lang, "receipt.n_files", n=counts["attachments"]),
        keys=i18n.text(lang, "receipt.n_keys", n=counts["record_keys"]),
    )


def listed(receipts: list[dict]) -> list[dict]:
    return [shown(r) for r in receipts]
