"""Clients of the live platform: a thin typed HTTP client and a virtual fleet that docks like a real one.

Nothing in the domain imports this package; ``robotaxi fleet connect`` and the load benchmark use it.
"""

from .fleet import FleetParams as FleetParams
from .fleet import VirtualFleet as VirtualFleet
from .http import PlatformClient as PlatformClient
