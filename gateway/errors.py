"""The gateway's exception tree: every error of the control plane is a GatewayError."""


class GatewayError(Exception):
    """Root of the tree."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigError(GatewayError):
    """The gateway's own configuration (environment, TLS files) cannot be used."""


class RoutesError(GatewayError):
    """routes.json cannot be used; the last good table stays in force."""


class NginxError(GatewayError):
    """nginx refused the rendered configuration or could not be started or reloaded."""
