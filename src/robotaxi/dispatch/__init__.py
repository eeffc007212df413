"""Dispatch: the event-driven engine and the policies that match requests to vehicles."""

from .decisions import NO_DECISIONS as NO_DECISIONS
from .decisions import Decisions as Decisions
from .decisions import RejectReason as RejectReason
from .engine import DispatchEngine as DispatchEngine
from .policies import POLICIES as POLICIES
from .policies import BatchAssignment as BatchAssignment
from .policies import DispatchPolicy as DispatchPolicy
from .policies import ImmediateNearest as ImmediateNearest
from .policies import PolicyName as PolicyName
from .policies import PolicyParams as PolicyParams
from .policies import make_policy as make_policy
from .policies import solve_assignment as solve_assignment
from .problem import IdleFleet as IdleFleet
from .problem import Matching as Matching
from .problem import MatchProblem as MatchProblem
