"""The rule every stored text follows: a string of valid UTF-8 without NUL, within its limit."""

from services.facility.core.errors import BadRequest, TooLong


def check_text(value: object, limit: int, name: str, allow_empty: bool = False) -> str:
    """The text, or BadRequest (TooLong over `limit` characters) naming the field."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if "\x00" in value:
        raise BadRequest(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadRequest(f"{name} must be valid UTF-8 text") from e
    if not allow_empty and not value.strip():
        raise BadRequest(f"{name} must not be empty")
    if len(value) > limit:
        raise TooLong(f"{name} may be at most {limit} characters")
    return value
