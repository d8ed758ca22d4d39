"""What the relay accepts from a facility, and the mails it writes from that with its own texts.

A facility hands over a notification, never a text: one plain recipient, one kind from
`medcell_common.notifications.Kind`, a language, the facility's display name and (for the kinds
that have one) a link that must lie on the facility's own origin at the kind's fixed route. A link
mail may also carry the practice's own text, which must pass the shared template rules (plain
lines, only its placeholders, no web address of its own). Anything else is refused here, before
it can reach an SMTP header or body; the reason is a fixed word for the log, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from medcell_common.notifications import (
    FIELDS,
    LANGUAGES,
    LINK_PATHS,
    MAIL_ID_RE,
    MAX_NAME,
    OPTIONAL_FIELDS,
    Kind,
    TemplateError,
    check_template,
    fill_template,
    is_address,
)
from medcell_common.origins import facility_origin

FOOTER = {
    "de": "Diese E-Mail enthält keine Inhalte Ihrer Unterhaltung. "
    "Bitte antworten Sie nicht auf sie.",
    "en": "This e-mail contains nothing of your conversation. Please do not reply to it.",
}


class Refused(ValueError):
    """A notification the relay does not send; `reason` is a fixed word for the log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Notification:
    """One checked notification: every field is safe to put into a mail."""

    id: str
    to: str
    kind: Kind
    lang: str
    link: str | None
    facility_name: str
    text: str | None = None  # the practice's own link-mail text (checked, placeholders unfilled)


def mail_id(raw: object) -> str | None:
    """The id to acknowledge a handed-over item by, or None when it has no usable one."""
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str) and MAIL_ID_RE.fullmatch(value):
            return value
    return None


def check(raw: object, origin: str) -> Notification:
    """The notification in `raw`, checked against the facility's `origin`; Refused otherwise."""
    if not isinstance(raw, dict) or not FIELDS <= set(raw) <= FIELDS | OPTIONAL_FIELDS:
        raise Refused("fields")
    ident = mail_id(raw)
    if ident is None:
        raise Refused("id")
    if not is_address(raw["to"]):
        raise Refused("recipient")
    try:
        kind = Kind(raw["kind"])
    except ValueError as e:
        raise Refused("kind") from e
    lang = raw["lang"]
    if lang not in LANGUAGES:
        raise Refused("language")
    return Notification(
        id=ident,
        to=raw["to"],
        kind=kind,
        lang=lang,
        link=_link(kind, raw["link"], origin),
        facility_name=_name(raw["facility_name"]),
        text=_text(kind, raw.get("text")),
    )


def _link(kind: Kind, link: object, origin: str) -> str | None:
    route = LINK_PATHS[kind]
    if route is None:
        if link is not None:
            raise Refused("link")
        return None
    # The origin ends with "/", so the prefix pins scheme, host and port exactly; the rest must
    # be the kind's route (no query, fragment, user info or second host can hide in it).
    if not isinstance(link, str) or not link.startswith(origin):
        raise Refused("link")
    if not route.fullmatch(link[len(origin) :]):
        raise Refused("link")
    return link


def _text(kind: Kind, text: object) -> str | None:
    # Only a link mail carries the practice's words, and only by the shared template rules.
    if text is None:
        return None
    if kind is not Kind.PATIENT_LINK:
        raise Refused("text")
    try:
        return check_template(text)
    except TemplateError as e:
        raise Refused("text") from e


def _name(name: object) -> str:
    # The operator's --name rule: printable (no CR, LF, tab, other controls or bidi overrides).
    if not isinstance(name, str):
        raise Refused("name")
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise Refused("name")
    return name


def origin_of(slug: str, domain: str | None, port: int) -> str:
    """The facility's public origin as the relay knows it from its own configuration."""
    return facility_origin(slug, domain or "localhost", port)


# -- the texts: German and English, each mail carries both, the chosen language first -------


def _texts(kind: Kind, name: str, link: str | None) -> dict[str, tuple[str, str]]:
    """(subject half, body paragraph) per language."""
    if kind is Kind.STAFF_NEW_MESSAGE:
        return {
            "de": (
                f"Neue Nachricht bei {name}",
                f"Bei {name} ist eine neue Nachricht eingegangen. Sie lesen sie nach der "
                f"Anmeldung:\n{link}",
            ),
            "en": (
                f"New message at {name}",
                f"A new message has arrived at {name}. Log in to read it:\n{link}",
            ),
        }
    if kind is Kind.PATIENT_ANSWERED:
        return {
            "de": (
                f"{name} hat geantwortet",
                f"{name} hat Ihnen geantwortet. Öffnen Sie den Link, den Sie von {name} "
                "erhalten haben, um die Antwort zu lesen.",
            ),
            "en": (
                "Your practice has answered",
                f"{name} has answered you. Open the link you received from {name} to read "
                "the answer.",
            ),
        }
    return {
        "de": (
            f"Ihr Zugang zu {name}",
            f"{name} hat eine sichere Unterhaltung für Sie eröffnet:\n{link}\n"
            "Zum Öffnen brauchen Sie zusätzlich die PIN, die Sie von der Praxis auf anderem Weg "
            "erhalten.",
        ),
        "en": (
            f"Your access to {name}",
            f"{name} has opened a secure conversation for you:\n{link}\n"
            "To open it you also need the PIN, which the practice gives you another way.",
        ),
    }


def render(notification: Notification) -> tuple[str, str]:
    """(subject, body) of the mail, the notification's language first and the other below."""
    texts = _texts(notification.kind, notification.facility_name, notification.link)
    order = sorted(LANGUAGES, key=lambda lang: lang != notification.lang)
    subject = " / ".join(texts[lang][0] for lang in order)
    paragraphs = "\n\n".join(texts[lang][1] for lang in order)
    if notification.text is not None and notification.link is not None:
        # The practice's own words replace the fixed paragraphs; the link is the checked one.
        paragraphs = fill_template(notification.text, notification.facility_name, notification.link)
    footer = "\n".join(FOOTER[lang] for lang in order)
    return subject, f"{paragraphs}\n\n-- \n{footer}\n"
