"""The texts of the staff sign-in pages (second factor, passkeys, forgotten password, the
admins' confirm steps), German first, English too; i18n.TEXTS takes them in."""

DE = {
    "confirm.cancel": "Abbrechen",
    "signin.passkey_or": "Oder ohne Passwort:",
    "signin.passkey_button": "Mit Passkey anmelden",
    "signin.passkey_failed": "Die Anmeldung mit dem Passkey hat nicht geklappt. Bitte versuchen "
    "Sie es noch einmal.",
    "signin.passkey_needs_script": "Passkeys brauchen JavaScript in diesem Browser.",
    "signin.forgot_link": "Passwort vergessen?",
    "signin.forgot_title": "Passwort vergessen",
    "signin.forgot_text": "Ein neues Passwort bekommen Sie von der Verwaltung Ihrer Praxis: "
    "Bitten Sie eine Kollegin oder einen Kollegen mit Verwaltungsrechten, Ihr Passwort "
    "zurückzusetzen. Aus Sicherheitsgründen verschickt medcell keine Passwörter per E-Mail.",
    "signin.forgot_then": "Mit dem neuen Passwort melden Sie sich an und wählen gleich danach "
    "Ihr eigenes.",
    "signin.verify_title": "Zweiter Schritt der Anmeldung",
    "signin.verify_intro": "Das Passwort für {name} stimmt. Bestätigen Sie jetzt mit Ihrem "
    "Passkey oder einem Code.",
    "signin.code_label": "Code aus der Authenticator-App",
    "signin.code_hint": "6 Ziffern; ein Wiederherstellungscode geht auch.",
    "signin.code_submit": "Bestätigen",
    "signin.code_wrong": "Der Code ist falsch oder wurde schon benutzt.",
    "signin.cancel": "Anmeldung abbrechen",
    "signin.new_password_title": "Neues Passwort wählen",
    "signin.new_password_intro": "Die Verwaltung hat Ihr Passwort zurückgesetzt. Wählen Sie "
    "jetzt Ihr eigenes; das bisherige gilt danach nicht mehr.",
    "signin.again": "Neues Passwort wiederholen",
    "signin.passwords_differ": "Die beiden Passwörter sind nicht gleich.",
    "security.link": "Anmeldung und Sicherheit (Passkeys, Authenticator-App)",
    "security.title": "Anmeldung und Sicherheit",
    "security.setup_owed": "Ihre Praxis verlangt einen zweiten Faktor. Richten Sie einen "
    "Passkey oder eine Authenticator-App ein, dann geht es weiter.",
    "security.passkeys": "Passkeys",
    "security.passkeys_intro": "Ein Passkey meldet Sie mit Fingerabdruck, Gesicht oder "
    "Geräte-PIN an und funktioniert nur auf der Adresse Ihrer Praxis: Eine gefälschte Seite "
    "kann ihn nicht abgreifen.",
    "security.no_passkeys": "Noch kein Passkey.",
    "security.added": "hinzugefügt",
    "security.last_used": "zuletzt benutzt",
    "security.name_label": "Name des Passkeys",
    "security.default_name": "Mein Passkey",
    "security.add_passkey": "Passkey hinzufügen",
    "security.passkey_failed": "Der Passkey konnte nicht hinzugefügt werden. Bitte versuchen "
    "Sie es noch einmal.",
    "security.bad_name": "Der Name muss 1–60 Zeichen auf einer Zeile haben.",
    "security.renamed": "Der Passkey heißt jetzt „{name}“.",
    "security.remove": "Entfernen",
    "security.remove_named": "Passkey {name} entfernen",
    "security.remove_title": "Passkey entfernen?",
    "security.remove_text": "Mit dem Passkey „{name}“ können Sie sich danach nicht mehr anmelden.",
    "security.removed": "Der Passkey wurde entfernt.",
    "security.totp": "Authenticator-App (Ersatz)",
    "security.totp_intro": "Falls kein Passkey zur Hand ist: ein 6-stelliger Code aus einer "
    "App wie FreeOTP oder Aegis.",
    "security.totp_begin": "Authenticator-App einrichten",
    "security.totp_scan": "Scannen Sie den QR-Code mit der App (oder geben Sie den Schlüssel "
    "ein) und bestätigen Sie mit dem ersten Code.",
    "security.totp_qr": "QR-Code für die Authenticator-App",
    "security.totp_secret": "Schlüssel zum Eintippen",
    "security.totp_confirm": "Einrichten bestätigen",
    "security.totp_active": "Die Authenticator-App ist eingerichtet.",
    "security.totp_on": "Die Authenticator-App ist eingerichtet.",
    "security.totp_exists": "Eine Authenticator-App ist schon eingerichtet.",
    "security.totp_not_started": "Beginnen Sie das Einrichten bitte neu.",
    "security.totp_remove": "Authenticator-App entfernen",
    "security.totp_remove_title": "Authenticator-App entfernen?",
    "security.totp_remove_text": "Ihre Codes und Wiederherstellungscodes gelten danach nicht mehr.",
    "security.totp_removed": "Die Authenticator-App wurde entfernt.",
    "security.codes_left": "Noch {n} Wiederherstellungscodes übrig.",
    "security.codes_left.one": "Noch 1 Wiederherstellungscode übrig.",
    "security.codes_title": "Ihre Wiederherstellungscodes",
    "security.codes_text": "Jeder Code ersetzt einmal den Code aus der App, etwa wenn das "
    "Telefon fehlt. Bewahren Sie sie sicher auf, getrennt vom Passwort.",
    "security.codes_once": "Die Codes werden nur jetzt angezeigt.",
    "admin.second_factor": "Zweiter Faktor",
    "admin.second_factor_text": "Verlangt für jedes Konto einen Passkey oder eine "
    "Authenticator-App. Wer noch keinen hat, richtet ihn bei der nächsten Anmeldung ein.",
    "admin.second_factor_label": "Zweiten Faktor für alle Konten verlangen",
    "admin.second_factor_submit": "Speichern",
    "admin.second_factor_on": "Ab jetzt braucht jedes Konto einen zweiten Faktor.",
    "admin.second_factor_off": "Ein zweiter Faktor ist jetzt freiwillig.",
    "admin.remove_confirm_title": "Konto entfernen?",
    "admin.remove_confirm": "Das Konto {name} wird entfernt, mit seinen Passkeys; seine "
    "Nachrichten bleiben mit seinem Namen stehen.",
    "admin.remove_confirm_button": "Konto entfernen",
    "admin.reset_confirm_title": "Passwort zurücksetzen?",
    "admin.reset_confirm": "{name} bekommt ein neues Passwort, das nur einmal angezeigt wird; "
    "alle Sitzungen des Kontos enden, und bei der nächsten Anmeldung wählt {name} ein eigenes.",
    "admin.reset_confirm_button": "Passwort zurücksetzen",
    "admin.reset_factors": "Auch Passkeys und Authenticator-App entfernen (wenn die Geräte "
    "verloren sind)",
    "admin.retention_confirm_title": "Aufbewahrung verkürzen?",
    "admin.retention_confirm": "Mit {duration} werden sofort {n} Unterhaltungen vollständig "
    "gelöscht, deren letzte Aktivität länger zurückliegt. Das lässt sich nicht rückgängig machen.",
    "admin.retention_confirm.one": "Mit {duration} wird sofort 1 Unterhaltung vollständig "
    "gelöscht, deren letzte Aktivität länger zurückliegt. Das lässt sich nicht rückgängig machen.",
    "admin.retention_confirm_button": "Verkürzen und löschen",
}

EN = {
    "confirm.cancel": "Cancel",
    "signin.passkey_or": "Or without a password:",
    "signin.passkey_button": "Sign in with a passkey",
    "signin.passkey_failed": "Signing in with the passkey did not work. Please try again.",
    "signin.passkey_needs_script": "Passkeys need JavaScript in this browser.",
    "signin.forgot_link": "Forgot your password?",
    "signin.forgot_title": "Forgot your password",
    "signin.forgot_text": "A new password comes from your practice's administration: ask a "
    "colleague with administrator rights to reset your password. For your safety medcell never "
    "sends passwords by e-mail.",
    "signin.forgot_then": "Sign in with the new password and choose your own right after.",
    "signin.verify_title": "Second step of signing in",
    "signin.verify_intro": "The password for {name} is right. Now confirm with your passkey or "
    "a code.",
    "signin.code_label": "Code from the authenticator app",
    "signin.code_hint": "6 digits; a recovery code works too.",
    "signin.code_submit": "Confirm",
    "signin.code_wrong": "The code is wrong or has been used.",
    "signin.cancel": "Cancel signing in",
    "signin.new_password_title": "Choose a new password",
    "signin.new_password_intro": "An administrator reset your password. Choose your own now; "
    "the old one stops working.",
    "signin.again": "Repeat the new password",
    "signin.passwords_differ": "The two passwords differ.",
    "security.link": "Sign-in and security (passkeys, authenticator app)",
    "security.title": "Sign-in and security",
    "security.setup_owed": "Your practice requires a second factor. Set up a passkey or an "
    "authenticator app to go on.",
    "security.passkeys": "Passkeys",
    "security.passkeys_intro": "A passkey signs you in with your fingerprint, face or device "
    "PIN and works only at your practice's address: a fake site cannot capture it.",
    "security.no_passkeys": "No passkey yet.",
    "security.added": "added",
    "security.last_used": "last used",
    "security.name_label": "Name of the passkey",
    "security.default_name": "My passkey",
    "security.add_passkey": "Add a passkey",
    "security.passkey_failed": "The passkey could not be added. Please try again.",
    "security.bad_name": "The name must be 1–60 characters on one line.",
    "security.renamed": "The passkey is now called “{name}”.",
    "security.remove": "Remove",
    "security.remove_named": "Remove passkey {name}",
    "security.remove_title": "Remove the passkey?",
    "security.remove_text": "You will no longer be able to sign in with the passkey “{name}”.",
    "security.removed": "The passkey has been removed.",
    "security.totp": "Authenticator app (fallback)",
    "security.totp_intro": "For when no passkey is at hand: a 6-digit code from an app such as "
    "FreeOTP or Aegis.",
    "security.totp_begin": "Set up an authenticator app",
    "security.totp_scan": "Scan the QR code with the app (or type in the key) and confirm with "
    "the first code.",
    "security.totp_qr": "QR code for the authenticator app",
    "security.totp_secret": "Key to type in",
    "security.totp_confirm": "Confirm setup",
    "security.totp_active": "The authenticator app is set up.",
    "security.totp_on": "The authenticator app is set up.",
    "security.totp_exists": "An authenticator app is set up already.",
    "security.totp_not_started": "Please start the setup again.",
    "security.totp_remove": "Remove the authenticator app",
    "security.totp_remove_title": "Remove the authenticator app?",
    "security.totp_remove_text": "Its codes and your recovery codes stop working.",
    "security.totp_removed": "The authenticator app has been removed.",
    "security.codes_left": "{n} recovery codes left.",
    "security.codes_left.one": "1 recovery code left.",
    "security.codes_title": "Your recovery codes",
    "security.codes_text": "Each code stands in once for the app's code, say when your phone "
    "is not at hand. Keep them safe, apart from your password.",
    "security.codes_once": "The codes are shown only now.",
    "admin.second_factor": "Second factor",
    "admin.second_factor_text": "Requires a passkey or an authenticator app for every account. "
    "Whoever has none sets one up at their next sign-in.",
    "admin.second_factor_label": "Require a second factor for every account",
    "admin.second_factor_submit": "Save",
    "admin.second_factor_on": "From now on every account needs a second factor.",
    "admin.second_factor_off": "A second factor is now optional.",
    "admin.remove_confirm_title": "Remove the account?",
    "admin.remove_confirm": "The account {name} is removed, with its passkeys; its messages stay "
    "with its name.",
    "admin.remove_confirm_button": "Remove the account",
    "admin.reset_confirm_title": "Reset the password?",
    "admin.reset_confirm": "{name} gets a new password, shown only once; every session of the "
    "account ends, and at the next sign-in {name} chooses their own.",
    "admin.reset_confirm_button": "Reset the password",
    "admin.reset_factors": "Also remove passkeys and the authenticator app (when the devices "
    "are lost)",
    "admin.retention_confirm_title": "Shorten the retention?",
    "admin.retention_confirm": "With {duration}, {n} conversations whose last activity is older "
    "are deleted completely at once. This cannot be undone.",
    "admin.retention_confirm.one": "With {duration}, 1 conversation whose last activity is "
    "older is deleted completely at once. This cannot be undone.",
    "admin.retention_confirm_button": "Shorten and delete",
}
