"""A conversation as a printable PDF for the patient record, made in memory with fpdf2.

Text is set in DejaVu Sans (Debian's fonts-dejavu-core, in the image), which covers German and
most European and Cyrillic scripts; a character the font lacks is printed as "?" rather than
dropped silently. Without the font (a host without the package) the PDF falls back to a core
font in Latin-1, which still has every German letter. Photos are embedded, scaled down first so
that a 24 MiB picture costs a few hundred KiB; other files are listed with their size.
"""

import io
import logging
import threading
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
CONTENT_TYPE = "application/pdf"
EMBEDDED_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
# The only decoders Pillow may use on a patient's file, whatever its bytes claim to be: the
# other formats Pillow knows (PSD, TIFF, EPS through Ghostscript, ...) are attack surface.
DECODERS = ("JPEG", "PNG", "GIF", "WEBP")
# Pixels decoded for one picture at most (RGBA: 4 bytes each, so 64 MiB): the container has 256.
# Also Pillow's own bomb limit: a picture with more than twice these pixels is not even opened.
MAX_DECODE_PIXELS = 16_000_000
MAX_IMAGE_SIDE = 1600
# Embedded picture bytes per PDF at most; later pictures are listed, not embedded.
MAX_EMBEDDED_BYTES = 24 * 1024 * 1024

LABELS = {
    "de": {
        "heading": "Verlauf der Unterhaltung",
        "facility": "Praxis",
        "title": "Titel",
        "patient": "Patient/in",
        "birth_date": "Geburtsdatum",
        "number": "Patientennummer",
        "exported": "Exportiert",
        "by": "von",
        "messages": "Nachrichten",
        "staff": "Praxisteam",
        "automatic": "Automatische Antwort der Praxis",
        "attachment": "Anhang",
        "not_embedded": "nicht eingebettet",
        "none": "Keine Nachrichten.",
        "page": "Seite {n} von {total}",
        "note": "Aus medcell exportiert; die Unterhaltung selbst wird nach Ablauf gelöscht.",
        "date": "%d.%m.%Y, %H:%M Uhr",
        "corrected": "korrigiert",
        "deleted": "Vom Absender gelöscht",
        "notes": "Interne Notizen des Praxisteams (für die Patientin/den Patienten nicht sichtbar)",
    },
    "en": {
        "heading": "Conversation record",
        "facility": "Practice",
        "title": "Title",
        "patient": "Patient",
        "birth_date": "Date of birth",
        "number": "Patient number",
        "exported": "Exported",
        "by": "by",
        "messages": "Messages",
        "staff": "Practice team",
        "automatic": "The practice's automatic reply",
        "attachment": "Attachment",
        "not_embedded": "not embedded",
        "none": "No messages.",
        "page": "Page {n} of {total}",
        "note": "Exported from medcell; the conversation itself is deleted when it expires.",
        "date": "%d %b %Y, %H:%M",
        "corrected": "corrected",
        "deleted": "Deleted by its sender",
        "notes": "The practice team's internal notes (not visible to the patient)",
    },
}

_ONE_AT_A_TIME = threading.Lock()

# fpdf2 names missing glyphs in a warning, i.e. quotes patient text: never into the log.
logging.getLogger("fpdf").setLevel(logging.CRITICAL)


def build(export: dict, chunks: Callable[[str], Iterable[bytes]], lang: str = "de") -> bytes:
    """The PDF's bytes; `chunks(att_id)` yields an attachment's decrypted content."""
    # One at a time per process: a PDF with photos needs tens of MiB while it is made, and the
    # container has 256 MiB for everything.
    with _ONE_AT_A_TIME:
        return _build(export, chunks, lang)


def _build(export: dict, chunks: Callable[[str], Iterable[bytes]], lang: str) -> bytes:
    from fpdf import FPDF  # here: fpdf2, Pillow and fontTools cost an idle facility ~20 MiB

    labels = LABELS.get(lang, LABELS["de"])
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_title(labels["heading"])
    pdf.set_creator("medcell")
    pdf.alias_nb_pages("{total}")
    writer = _Writer(pdf, labels, ZoneInfo(export.get("timezone") or "UTC"))
    pdf.footer = writer.footer
    pdf.add_page()
    writer.header(export)
    budget = [MAX_EMBEDDED_BYTES]
    for message in export["messages"]:
        writer.message(message, export, chunks, budget)
    if not export["messages"]:
        writer.line(labels["none"])
    # Only in a PDF the staff chose to make with them (records.export(notes=True)).
    if export.get("notes"):
        writer.notes(export["notes"])
    return bytes(pdf.output())


class _Writer:
    """Lays out the header, the messages and the footer on one FPDF document."""

    def __init__(self, pdf, labels: dict, zone: ZoneInfo):
        self.pdf, self.labels, self.zone = pdf, labels, zone
        self.font = _add_fonts(pdf)
        self.glyphs = self._glyphs()

    def header(self, export: dict) -> None:
        pdf, labels = self.pdf, self.labels
        self.style("B", 16)
        self.line(labels["heading"], height=9)
        self.style("", 10)
        rows = [(labels["facility"], export["facility_name"])]
        if export["title"]:
            rows.append((labels["title"], export["title"]))
        reference = export["reference"] or {}
        for key in ("patient", "birth_date", "number"):
            value = reference.get("name" if key == "patient" else key)
            if value:
                rows.append((labels[key], value))  # dates in ISO 8601: clear in both languages
        exported = self.when(export["exported_at"])
        rows.append((labels["exported"], f"{exported} {labels['by']} {export['exported_by']}"))
        rows.append((labels["messages"], str(len(export["messages"]))))
        for name, value in rows:
            self.style("B", 10)
            pdf.cell(46, 6, self.text(name + ":"))
            self.style("", 10)
            self.line(value, indent=pdf.get_x() - pdf.l_margin)
        pdf.ln(3)
        pdf.set_draw_color(160, 160, 160)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(4)

    def message(self, message: dict, export: dict, chunks, budget: list[int]) -> None:
        pdf, labels = self.pdf, self.labels
        reference = export["reference"] or {}
        if message["author"] == "patient":
            author = reference.get("name") or labels["patient"]
        elif message.get("automatic"):
            author = labels["automatic"]
        elif message.get("author_name"):  # the colleague who wrote it, of the practice team
            author = f"{message['author_name']} ({labels['staff']})"
        else:
            author = labels["staff"]
        self.style("B", 10)
        heading = f"{author} · {self.when(message['created_at'])}"
        if message.get("edited_at"):
            heading += f" · {labels['corrected']} {self.when(message['edited_at'])}"
        self.line(heading)
        self.style("", 10)
        if message.get("deleted_at"):
            self.line(f"{labels['deleted']} · {self.when(message['deleted_at'])}", height=5.5)
        elif message["body"]:
            self.line(message["body"], height=5.5)
        for att in message["attachments"]:
            picture = None
            if att["content_type"] in EMBEDDED_TYPES and att["size"] <= budget[0]:
                picture = _picture(b"".join(chunks(att["id"])))
            # A photo that could not be embedded says so; other files are only ever listed.
            photo = att["content_type"].startswith("image/")
            note = f" ({labels['not_embedded']})" if photo and not picture else ""
            self.style("", 9)
            self.line(f"{labels['attachment']}: {att['filename']} · {_size(att['size'])}{note}")
            if picture:
                budget[0] -= len(picture[0])
                self._embed(*picture)
        pdf.ln(3)

    def notes(self, notes: list[dict]) -> None:
        pdf, labels = self.pdf, self.labels
        pdf.ln(2)
        pdf.set_draw_color(160, 160, 160)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(3)
        self.style("B", 12)
        self.line(labels["notes"], height=7)
        for note in notes:
            self.style("B", 10)
            writer = note.get("author_name") or labels["staff"]
            self.line(f"{writer} · {self.when(note['created_at'])}")
            self.style("", 10)
            self.line(note["body"], height=5.5)
            pdf.ln(2)

    def _embed(self, data: bytes, width: int, height: int) -> None:
        pdf = self.pdf
        w = min(pdf.epw, 120.0)
        h = w * height / width
        if h > 110:
            w, h = w * 110 / h, 110.0
        if pdf.get_y() + h > pdf.page_break_trigger:
            pdf.add_page()
        pdf.image(io.BytesIO(data), x=pdf.l_margin, w=w, h=h)
        pdf.ln(2)

    def footer(self) -> None:
        pdf = self.pdf
        pdf.set_y(-12)
        self.style("", 8)
        pdf.cell(0, 5, self.text(self.labels["note"]), align="L")
        pdf.set_x(pdf.l_margin)
        page = self.labels["page"].format(n=pdf.page_no(), total="{total}")
        pdf.cell(0, 5, page, align="R")

    # -- helpers ------------------------------------------------------------------------

    def line(self, text: str, height: float = 6, indent: float = 0) -> None:
        """Text wrapped at spaces (or inside a word too long for a line), from the cursor on.

        Wrapped here rather than by fpdf2's multi_cell, whose line breaking measures each
        line again per character: a 10,000-character message took seconds.
        """
        pdf = self.pdf
        for n, row in enumerate(self._wrap(self.text(text), pdf.epw - indent)):
            if n:
                pdf.set_x(pdf.l_margin + indent)
            pdf.cell(0, height, row, new_x="LMARGIN", new_y="NEXT")

    def _measure(self):
        """Width in mm of a text in the current font (without get_string_width's overhead)."""
        pdf = self.pdf
        font, size = pdf.current_font, pdf.font_size_pt
        return lambda text: font.get_text_width(text, size, None)[1] / pdf.k

    def _wrap(self, text: str, width: float) -> list[str]:
        measure = self._measure()
        space, rows = measure(" "), []
        for paragraph in text.split("\n"):
            row, used = None, 0.0
            for word in paragraph.split(" "):  # runs of spaces stay as they were typed
                size = measure(word)
                if row is not None and used + space + size <= width:
                    row, used = f"{row} {word}", used + space + size
                    continue
                if row is not None:
                    rows.append(row)
                pieces = self._split_word(word, width) if size > width else [word]
                rows += pieces[:-1]
                row, used = pieces[-1], measure(pieces[-1])
            rows.append(row)
        return rows

    def _split_word(self, word: str, width: float) -> list[str]:
        """A word wider than a line, in pieces that each fit one."""
        measure, pieces, piece, used = self._measure(), [], "", 0.0
        for char in word:
            size = measure(char)
            if piece and used + size > width:
                pieces.append(piece)
                piece, used = "", 0.0
            piece, used = piece + char, used + size
        pieces.append(piece)
        return pieces

    def style(self, style: str, size: float) -> None:
        """Regular ("") or bold ("B"): Debian's fonts-dejavu-core has no oblique."""
        self.pdf.set_font(self.font, style, size)

    def when(self, us: int) -> str:
        return datetime.fromtimestamp(us / 1e6, self.zone).strftime(self.labels["date"])

    def text(self, value: str) -> str:
        """The text with every character the font cannot show replaced by '?'."""
        # Forms post line breaks as CRLF; tabs have no width of their own in a PDF line.
        value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
        return "".join(c if c == "\n" or ord(c) in self.glyphs else "?" for c in value)

    def _glyphs(self) -> set[int] | range:
        if self.font != "DejaVu":
            return range(32, 256)  # the core fonts are Latin-1
        self.pdf.set_font("DejaVu", "", 10)
        return set(self.pdf.current_font.cmap)


def _add_fonts(pdf) -> str:
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        return "helvetica"
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    return "DejaVu"


def _picture(data: bytes) -> tuple[bytes, int, int] | None:
    """A picture scaled down and re-encoded as JPEG (bytes, width, height), or None."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_DECODE_PIXELS
    try:
        with warnings.catch_warnings():
            # Between one and two times the limit Pillow only warns: refused below anyway.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=DECODERS)
        with image:
            if image.format == "JPEG":
                # Decode at 1/2, 1/4 or 1/8 scale straight away: the full picture never exists.
                image.draft("RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            if image.width * image.height > MAX_DECODE_PIXELS:
                return None
            image.seek(0)
            # Scale first, convert after: only one full-size copy is ever decoded.
            image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            picture = image.convert("RGB")
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=85)
            return out.getvalue(), picture.width, picture.height
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None  # listed with "not embedded" instead


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"
