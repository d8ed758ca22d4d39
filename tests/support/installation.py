"""Moved to devsupport.installation; kept for the browser tests' site until they import it there."""

from devsupport.installation import Installation
from devsupport.waiting import eventually, free_port

__all__ = ["Installation", "eventually", "free_port"]
