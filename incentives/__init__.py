"""incentives: channel-partner incentive and rebate programs, exact and explainable.

>>> import incentives
>>> programs = incentives.load_programs("programs/")
>>> engine = incentives.Engine(programs)
>>> by_program = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "revenue": 612500})
"""

from .engine import Engine
from .errors import EvaluationError, ExpressionError, IncentivesError, InputError, Problem, ProgramError
from .loading import LoadedProgram, ProgramSet, load_programs
from .results import NextTier, PayoutLine, PayoutResult, PayoutRun, Reason
from .version import __version__

__all__ = [
    "Engine",
    "EvaluationError",
    "ExpressionError",
    "IncentivesError",
    "InputError",
    "LoadedProgram",
    "NextTier",
    "PayoutLine",
    "PayoutResult",
    "PayoutRun",
    "Problem",
    "ProgramError",
    "ProgramSet",
    "Reason",
    "__version__",
    "load_programs",
]
