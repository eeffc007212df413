"""The live platform's HTTP service: riders, operators (fleet docking), MDS 2.0 for regulators, admin.

Nothing in the domain imports this package. ``create_app(LiveService(ServiceSettings(...)))`` gives the ASGI
application; ``robotaxi serve`` runs it with uvicorn. See ``docs/service.md``.
"""

from .app import create_app as create_app
from .auth import Role as Role
from .live import LiveService as LiveService
from .settings import ServiceSettings as ServiceSettings
