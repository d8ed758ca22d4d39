"""The relay and the practice's link-mail text: only a link mail carries one, only by the shared
rules, and the relay puts in the name and the checked link itself."""

import pytest

from provisioner.supervisor import notifications
from provisioner.supervisor.notifications import Refused

ORIGIN = "https://praxis.localhost:8443/"
TOKEN = "A" * 43


def raw(**changes) -> dict:
    mail = {
        "id": "m" * 22,
        "to": "pat@mail.example",
        "kind": "patient_link",
        "lang": "de",
        "link": f"{ORIGIN}p/{TOKEN}",
        "facility_name": "Praxis Dr. Müller",
        "text": "Hallo von {praxis}:\n{link}",
    }
    return {**mail, **changes}


def test_the_relay_fills_in_name_and_link_and_keeps_its_footer():
    subject, body = notifications.render(notifications.check(raw(), ORIGIN))
    assert body.startswith(f"Hallo von Praxis Dr. Müller:\n{ORIGIN}p/{TOKEN}\n\n-- \n")
    assert subject == "Ihr Zugang zu Praxis Dr. Müller / Your access to Praxis Dr. Müller"


def test_a_name_that_looks_like_a_placeholder_is_not_filled_in_again():
    mail = raw(facility_name="Praxis {link}")
    _, body = notifications.render(notifications.check(mail, ORIGIN))
    assert body.startswith(f"Hallo von Praxis {{link}}:\n{ORIGIN}p/{TOKEN}")


@pytest.mark.parametrize(
    "changes",
    [
        {"text": "Besuchen Sie https://phish.example/ {link}"},
        {"text": "Ohne Link"},
        {"text": "{link}\rBcc: x@y.example"},  # a lone CR
        {"text": 5},
        {"kind": "patient_answered", "link": None},
        {"kind": "staff_new_message", "link": f"{ORIGIN}staff/"},
        {"extra": "x"},
    ],
)
def test_a_hostile_facility_cannot_smuggle_words_into_a_mail(changes):
    with pytest.raises(Refused):
        notifications.check(raw(**changes), ORIGIN)


def test_a_link_mail_without_text_keeps_the_relays_own_words():
    mail = raw()
    del mail["text"]
    _, body = notifications.render(notifications.check(mail, ORIGIN))
    assert "hat eine sichere Unterhaltung für Sie eröffnet" in body
