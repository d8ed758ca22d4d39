"""Every text of the web pages, German first, English too, and how the language is chosen.

Order of choice: an explicit ?lang= (remembered in a cookie), the cookie, the browser's
Accept-Language, else German. Texts use str.format fields; a key with a ".one" variant is used
for n == 1.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from services.facility.pages import i18n_links, signin_texts, texts_messages

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
    "new.back": "Zurück zu den Unterhaltungen",
    "msg.team": "Praxisteam",
    "msg.automatic": "Automatische Antwort",
    "team.title": "Im Team",
    "team.assigned_to": "Zuständig",
    "team.nobody": "niemand",
    "team.me": "Sie",
    "team.assign": "Zuweisen",
    "team.bad_assignee": "Dieses Konto gibt es nicht oder es ist deaktiviert.",
    "team.notes": "Interne Notizen",
    "team.notes_hint": "Nur für das Praxisteam: die Patientin oder der Patient sieht sie nie. "
    "Sie werden verschlüsselt gespeichert und mit der Unterhaltung gelöscht.",
    "team.note_label": "Neue Notiz",
    "team.note_submit": "Notiz speichern",
    "team.note_empty": "Die Notiz ist leer.",
    "team.note_too_long": "Eine Notiz darf höchstens {n} Zeichen lang sein.",
    "records.export_pdf_notes": "PDF mit internen Notizen",
    "list.only_mine": "Nur mir zugewiesene",
    "list.assigned": "zuständig: {name}",
    "list.assigned_me": "Ihnen zugewiesen",
    "name.title": "Ihr Name im Team",
    "name.hint": "So steht er über Ihren Nachrichten, bei Kolleginnen und Kollegen, bei "
    "Patientinnen und Patienten und im PDF, z. B. „Dr. Weber“ oder „Anna (Empfang)“.",
    "name.label": "Anzeigename",
    "name.label_for": "Anzeigename für {name}",
    "name.submit": "Namen speichern",
    "name.rename": "Namen ändern",
    "name.bad": "Der Name muss 1 bis 80 Zeichen lang sein, in einer Zeile, ohne Steuerzeichen.",
    "name.saved": "Ihr Name ist gespeichert.",
    "name.saved_for": "{name} heißt jetzt „{display}“.",
    "password.change": "Passwort ändern",
    "msg.colleague": "{name}",
    "msg.staff_named": "{name}, {facility}",
    "list.only_waiting": "Nur wartende (Patient/in schrieb zuletzt)",
    "list.filter_toggle": "Suchen und filtern",
    "inbox.waiting": "wartet auf Antwort seit",
    "inbox.no_messages": "Noch keine Nachricht.",
    "inbox.files": "Datei: {names}",
    "inbox.damaged": "Diese Nachricht lässt sich nicht öffnen.",
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
    "created.once": "Sie können denselben Link später in der Unterhaltung erneut drucken oder "
    "per E-Mail senden; er bleibt gültig, bis Sie einen neuen erstellen.",
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
    "attach.hint": "Fotos (JPEG, PNG, WebP, GIF, HEIC) oder PDF, höchstens {size}.",
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
    "switch.title": "Andere Unterhaltung öffnen?",
    "switch.patient": "In diesem Browser ist schon eine andere Unterhaltung geöffnet. Wenn Sie "
    "diesen Link öffnen, wird sie hier geschlossen. Öffnen Sie nur Links, die Ihnen Ihre Praxis "
    "selbst geschickt hat.",
    "switch.staff": "In diesem Browser sind Sie als Mitarbeiter/in angemeldet. Dieser Link öffnet "
    "die Unterhaltung als Patient/in.",
    "switch.submit": "Diese Unterhaltung öffnen",
    "switch.back": "Zurück, nichts ändern",
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
    "wipe.intro": "Löscht alle Unterhaltungen dieser Praxis mit allen Nachrichten und "
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
    "error.back_patient": "Zurück zu Ihrer Unterhaltung",
    "error.csrf": "Das Formular ist abgelaufen oder kam nicht von dieser Seite. Bitte laden "
    "Sie die Seite neu und versuchen Sie es noch einmal.",
    "error.not_found": "Das gibt es hier nicht (mehr).",
    "error.forbidden": "Dafür fehlt die Berechtigung.",
    "error.admin_only": "Diese Seite ist nur für die Verwaltung.",
    "error.too_large": "Das ist zu groß: Dateien dürfen höchstens {size} haben.",
    "error.throttled": "Zu viele Fehlversuche. Bitte warten Sie einige Minuten.",
    "error.bad_request": "Die Anfrage war ungültig.",
    "error.keys": "Die Schlüssel der Praxis fehlen: Es kann nichts gespeichert oder gelesen "
    "werden. Bitte verständigen Sie die Verwaltung.",
    "error.damaged": "Ein Eintrag dieser Unterhaltung wurde außerhalb von medcell in der Datenbank "
    "verändert und wird deshalb nicht angezeigt. Bitte verständigen Sie die Verwaltung.",
    "error.internal": "Ein interner Fehler ist aufgetreten. Bitte versuchen Sie es später noch "
    "einmal.",
    # -- quotas and full disk (issue 11)
    "quota.facility_full": (
        "Der Speicher der Praxis ist voll. Es wurde nichts gespeichert. Lesen und Löschen "
        "funktionieren weiter; bitte versuchen Sie es später noch einmal."
    ),
    "quota.conversation_full": (
        "Diese Unterhaltung hat ihren Speicherplatz ausgeschöpft. Es wurde nichts gespeichert."
    ),
    "quota.uploads_throttled": (
        "Über diesen Link wurden gerade viele Dateien gesendet. Bitte warten Sie etwas und "
        "versuchen Sie es dann noch einmal."
    ),
    "usage.title": "Speicherplatz",
    "usage.facility": "Belegt: {used} von {quota} ({percent} %).",
    "usage.near_full": (
        "Der Speicher ist fast voll. Neue Nachrichten und Dateien werden bald abgelehnt."
    ),
    "usage.full": (
        "Der Speicher ist voll: Neue Nachrichten und Dateien werden abgelehnt, "
        "bis Unterhaltungen gelöscht werden."
    ),
    "usage.conversation_quota": "Jede Unterhaltung darf höchstens {quota} belegen.",
    "usage.largest": "Größte Unterhaltungen (ohne Inhalt, nur Zahlen)",
    "usage.row": "{size} · Nachrichten: {messages} · Dateien: {files}",
    "usage.none": "Noch keine Unterhaltungen.",
    "usage.operator": "Die Grenze legt der Betreiber fest.",
    # -- backups (issue 11)
    # -- errors and faults (issue 11)
    # -- receipts (issue 12)
    "receipt.title": "Löschbeleg",
    "receipt.intro": "Die Praxis hat die Löschung digital unterschrieben. Der Beleg nennt "
    "keinen Inhalt, keinen Titel und keine Person, nur dass und wie vollständig gelöscht wurde.",
    "receipt.id": "Beleg-Nummer",
    "receipt.deleted_at": "Gelöscht am",
    "receipt.reason": "Anlass",
    "receipt.reason.patient": "von der Patientin oder dem Patienten gelöscht",
    "receipt.reason.staff": "vom Team gelöscht",
    "receipt.reason.expiry": "Frist abgelaufen",
    "receipt.reason.facility_wipe": "alle Patientendaten der Praxis gelöscht",
    "receipt.counts": "Gelöscht",
    "receipt.counts_text": "{messages} und {attachments}, samt {keys} zum Entschlüsseln",
    "receipt.n_messages": "{n} Nachrichten",
    "receipt.n_messages.one": "1 Nachricht",
    "receipt.n_files": "{n} Dateien",
    "receipt.n_files.one": "1 Datei",
    "receipt.n_keys": "{n} Schlüsseln",
    "receipt.n_keys.one": "1 Schlüssel",
    "receipt.verified": "Geprüft",
    "receipt.verified_yes": "Ja: Davon ist nichts mehr gespeichert; die Löschung ist nachgeprüft.",
    "receipt.verified_no": "Nein: Die Löschung ist ausgeführt, ließ sich aber nicht "
    "vollständig nachprüfen.",
    "receipt.download": "Beleg herunterladen (JSON)",
    "receipt.check": "Mit dem öffentlichen Schlüssel der Praxis kann jede und jeder die "
    "Unterschrift prüfen:",
    "receipt.key": "Schlüssel für Belege",
    "receipts.title": "Löschbelege",
    "receipts.intro": "Jede Löschung erhält einen unterschriebenen Beleg ohne Inhalt. Belege "
    "werden ein Jahr aufbewahrt.",
    "receipts.none": "Noch keine Löschungen.",
    "receipts.yes": "ja",
    "receipts.no": "nein",
    "receipts.key_label": "Öffentlicher Schlüssel:",
    "receipts.recent": "Zuletzt gelöscht",
    "receipts.entry.patient": "Eine Unterhaltung wurde von der Patientin oder dem Patienten "
    "gelöscht am {when},",
    "receipts.entry.staff": "Eine Unterhaltung wurde vom Team gelöscht am {when},",
    "receipts.entry.expiry": "Eine Unterhaltung wurde nach Ablauf der Frist gelöscht am {when},",
    "receipts.entry.facility_wipe": "Alle Patientendaten wurden gelöscht am {when},",
    "receipts.receipt": "Beleg {id}…",
    # -- exports, reference, access log (issue 12)
    "records.title": "Für die Patientenakte",
    "records.patient": "Patient/in",
    "records.no_reference": "Noch keine Patientenangabe (Name, Geburtsdatum, Nummer).",
    "records.export_pdf": "Als PDF exportieren",
    "records.export_fhir": "Als FHIR exportieren",
    "records.export_hint": "Der Export wird nicht auf dem Server gespeichert; die Patientin "
    "oder der Patient sieht, dass exportiert wurde.",
    "records.edit": "Patientenangabe ändern",
    "records.save": "Speichern",
    "records.bad_format": "Unbekanntes Exportformat.",
    "records.too_large": "Diese Unterhaltung ist zu lang für ein PDF. Bitte als FHIR exportieren.",
    "records.bad_reference": "Die Patientenangabe ist ungültig: Name bis 200 Zeichen, "
    "Geburtsdatum als Datum, Nummer bis 64 Zeichen.",
    "ref.legend": "Patient/in (optional)",
    "ref.hint": "Nur für das Team sichtbar; erscheint im Export für die Patientenakte.",
    "ref.name": "Name",
    "ref.birth_date": "Geburtsdatum",
    "ref.number": "Patientennummer der Praxis",
    "access.title": "Wer hat hineingesehen?",
    "access.hint": "Jedes Öffnen, Herunterladen und Exportieren durch das Praxisteam wird "
    "hier festgehalten und mit der Unterhaltung gelöscht.",
    "access.none": "Noch niemand aus dem Praxisteam.",
    "access.open": "{who} hat die Unterhaltung geöffnet",
    "access.download": "{who} hat die Datei „{item}“ geöffnet",
    "access.export_pdf": "{who} hat die Unterhaltung als PDF exportiert",
    "access.export_fhir": "{who} hat die Unterhaltung als FHIR-Datensatz exportiert",
    "expiring.title": "Läuft in den nächsten 24 Stunden ab",
    "expiring.hint": "Diese Unterhaltungen werden bald vollständig gelöscht. Exportieren Sie, "
    "was in die Patientenakte gehört, vorher.",
    "expiring.at": "wird gelöscht ab",
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
    "notify.admin_on": "E-Mail ist für diese Praxis eingerichtet. Jedes Teammitglied "
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
    "msg.read": "gelesen",
    "list.unread_badge": "{n} neu",
    "compose.empty": "Bitte schreiben Sie eine Nachricht oder wählen Sie eine Datei aus.",
    "compose.left": "Noch {n} Zeichen",
    "compose.left.one": "Noch 1 Zeichen",
    "compose.file": "Foto oder PDF anhängen (optional)",
    "list.search": "Suchen",
    "list.search_hint": "Im Titel und in der Patientenangabe; nichts davon wird als Suchindex "
    "gespeichert.",
    "list.only_unread": "Nur ungelesene",
    "list.sort": "Sortieren nach",
    "list.sort_activity": "Letzte Aktivität",
    "list.sort_expires": "Löschung (bald zuerst)",
    "list.sort_created": "Eröffnet (neueste zuerst)",
    "list.sort_title": "Titel (A–Z)",
    "list.apply": "Anwenden",
    "list.count": "{n} von {total} Unterhaltungen",
    "list.created": "eröffnet",
    "list.pages": "Seiten",
    "list.prev": "Zurück",
    "list.next": "Weiter",
    "list.page": "Seite {page} von {pages}",
    "list.no_match": "Keine Unterhaltung passt zu dieser Auswahl.",
    "list.untitled": "Ohne Titel",
    # -- accounts, quick replies, contact, throttling (issue 13)
    "login.throttled": "Zu viele Fehlversuche für dieses Konto von diesem Gerät oder Netz. "
    "Bitte warten Sie {wait}; Ihre Kolleginnen und Kollegen können sich weiter anmelden.",
    "login.disabled": "Dieses Konto wurde von der Verwaltung deaktiviert. Bitte wenden Sie sich "
    "an die Verwaltung.",
    "admin.inactive": "deaktiviert",
    "admin.deactivate": "Deaktivieren",
    "admin.deactivate_named": "Konto {name} deaktivieren",
    "admin.reactivate": "Reaktivieren",
    "admin.reactivate_named": "Konto {name} reaktivieren",
    "admin.reset": "Passwort zurücksetzen",
    "admin.reset_named": "Passwort von {name} zurücksetzen",
    "admin.deactivated": "Das Konto {name} ist deaktiviert; seine Sitzungen wurden beendet.",
    "admin.reactivated": "Das Konto {name} kann sich wieder anmelden.",
    "admin.not_self_action": "Das geht nicht mit Ihrem eigenen Konto (Ihr Passwort ändern Sie "
    "unter „Passwort“).",
    "reset.title": "Neues Passwort",
    "reset.text": "Das Konto {name} hat ein neues Passwort. Alle seine Sitzungen wurden beendet.",
    "quick.title": "Textbausteine",
    "quick.intro": "Vorlagen, die das Team beim Antworten einfügen kann. Sie sind Texte der "
    "Praxis, keine Patientendaten.",
    "quick.add": "Textbaustein hinzufügen",
    "quick.label": "Name",
    "quick.body": "Text",
    "quick.submit": "Textbaustein speichern",
    "quick.remove_named": "Textbaustein {name} entfernen",
    "quick.bad": "Name (höchstens 60 Zeichen) und Text (höchstens {n} Zeichen) dürfen nicht "
    "leer sein.",
    "quick.full": "Es gibt schon {n} Textbausteine. Bitte entfernen Sie zuerst einen.",
    "quick.insert_label": "Textbaustein",
    "quick.insert": "Einfügen",
    "contact.title": "Kontakt für Patientinnen und Patienten",
    "contact.intro": "Wird gezeigt, wenn ein Link ungültig oder gesperrt ist oder eine PIN "
    "verlangt wird.",
    "contact.phone": "Telefon",
    "contact.hours": "Sprechzeiten",
    "contact.submit": "Kontakt speichern",
    "contact.bad": "Die Telefonnummer darf nur Ziffern, Leerzeichen und + ( ) / . - enthalten "
    "(3–40 Zeichen), die Sprechzeiten höchstens 300 Zeichen.",
    "contact.saved": "Der Kontakt wurde gespeichert.",
    "contact.reach": "So erreichen Sie {name}",
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
    "login.patients": "Patients need no account: they open the link the practice sent them.",
    "home.title": "Conversations",
    "home.list": "Open conversations",
    "home.none": "There are no conversations right now.",
    "home.last_activity": "Last activity:",
    "home.expires": "Will be deleted:",
    "home.pin": "with PIN",
    "home.locked": "link locked",
    "new.title": "New conversation",
    "new.back": "Back to the conversations",
    "msg.team": "Practice team",
    "msg.automatic": "Automatic reply",
    "team.title": "In the team",
    "team.assigned_to": "Assigned to",
    "team.nobody": "nobody",
    "team.me": "you",
    "team.assign": "Assign",
    "team.bad_assignee": "This account does not exist or is deactivated.",
    "team.notes": "Internal notes",
    "team.notes_hint": "For the practice team only: the patient never sees them. They are stored "
    "encrypted and deleted with the conversation.",
    "team.note_label": "New note",
    "team.note_submit": "Save note",
    "team.note_empty": "The note is empty.",
    "team.note_too_long": "A note may be at most {n} characters long.",
    "records.export_pdf_notes": "PDF with internal notes",
    "list.only_mine": "Assigned to me only",
    "list.assigned": "assigned: {name}",
    "list.assigned_me": "assigned to you",
    "name.title": "Your name in the team",
    "name.hint": "It appears above your messages, for colleagues, for patients and in the PDF, "
    "e.g. “Dr Weber” or “Anna (reception)”.",
    "name.label": "Display name",
    "name.label_for": "Display name for {name}",
    "name.submit": "Save name",
    "name.rename": "Change name",
    "name.bad": "The name must be 1 to 80 characters on one line, without control characters.",
    "name.saved": "Your name has been saved.",
    "name.saved_for": "{name} is now called “{display}”.",
    "password.change": "Change password",
    "msg.colleague": "{name}",
    "msg.staff_named": "{name}, {facility}",
    "list.only_waiting": "Waiting only (the patient wrote last)",
    "list.filter_toggle": "Search and filter",
    "inbox.waiting": "waiting for a reply since",
    "inbox.no_messages": "No message yet.",
    "inbox.files": "File: {names}",
    "inbox.damaged": "This message cannot be opened.",
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
    "created.once": "You can print or e-mail the same link again later from the "
    "conversation; it stays valid until you make a new one.",
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
    "attach.hint": "Photos (JPEG, PNG, WebP, GIF, HEIC) or PDF, at most {size}.",
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
    "pin.intro": "This conversation is protected by a PIN. The practice gave you the PIN in "
    "person or by phone.",
    "pin.label": "PIN (4 to 8 digits)",
    "pin.submit": "Open",
    "pin.wrong": "Wrong PIN. {n} tries left, then the link is locked.",
    "pin.wrong.one": "Wrong PIN. 1 try left, then the link is locked.",
    "pin.locked_title": "Link locked",
    "pin.locked": "This link is locked after too many wrong PINs. Please ask the practice "
    "for a new link.",
    "link.invalid_title": "Link not valid",
    "link.invalid": "This link is not valid (any more). The conversation may have been "
    "deleted or a new link made. Please contact the practice.",
    "session.ended_title": "Session ended",
    "session.ended": "Your session has expired or ended. Please open your link again.",
    "switch.title": "Open another conversation?",
    "switch.patient": "This browser already has another conversation open. Opening this link "
    "closes it here. Only open links your practice sent you itself.",
    "switch.staff": "You are signed in as staff in this browser. This link opens the "
    "conversation as its patient.",
    "switch.submit": "Open this conversation",
    "switch.back": "Go back, change nothing",
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
    "wipe.intro": "Deletes every conversation of this practice with all messages and files, "
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
    "error.back_patient": "Back to your conversation",
    "error.csrf": "The form has expired or did not come from this page. Please reload the "
    "page and try again.",
    "error.not_found": "That does not exist here (any more).",
    "error.forbidden": "You are not allowed to do that.",
    "error.admin_only": "This page is for administrators only.",
    "error.too_large": "That is too large: files may be at most {size}.",
    "error.throttled": "Too many failed attempts. Please wait a few minutes.",
    "error.bad_request": "The request was invalid.",
    "error.keys": "The practice's encryption keys are missing: nothing can be stored or read. "
    "Please tell your administrator.",
    "error.damaged": "An entry of this conversation was altered in the database outside medcell, "
    "so it is not shown. Please tell your administrator.",
    "error.internal": "An internal error happened. Please try again later.",
    # -- quotas and full disk (issue 11)
    "quota.facility_full": (
        "The practice's storage is full. Nothing was stored. Reading and deleting still work; "
        "please try again later."
    ),
    "quota.conversation_full": "This conversation has used up its storage. Nothing was stored.",
    "quota.uploads_throttled": (
        "Many files were just sent through this link. Please wait a while and try again."
    ),
    "usage.title": "Storage",
    "usage.facility": "In use: {used} of {quota} ({percent} %).",
    "usage.near_full": "Storage is nearly full. New messages and files will soon be refused.",
    "usage.full": (
        "Storage is full: new messages and files are refused until conversations are deleted."
    ),
    "usage.conversation_quota": "Each conversation may take at most {quota}.",
    "usage.largest": "Largest conversations (no content, numbers only)",
    "usage.row": "{size} · messages: {messages} · files: {files}",
    "usage.none": "No conversations yet.",
    "usage.operator": "The limit is set by the operator.",
    # -- backups (issue 11)
    # -- errors and faults (issue 11)
    # -- receipts (issue 12)
    "receipt.title": "Deletion receipt",
    "receipt.intro": "The practice has signed the deletion digitally. The receipt names no "
    "content, no title and no person, only that and how completely it was deleted.",
    "receipt.id": "Receipt number",
    "receipt.deleted_at": "Deleted on",
    "receipt.reason": "Reason",
    "receipt.reason.patient": "deleted by the patient",
    "receipt.reason.staff": "deleted by staff",
    "receipt.reason.expiry": "retention expired",
    "receipt.reason.facility_wipe": "all patient data of the practice deleted",
    "receipt.counts": "Deleted",
    "receipt.counts_text": "{messages} and {attachments}, with {keys} that could decrypt them",
    "receipt.n_messages": "{n} messages",
    "receipt.n_messages.one": "1 message",
    "receipt.n_files": "{n} files",
    "receipt.n_files.one": "1 file",
    "receipt.n_keys": "{n} keys",
    "receipt.n_keys.one": "1 key",
    "receipt.verified": "Verified",
    "receipt.verified_yes": "Yes: none of it is stored any more; the deletion was checked.",
    "receipt.verified_no": "No: the deletion is done but could not be checked completely.",
    "receipt.download": "Download the receipt (JSON)",
    "receipt.check": "Anyone can check the signature with the practice's public key:",
    "receipt.key": "receipt key",
    "receipts.title": "Deletion receipts",
    "receipts.intro": "Every deletion gets a signed receipt without content. Receipts are kept "
    "for one year.",
    "receipts.none": "No deletions yet.",
    "receipts.yes": "yes",
    "receipts.no": "no",
    "receipts.key_label": "Public key:",
    "receipts.recent": "Recently deleted",
    "receipts.entry.patient": "A conversation was deleted by the patient on {when},",
    "receipts.entry.staff": "A conversation was deleted by staff on {when},",
    "receipts.entry.expiry": "A conversation was deleted when its retention expired on {when},",
    "receipts.entry.facility_wipe": "All patient data was deleted on {when},",
    "receipts.receipt": "receipt {id}…",
    # -- exports, reference, access log (issue 12)
    "records.title": "For the patient record",
    "records.patient": "Patient",
    "records.no_reference": "No patient reference yet (name, date of birth, number).",
    "records.export_pdf": "Export as PDF",
    "records.export_fhir": "Export as FHIR",
    "records.export_hint": "The export is not kept on the server; the patient sees that it "
    "was exported.",
    "records.edit": "Change patient reference",
    "records.save": "Save",
    "records.bad_format": "Unknown export format.",
    "records.too_large": "This conversation is too long for one PDF. Please export it as FHIR.",
    "records.bad_reference": "The patient reference is invalid: name up to 200 characters, "
    "date of birth as a date, number up to 64 characters.",
    "ref.legend": "Patient (optional)",
    "ref.hint": "Seen only by the team; printed in the export for the patient record.",
    "ref.name": "Name",
    "ref.birth_date": "Date of birth",
    "ref.number": "Practice patient number",
    "access.title": "Who has looked?",
    "access.hint": "Every time the practice team opens, downloads or exports, it is recorded "
    "here, and deleted with the conversation.",
    "access.none": "Nobody from the practice team yet.",
    "access.open": "{who} opened the conversation",
    "access.download": "{who} opened the file “{item}”",
    "access.export_pdf": "{who} exported the conversation as a PDF",
    "access.export_fhir": "{who} exported the conversation as a FHIR record",
    "expiring.title": "Expiring within 24 hours",
    "expiring.hint": "These conversations will soon be deleted completely. Export what belongs "
    "in the patient record first.",
    "expiring.at": "deleted from",
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
    "notify.admin_on": "E-mail is set up for this practice. Each team member turns "
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
    "msg.read": "read",
    "list.unread_badge": "{n} new",
    "compose.empty": "Please write a message or choose a file.",
    "compose.left": "{n} characters left",
    "compose.left.one": "1 character left",
    "compose.file": "Attach a photo or PDF (optional)",
    "list.search": "Search",
    "list.search_hint": "In the title and the patient reference; none of it is stored as a "
    "search index.",
    "list.only_unread": "Unread only",
    "list.sort": "Sort by",
    "list.sort_activity": "Last activity",
    "list.sort_expires": "Deletion (soonest first)",
    "list.sort_created": "Opened (newest first)",
    "list.sort_title": "Title (A–Z)",
    "list.apply": "Apply",
    "list.count": "{n} of {total} conversations",
    "list.created": "opened",
    "list.pages": "Pages",
    "list.prev": "Previous",
    "list.next": "Next",
    "list.page": "Page {page} of {pages}",
    "list.no_match": "No conversation matches this selection.",
    "list.untitled": "Untitled",
    # -- accounts, quick replies, contact, throttling (issue 13)
    "login.throttled": "Too many failed attempts for this account from this device or network. "
    "Please wait {wait}; your colleagues can still log in.",
    "login.disabled": "This account has been deactivated by an administrator. Please ask your "
    "administrator.",
    "admin.inactive": "deactivated",
    "admin.deactivate": "Deactivate",
    "admin.deactivate_named": "Deactivate account {name}",
    "admin.reactivate": "Reactivate",
    "admin.reactivate_named": "Reactivate account {name}",
    "admin.reset": "Reset password",
    "admin.reset_named": "Reset the password of {name}",
    "admin.deactivated": "The account {name} is deactivated; its sessions have ended.",
    "admin.reactivated": "The account {name} can log in again.",
    "admin.not_self_action": "Not possible for your own account (change your password under "
    "“Password”).",
    "reset.title": "New password",
    "reset.text": "The account {name} has a new password. All of its sessions have ended.",
    "quick.title": "Quick replies",
    "quick.intro": "Templates the team can insert when replying. They are the practice's texts, "
    "not patient data.",
    "quick.add": "Add a quick reply",
    "quick.label": "Name",
    "quick.body": "Text",
    "quick.submit": "Save quick reply",
    "quick.remove_named": "Remove quick reply {name}",
    "quick.bad": "Name (at most 60 characters) and text (at most {n} characters) must not be "
    "empty.",
    "quick.full": "There are {n} quick replies already. Please remove one first.",
    "quick.insert_label": "Quick reply",
    "quick.insert": "Insert",
    "contact.title": "Contact for patients",
    "contact.intro": "Shown when a link is invalid or locked, or a PIN is asked for.",
    "contact.phone": "Phone",
    "contact.hours": "Opening hours",
    "contact.submit": "Save contact",
    "contact.bad": "The phone number may hold only digits, spaces and + ( ) / . - (3–40 "
    "characters), the opening hours at most 300 characters.",
    "contact.saved": "The contact has been saved.",
    "contact.reach": "How to reach {name}",
}

# The staff sign-in pages' texts are kept in their own module.
DE.update(signin_texts.DE)
EN.update(signin_texts.EN)
# Texts that features keep in modules of their own (this file is long enough).
DE.update(texts_messages.DE)
EN.update(texts_messages.EN)
DE.update(i18n_links.DE)
EN.update(i18n_links.EN)
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


def format_time(us: int, lang: str, zone: str = "UTC") -> str:
    """A time in the practice's time zone (the pages' script shows the same zone)."""
    moment = datetime.fromtimestamp(us / 1e6, ZoneInfo(zone))
    if lang == "de":
        return moment.strftime("%d.%m.%Y, %H:%M Uhr")
    return moment.strftime("%d %b %Y, %H:%M")


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


def format_wait(seconds: int, lang: str) -> str:
    """How long to wait, rounded up to whole minutes from one minute on."""
    if seconds < 60:
        return text(lang, "duration.s", n=seconds)
    return text(lang, "duration.m", n=-(-seconds // 60))
