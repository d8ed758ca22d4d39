"""One exception tree for the facility app; every HTTP error carries its status and code."""


class FacilityError(Exception):
    """Root of everything the facility app raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str = "Internal error.", *, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class ConfigError(FacilityError):
    """The app cannot start with the configuration it was given."""


class BackupError(FacilityError):
    """A backup cannot be made or restored: wrong facility, expired, damaged or the wrong key."""


class CryptoError(FacilityError):
    """A sealed value or wrapped key failed to open: tampered, moved or its key is gone."""


class CryptoUnavailable(CryptoError):
    """This CPU cannot do AES-256-GCM; we refuse to fall back to anything weaker."""


class RecordDamaged(CryptoError):
    """A sealed record no longer matches the plain columns beside it (its conversation, author
    or time): it was altered outside medcell and is not shown as if it were genuine."""

    code = "record_damaged"

    def __init__(self, what: str = "a message"):
        super().__init__(
            f"{what} of this conversation fails its integrity check: the database was altered "
            "outside medcell; the administrator should restore a backup"
        )


class KeyDestroyed(CryptoError):
    """The key-encryption key version a record needs has been destroyed."""


class BadRequest(FacilityError):
    status, code = 400, "bad_request"


class TooLong(BadRequest):
    """A text over its limit: a validation error like any other (413 is for a body too large)."""


class Unauthorized(FacilityError):
    status, code = 401, "unauthorized"


class Forbidden(FacilityError):
    status, code = 403, "forbidden"


class PinRequired(Forbidden):
    """The conversation has a PIN: its link alone grants nothing until the PIN is entered."""

    code = "pin_required"


class LinkLocked(Forbidden):
    """Too many wrong PINs: the patient link is locked until staff issue a new one."""

    code = "link_locked"


class AccountDisabled(Forbidden):
    """The password was right, but an admin has deactivated this account."""

    code = "account_disabled"


class SecondFactorRequired(Unauthorized):
    """The password was right, but the account's second factor is missing or wrong."""

    code = "second_factor_required"


class SignInStepRequired(Forbidden):
    """The password was right, but the sign-in owes a step only the pages offer."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class NotFound(FacilityError):
    status, code = 404, "not_found"


class Conflict(FacilityError):
    status, code = 409, "conflict"


class PayloadTooLarge(FacilityError):
    status, code = 413, "payload_too_large"


class ConversationFull(PayloadTooLarge):
    """The conversation's quota would be exceeded by what is being added."""

    code = "conversation_full"


class ExportTooLarge(PayloadTooLarge):
    """The conversation is too long to be laid out as one PDF in time (FHIR has no limit)."""

    code = "export_too_large"


class ExportFailed(PayloadTooLarge):
    """The PDF's own process ran out of memory or time on it; nothing was exported or logged."""

    code = "export_failed"


class UnsupportedMediaType(FacilityError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(FacilityError):
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class InsufficientStorage(FacilityError):
    """Nothing was stored: there is no room for it (507, the client may retry after deletions)."""

    status, code = 507, "insufficient_storage"


class FacilityFull(InsufficientStorage):
    """The facility's quota, set by the operator, would be exceeded."""

    code = "facility_full"


class StorageFull(InsufficientStorage):
    """The volume itself is full (SQLITE_FULL, ENOSPC), or too full to store this safely."""

    code = "storage_full"
