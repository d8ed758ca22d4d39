"""One exception tree for the provisioner; the CLI turns its root into `Error: …` in one place."""


class ProvisionerError(Exception):
    """Root of every error the provisioner reports to an operator."""


class InvalidArgument(ProvisionerError):
    """A slug, duration or setting that the contract refuses."""


class FacilityNotFound(ProvisionerError):
    """No facility with that slug exists."""


class FacilityExists(ProvisionerError):
    """A facility (or one of its Docker objects) with that slug already exists."""


class Busy(ProvisionerError):
    """Another medcell command is changing the same facility right now."""


class FacilityStopped(ProvisionerError):
    """The operator stopped the facility; nothing wakes it but `facility start`."""


class WakeFailed(ProvisionerError):
    """An asleep facility could not be woken (its container did not start or answer)."""


class NoRoom(WakeFailed):
    """The host holds as many awake facilities as it may, and none can sleep to make room."""


class NoNode(ProvisionerError):
    """No node of the cluster is ready, active and has room for a new facility."""


class FacilityUnreachable(ProvisionerError):
    """The facility's socket does not answer (not running, or not yet listening)."""


class FacilityCommandFailed(ProvisionerError):
    """A management command inside a facility container failed."""

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.exit_code = exit_code


class BackupRefused(ProvisionerError):
    """A backup cannot be restored: expired, its key not in this installation, or damaged."""


class HealthTimeout(ProvisionerError):
    """A container did not become healthy in time."""


class SweepTimeout(HealthTimeout):
    """A facility answers, but did not confirm in time that nothing of its deletions is overdue."""


class TLSError(ProvisionerError):
    """The gateway certificate could not be made or installed."""


class ImageBuildFailed(ProvisionerError):
    """Building the medcell images failed."""


class DockerError(ProvisionerError):
    """The Docker Engine refused or failed a request."""


class OutputRefused(DockerError):
    """A command in a container printed more, or for longer, than medcell reads."""


class DockerUnavailable(DockerError):
    """No Docker Engine answers."""


class NotFound(DockerError):
    """A Docker object does not exist."""


class Conflict(DockerError):
    """A Docker object with that name already exists or is in use."""


class SubnetTaken(Conflict):
    """The chosen subnet overlaps a network that another process created meanwhile."""


class ReceiptInvalid(ProvisionerError):
    """A deletion receipt is malformed or its signature does not match the key."""


class StaleRoutes(ProvisionerError):
    """A cluster routes map older than (or as old as) the one this node already holds."""


class NodeError(ProvisionerError):
    """Another node's API answered with an error (its code says which)."""

    def __init__(self, message: str, code: str = "node_error", status: int | None = None):
        super().__init__(message)
        self.code, self.status = code, status


class NodeUnreachable(NodeError):
    """Another node's API does not answer (down, cut off, or too slow)."""


class NodeRefused(NodeError):
    """The TLS handshake with another node failed: a certificate not of this cluster."""
