"""A facility the attacker controls hands the relay mails of its own making: only what medcell
sends reaches the SMTP server (aiosmtpd on loopback), at most at the facility's rate. The facility
is a stand-in on its real unix socket (mail_support.HostileOutbox) that hands over anything."""

import json
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from devsupport import free_port
from provisioner.host import smtp
from provisioner.host.config import Config
from provisioner.host.smtp import SmtpSettings
from provisioner.supervisor.mail import MailRelay
from tests.clock import FakeClock
from tests.provisioner.mail_support import HostileOutbox, Inbox

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

SLUG = "praxis"
ORIGIN = "https://praxis.localhost:8443/"  # MEDCELL_DOMAIN and MEDCELL_GATEWAY_PORT unset
TEAM = "team@praxis.example"
OUTSIDER = "chef@other-praxis.example"
PHISH = "Ihr Zugang wird gesperrt, bitte melden Sie sich an: https://evil.example/login"
SUBJECT = "Neue Nachricht bei Praxis Dr. Müller / New message at Praxis Dr. Müller"


@pytest.fixture
def config():
    # Unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer than that.
    root = Path(tempfile.mkdtemp(prefix="mc-relay-", dir="/tmp"))
    yield Config(home=root / "home", facility_uid=os.getuid())
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller
    controller.stop()


@pytest.fixture
def facility(config):
    outbox = HostileOutbox(config, SLUG)
    yield outbox
    outbox.close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def relay(config, inbox, clock):
    _, controller = inbox
    smtp.save(
        config.home, SmtpSettings("smtp", "127.0.0.1", controller.port, "noreply@medcell.example")
    )
    relay = MailRelay(config, limit_clock=clock)
    yield relay
    relay.stop()


def notification(n: int, **fields) -> dict:
    """What a facility hands over for "a patient wrote": no text, only these six fields."""
    return {
        "id": f"mail-{n:06d}-{secrets.token_urlsafe(8)}",
        "to": TEAM,
        "kind": "staff_new_message",
        "lang": "de",
        "link": f"{ORIGIN}staff/",
        "facility_name": "Praxis Dr. Müller",
        **fields,
    }


def with_text(mail: dict) -> dict:
    """The same, plus a subject and body of the attacker's own, as the relay used to take them."""
    return {**mail, "subject": f"Praxis Dr. Müller: {PHISH}", "body": f"{PHISH}\n{mail['link']}"}


def assert_only_medcells_mail(handler, count: int = 1) -> None:
    assert len(handler.mails) == count
    for sender, recipients, message in handler.mails:
        assert sender == "noreply@medcell.example" and recipients == [TEAM]
        assert message["To"] == TEAM and message["Subject"] == SUBJECT
        assert message["Bcc"] is None and message["Cc"] is None
        body = message.get_content().replace("\r\n", "\n")
        assert f"Anmeldung:\n{ORIGIN}staff/\n" in body and f"read it:\n{ORIGIN}staff/\n" in body
        assert "evil" not in message.as_string() and OUTSIDER not in message.as_string()


ATTACKS = {
    "several_recipients": ({"to": f"{TEAM}, {OUTSIDER}"}, "recipient"),
    "recipients_with_semicolon": ({"to": f"{TEAM};{OUTSIDER}"}, "recipient"),
    "bcc_in_the_recipient": ({"to": f"{TEAM}\r\nBcc: {OUTSIDER}"}, "recipient"),
    "a_named_recipient": ({"to": f"Chef <{OUTSIDER}>"}, "recipient"),
    "recipient_list": ({"to": [TEAM, OUTSIDER]}, "recipient"),
    "an_oversized_recipient": ({"to": "a" * 64 + "@" + "b" * 60 + ".example" * 25}, "recipient"),
    "crlf_in_the_name": ({"facility_name": f"Praxis\r\nBcc: {OUTSIDER}"}, "name"),
    "lf_in_the_name": ({"facility_name": f"Praxis\n\n{PHISH}"}, "name"),
    "bidi_override_in_the_name": ({"facility_name": "Praxis \u202eevil.example"}, "name"),
    "an_oversized_name": ({"facility_name": "Praxis " * 40}, "name"),
    "a_foreign_link_host": ({"link": "https://evil.example/staff/"}, "link"),
    "a_lookalike_link_host": (
        {"link": "https://praxis.localhost.evil.example:8443/staff/"},
        "link",
    ),
    "user_info_in_the_link": (
        {"link": "https://praxis.localhost:8443@evil.example/staff/"},
        "link",
    ),
    "another_facilitys_link": ({"link": "https://other.localhost:8443/staff/"}, "link"),
    "a_plain_http_link": ({"link": "http://praxis.localhost:8443/staff/"}, "link"),
    "another_port": ({"link": "https://praxis.localhost:9443/staff/"}, "link"),
    "another_route": ({"link": f"{ORIGIN}login"}, "link"),
    "a_redirect_in_the_query": ({"link": f"{ORIGIN}staff/?next=https://evil.example"}, "link"),
    "an_oversized_link": ({"link": f"{ORIGIN}p/{'A' * 5000}"}, "link"),
    "a_link_the_kind_has_not": ({"kind": "patient_answered"}, "link"),
    "an_unknown_kind": ({"kind": "password_reset"}, "kind"),
    "an_unknown_language": ({"lang": "fr"}, "language"),
}


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_the_relay_sends_nothing_a_facility_makes_up(relay, facility, inbox, caplog, attack):
    handler, _ = inbox
    fields, reason = attack
    hostile = notification(1, **fields)
    facility.mails = [hostile, with_text(notification(2, **fields)), notification(3)]
    caplog.set_level(logging.INFO, logger="medcell.supervisor")

    assert relay.drain(SLUG) == 1

    assert_only_medcells_mail(handler)
    assert relay.refused == {reason: 1, "fields": 1}
    assert facility.mails == []  # refused for good: dropped at the facility, never retried
    (record,) = [r for r in caplog.records if r.fields["event"] == "mail_refused"]
    assert record.fields["refused"] == 2 and record.fields["reasons"] == {reason: 1, "fields": 1}
    logged = json.dumps([r.fields for r in caplog.records])
    assert "@" not in logged and "evil" not in logged


def test_a_facility_cannot_hand_the_relay_a_text_of_its_own(relay, facility, inbox):
    handler, _ = inbox
    old_style = {"id": "mail-000001-phishing", "to": OUTSIDER, "subject": PHISH, "body": PHISH}
    facility.mails = [old_style, with_text(notification(2)), notification(3)]
    assert relay.drain(SLUG) == 1
    assert_only_medcells_mail(handler)
    assert relay.refused == {"fields": 2}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "extra",
    [
        '"pad": "' + "x" * (1024 * 1024) + '"',
        '"n": NaN',
        '"n": -Infinity',
        f'"n": {nested(100_000)}',
    ],
    ids=["one_MiB", "NaN", "Infinity", "nested_100000_deep"],
)
def test_an_answer_that_is_not_small_strict_json_sends_nothing(
    relay, facility, inbox, caplog, extra
):
    handler, _ = inbox
    mails = [with_text(notification(1)), notification(2)]
    facility.raw = ('{"mails": ' + json.dumps(mails) + ", " + extra + "}").encode()
    caplog.set_level(logging.INFO, logger="medcell.supervisor")
    assert relay.drain(SLUG) == 0
    assert handler.mails == [] and facility.acked == []
    (record,) = [r for r in caplog.records if r.fields["event"] == "mail_failed"]
    assert record.fields["error"] == "outbox_unreadable"


def test_a_thousand_mails_at_once_go_out_at_the_facilitys_rate(
    config, relay, facility, inbox, clock
):
    handler, controller = inbox
    smtp.save(
        config.home,
        SmtpSettings(
            "smtp",
            "127.0.0.1",
            controller.port,
            "noreply@medcell.example",
            rate=((10, 60), (25, 86400)),
        ),
    )
    facility.mails = [notification(n) for n in range(1000)]

    assert relay.drain(SLUG) == 10
    assert relay.drain(SLUG) == 0  # the minute's mails are spent
    assert len(handler.mails) == 10
    assert len(facility.mails) == 990  # held back, not lost: they wait in the facility's outbox
    assert relay.held > 0

    clock.advance(60)
    assert relay.drain(SLUG) == 10
    clock.advance(60)
    assert relay.drain(SLUG) == 5  # the day's 25 are spent
    clock.advance(60)
    assert relay.drain(SLUG) == 0
    assert len(handler.mails) == 25 and len(facility.mails) == 975
    assert_only_medcells_mail(handler, 25)
    assert len({message["Message-ID"] for _, _, message in handler.mails}) == 25

    clock.advance(86400)
    assert relay.drain(SLUG) == 10  # a new day, still at most the minute's share

    # Another facility's mails are not held up by this one's limit.
    other = HostileOutbox(config, "other")
    try:
        other.mails = [
            notification(n, link="https://other.localhost:8443/staff/") for n in range(3)
        ]
        assert relay.drain("other") == 3
    finally:
        other.close()
