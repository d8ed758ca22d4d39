"""The gateway's own error answers: JSON for API clients, a short German/English page for browsers.

One table for nginx (rendered into errors.conf and maps.conf) and the activator alike. A request
gets the page when its `Accept` header prefers HTML (ACCEPT_RULES, first match wins); everything
else keeps the contract's `{"error": {"code", "message"}}`. The pages say what happened and what
to do, never anything about the gateway, the facility or the request.
"""

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "templates" / "error.html"
# (pattern on the Accept header, answer with HTML?), first match wins; the same list is the
# nginx map, so both sides decide alike. Browsers navigating list text/html first.
ACCEPT_RULES = (
    (r"^\s*text/html\s*(?:,|$)", True),
    (r"application/json", False),
    (r"(?:^|,)\s*text/html\s*(?:,|$|;\s*q\s*=\s*(?:1|0?\.[0-9]*[1-9]))", True),
)


@dataclass(frozen=True)
class Answer:
    code: str
    message: str  # the JSON message
    title_de: str
    text_de: str
    title_en: str
    text_en: str


ANSWERS = {
    400: Answer(
        "bad_request",
        "The request is malformed.",
        "Ungültige Anfrage",
        "Diese Anfrage konnte nicht verarbeitet werden. Bitte öffnen Sie den Link noch einmal.",
        "Bad request",
        "This request could not be processed. Please open the link again.",
    ),
    404: Answer(
        "not_found",
        "There is nothing here.",
        "Nicht gefunden",
        "Unter dieser Adresse gibt es nichts. Bitte prüfen Sie den Link, den Sie von Ihrer "
        "Praxis bekommen haben.",
        "Not found",
        "There is nothing at this address. Please check the link your practice gave you.",
    ),
    405: Answer(
        "method_not_allowed",
        "This method is not allowed.",
        "Nicht möglich",
        "Diese Art von Anfrage ist hier nicht möglich.",
        "Not possible",
        "This kind of request is not possible here.",
    ),
    413: Answer(
        "payload_too_large",
        "The request body is larger than the gateway accepts.",
        "Zu groß",
        "Die Datei oder Nachricht ist größer, als hier angenommen wird. Bitte senden Sie eine "
        "kleinere Datei.",
        "Too large",
        "The file or message is larger than accepted here. Please send a smaller file.",
    ),
    421: Answer(
        "misdirected_request",
        "This gateway does not serve this host name.",
        "Falsche Adresse",
        "Unter diesem Namen ist hier keine Praxis zu erreichen. Bitte öffnen Sie den Link, den "
        "Sie von Ihrer Praxis bekommen haben.",
        "Wrong address",
        "No practice can be reached under this name. Please open the link your practice gave you.",
    ),
    429: Answer(
        "rate_limited",
        "Too many requests; try again shortly.",
        "Zu viele Anfragen",
        "Bitte warten Sie einen Moment und versuchen Sie es dann noch einmal.",
        "Too many requests",
        "Please wait a moment, then try again.",
    ),
    500: Answer(
        "internal_error",
        "The gateway could not handle this request.",
        "Fehler",
        "Hier ist etwas schiefgegangen. Bitte versuchen Sie es später noch einmal.",
        "Error",
        "Something went wrong here. Please try again later.",
    ),
    503: Answer(
        "facility_unavailable",
        "The facility is not available right now; try again shortly.",
        "Vorübergehend nicht erreichbar",
        "Die Praxis ist gerade nicht erreichbar. Bitte versuchen Sie es in ein paar Minuten "
        "noch einmal.",
        "Temporarily unavailable",
        "The practice cannot be reached right now. Please try again in a few minutes.",
    ),
    504: Answer(
        "upstream_timeout",
        "The facility did not answer in time.",
        "Keine Antwort",
        "Die Praxis hat nicht rechtzeitig geantwortet. Bitte versuchen Sie es noch einmal.",
        "No answer",
        "The practice did not answer in time. Please try again.",
    ),
}
_RULES = [
    (re.compile(pattern, re.IGNORECASE), html_wanted) for pattern, html_wanted in ACCEPT_RULES
]


def wants_html(accept: str | None) -> bool:
    """Does a request with this Accept header prefer an HTML page to JSON?"""
    for pattern, html_wanted in _RULES:
        if pattern.search(accept or ""):
            return html_wanted
    return False


def json_body(status: int, message: str | None = None) -> str:
    answer = ANSWERS[status]
    error = {"code": answer.code, "message": message or answer.message}
    return json.dumps({"error": error}, separators=(",", ":")) + "\n"


def html_page(status: int) -> str:
    answer = ANSWERS[status]
    values = {name: html.escape(value) for name, value in vars(answer).items()}
    values["status"] = str(status)
    page = TEMPLATE.read_text(encoding="utf-8")
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], page)


def nginx_string(text: str) -> str:
    """`text` as one single-quoted nginx string (its lines joined; nothing to escape in it)."""
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    if any(c in line for c in "'\\$"):
        # A quote, backslash or variable would change the configuration's meaning.
        raise ValueError(f"not usable in an nginx string: {line[:60]!r}")
    return f"'{line}\\n'"


def accept_map() -> str:
    """The nginx map that sets $gw_html from the Accept header, by ACCEPT_RULES."""
    lines = ["map $http_accept $gw_html {"]
    lines += [f'    "~*{pattern}" {int(wanted)};' for pattern, wanted in ACCEPT_RULES]
    lines += ["    default 0;", "}"]
    return "\n".join(lines)
