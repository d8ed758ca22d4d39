"""Every text of the web pages, German first, English too, and how the language is chosen.

Order of choice: an explicit ?lang= (remembered in a cookie), the cookie, the browser's
Accept-Language, else German. Texts use str.format fields; a key with a ".one" variant is used
for n == 1.
"""

from datetime import UTC, datetime

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LANGUAGES = ("de", "en")
DEFAULT = "de"

DE = {
    "lang.de": "Deutsch",
    "lang.en": "English",
    "nav.skip": "Zum Inhalt springen",
    "nav.label": "Navigation",
    "nav.conversations": "Unterhaltungen",
    "nav.admin": "Verwaltung",
    "nav.password": "Passwort",
    "nav.logout": "Abmelden ({name})",
    "footer.privacy": "Verschlüsselt gespeichert: jede Nachricht hat ihren eigenen "
    "Schlüssel, und alles wird spätestens nach Ablauf der Frist vollständig gelöscht.",
    "role.admin": "Verwaltung",
    "role.staff": "Team",
    "duration.m": "{n} Minuten",
    "duration.m.one": "1 Minute",
    "duration.s": "{n} Sekunden",
    "duration.s.one": "1 Sekunde",
    "duration.h": "{n} Stunden",
    "duration.h.one": "1 Stunde",
    "duration.d": "{n} Tage",
    "duration.d.one": "1 Tag",
    "login.title": "Anmeldung für das Team",
    "login.username": "Benutzername",
    "login.password": "Passwort",
    "login.submit": "Anmelden",
    "login.wrong": "Benutzername oder Passwort ist falsch.",
    "login.patients": "Patientinnen und Patienten brauchen kein Konto: Sie öffnen den Link, "
    "den die Praxis ihnen geschickt hat.",
    "home.title": "Unterhaltungen",
    "home.list": "Laufende Unterhaltungen",
    "home.none": "Zurzeit gibt es keine Unterhaltungen.",
    "home.last_activity": "Letzte Aktivität:",
    "home.expires": "Wird gelöscht:",
    "home.pin": "mit PIN",
    "home.locked": "Link gesperrt",
    "new.title": "Neue Unterhaltung",
    "new.label_title": "Titel (optional)",
    "new.hint_title": "Hilft dem Team beim Wiederfinden, z. B. „Knie-Kontrolle“.",
    "new.label_pin": "PIN (optional)",
    "new.hint_pin": "4 bis 8 Ziffern. Sagen Sie die PIN der Patientin oder dem Patienten "
    "persönlich oder am Telefon – nie zusammen mit dem Link.",
    "new.submit": "Unterhaltung eröffnen",
    "new.bad_pin": "Die PIN muss aus 4 bis 8 Ziffern bestehen.",
    "new.bad_title": "Der Titel ist zu lang oder ungültig.",
    "created.title": "Link für die Patientin oder den Patienten",
    "created.intro": "Schicken Sie diesen Link, z. B. per SMS oder E-Mail. Wer ihn öffnet, "
    "sieht die Unterhaltung.",
    "created.link": "Patienten-Link",
    "created.copy": "Link kopieren",
    "created.copied": "Kopiert.",
    "created.once": "Der Link wird nur jetzt angezeigt. Geht er verloren, erstellen Sie in der "
    "Unterhaltung einen neuen.",
    "created.pin_note": "Diese Unterhaltung ist mit einer PIN geschützt. Teilen Sie die PIN "
    "getrennt vom Link mit.",
    "created.qr_show": "Als QR-Code zeigen",
    "created.qr": "QR-Code mit dem Patienten-Link",
    "created.open": "Zur Unterhaltung",
    "conv.untitled": "Unterhaltung",
    "conv.patient_heading": "Ihre Unterhaltung mit {name}",
    "conv.expires": "Diese Unterhaltung wird gelöscht am",
    "conv.expires_why": "Das ist {duration} nach der letzten Nachricht; jede neue Nachricht "
    "verschiebt den Termin.",
    "conv.locked": "Der Patienten-Link ist nach zu vielen falschen PINs gesperrt. Erstellen "
    "Sie unten einen neuen Link.",
    "conv.gone": "Diese Unterhaltung wurde gelöscht und ist nicht mehr vorhanden.",
    "conv.messages": "Nachrichten",
    "conv.empty": "Noch keine Nachrichten.",
    "conv.reload": "Auf neue Nachrichten prüfen",
    "msg.you": "Sie",
    "msg.patient": "Patient/in",
    "msg.facility": "{name}",
    "msg.download": "Herunterladen",
    "reply.title": "Antworten",
    "reply.label": "Ihre Nachricht",
    "reply.send": "Senden",
    "reply.empty": "Bitte schreiben Sie eine Nachricht.",
    "reply.too_long": "Die Nachricht ist zu lang (höchstens {n} Zeichen).",
    "attach.title": "Foto oder PDF senden",
    "attach.label": "Datei",
    "attach.hint": "Fotos (JPEG, PNG, WebP, GIF, HEIC) oder PDF, höchstens {size}.",
    "attach.note": "Bemerkung (optional)",
    "attach.send": "Datei senden",
    "attach.missing": "Bitte wählen Sie eine Datei aus.",
    "attach.bad_type": "Diese Datei ist kein Foto und kein PDF. Erlaubt sind JPEG, PNG, WebP, "
    "GIF, HEIC und PDF.",
    "attach.too_large": "Die Datei ist zu groß: höchstens {size} sind erlaubt.",
    "attach.bad_name": "Der Dateiname oder die Bemerkung ist ungültig.",
    "newlink.title": "Neuer Patienten-Link",
    "newlink.text": "Der bisherige Link und alle offenen Sitzungen der Patientin oder des "
    "Patienten hören sofort auf zu funktionieren.",
    "newlink.submit": "Neuen Link erstellen",
    "delete.title": "Unterhaltung löschen",
    "delete.text_patient": "Sie können diese Unterhaltung jederzeit selbst löschen: alle "
    "Nachrichten und Dateien, sofort und vollständig.",
    "delete.text_staff": "Löscht alle Nachrichten und Dateien dieser Unterhaltung sofort und "
    "vollständig; auch der Patienten-Link hört auf zu funktionieren.",
    "delete.button": "Diese Unterhaltung löschen",
    "delete.confirm_title": "Unterhaltung wirklich löschen?",
    "delete.confirm_text": "Alle Nachrichten und Dateien dieser Unterhaltung werden sofort und "
    "vollständig gelöscht. Das kann niemand rückgängig machen.",
    "delete.confirm_button": "Ja, endgültig löschen",
    "delete.cancel": "Abbrechen",
    "deleted.title": "Gelöscht",
    "deleted.text": "Die Unterhaltung ist gelöscht: alle Nachrichten, Dateien und der Link. "
    "Es ist nichts davon mehr gespeichert.",
    "deleted.patient_next": "Sie können dieses Fenster jetzt schließen.",
    "leave.button": "Sitzung beenden",
    "leave.title": "Sitzung beendet",
    "leave.text": "Auf diesem Gerät ist die Unterhaltung nicht mehr geöffnet. Mit Ihrem Link "
    "können Sie sie wieder öffnen.",
    "pin.title": "PIN eingeben",
    "pin.intro": "Diese Unterhaltung ist mit einer PIN geschützt. Die PIN haben Sie von der "
    "Praxis persönlich oder am Telefon erhalten.",
    "pin.label": "PIN (4 bis 8 Ziffern)",
    "pin.submit": "Öffnen",
    "pin.wrong": "Die PIN ist falsch. Noch {n} Versuche, dann wird der Link gesperrt.",
    "pin.wrong.one": "Die PIN ist falsch. Noch 1 Versuch, dann wird der Link gesperrt.",
    "pin.locked_title": "Link gesperrt",
    "pin.locked": "Dieser Link ist nach zu vielen falschen PINs gesperrt. Bitte bitten Sie "
    "die Praxis um einen neuen Link.",
    "link.invalid_title": "Link ungültig",
    "link.invalid": "Dieser Link gilt nicht (mehr). Vielleicht wurde die Unterhaltung gelöscht "
    "oder ein neuer Link erstellt. Bitte wenden Sie sich an die Praxis.",
    "session.ended_title": "Sitzung beendet",
    "session.ended": "Ihre Sitzung ist abgelaufen oder beendet. Öffnen Sie bitte Ihren Link "
    "noch einmal.",
    "bounce.title": "Unterhaltung wird geöffnet …",
    "bounce.link": "Weiter zur Unterhaltung",
    "password.title": "Passwort ändern",
    "password.current": "Aktuelles Passwort",
    "password.new": "Neues Passwort",
    "password.rules": "Mindestens 12 Zeichen.",
    "password.submit": "Passwort ändern",
    "password.wrong": "Das aktuelle Passwort ist falsch.",
    "password.done_title": "Passwort geändert",
    "password.done": "Alle Sitzungen wurden beendet. Bitte melden Sie sich neu an.",
    "admin.title": "Verwaltung",
    "admin.accounts": "Team-Konten",
    "admin.remove": "Entfernen",
    "admin.remove_named": "Konto {name} entfernen",
    "admin.add": "Konto hinzufügen",
    "admin.username_rules": "Kleinbuchstaben, Ziffern, Punkt, Unterstrich oder Bindestrich.",
    "admin.role": "Rolle",
    "admin.password": "Passwort (optional)",
    "admin.password_hint": "Leer lassen, um ein sicheres Passwort erzeugen zu lassen. "
    "Sonst mindestens 12 Zeichen.",
    "admin.add_submit": "Konto anlegen",
    "admin.taken": "Ein Konto namens {name} gibt es schon.",
    "admin.bad_account": "Benutzername oder Passwort entspricht nicht den Regeln.",
    "admin.not_self": "Sie können Ihr eigenes Konto nicht entfernen.",
    "admin.retention": "Aufbewahrungsfrist",
    "admin.retention_text": "So lange nach der letzten Nachricht wird eine Unterhaltung "
    "aufbewahrt, dann vollständig gelöscht. Höchstens 7 Tage; gilt sofort für alle.",
    "admin.retention_label": "Frist",
    "admin.retention_submit": "Frist speichern",
    "admin.bad_retention": "Die Frist ist ungültig (höchstens 7 Tage).",
    "admin.retention_saved": "Die Frist wurde gespeichert.",
    "wipe.title": "Alle Patientendaten löschen",
    "wipe.intro": "Löscht alle Unterhaltungen dieser Einrichtung mit allen Nachrichten und "
    "Dateien, sofort und vollständig. Team-Konten bleiben bestehen.",
    "wipe.button": "Alle Patientendaten löschen …",
    "wipe.lost": "Verloren gehen: {conversations} Unterhaltungen, {messages} Nachrichten und "
    "{attachments} Dateien aller Patientinnen und Patienten; alle Patienten-Links hören auf "
    "zu funktionieren.",
    "wipe.irreversible": "Das kann niemand rückgängig machen.",
    "wipe.confirm_label": "Geben Sie zur Bestätigung „{slug}“ ein",
    "wipe.confirm_button": "Alles endgültig löschen",
    "wipe.mismatch": "Zur Bestätigung muss genau „{slug}“ eingegeben werden. Es wurde nichts "
    "gelöscht.",
    "wipe.done_title": "Alle Patientendaten gelöscht",
    "wipe.done": "{n} Unterhaltungen wurden vollständig gelöscht.",
    "account.title": "Konto angelegt",
    "account.text": "Das Konto {name} ({role}) ist angelegt.",
    "account.password": "Erzeugtes Passwort",
    "account.once": "Das Passwort wird nur jetzt angezeigt. Geben Sie es sicher weiter.",
    "error.title": "Das hat nicht geklappt",
    "error.back": "Zur Startseite",
    "error.csrf": "Das Formular ist abgelaufen oder kam nicht von dieser Seite. Bitte laden "
    "Sie die Seite neu und versuchen Sie es noch einmal.",
    "error.not_found": "Das gibt es hier nicht (mehr).",
    "error.forbidden": "Dafür fehlt die Berechtigung.",
    "error.admin_only": "Diese Seite ist nur für die Verwaltung.",
    "error.too_large": "Das ist zu groß: Dateien dürfen höchstens {size} haben.",
    "error.throttled": "Zu viele Fehlversuche. Bitte warten Sie einige Minuten.",
    "error.bad_request": "Die Anfrage war ungültig.",
    "error.keys": "Die Schlüssel der Einrichtung fehlen: Es kann nichts gespeichert oder gelesen "
    "werden. Bitte verständigen Sie die Verwaltung.",
    "error.internal": "Ein interner Fehler ist aufgetreten. Bitte versuchen Sie es später noch "
    "einmal.",
    # -- quotas and full disk (issue 11)
    # -- backups (issue 11)
    # -- errors and faults (issue 11)
    # -- receipts (issue 12)
    # -- exports, reference, access log (issue 12)
    # -- notifications (issue 13)
    "nav.notify": "Benachrichtigungen",
    "notify.title": "E-Mail-Benachrichtigung",
    "notify.address": "E-Mail-Adresse",
    "notify.bad_address": "Bitte geben Sie genau eine E-Mail-Adresse an, etwa name@beispiel.de.",
    "notify.patient_text": "Wir schicken Ihnen eine kurze E-Mail, wenn die Praxis geantwortet hat. "
    "Die E-Mail enthält nichts von der Unterhaltung; Ihre Adresse wird verschlüsselt gespeichert "
    "und mit der Unterhaltung gelöscht.",
    "notify.patient_on": "Sie werden per E-Mail benachrichtigt, wenn die Praxis antwortet.",
    "notify.patient_off": "Keine E-Mails mehr",
    "notify.patient_submit": "Benachrichtigen",
    "notify.staff_patient_on": "Die Patientin oder der Patient wird per E-Mail über Antworten "
    "benachrichtigt (ohne Inhalt).",
    "notify.staff_patient_off": "Die Patientin oder der Patient hat keine E-Mail-Benachrichtigung "
    "eingerichtet.",
    "notify.staff_text": "Eine kurze E-Mail, wenn eine Patientin oder ein Patient schreibt: "
    "höchstens eine je Unterhaltung in 15 Minuten, ohne Inhalt, nur mit dem Link zur Liste.",
    "notify.staff_submit": "Speichern",
    "notify.staff_off": "Benachrichtigungen ausschalten",
    "notify.on_saved": "Gespeichert: Sie erhalten Benachrichtigungen an diese Adresse.",
    "notify.off_saved": "Benachrichtigungen sind ausgeschaltet.",
    "notify.admin_on": "E-Mail ist für diese Einrichtung eingerichtet. Jedes Teammitglied "
    "schaltet Benachrichtigungen für sich selbst ein.",
    "notify.admin_accounts": "Benachrichtigt werden:",
    "notify.admin_none": "Noch niemand hat Benachrichtigungen eingeschaltet.",
    "notify.admin_off": "Für diese Installation ist kein E-Mail-Versand eingerichtet; der "
    "Betreiber kann ihn einschalten.",
    "notify.link_title": "Link per E-Mail senden",
    "notify.link_text": "Der Link wird einmal an diese Adresse geschickt; die Adresse wird nicht "
    "gespeichert. Die PIN geben Sie der Patientin oder dem Patienten auf anderem Weg.",
    "notify.link_submit": "Link senden",
    "notify.link_needs_pin": "Per E-Mail wird nur ein Link verschickt, der mit einer PIN "
    "geschützt ist. Erzeugen Sie dafür einen neuen Link mit PIN.",
    "notify.link_stale": "Dieser Link gilt nicht mehr. Erzeugen Sie einen neuen Link.",
    "notify.link_queued_title": "Link wird gesendet",
    "notify.link_queued": "Die E-Mail mit dem Link wird in Kürze verschickt.",
    # -- unread, compose, list (issue 13)
    # -- accounts, quick replies, contact, throttling (issue 13)
}

EN = {
    "lang.de": "Deutsch",
    "lang.en": "English",
    "nav.skip": "Skip to content",
    "nav.label": "Navigation",
    "nav.conversations": "Conversations",
    "nav.admin": "Administration",
    "nav.password": "Password",
    "nav.logout": "Log out ({name})",
    "footer.privacy": "Stored encrypted: every message has its own key, and everything is "
    "deleted completely when its time is up.",
    "role.admin": "Administrator",
    "role.staff": "Staff",
    "duration.s": "{n} seconds",
    "duration.s.one": "1 second",
    "duration.m": "{n} minutes",
    "duration.m.one": "1 minute",
    "duration.h": "{n} hours",
    "duration.h.one": "1 hour",
    "duration.d": "{n} days",
    "duration.d.one": "1 day",
    "login.title": "Staff login",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.wrong": "Wrong username or password.",
    "login.patients": "Patients need no account: they open the link the facility sent them.",
    "home.title": "Conversations",
    "home.list": "Open conversations",
    "home.none": "There are no conversations right now.",
    "home.last_activity": "Last activity:",
    "home.expires": "Will be deleted:",
    "home.pin": "with PIN",
    "home.locked": "link locked",
    "new.title": "New conversation",
    "new.label_title": "Title (optional)",
    "new.hint_title": "Helps the team find it again, e.g. “Knee check-up”.",
    "new.label_pin": "PIN (optional)",
    "new.hint_pin": "4 to 8 digits. Tell the patient the PIN in person or by phone – never "
    "together with the link.",
    "new.submit": "Open conversation",
    "new.bad_pin": "The PIN must be 4 to 8 digits.",
    "new.bad_title": "The title is too long or invalid.",
    "created.title": "Link for the patient",
    "created.intro": "Send this link, e.g. by text message or email. Whoever opens it sees "
    "the conversation.",
    "created.link": "Patient link",
    "created.copy": "Copy link",
    "created.copied": "Copied.",
    "created.once": "The link is shown only now. If it gets lost, make a new one in the "
    "conversation.",
    "created.pin_note": "This conversation is protected by a PIN. Tell the patient the PIN "
    "separately from the link.",
    "created.qr_show": "Show as QR code",
    "created.qr": "QR code with the patient link",
    "created.open": "Go to the conversation",
    "conv.untitled": "Conversation",
    "conv.patient_heading": "Your conversation with {name}",
    "conv.expires": "This conversation will be deleted on",
    "conv.expires_why": "That is {duration} after the last message; every new message moves "
    "the date.",
    "conv.locked": "The patient link is locked after too many wrong PINs. Make a new link below.",
    "conv.gone": "This conversation has been deleted and no longer exists.",
    "conv.messages": "Messages",
    "conv.empty": "No messages yet.",
    "conv.reload": "Check for new messages",
    "msg.you": "You",
    "msg.patient": "Patient",
    "msg.facility": "{name}",
    "msg.download": "Download",
    "reply.title": "Reply",
    "reply.label": "Your message",
    "reply.send": "Send",
    "reply.empty": "Please write a message.",
    "reply.too_long": "The message is too long (at most {n} characters).",
    "attach.title": "Send a photo or PDF",
    "attach.label": "File",
    "attach.hint": "Photos (JPEG, PNG, WebP, GIF, HEIC) or PDF, at most {size}.",
    "attach.note": "Note (optional)",
    "attach.send": "Send file",
    "attach.missing": "Please choose a file.",
    "attach.bad_type": "This file is neither a photo nor a PDF. Allowed are JPEG, PNG, WebP, "
    "GIF, HEIC and PDF.",
    "attach.too_large": "The file is too large: at most {size} is allowed.",
    "attach.bad_name": "The file name or the note is invalid.",
    "newlink.title": "New patient link",
    "newlink.text": "The current link and all of the patient's open sessions stop working at once.",
    "newlink.submit": "Make a new link",
    "delete.title": "Delete conversation",
    "delete.text_patient": "You can delete this conversation yourself at any time: all "
    "messages and files, at once and completely.",
    "delete.text_staff": "Deletes all messages and files of this conversation at once and "
    "completely; the patient link stops working too.",
    "delete.button": "Delete this conversation",
    "delete.confirm_title": "Really delete the conversation?",
    "delete.confirm_text": "All messages and files of this conversation will be deleted at "
    "once and completely. Nobody can undo this.",
    "delete.confirm_button": "Yes, delete for good",
    "delete.cancel": "Cancel",
    "deleted.title": "Deleted",
    "deleted.text": "The conversation is deleted: all messages, files and the link. Nothing "
    "of it is stored any more.",
    "deleted.patient_next": "You can close this window now.",
    "leave.button": "End session",
    "leave.title": "Session ended",
    "leave.text": "The conversation is no longer open on this device. Your link opens it again.",
    "pin.title": "Enter PIN",
    "pin.intro": "This conversation is protected by a PIN. The facility gave you the PIN in "
    "person or by phone.",
    "pin.label": "PIN (4 to 8 digits)",
    "pin.submit": "Open",
    "pin.wrong": "Wrong PIN. {n} tries left, then the link is locked.",
    "pin.wrong.one": "Wrong PIN. 1 try left, then the link is locked.",
    "pin.locked_title": "Link locked",
    "pin.locked": "This link is locked after too many wrong PINs. Please ask the facility "
    "for a new link.",
    "link.invalid_title": "Link not valid",
    "link.invalid": "This link is not valid (any more). The conversation may have been "
    "deleted or a new link made. Please contact the facility.",
    "session.ended_title": "Session ended",
    "session.ended": "Your session has expired or ended. Please open your link again.",
    "bounce.title": "Opening the conversation …",
    "bounce.link": "Continue to the conversation",
    "password.title": "Change password",
    "password.current": "Current password",
    "password.new": "New password",
    "password.rules": "At least 12 characters.",
    "password.submit": "Change password",
    "password.wrong": "The current password is wrong.",
    "password.done_title": "Password changed",
    "password.done": "All sessions have ended. Please log in again.",
    "admin.title": "Administration",
    "admin.accounts": "Staff accounts",
    "admin.remove": "Remove",
    "admin.remove_named": "Remove account {name}",
    "admin.add": "Add an account",
    "admin.username_rules": "Lowercase letters, digits, dot, underscore or hyphen.",
    "admin.role": "Role",
    "admin.password": "Password (optional)",
    "admin.password_hint": "Leave empty to have a strong password generated. Otherwise at "
    "least 12 characters.",
    "admin.add_submit": "Create account",
    "admin.taken": "An account named {name} exists already.",
    "admin.bad_account": "The username or password does not follow the rules.",
    "admin.not_self": "You cannot remove your own account.",
    "admin.retention": "Retention",
    "admin.retention_text": "How long after its last message a conversation is kept before "
    "it is deleted completely. At most 7 days; applies to all at once.",
    "admin.retention_label": "Retention",
    "admin.retention_submit": "Save retention",
    "admin.bad_retention": "The retention is invalid (at most 7 days).",
    "admin.retention_saved": "The retention has been saved.",
    "wipe.title": "Delete all patient data",
    "wipe.intro": "Deletes every conversation of this facility with all messages and files, "
    "at once and completely. Staff accounts stay.",
    "wipe.button": "Delete all patient data …",
    "wipe.lost": "You will lose {conversations} conversations, {messages} messages and "
    "{attachments} files of all patients; every patient link stops working.",
    "wipe.irreversible": "Nobody can undo this.",
    "wipe.confirm_label": "Type “{slug}” to confirm",
    "wipe.confirm_button": "Delete everything for good",
    "wipe.mismatch": "To confirm, type exactly “{slug}”. Nothing was deleted.",
    "wipe.done_title": "All patient data deleted",
    "wipe.done": "{n} conversations were deleted completely.",
    "account.title": "Account created",
    "account.text": "The account {name} ({role}) has been created.",
    "account.password": "Generated password",
    "account.once": "The password is shown only now. Hand it over safely.",
    "error.title": "That did not work",
    "error.back": "To the start page",
    "error.csrf": "The form has expired or did not come from this page. Please reload the "
    "page and try again.",
    "error.not_found": "That does not exist here (any more).",
    "error.forbidden": "You are not allowed to do that.",
    "error.admin_only": "This page is for administrators only.",
    "error.too_large": "That is too large: files may be at most {size}.",
    "error.throttled": "Too many failed attempts. Please wait a few minutes.",
    "error.bad_request": "The request was invalid.",
    "error.keys": "The facility's encryption keys are missing: nothing can be stored or read. "
    "Please tell your administrator.",
    "error.internal": "An internal error happened. Please try again later.",
    # -- quotas and full disk (issue 11)
    # -- backups (issue 11)
    # -- errors and faults (issue 11)
    # -- receipts (issue 12)
    # -- exports, reference, access log (issue 12)
    # -- notifications (issue 13)
    "nav.notify": "Notifications",
    "notify.title": "E-mail notification",
    "notify.address": "E-mail address",
    "notify.bad_address": "Please enter exactly one e-mail address, like name@example.org.",
    "notify.patient_text": "We send you a short e-mail when the practice has answered. The "
    "e-mail contains nothing of the conversation; your address is stored encrypted and deleted "
    "with the conversation.",
    "notify.patient_on": "You will be told by e-mail when the practice answers.",
    "notify.patient_off": "No more e-mails",
    "notify.patient_submit": "Notify me",
    "notify.staff_patient_on": "The patient is told about answers by e-mail (without content).",
    "notify.staff_patient_off": "The patient has not set up e-mail notification.",
    "notify.staff_text": "A short e-mail when a patient writes: at most one per conversation in "
    "15 minutes, without content, only with the link to the list.",
    "notify.staff_submit": "Save",
    "notify.staff_off": "Turn notifications off",
    "notify.on_saved": "Saved: you will get notifications at this address.",
    "notify.off_saved": "Notifications are off.",
    "notify.admin_on": "E-mail is set up for this facility. Each team member turns "
    "notifications on for themselves.",
    "notify.admin_accounts": "Notified:",
    "notify.admin_none": "Nobody has turned notifications on yet.",
    "notify.admin_off": "This installation has no e-mail set up; the operator can turn it on.",
    "notify.link_title": "Send the link by e-mail",
    "notify.link_text": "The link is sent once to this address; the address is not stored. "
    "Give the patient the PIN another way.",
    "notify.link_submit": "Send link",
    "notify.link_needs_pin": "Only a link protected by a PIN is sent by e-mail. Make a new link "
    "with a PIN for that.",
    "notify.link_stale": "This link is no longer valid. Make a new link.",
    "notify.link_queued_title": "Sending the link",
    "notify.link_queued": "The e-mail with the link will be sent shortly.",
    # -- unread, compose, list (issue 13)
    # -- accounts, quick replies, contact, throttling (issue 13)
}

TEXTS = {"de": DE, "en": EN}


def choose(param: str | None, cookie: str | None, accept_language: str) -> str:
    """The language for this request: explicit choice, then remembered, then the browser's."""
    for explicit in (param, cookie):
        if explicit in LANGUAGES:
            return explicit
    accepted = parse_accept_header(accept_language, LanguageAccept)
    return accepted.best_match(LANGUAGES, default=DEFAULT) or DEFAULT


def text(lang: str, key: str, **values) -> str:
    table = TEXTS.get(lang, DE)
    if values.get("n") == 1 and f"{key}.one" in table:
        key = f"{key}.one"
    return table[key].format(**values) if values else table[key]


def format_time(us: int, lang: str) -> str:
    """A UTC time for pages without JavaScript (the script shows it in local time)."""
    moment = datetime.fromtimestamp(us / 1e6, UTC)
    if lang == "de":
        return moment.strftime("%d.%m.%Y, %H:%M UTC")
    return moment.strftime("%d %b %Y, %H:%M UTC")


def format_size(size: int, lang: str) -> str:
    units = ("Bytes", "KB", "MB", "GB") if lang == "de" else ("bytes", "KB", "MB", "GB")
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    number = f"{value:.0f}" if unit == 0 or value >= 10 else f"{value:.1f}"
    return f"{number.replace('.', ',') if lang == 'de' else number} {units[unit]}"


def format_duration(seconds: int, lang: str) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return text(lang, f"duration.{unit}", n=seconds // size)
    return text(lang, "duration.s", n=seconds)
