"""One calculator per program kind, plus the steps they share.

Adding a program kind means one model section, one calculator module and one
entry in :data:`CALCULATORS`.
"""

from __future__ import annotations

from .base import Calculator, Compile, Evaluation
from .goal import GoalCalculator
from .mdf import MdfCalculator
from .tier import TierCalculator

CALCULATORS: dict[str, type] = {
    "tier": TierCalculator,
    "goal": GoalCalculator,
    "mdf": MdfCalculator,
}

__all__ = ["CALCULATORS", "Calculator", "Compile", "Evaluation"]
