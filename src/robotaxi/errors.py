"""The one exception hierarchy of robotaxi.

Every error the platform raises on purpose derives from :class:`RobotaxiError`. It carries what went wrong
(``str(err)``) and, when known, what to do about it (``err.hint``). The CLI turns it into a message and a
non-zero exit code; the HTTP service into a status code. Nothing below the edges prints or exits.
"""

from __future__ import annotations


class RobotaxiError(Exception):
    """Base class: a problem the user can understand and act on."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class NetworkError(RobotaxiError):
    """A road network could not be loaded, built or queried."""


class OffNetworkError(NetworkError):
    """A coordinate lies farther from the road network than the snapping limit allows."""


class DemandError(RobotaxiError):
    """A demand source is missing, malformed or not what it claims to be."""


class FleetError(RobotaxiError):
    """A fleet, operator or vehicle definition is invalid."""


class DispatchError(RobotaxiError):
    """The dispatch engine received an event it cannot accept (unknown id, duplicate request...)."""


class IllegalTransitionError(FleetError, DispatchError):
    """A vehicle was asked to make a state transition the MDS state machine does not allow (the engine raises it
    for an illegal vehicle update, so it is a :class:`DispatchError` too)."""


class ScenarioError(RobotaxiError):
    """A scenario file is invalid: unknown key, wrong type, missing file."""


class SimulationError(RobotaxiError):
    """A simulation could not run to completion."""


class MarketError(RobotaxiError):
    """Fares, surge, commissions or operator accounts could not be computed (bad input, money not adding up)."""


class ReconciliationError(MarketError):
    """Operator revenue plus platform commission differs from what riders paid (a bug, never rounding)."""


class MarketConfigError(ScenarioError, ValueError):
    """A pricing, fare or cost table is invalid; the message names the operator and the field.

    It is a :class:`ValueError` too, so a scenario loader that turns ``ValueError`` into a :class:`ScenarioError`
    naming the file keeps working when it calls the ``robotaxi.market`` parsers.
    """


class LedgerError(RobotaxiError):
    """The ledger refused an operation or found an inconsistency."""


class VerificationError(LedgerError):
    """A proof, checkpoint or signature did not verify."""


class SafetyError(RobotaxiError):
    """A safety record, rate, report or published safety file is invalid or unreadable."""


class StoreError(RobotaxiError):
    """The service's database could not be opened, migrated or written."""


class ServiceError(RobotaxiError):
    """The live service refused a request; carries the HTTP status and the field it is about.

    Parameters
    ----------
    message : str
        What went wrong.
    status : int
        The HTTP status code (400, 403, 404, 409, 422...).
    field : str, optional
        The request field at fault (``"location.lat"``, ``"data[3].timestamp"``).
    code : str
        A short machine-readable code (``"unknown_vehicle"``, ``"out_of_order"``).
    """

    def __init__(self, message: str, *, status: int = 422, field: str | None = None, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.code = code
