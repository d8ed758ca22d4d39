"""Texts of correcting and deleting one's own message and of the automatic reply, German first
(merged into i18n's tables)."""

DE = {
    "edit.summary": "Ändern oder löschen",
    "edit.title": "Nachricht ändern oder löschen",
    "edit.delete_text": "Die Nachricht wird samt ihren Dateien gelöscht; zu sehen bleibt, dass "
    "hier eine Nachricht war.",
    "edit.back": "Zurück zur Unterhaltung",
    "edit.until_before": "Möglich bis",
    "edit.for_good": "Der alte Text wird dabei endgültig gelöscht.",
    "edit.label": "Korrigierter Text",
    "edit.save": "Korrektur senden",
    "edit.delete": "Nachricht löschen",
    "edit.corrected": "korrigiert",
    "edit.deleted": "Diese Nachricht wurde von ihrem Absender gelöscht.",
    "edit.closed": "Eine Nachricht lässt sich nur in den ersten {n} Minuten nach dem Senden "
    "ändern oder löschen; diese bleibt, wie sie ist.",
    "edit.gone": "Diese Nachricht wurde schon gelöscht.",
    "edit.hint": "Ihre Nachricht können Sie bis {n} Minuten nach dem Senden korrigieren oder "
    "löschen.",
    "error.prefix": "Fehler: ",
    "attach.too_many": "Höchstens {n} Dateien pro Nachricht.",
    "attach.camera": "Foto aufnehmen",
    "attach.chosen": "Ausgewählt",
    "attach.sending": "Wird hochgeladen …",
    "attach.offline": "Die Verbindung ist abgebrochen; nichts wurde gesendet. Bitte versuchen Sie "
    "es noch einmal.",
    "attach.several": "Sie können mehrere Fotos oder PDFs auf einmal senden (zusammen höchstens "
    "{size}); Fotos werden vor dem Hochladen verkleinert.",
    "draft.restored": "Ihr noch nicht gesendeter Text wurde wiederhergestellt.",
    "auto.title": "Automatische Antwort außerhalb der Sprechzeiten",
    "auto.intro": "Schreibt eine Patientin oder ein Patient, während die Praxis laut ihren "
    "Sprechzeiten (oben unter Kontakt) geschlossen hat, bekommt die Unterhaltung einmal diese "
    "Antwort des Praxisteams – bis die Praxis wieder geöffnet und geschlossen hat.",
    "auto.no_hours": "Die Sprechzeiten nennen keine Uhrzeiten (etwa „Mo–Fr 8–12 Uhr“). Ohne "
    "sie wird keine automatische Antwort gesendet.",
    "auto.enabled": "Automatische Antwort senden",
    "auto.text": "Text der automatischen Antwort",
    "auto.submit": "Automatische Antwort speichern",
    "auto.saved": "Die automatische Antwort wurde gespeichert.",
    "auto.bad": "Eingeschaltet braucht die automatische Antwort einen Text (höchstens {n} "
    "Zeichen).",
}

EN = {
    "edit.summary": "Edit or delete",
    "edit.title": "Edit or delete a message",
    "edit.delete_text": "The message is deleted with its files; what stays visible is that a "
    "message was here.",
    "edit.back": "Back to the conversation",
    "edit.until_before": "Possible until",
    "edit.for_good": "The old text is deleted for good.",
    "edit.label": "Corrected text",
    "edit.save": "Send correction",
    "edit.delete": "Delete message",
    "edit.corrected": "corrected",
    "edit.deleted": "This message was deleted by its sender.",
    "edit.closed": "A message can be changed or deleted only in the first {n} minutes after "
    "sending it; this one stays as it is.",
    "edit.gone": "This message has already been deleted.",
    "edit.hint": "You can correct or delete your message for up to {n} minutes after sending it.",
    "error.prefix": "Error: ",
    "attach.too_many": "At most {n} files per message.",
    "attach.camera": "Take a photo",
    "attach.chosen": "Chosen",
    "attach.sending": "Uploading …",
    "attach.offline": "The connection broke off; nothing was sent. Please try again.",
    "attach.several": "You can send several photos or PDFs at once (together at most {size}); "
    "photos are made smaller before they are uploaded.",
    "draft.restored": "Your text that was not sent yet has been restored.",
    "auto.title": "Automatic reply outside opening hours",
    "auto.intro": "When a patient writes while the practice is closed by its opening hours "
    "(under Contact above), the conversation gets this reply from the practice team once – "
    "until the practice has opened and closed again.",
    "auto.no_hours": "The opening hours name no times (such as “Mon–Fri 8am–12pm”). Without "
    "them no automatic reply is sent.",
    "auto.enabled": "Send an automatic reply",
    "auto.text": "Text of the automatic reply",
    "auto.submit": "Save automatic reply",
    "auto.saved": "The automatic reply has been saved.",
    "auto.bad": "Switched on, the automatic reply needs a text (at most {n} characters).",
}
