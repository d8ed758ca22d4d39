"""Filing a conversation: patient reference, PDF and FHIR exports, the patient's access log."""

import base64
import io
import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from PIL import Image
from pypdf import PdfReader

from services.facility.core.records import expiring_soon
from tests.facility.conftest import login

REFERENCE = {"name": "Jürgen Öztürk-Maaß", "birth_date": "1984-03-07", "number": "P-4711"}


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def filed(client, staff_auth):
    """A conversation with a reference, messages both ways, a photo and a PDF."""
    conv = client.post(
        "/api/v1/conversations",
        json={"title": "Knie rechts", "reference": REFERENCE},
        headers=staff_auth,
    ).json
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    base = f"/api/v1/conversations/{conv['id']}"
    client.post(
        f"{base}/messages", json={"body": "Grüße, wie geht es dem Knie?"}, headers=staff_auth
    )
    client.post(
        f"{base}/messages", json={"body": "Besser, danke! Größer geworden."}, headers=patient
    )
    photo = client.post(
        f"{base}/attachments",
        headers=patient,
        data={"file": (io.BytesIO(png()), "knie.png", "image/png"), "body": "So sieht es aus"},
    ).json
    letter = client.post(
        f"{base}/attachments",
        headers=staff_auth,
        data={"file": (io.BytesIO(b"%PDF-1.4 Befund " * 100), "befund.pdf", "application/pdf")},
    ).json
    return {**conv, "patient": patient, "base": base, "photo": photo, "letter": letter}


# -- patient reference --------------------------------------------------------------------


def test_reference_set_on_create_is_shown_to_staff_only(client, staff_auth, filed):
    got = client.get(f"{filed['base']}/reference", headers=staff_auth)
    assert got.status_code == 200
    assert got.json == {"reference": REFERENCE}
    assert client.get(f"{filed['base']}/reference", headers=filed["patient"]).status_code == 403
    assert "reference" not in client.get(filed["base"], headers=filed["patient"]).json


def test_reference_can_be_changed_and_removed(client, staff_auth, filed):
    changed = client.put(
        f"{filed['base']}/reference", json={"name": "  Jana Nowak  "}, headers=staff_auth
    )
    assert changed.json == {"reference": {"name": "Jana Nowak"}}
    cleared = client.put(
        f"{filed['base']}/reference", json={"name": "", "number": " "}, headers=staff_auth
    )
    assert cleared.json == {"reference": None}
    assert client.get(f"{filed['base']}/reference", headers=staff_auth).json == {"reference": None}


@pytest.mark.parametrize(
    "bad",
    [
        {"birth_date": "1984-02-30"},
        {"birth_date": "07.03.1984"},
        {"name": "x" * 201},
        {"name": "two\nlines"},
        {"shoe_size": "44"},
        "Jürgen",
    ],
)
def test_invalid_reference_creates_nothing(client, staff_auth, bad):
    response = client.post(
        "/api/v1/conversations", json={"title": "t", "reference": bad}, headers=staff_auth
    )
    # A text over its documented maxLength is a validation error (400), as everywhere in the API.
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    assert client.get("/api/v1/conversations", headers=staff_auth).json == {"conversations": []}


def test_reference_of_unknown_conversation_is_404(client, staff_auth):
    url = "/api/v1/conversations/" + "A" * 22 + "/reference"
    assert client.put(url, json={"name": "x"}, headers=staff_auth).status_code == 404


# -- FHIR ---------------------------------------------------------------------------------


def test_fhir_export_is_a_valid_r4_bundle_with_every_message(client, staff_auth, filed):
    response = client.get(f"{filed['base']}/export?format=fhir", headers=staff_auth)
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.data)
    bundle = Bundle.model_validate(data)  # raises on anything the specification forbids
    assert bundle.type == "collection"

    resources = [e["resource"] for e in data["entry"]]
    patient = [r for r in resources if r["resourceType"] == "Patient"]
    assert patient == [
        {
            "resourceType": "Patient",
            "identifier": [{"value": "P-4711"}],
            "name": [{"text": REFERENCE["name"]}],
            "birthDate": "1984-03-07",
        }
    ]
    comms = [r for r in resources if r["resourceType"] == "Communication"]
    assert len(comms) == 4
    assert all(c["status"] == "completed" and c["sent"].endswith("Z") for c in comms)
    assert comms[0]["payload"] == [{"contentString": "Grüße, wie geht es dem Knie?"}]
    assert comms[0]["sender"] == {"display": "Alpha (Praxisteam)"}
    assert comms[0]["recipient"] == [{"display": REFERENCE["name"]}]
    assert comms[1]["sender"] == {"display": REFERENCE["name"]}

    photo = comms[2]["payload"]
    assert photo[0] == {"contentString": "So sieht es aus"}
    attachment = photo[1]["contentAttachment"]
    assert (attachment["contentType"], attachment["title"]) == ("image/png", "knie.png")
    assert base64.b64decode(attachment["data"]) == png()
    assert attachment["size"] == len(png())
    letter = comms[3]["payload"][-1]["contentAttachment"]
    assert base64.b64decode(letter["data"]) == b"%PDF-1.4 Befund " * 100


def test_fhir_export_streams_large_attachments_intact(client, staff_auth, conversation):
    # Several chunks whose sizes are not multiples of three: base64 must join them seamlessly.
    content = b"%PDF-" + bytes(range(256)) * 4099
    client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        headers=staff_auth,
        data={"file": (io.BytesIO(content), "scan.pdf")},
    )
    response = client.get(
        f"/api/v1/conversations/{conversation['id']}/export?format=fhir", headers=staff_auth
    )
    data = json.loads(response.data)
    Bundle.model_validate(data)
    attachment = data["entry"][0]["resource"]["payload"][0]["contentAttachment"]
    assert base64.b64decode(attachment["data"]) == content
    # No reference: no Patient entry, the patient is named generically.
    assert data["entry"][0]["resource"]["recipient"] == [{"display": "Patient/in"}]


def test_fhir_body_text_that_looks_like_the_placeholder_stays_text(client, staff_auth, filed):
    sneaky = f'"data": "medcell-attachment-data:{filed["photo"]["id"]}"'
    client.post(f"{filed['base']}/messages", json={"body": sneaky}, headers=staff_auth)
    data = json.loads(client.get(f"{filed['base']}/export?format=fhir", headers=staff_auth).data)
    comms = [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] != "Patient"]
    assert comms[-1]["payload"] == [{"contentString": sneaky}]
    assert base64.b64decode(comms[2]["payload"][1]["contentAttachment"]["data"]) == png()


# -- PDF ----------------------------------------------------------------------------------


def pdf_text(data: bytes) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages), reader


@pytest.mark.process
def test_pdf_export_holds_facility_reference_messages_and_attachments(client, staff_auth, filed):
    response = client.get(f"{filed['base']}/export?format=pdf", headers=staff_auth)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    text, reader = pdf_text(response.data)
    for expected in (
        "Verlauf der Unterhaltung",
        "Alpha",
        "Knie rechts",
        "Jürgen Öztürk-Maaß",
        "1984-03-07",
        "P-4711",
        "Grüße, wie geht es dem Knie?",
        "Besser, danke! Größer geworden.",
        "So sieht es aus",
        "knie.png",
        "befund.pdf · 1.6 KiB",
        "Praxisteam",
        "exportiert",  # the footer note
        "nurse",
    ):
        assert expected in text, expected
    images = [image for page in reader.pages for image in page.images]
    assert len(images) == 1  # the photo; the PDF letter is listed, not embedded


@pytest.mark.process
def test_pdf_export_in_english_and_with_characters_outside_the_font(client, staff_auth, filed):
    from services.facility.core.pdf import FONT_DIR

    assert (FONT_DIR / "DejaVuSans.ttf").is_file(), "needs fonts-dejavu-core (make fonts)"
    client.post(f"{filed['base']}/messages", json={"body": "Thanks 🙂 Ж"}, headers=staff_auth)
    response = client.get(f"{filed['base']}/export?format=pdf&lang=en", headers=staff_auth)
    text, _ = pdf_text(response.data)
    assert "Conversation record" in text and "Practice team" in text
    assert "Thanks ? Ж" in text  # DejaVu has Cyrillic, not emoji: replaced visibly


def test_export_format_and_language_are_checked(client, staff_auth, filed):
    for query in ("format=docx", "", "format=pdf&lang=fr"):
        response = client.get(f"{filed['base']}/export?{query}", headers=staff_auth)
        assert response.status_code == 400, query


def test_patients_cannot_export(client, filed):
    response = client.get(f"{filed['base']}/export?format=pdf", headers=filed["patient"])
    assert response.status_code == 403


@pytest.mark.process
def test_an_export_leaves_nothing_on_the_server_but_its_log_entry(app, client, staff_auth, filed):
    data_dir = app.extensions["medcell"].config.data_dir
    db = app.extensions["medcell"].store.conn()
    files = sorted(p.name for p in data_dir.rglob("*"))
    rows = {
        t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("messages", "attachments", "record_keys")
    }
    pdf = client.get(f"{filed['base']}/export?format=pdf", headers=staff_auth).data
    client.get(f"{filed['base']}/export?format=fhir", headers=staff_auth)
    assert sorted(p.name for p in data_dir.rglob("*")) == files
    assert rows == {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in rows}
    raw = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert pdf[-2000:] not in raw and b"Gespr" not in raw


# -- access log ---------------------------------------------------------------------------


def actions(client, filed) -> list[tuple[str, str, str]]:
    entries = client.get(f"{filed['base']}/access-log", headers=filed["patient"]).json["entries"]
    return [(e["who"], e["action"], e["item"]) for e in entries]


@pytest.mark.process
def test_patient_sees_staff_opening_downloading_and_exporting(client, staff_auth, filed, clock):
    assert actions(client, filed) == []
    client.get(f"{filed['base']}/messages", headers=staff_auth)
    clock.advance(1)
    client.get(f"/api/v1/attachments/{filed['photo']['id']}", headers=staff_auth)
    clock.advance(1)
    client.get(f"{filed['base']}/export?format=pdf", headers=staff_auth)
    clock.advance(1)
    admin = login(client, "admin", "correct horse battery")
    client.get(f"{filed['base']}/export?format=fhir", headers=admin)
    assert actions(client, filed) == [
        ("admin", "export_fhir", ""),
        ("nurse", "export_pdf", ""),
        ("nurse", "download", "knie.png"),
        ("nurse", "open", ""),
    ]
    entry = client.get(f"{filed['base']}/access-log", headers=filed["patient"]).json["entries"][0]
    assert entry["at"].endswith("Z")


def test_patient_reading_their_own_conversation_is_not_logged(client, filed):
    client.get(f"{filed['base']}/messages", headers=filed["patient"])
    client.get(f"/api/v1/attachments/{filed['photo']['id']}", headers=filed["patient"])
    assert actions(client, filed) == []


def test_repeated_opens_and_live_polls_are_one_entry(client, staff_auth, filed, clock):
    for _ in range(5):
        client.get(f"{filed['base']}/messages", headers=staff_auth)
        clock.advance(60)
    first = client.get(f"{filed['base']}/messages", headers=staff_auth).json["messages"][0]["id"]
    client.get(f"{filed['base']}/messages?after={first}", headers=staff_auth)
    client.get(f"{filed['base']}/messages", headers={**staff_auth, "X-Medcell-Poll": "1"})
    assert actions(client, filed) == [("nurse", "open", "")]
    clock.advance(11 * 60)
    client.get(f"{filed['base']}/messages", headers=staff_auth)
    assert actions(client, filed) == [("nurse", "open", "")] * 2


def test_opening_does_not_extend_the_conversation(client, staff_auth, filed, clock):
    before = client.get(filed["base"], headers=staff_auth).json["expires_at"]
    clock.advance(3600)
    client.get(f"{filed['base']}/messages", headers=staff_auth)
    assert client.get(filed["base"], headers=staff_auth).json["expires_at"] == before


def test_patient_never_sees_another_conversations_log(client, staff_auth, filed):
    other = client.post("/api/v1/conversations", json={}, headers=staff_auth).json
    other_patient = {"Authorization": f"Bearer {other['patient_token']}"}
    client.get(f"{filed['base']}/messages", headers=staff_auth)
    own = f"/api/v1/conversations/{other['id']}/access-log"
    assert client.get(own, headers=other_patient).json == {"entries": []}
    foreign = client.get(f"{filed['base']}/access-log", headers=other_patient)
    assert foreign.status_code == 404


def test_access_log_of_a_deleted_conversation_is_gone(client, staff_auth, filed):
    client.get(f"{filed['base']}/messages", headers=staff_auth)
    client.delete(filed["base"], headers=staff_auth)
    assert client.get(f"{filed['base']}/access-log", headers=staff_auth).status_code == 404


# -- expiry reminder ----------------------------------------------------------------------


def test_expiring_soon_lists_conversations_within_a_day_soonest_first():
    hour = 3600 * 1_000_000
    summaries = [
        {"id": "late", "expires_at": 30 * hour},
        {"id": "soon", "expires_at": 2 * hour},
        {"id": "edge", "expires_at": 24 * hour},
        {"id": "sooner", "expires_at": 1 * hour},
    ]
    assert [s["id"] for s in expiring_soon(summaries, now=0)] == ["sooner", "soon", "edge"]


@pytest.mark.process
def test_pdf_lists_pictures_it_cannot_embed_safely(client, staff_auth, conversation):
    # Over 16 megapixels decoded would cost the small container too much: listed instead.
    huge = io.BytesIO()
    Image.new("RGB", (5000, 3500), (0, 90, 0)).save(huge, "PNG")
    heic = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64
    base = f"/api/v1/conversations/{conversation['id']}"
    for name, data, kind in (
        ("huge.png", huge.getvalue(), "image/png"),
        ("x.heic", heic, "image/heic"),
    ):
        client.post(
            f"{base}/attachments", headers=staff_auth, data={"file": (io.BytesIO(data), name, kind)}
        )
    text, reader = pdf_text(client.get(f"{base}/export?format=pdf", headers=staff_auth).data)
    assert "huge.png" in text and "x.heic" in text
    assert text.count("(nicht eingebettet)") == 2
    assert [image for page in reader.pages for image in page.images] == []


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "PPM"])
def test_pdf_decodes_only_jpeg_png_gif_and_webp_whatever_the_stored_type_says(fmt):
    # A database from before uploads were sniffed holds another format labelled image/png:
    # Pillow's other decoders never see it; the file is listed, not embedded.
    from services.facility.core import pdf

    other = io.BytesIO()
    Image.new("RGB", (64, 48), (0, 0, 200)).save(other, fmt)
    export = {
        "facility": "alpha",
        "facility_name": "Alpha",
        "title": "",
        "reference": None,
        "exported_at": 1_700_000_000_000_000,
        "exported_by": "nurse",
        "messages": [
            {
                "author": "patient",
                "body": "",
                "created_at": 1_700_000_000_000_000,
                "attachments": [
                    {"id": "a", "filename": "foto.png", "size": 1000, "content_type": "image/png"},
                    {"id": "b", "filename": "echt.png", "size": 1000, "content_type": "image/png"},
                ],
            }
        ],
    }
    files = {"a": other.getvalue(), "b": png()}
    text, reader = pdf_text(pdf.build(export, lambda att_id: [files[att_id]]))
    assert "foto.png · 1000 B (nicht eingebettet)" in text
    assert text.count("nicht eingebettet") == 1
    assert len([image for page in reader.pages for image in page.images]) == 1


def test_pdf_refuses_a_picture_whose_header_claims_billions_of_pixels():
    # Only the header is read: 50,000 × 50,000 pixels are never decoded, and no error escapes.
    import struct
    import zlib

    from services.facility.core import pdf

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )
    assert pdf._picture(bomb) is None


def test_fhir_export_streams_without_holding_the_attachments(client, staff_auth, conversation):
    # 3 × 4 MiB of attachments become ~16 MiB of base64: none of it may be held at once.
    import tracemalloc

    base = f"/api/v1/conversations/{conversation['id']}"
    for i in range(3):
        data = {"file": (io.BytesIO(b"%PDF-" + bytes([i]) * 4 * 1024 * 1024), f"scan-{i}.pdf")}
        client.post(f"{base}/attachments", headers=staff_auth, data=data)
    tracemalloc.start()
    try:
        response = client.get(f"{base}/export?format=fhir", headers=staff_auth, buffered=False)
        size = sum(len(piece) for piece in response.response)
        response.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size > 16 * 1024 * 1024
    assert peak < 4 * 1024 * 1024, peak


@pytest.mark.process
def test_pdf_keeps_line_breaks_and_wraps_long_words(client, staff_auth, conversation):
    base = f"/api/v1/conversations/{conversation['id']}"
    word = "Donaudampfschifffahrtsgesellschaft" * 12
    body = f"Erste Zeile\r\nZweite Zeile\tmit Tab\n{word}"
    client.post(f"{base}/messages", json={"body": body}, headers=staff_auth)
    text, _ = pdf_text(client.get(f"{base}/export?format=pdf", headers=staff_auth).data)
    lines = text.splitlines()
    assert "Erste Zeile" in lines and "Zweite Zeile    mit Tab" in lines
    assert "?" not in text
    assert word in text.replace("\n", "")


def test_too_long_for_a_pdf_is_refused_clearly_and_fhir_still_works(
    client, staff_auth, filed, monkeypatch
):
    from services.facility.core import records

    monkeypatch.setattr(records, "MAX_PDF_CHARS", 50)  # the filed conversation has more text
    response = client.get(f"{filed['base']}/export?format=pdf", headers=staff_auth)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "export_too_large"
    assert "FHIR" in response.json["error"]["message"]
    assert client.get(f"{filed['base']}/export?format=fhir", headers=staff_auth).status_code == 200
    assert [a for _, a, _ in actions(client, filed)] == ["export_fhir"]  # a refusal is no export


@pytest.mark.process
def test_a_pdf_beyond_its_process_memory_limit_fails_clearly_and_is_not_logged(
    client, staff_auth, filed, monkeypatch
):
    from services.facility.core import pdf_worker

    monkeypatch.setattr(pdf_worker, "MEMORY_LIMIT_BYTES", 48 * 1024 * 1024)
    response = client.get(f"{filed['base']}/export?format=pdf", headers=staff_auth)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "export_failed"
    assert "FHIR" in response.json["error"]["message"]
    assert actions(client, filed) == []
    monkeypatch.undo()
    assert client.get(f"{filed['base']}/export?format=pdf", headers=staff_auth).status_code == 200
