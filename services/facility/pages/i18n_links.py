"""The texts of the patient-link pages (letter, e-mail, new link, lost link), German and English.

Kept apart from i18n.py's tables, which add them (i18n.TEXTS), so these pages change in one place.
"""

DE = {
    "links.title": "Link für die Patientin oder den Patienten",
    "links.letter": "Brief mit QR-Code drucken",
    "links.not_kept": "Dieser Link wurde vor dem Speichern von Links erstellt und lässt sich "
    "weder drucken noch erneut senden. Erstellen Sie einen neuen Link.",
    "links.mail_off": "Für diese Installation ist kein E-Mail-Versand eingerichtet: Der Link "
    "lässt sich hier nicht per E-Mail senden. Geben Sie der Patientin oder dem Patienten den "
    "ausgedruckten Brief; den E-Mail-Versand richtet der Betreiber ein.",
    "links.mail_again": "Link erneut per E-Mail senden",
    "links.mail_again_text": "Derselbe Link geht noch einmal an diese Adresse; er bleibt gültig, "
    "und die Adresse wird nicht gespeichert.",
    "links.new": "Neuen Link erstellen …",
    "links.new_text": "Nur wenn der Link in falsche Hände geraten sein könnte: Ein neuer Link "
    "beendet den bisherigen sofort.",
    "links.confirm_title": "Neuen Link erstellen?",
    "links.confirm_text": "Der bisherige Link und alle offenen Sitzungen der Patientin oder des "
    "Patienten enden sofort. Wer nur den alten Link hat, kommt nicht mehr in die Unterhaltung. "
    "Um denselben Link noch einmal zu geben, drucken oder senden Sie ihn erneut.",
    "links.confirm_submit": "Ja, neuen Link erstellen",
    "links.cancel": "Abbrechen",
    "links.letter_title": "Ihr Zugang zur Unterhaltung mit {name}",
    "links.letter_intro": "{name} hat für Sie eine sichere Unterhaltung eröffnet. Dort können "
    "Sie Nachrichten und Dateien mit der Praxis austauschen, ohne Konto und ohne App.",
    "links.letter_step_scan": "Scannen Sie den QR-Code mit der Kamera Ihres Telefons, oder "
    "geben Sie den Link unten in Ihren Browser ein.",
    "links.letter_step_pin": "Geben Sie die PIN ein, die Sie von der Praxis erhalten haben.",
    "links.letter_step_keep": "Bewahren Sie diesen Brief sicher auf: Wer den Link hat, kann die "
    "Unterhaltung öffnen.",
    "links.letter_link": "Ihr Link",
    "links.letter_print": "Drucken",
    "links.letter_lost": "Link verloren? Unter {url} können Sie ihn erneut anfordern, wenn Sie "
    "in der Unterhaltung eine E-Mail-Adresse für Benachrichtigungen hinterlegt haben.",
    "links.template_title": "Text der Link-E-Mail",
    "links.template_text": "So lautet die E-Mail, mit der ein Link verschickt wird. Platzhalter: "
    "{praxis} für den Namen der Praxis, {link} für den Link (genau einmal). Keine weiteren "
    "Web-Adressen. Leer lassen für den Standardtext.",
    "links.template_label": "Text",
    "links.template_submit": "Text speichern",
    "links.template_saved": "Der Text der Link-E-Mail ist gespeichert.",
    "links.template_reset": "Der Standardtext wird verwendet.",
    "links.template_bad": "Dieser Text geht nicht: {reason}.",
    "links.rule.type": "er fehlt",
    "links.rule.empty": "er ist leer",
    "links.rule.length": "er ist länger als 1000 Zeichen",
    "links.rule.printable": "er enthält Steuerzeichen",
    "links.rule.placeholder": "erlaubt sind nur die Platzhalter {praxis} und {link}",
    "links.rule.link": "{link} muss genau einmal vorkommen",
    "links.rule.braces": "geschweifte Klammern gibt es nur in Platzhaltern wie {praxis}",
    "links.rule.address": "außer {link} darf er keine Web-Adresse enthalten",
    "links.lost_title": "Link verloren?",
    "links.lost_text": "Geben Sie die E-Mail-Adresse an, die Sie in Ihrer Unterhaltung für "
    "Benachrichtigungen hinterlegt haben.",
    "links.lost_submit": "Link anfordern",
    "links.lost_done_title": "Anfrage erhalten",
    "links.lost_done": "Wenn Ihre Praxis diese Adresse kennt, sendet sie Ihnen einen neuen Link.",
    "links.lost_mail_off": "Diese Praxis verschickt keine E-Mails. Bitte fragen Sie die Praxis "
    "direkt nach Ihrem Link.",
    "links.lost_too_many": "Zu viele Anfragen von diesem Anschluss. Bitte versuchen Sie es in "
    "{wait} wieder.",
    "links.lost_ask": "Link verloren? Neuen Link anfordern",
    "device.title": "Auf diesem Gerät angemeldet bleiben",
    "device.text": "Auf Ihrem eigenen Gerät können Sie 30 Tage angemeldet bleiben, ohne den Link "
    "oder die PIN erneut einzugeben. Nicht auf einem Gerät, das andere mitbenutzen.",
    "device.on_submit": "30 Tage angemeldet bleiben",
    "device.on": "Dieses Gerät bleibt angemeldet bis",
    "device.off_submit": "Dieses Gerät abmelden",
    "intake.title": "Anliegen an die Praxis",
    "intake.intro": "Schreiben Sie {name} ein Anliegen. Die Praxis antwortet in einer sicheren "
    "Unterhaltung, deren Link Sie gleich erhalten.",
    "intake.category": "Worum geht es?",
    "intake.name": "Ihr Name",
    "intake.birth_date": "Geburtsdatum (optional)",
    "intake.body": "Ihre Nachricht",
    "intake.pin": "PIN (optional, 4 bis 8 Ziffern)",
    "intake.pin_hint": "Mit einer PIN braucht, wer Ihren Link findet, zusätzlich diese Ziffern.",
    "intake.submit": "Anliegen senden",
    "intake.staff": "Anmeldung für das Praxisteam",
    "intake.bad": "Bitte wählen Sie ein Thema und geben Sie Ihren Namen und Ihre Nachricht an "
    "(eine PIN hat 4 bis 8 Ziffern).",
    "intake.too_many": "Zu viele Anliegen von diesem Anschluss. Bitte versuchen Sie es in {wait} "
    "wieder.",
    "intake.off_title": "Keine Anliegen über diese Seite",
    "intake.off": "Diese Praxis nimmt hier keine Anliegen entgegen. Bitte wenden Sie sich direkt "
    "an die Praxis.",
    "intake.done_title": "Ihr Anliegen ist angekommen",
    "intake.done": "{name} hat Ihr Anliegen erhalten und antwortet in dieser Unterhaltung.",
    "intake.link": "Ihr Link zur Unterhaltung",
    "intake.keep": "Bewahren Sie diesen Link auf: Mit ihm lesen Sie die Antwort der Praxis. Er "
    "wird nur jetzt angezeigt.",
    "intake.open": "Zur Unterhaltung",
    "intake.admin_title": "Anliegen von Patientinnen und Patienten",
    "intake.admin_text": "Eingeschaltet, können Patientinnen und Patienten auf der Startseite der "
    "Praxis ein Anliegen senden; es kommt als neue Unterhaltung in die Liste. Ein Thema pro Zeile, "
    "höchstens 10.",
    "intake.admin_on": "Anliegen über die Startseite annehmen",
    "intake.admin_categories": "Themen",
    "intake.admin_submit": "Speichern",
    "intake.admin_bad": "Bitte geben Sie 1 bis 10 verschiedene Themen an, jedes höchstens 60 "
    "Zeichen lang.",
}

EN = {
    "links.title": "The patient's link",
    "links.letter": "Print a letter with QR code",
    "links.not_kept": "This link was made before links were kept; it can be neither printed nor "
    "sent again. Make a new link.",
    "links.mail_off": "This installation has no e-mail set up: the link cannot be sent by e-mail "
    "from here. Give the patient the printed letter; the operator can set up e-mail.",
    "links.mail_again": "Send the link by e-mail again",
    "links.mail_again_text": "The same link goes to this address once more; it stays valid, and "
    "the address is not stored.",
    "links.new": "Make a new link …",
    "links.new_text": "Only if the link may have reached the wrong person: a new link ends the "
    "current one at once.",
    "links.confirm_title": "Make a new link?",
    "links.confirm_text": "The current link and all of the patient's open sessions end at once. "
    "Whoever has only the old link can no longer open the conversation. To give the same link "
    "again, print or send it again instead.",
    "links.confirm_submit": "Yes, make a new link",
    "links.cancel": "Cancel",
    "links.letter_title": "Your access to the conversation with {name}",
    "links.letter_intro": "{name} has opened a secure conversation for you. There you can "
    "exchange messages and files with the practice, with no account and no app.",
    "links.letter_step_scan": "Scan the QR code with your phone's camera, or type the link "
    "below into your browser.",
    "links.letter_step_pin": "Enter the PIN the practice gave you.",
    "links.letter_step_keep": "Keep this letter safe: whoever has the link can open the "
    "conversation.",
    "links.letter_link": "Your link",
    "links.letter_print": "Print",
    "links.letter_lost": "Lost the link? At {url} you can ask for it again if you gave an "
    "e-mail address for notifications in the conversation.",
    "links.template_title": "Text of the link e-mail",
    "links.template_text": "The e-mail a link is sent with. Placeholders: {praxis} for the "
    "practice's name, {link} for the link (exactly once). No other web addresses. Leave empty "
    "for the standard text.",
    "links.template_label": "Text",
    "links.template_submit": "Save text",
    "links.template_saved": "The text of the link e-mail is saved.",
    "links.template_reset": "The standard text is used.",
    "links.template_bad": "This text does not work: {reason}.",
    "links.rule.type": "it is missing",
    "links.rule.empty": "it is empty",
    "links.rule.length": "it is longer than 1000 characters",
    "links.rule.printable": "it holds control characters",
    "links.rule.placeholder": "the only placeholders are {praxis} and {link}",
    "links.rule.link": "{link} must appear exactly once",
    "links.rule.braces": "braces are for placeholders like {praxis} only",
    "links.rule.address": "it may hold no web address besides {link}",
    "links.lost_title": "Lost your link?",
    "links.lost_text": "Enter the e-mail address you gave in your conversation for notifications.",
    "links.lost_submit": "Ask for the link",
    "links.lost_done_title": "Request received",
    "links.lost_done": "If your practice knows this address, it sends you a new link.",
    "links.lost_mail_off": "This practice sends no e-mails. Please ask the practice for your "
    "link directly.",
    "links.lost_too_many": "Too many requests from this connection. Please try again in {wait}.",
    "links.lost_ask": "Lost your link? Ask for a new one",
    "device.title": "Stay signed in on this device",
    "device.text": "On your own device you can stay signed in for 30 days without entering the "
    "link or the PIN again. Not on a device others use too.",
    "device.on_submit": "Stay signed in for 30 days",
    "device.on": "This device stays signed in until",
    "device.off_submit": "Sign this device out",
    "intake.title": "A request to the practice",
    "intake.intro": "Send {name} a request. The practice answers in a secure conversation; you "
    "get its link in a moment.",
    "intake.category": "What is it about?",
    "intake.name": "Your name",
    "intake.birth_date": "Date of birth (optional)",
    "intake.body": "Your message",
    "intake.pin": "PIN (optional, 4 to 8 digits)",
    "intake.pin_hint": "With a PIN, whoever finds your link also needs these digits.",
    "intake.submit": "Send request",
    "intake.staff": "Sign-in for the practice team",
    "intake.bad": "Please choose a topic and give your name and your message (a PIN has 4 to 8 "
    "digits).",
    "intake.too_many": "Too many requests from this connection. Please try again in {wait}.",
    "intake.off_title": "No requests through this page",
    "intake.off": "This practice takes no requests here. Please contact the practice directly.",
    "intake.done_title": "Your request has arrived",
    "intake.done": "{name} has your request and answers in this conversation.",
    "intake.link": "Your link to the conversation",
    "intake.keep": "Keep this link: with it you read the practice's answer. It is shown only now.",
    "intake.open": "Go to the conversation",
    "intake.admin_title": "Requests from patients",
    "intake.admin_text": "When on, patients can send a request from the practice's start page; "
    "it arrives in the list as a new conversation. One topic per line, at most 10.",
    "intake.admin_on": "Take requests through the start page",
    "intake.admin_categories": "Topics",
    "intake.admin_submit": "Save",
    "intake.admin_bad": "Please give 1 to 10 different topics, each at most 60 characters.",
}
