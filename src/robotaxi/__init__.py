"""robotaxi: an open operations platform for autonomous ride-hailing."""

from .errors import RobotaxiError as RobotaxiError

__version__ = "0.1.0"
