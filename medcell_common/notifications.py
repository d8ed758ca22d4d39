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


def is_address(value: object) -> bool:
    """Whether `value` is exactly one plain address (nothing stripped, nothing around it)."""
    return (
        isinstance(value, str) and len(value) <= MAX_ADDRESS and bool(ADDRESS_RE.fullmatch(value))
    )
