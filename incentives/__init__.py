"""incentives: channel-partner incentive and rebate programs, exact and explainable.

>>> import incentives
>>> programs = incentives.load_programs("programs/")
>>> engine = incentives.Engine(programs)
>>> by_program = engine.evaluate({"partner_id": "P1", "period": "2027-Q1", "revenue": 612500})
"""

from typing import TYPE_CHECKING, Any

from .engine import Engine
from .errors import (
    EvaluationError,
    ExpressionError,
    IncentivesError,
    InputError,
    LedgerError,
    LedgerUsageError,
    Problem,
    ProgramError,
)
from .loading import LoadedProgram, ProgramSet, load_programs
from .output.files import write_run
from .output.folder import OutputBusyError, OutputExistsError
from .payout_run import PayoutRun, read_run
from .result_parts import NextTier, PayoutLine, Reason
from .results import PayoutResult
from .version import __version__

if TYPE_CHECKING:
    from .ledger import Ledger
    from .measures.compute import MeasuredFacts, measure_facts

__all__ = [
    "Engine",
    "EvaluationError",
    "ExpressionError",
    "IncentivesError",
    "InputError",
    "Ledger",
    "LedgerError",
    "LedgerUsageError",
    "LoadedProgram",
    "MeasuredFacts",
    "NextTier",
    "OutputBusyError",
    "OutputExistsError",
    "PayoutLine",
    "PayoutResult",
    "PayoutRun",
    "Problem",
    "ProgramError",
    "ProgramSet",
    "Reason",
    "__version__",
    "load_programs",
    "measure_facts",
    "read_run",
    "write_run",
]


def __getattr__(name: str) -> Any:
    # The ledger brings SQLAlchemy and Alembic, the measures polars' lazy engine: imported when first used, not
    # with every `import incentives`.
    if name == "Ledger":
        from .ledger import Ledger

        return Ledger
    if name in ("MeasuredFacts", "measure_facts"):
        from .measures import compute

        return getattr(compute, name)
    raise AttributeError(f"module 'incentives' has no attribute {name!r}")
