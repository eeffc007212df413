"""Fleet: operators, service areas and hours, vehicles and the MDS 2.0 passenger-services state machine."""

from .area import Hours as Hours
from .area import ServiceArea as ServiceArea
from .area import parse_hours as parse_hours
from .operator import Fleet as Fleet
from .operator import Operator as Operator
from .operator import OperatorKind as OperatorKind
from .operator import Placement as Placement
from .operator import Shift as Shift
from .states import TRANSITION_TABLE as TRANSITION_TABLE
from .states import TRANSITIONS as TRANSITIONS
from .states import EventType as EventType
from .states import VehicleState as VehicleState
from .states import check_transitions as check_transitions
from .states import next_state as next_state
from .states import restore as restore
