"""Texts of correcting and deleting one's own message, German first (merged into i18n's tables)."""

DE = {
    "edit.summary": "Ändern oder löschen",
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
}

EN = {
    "edit.summary": "Edit or delete",
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
}
