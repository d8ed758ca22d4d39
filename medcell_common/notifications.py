"""The notifications a facility may hand the mail relay, defined once for both sides.

A facility never hands over text: only one recipient, one of these kinds, a language and (for the
kinds that have one) a link on its own origin. The relay checks each field against these rules and
builds subject and body from its own templates. Every pattern is applied with `fullmatch`.
"""

import re
from enum import StrEnum

# Deliberately plain: one @, a dotted domain, no spaces, quotes, brackets or separators, so an
# address can never carry a second recipient or a header.
ADDRESS_RE = re.compile(
    r"[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+"
)
MAX_ADDRESS = 254
MAX_NAME = 200  # the operator's `--name` rule: 1-200 printable characters, one line
LANGUAGES = ("de", "en")  # the first is the default; each mail carries the other one below
FIELDS = frozenset({"id", "to", "kind", "lang", "link", "facility_name"})
# A link mail may also carry the practice's own text (its template, placeholders unfilled).
OPTIONAL_FIELDS = frozenset({"text"})
MAIL_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# A patient link's token: secrets.token_urlsafe(32), as the facility makes it.
PATIENT_TOKEN = r"[A-Za-z0-9_-]{43}"
OUTBOX_BATCH = 50  # mails handed over per fetch, ids acknowledged per call


class Kind(StrEnum):
    """What a notification says; each kind has a fixed route for its link (or none)."""

    STAFF_NEW_MESSAGE = "staff_new_message"  # to staff: a patient wrote; link: their list
    PATIENT_ANSWERED = "patient_answered"  # to a patient: the practice answered; no link
    PATIENT_LINK = "patient_link"  # to a patient: the link of a PIN-protected conversation


# The path below the facility's origin (without its leading slash) each kind's link must match.
LINK_PATHS: dict[Kind, re.Pattern[str] | None] = {
    Kind.STAFF_NEW_MESSAGE: re.compile(r"staff/"),
    Kind.PATIENT_ANSWERED: None,
    Kind.PATIENT_LINK: re.compile(rf"p/{PATIENT_TOKEN}"),
}


# The practice's text for the link mail: plain lines, its placeholders filled in by the relay.
# {link} must appear exactly once, and no other link may: the only address a patient is sent to
# is the facility's own, placed by the relay after it checked it.
TEMPLATE_MAX = 1000
TEMPLATE_PLACEHOLDERS = ("praxis", "link")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_LINK_LIKE_RE = re.compile(r"://|www\.|\b[a-z0-9-]+\.(?:de|com|org|net|eu|info|io)\b", re.I)


class TemplateError(ValueError):
    """A link-mail text that breaks the rules; the message says which one (never the text), and
    `rule` names it in one word (for translated messages)."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


def check_template(text: object) -> str:
    """The practice's link-mail text, stripped; TemplateError when it breaks a rule."""
    if not isinstance(text, str):
        raise TemplateError("type", "the text must be a string")
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise TemplateError("empty", "the text must not be empty")
    if len(text) > TEMPLATE_MAX:
        raise TemplateError("length", f"the text may be at most {TEMPLATE_MAX} characters")
    if not all(line.isprintable() for line in text.split("\n")):
        raise TemplateError(
            "printable", "the text may hold printable characters and line breaks only"
        )
    names = _PLACEHOLDER_RE.findall(text)
    unknown = sorted({n for n in names if n not in TEMPLATE_PLACEHOLDERS})
    if unknown:
        allowed = ", ".join(f"{{{n}}}" for n in TEMPLATE_PLACEHOLDERS)
        raise TemplateError(
            "placeholder", f"unknown placeholder {{{unknown[0]}}}; allowed are {allowed}"
        )
    if names.count("link") != 1:
        raise TemplateError("link", "the text must contain {link} exactly once")
    rest = _PLACEHOLDER_RE.sub(" ", text)
    if "{" in rest or "}" in rest:
        raise TemplateError("braces", "braces are for placeholders only, like {praxis}")
    if _LINK_LIKE_RE.search(rest):
        raise TemplateError("address", "the text may hold no web address besides {link}")
    return text


def fill_template(text: str, facility_name: str, link: str) -> str:
    """The checked text with its placeholders filled in (one pass: a value is never read again)."""
    values = {"praxis": facility_name, "link": link}
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)


def is_address(value: object) -> bool:
    """Whether `value` is exactly one plain address (nothing stripped, nothing around it)."""
    return (
        isinstance(value, str) and len(value) <= MAX_ADDRESS and bool(ADDRESS_RE.fullmatch(value))
    )
