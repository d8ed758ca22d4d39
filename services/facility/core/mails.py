"""The texts of the notification mails, German first and English below.

Each function takes the facility's name and at most a link, nothing else: a mail cannot carry a
message, title, patient name, reference or file name, because none reaches this module.
"""

FOOTER = (
    "Diese E-Mail enthält keine Inhalte Ihrer Unterhaltung. Bitte antworten Sie nicht auf sie.\n"
    "This e-mail contains nothing of your conversation. Please do not reply to it."
)


def _mail(subject: str, german: str, english: str) -> dict:
    return {"subject": subject, "body": f"{german}\n\n{english}\n\n-- \n{FOOTER}\n"}


def new_message(facility: str, list_url: str) -> dict:
    """To staff: a patient wrote; the link opens the staff's conversation list."""
    return _mail(
        f"Neue Nachricht bei {facility} / New message at {facility}",
        f"Bei {facility} ist eine neue Nachricht eingegangen. Sie lesen sie nach der "
        f"Anmeldung:\n{list_url}",
        f"A new message has arrived at {facility}. Log in to read it:\n{list_url}",
    )


def answered(facility: str) -> dict:
    """To a patient: the practice has answered (no link: only its hash is kept)."""
    return _mail(
        f"{facility} hat geantwortet / Your practice has answered",
        f"{facility} hat Ihnen geantwortet. Öffnen Sie den Link, den Sie von {facility} "
        "erhalten haben, um die Antwort zu lesen.",
        f"{facility} has answered you. Open the link you received from {facility} to read "
        "the answer.",
    )


def link(facility: str, url: str) -> dict:
    """To a patient: the link to a conversation that is protected by a PIN."""
    return _mail(
        f"Ihr Zugang zu {facility} / Your access to {facility}",
        f"{facility} hat eine sichere Unterhaltung für Sie eröffnet:\n{url}\n"
        "Zum Öffnen brauchen Sie zusätzlich die PIN, die Sie von der Praxis auf anderem Weg "
        "erhalten.",
        f"{facility} has opened a secure conversation for you:\n{url}\n"
        "To open it you also need the PIN, which the practice gives you another way.",
    )
