"""A conversation as a FHIR R4 Bundle of Communications, streamed so memory stays flat.

Attachments go inline (`payload.contentAttachment.data`), base64-encoded one stored chunk at a
time: a conversation with 24 MiB files costs the app a chunk of memory, not the file three times
over. Nothing is written anywhere; the bytes go straight to the response.
"""

import base64
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

CONTENT_TYPE = "application/fhir+json"
_LABELS = {
    "de": {
        "staff": "{facility} (Praxisteam)",
        "automatic": "{facility} (automatische Antwort)",
        "patient": "Patient/in",
    },
    "en": {
        "staff": "{facility} (practice team)",
        "automatic": "{facility} (automatic reply)",
        "patient": "Patient",
    },
}


def instant(us: int) -> str:
    """A FHIR instant/dateTime in UTC with milliseconds."""
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def stream(
    export: dict, chunks: Callable[[str], Iterable[bytes]], lang: str = "de"
) -> Iterator[bytes]:
    """The Bundle as JSON bytes; `chunks(att_id)` yields an attachment's decrypted content."""
    labels = _LABELS.get(lang, _LABELS["de"])
    patient_display = _patient_display(export["reference"]) or labels["patient"]
    staff_display = labels["staff"].format(facility=export["facility_name"])
    automatic_display = labels["automatic"].format(facility=export["facility_name"])
    patient_entry = _patient(export["reference"])
    head = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(export["exported_at"]),
        "entry": [],
    }
    text = json.dumps(head, ensure_ascii=False)
    # Entries are written one by one into the "entry" array this placeholder opened.
    opening, closing = text.rsplit('"entry": []', 1)
    yield (opening + '"entry": [').encode()
    first = True
    if patient_entry is not None:
        yield json.dumps(patient_entry, ensure_ascii=False).encode()
        first = False
    subject = None
    if patient_entry is not None:
        subject = {"reference": patient_entry["fullUrl"], "display": patient_display}
    for message in export["messages"]:
        staff = message["author"] == "staff"
        writer = automatic_display if message.get("automatic") else staff_display
        sender, recipient = (writer, patient_display) if staff else (patient_display, staff_display)
        resource = _communication(message, sender, recipient, subject, export["title"])
        entry = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource}
        if not first:
            yield b","
        first = False
        yield from _with_data(json.dumps(entry, ensure_ascii=False), message, chunks)
    yield ("]" + closing).encode()


def _communication(
    message: dict, sender: str, recipient: str, subject: dict | None, title: str
) -> dict:
    payload = []
    if message["body"]:
        payload.append({"contentString": message["body"]})
    for att in message["attachments"]:
        attachment = {
            "contentType": att["content_type"],
            "title": att["filename"],
            "size": att["size"],
            "data": _placeholder(att["id"]),
            "creation": instant(message["created_at"]),
        }
        payload.append({"contentAttachment": attachment})
    resource = {
        "resourceType": "Communication",
        "identifier": [{"value": message["id"]}],
        # Deleted by its writer: FHIR's word for a record that should not have been made.
        "status": "entered-in-error" if message.get("deleted_at") else "completed",
        "sent": instant(message["created_at"]),
        "sender": {"display": sender},
        "recipient": [{"display": recipient}],
        "payload": payload,
    }
    if subject is not None:
        resource["subject"] = subject
    if title:
        resource["topic"] = {"text": title}
    return resource


def _with_data(text: str, message: dict, chunks: Callable[[str], Iterable[bytes]]):
    """The entry's JSON with each attachment placeholder replaced by its streamed base64."""
    for att in message["attachments"]:
        # The placeholder as a JSON value with its key: a body text cannot contain this
        # sequence unescaped, so only the real field matches.
        marker = f'"data": "{_placeholder(att["id"])}"'
        before, text = text.split(marker, 1)
        yield (before + '"data": "').encode()
        yield from _base64(chunks(att["id"]))
        yield b'"'
    yield text.encode()


def _base64(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Standard base64 of the concatenated pieces, without holding them all."""
    rest = b""
    for piece in pieces:
        data = rest + piece
        cut = len(data) - len(data) % 3
        rest = data[cut:]
        if cut:
            yield base64.b64encode(data[:cut])
    if rest:
        yield base64.b64encode(rest)


def _placeholder(att_id: str) -> str:
    return f"medcell-attachment-data:{att_id}"


def _patient(reference: dict | None) -> dict | None:
    if not reference:
        return None
    patient: dict = {"resourceType": "Patient"}
    if reference.get("number"):
        patient["identifier"] = [{"value": reference["number"]}]
    if reference.get("name"):
        patient["name"] = [{"text": reference["name"]}]
    if reference.get("birth_date"):
        patient["birthDate"] = reference["birth_date"]
    return {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": patient}


def _patient_display(reference: dict | None) -> str:
    if not reference:
        return ""
    return reference.get("name") or (f"#{reference['number']}" if reference.get("number") else "")
