"""The gateway's exception tree: every error the gateway itself answers with is a GatewayError."""


class GatewayError(Exception):
    """Root of the tree; carries the HTTP status, the contract's error code and extra headers."""

    status = 500
    code = "internal_error"
    message = "The gateway could not handle this request."

    def __init__(self, message: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = dict(headers or {})


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"
    message = "The request is malformed."


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    message = "There is nothing here."


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"
    message = "This method is not allowed."


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"
    message = "The request body is larger than the gateway accepts."


class BadGateway(GatewayError):
    status = 502
    code = "bad_gateway"
    message = "The facility answered with something the gateway cannot pass on."


class FacilityUnavailable(GatewayError):
    status = 503
    code = "facility_unavailable"
    message = "The facility is not available right now; try again shortly."

    def __init__(self, message: str | None = None, retry_after: int = 5):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class UpstreamTimeout(GatewayError):
    status = 504
    code = "upstream_timeout"
    message = "The facility did not answer in time."


class UpstreamAborted(GatewayError):
    """The facility broke off a response after its headers went out; only the connection can end."""

    status = 502
    code = "upstream_aborted"
    message = "The facility broke off its response."


class ConfigError(GatewayError):
    """The gateway's own configuration (environment, routes file) cannot be used."""

    code = "gateway_misconfigured"
