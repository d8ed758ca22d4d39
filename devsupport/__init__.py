"""Support for medcell's tests and benchmarks only: in no image, not installed as a runtime package.

`tests` and `bench` both import from here and never from each other.
"""

from devsupport.docker_objects import remove_installation
from devsupport.facility import FacilityServer
from devsupport.gateway import GatewayServer
from devsupport.gunicorn import Gunicorn
from devsupport.installation import Installation
from devsupport.unix_http import unix_get
from devsupport.waiting import eventually, free_port, wait_for_status

__all__ = [
    "FacilityServer",
    "GatewayServer",
    "Gunicorn",
    "Installation",
    "eventually",
    "free_port",
    "remove_installation",
    "unix_get",
    "wait_for_status",
]
