"""Filing a conversation into the practice's records: reference, exports, access log, reminders.

One facade over the pieces, so the API and the pages call the same rules: every export and every
staff access is written to the patient's access log, and nothing of an export stays behind.
"""

import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from services.facility.core import accounts, fhir, pdf, pdf_worker, references
from services.facility.core.access_log import AccessLog
from services.facility.core.conversations import Conversations
from services.facility.core.errors import BadRequest, ExportFailed, ExportTooLarge
from services.facility.core.notes import Notes

FORMATS = ("pdf", "fhir")
# Staff are reminded of conversations that expire within this window (to export them first).
REMINDER_SECONDS = 24 * 3600
# fpdf2 lays out some 80,000 characters a second here: this keeps a PDF well within the
# gateway's 60 s (and is hundreds of pages); a longer conversation is exported as FHIR.
MAX_PDF_CHARS = 1_000_000
# What an export's file name calls it, by the export's language (German otherwise).
EXPORT_WORD = {"de": "Unterhaltung", "en": "Conversation"}
# Letters that Unicode decomposition does not bring to ASCII, spelled as people would.
_SPELLED = str.maketrans(
    {
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
        "Ä": "Ae",
        "Ö": "Oe",
        "Ü": "Ue",
        "ß": "ss",
        "ẞ": "SS",
        "ı": "i",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "æ": "ae",
        "Æ": "Ae",
        "œ": "oe",
        "Œ": "Oe",
        "þ": "th",
        "ð": "d",
    }
)
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
MAX_NAME_PART = 60


@dataclass
class Export:
    """What an export answers with: its content type, a file name and the bytes (streamed)."""

    content_type: str
    filename: str
    body: Iterable[bytes]


@dataclass
class Records:
    """Reference, export and access log of one facility's conversations."""

    conversations: Conversations
    facility_name: str
    # The practice's time zone: the PDF's times are in it (MEDCELL_TIMEZONE).
    timezone: str = "UTC"

    @property
    def access_log(self) -> AccessLog:
        c = self.conversations
        return AccessLog(c.keyring, c.facility, c.clock)

    # -- reference ------------------------------------------------------------------------

    def reference(self, conn: sqlite3.Connection, conv_id: str) -> dict | None:
        self.conversations.require_live(conn, conv_id)
        c = self.conversations
        return references.get(conn, c.keyring, c.facility, conv_id)

    def set_reference(self, conn: sqlite3.Connection, conv_id: str, value: object) -> dict | None:
        self.conversations.require_live(conn, conv_id)
        c = self.conversations
        return references.put(conn, c.keyring, c.facility, conv_id, value)

    # -- access log -----------------------------------------------------------------------

    def opened(self, conn: sqlite3.Connection, conv_id: str, who: str) -> None:
        """A staff account opened the conversation (its page, or its messages in the API)."""
        self.access_log.record(conn, conv_id, who, "open")

    def downloaded(self, conn: sqlite3.Connection, conv_id: str, who: str, filename: str) -> None:
        self.access_log.record(conn, conv_id, who, "download", filename)

    def accesses(self, conn: sqlite3.Connection, conv_id: str) -> list[dict]:
        """Who of the staff opened, downloaded or exported what, newest first."""
        self.conversations.require_live(conn, conv_id)
        return self.access_log.entries(conn, conv_id)

    # -- export ---------------------------------------------------------------------------

    def export(
        self,
        conn: sqlite3.Connection,
        conv_id: str,
        fmt: object,
        who: str,
        lang: str,
        notes: bool = False,
    ) -> Export:
        """The conversation as PDF or FHIR, logged for the patient; nothing of it is kept.
        `notes`: the team's internal notes go into a PDF too (only when asked for; a FHIR
        export never carries them)."""
        if fmt not in FORMATS:
            raise BadRequest("format must be 'pdf' or 'fhir'")
        data = self._gather(conn, conv_id, who)
        if notes and fmt == "pdf":
            names = accounts.display_names(conn)
            data["notes"] = [
                {**n, "author_name": names.get(n.pop("staff_id"))}
                for n in Notes(self.conversations).list(conn, conv_id)
            ]
        stem = export_stem(data["reference"], data["exported_at"], lang)

        def chunks(att_id: str) -> Iterator[bytes]:
            return self.conversations.attachment_bytes(conn, att_id)

        if fmt == "pdf":
            length = sum(len(m["body"]) for m in data["messages"])
            if length > MAX_PDF_CHARS:
                raise ExportTooLarge(
                    f"the conversation has {length} characters of text, more than one PDF "
                    f"holds ({MAX_PDF_CHARS}): export it as FHIR"
                )
            try:  # in a child process: what laying out a PDF costs leaves with it
                document = pdf_worker.render(data, chunks, lang)
            except pdf_worker.WorkerFailed as e:
                raise ExportFailed(
                    "the PDF could not be made (too large or too slow): export it as FHIR"
                ) from e
            finally:
                _release_page_cache(conn)
            self.access_log.record(conn, conv_id, who, "export_pdf")
            return Export(pdf.CONTENT_TYPE, f"{stem}.pdf", [document])
        # Streamed: logged before the first byte leaves, as the patient must see every copy.
        self.access_log.record(conn, conv_id, who, "export_fhir")
        stream = fhir.stream(data, chunks, lang)
        return Export(fhir.CONTENT_TYPE, f"{stem}-FHIR.json", _then_release(stream, conn))

    def _gather(self, conn: sqlite3.Connection, conv_id: str, who: str) -> dict:
        c = self.conversations
        summary = c.get(conn, conv_id)
        # Colleagues by their display names: who wrote each staff message, who exported.
        names = accounts.display_names(conn)
        messages = c.messages(conn, conv_id)
        for m in messages:
            writer = m.pop("staff_id")
            m["author_name"] = names.get(writer) if writer else None
        row = conn.execute("SELECT id FROM staff WHERE username = ?", (who,)).fetchone()
        return {
            "facility": c.facility,
            "facility_name": self.facility_name,
            "timezone": self.timezone,
            "title": summary["title"],
            "reference": summary["reference"],
            "messages": messages,
            "exported_at": c.clock(),
            "exported_by": names.get(row[0], who) if row else who,
        }


def _release_page_cache(conn: sqlite3.Connection) -> None:
    """What the export read of the database leaves in the page cache, dropped (store.py)."""
    store = getattr(conn, "store", None)
    if store is not None:
        store.release_page_cache()


def _then_release(stream: Iterator[bytes], conn: sqlite3.Connection) -> Iterator[bytes]:
    try:
        yield from stream
    finally:
        _release_page_cache(conn)


def export_stem(reference: dict | None, exported_at: int, lang: str) -> str:
    """An export's file name without its ending: what it is, whose (the practice's patient
    number, else the patient's name; never the title, which is free text), and the day (UTC).
    Only ASCII letters, digits and hyphens: every file system and mail program keeps them."""
    reference = reference or {}
    whose = safe_part(reference.get("number") or reference.get("name") or "")
    day = datetime.fromtimestamp(exported_at / 1_000_000, UTC).date().isoformat()
    return "-".join(p for p in (EXPORT_WORD.get(lang, EXPORT_WORD["de"]), whose, day) if p)


def safe_part(text: str) -> str:
    """Text spelled in ASCII letters and digits joined by single hyphens, at most 60 long."""
    spelled = unicodedata.normalize("NFKD", text.translate(_SPELLED))
    ascii_only = spelled.encode("ascii", "ignore").decode()
    return _UNSAFE.sub("-", ascii_only).strip("-")[:MAX_NAME_PART].rstrip("-")


def expiring_soon(summaries: list[dict], now: int, within: int = REMINDER_SECONDS) -> list[dict]:
    """The conversations that expire within `within` seconds, soonest first."""
    soon = [s for s in summaries if s["expires_at"] <= now + within * 1_000_000]
    return sorted(soon, key=lambda s: s["expires_at"])
