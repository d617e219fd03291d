"""Exceptions raised by the library.

Load-time problems are exceptions (:class:`ProgramError`, :class:`InputError`);
run-time problems with one partner record are data (an ``error`` result).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem: ``file:line:col: message`` (line and column 1-based)."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = [str(part) for part in (self.file, self.line, self.column) if part is not None]
        return f"{':'.join(where)}: {self.message}" if where else self.message


class IncentivesError(Exception):
    """Base class of every exception this library raises on purpose."""


class ProgramError(IncentivesError):
    """A program file (or a set of them) is invalid. Carries every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InputError(IncentivesError):
    """A facts or claims file cannot be read: carries the file and line."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        self.problem = Problem(message, file, line)
        super().__init__(str(self.problem))

    @property
    def file(self) -> str | None:
        return self.problem.file

    @property
    def line(self) -> int | None:
        return self.problem.line


class ExpressionError(IncentivesError):
    """An expression does not parse or uses something outside the language.

    ``offset`` is the 0-based character offset inside the expression text; the
    loader turns it into a file position.
    """

    def __init__(self, message: str, offset: int = 0):
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at offset {offset})")


class EvaluationError(IncentivesError):
    """Evaluating an expression for one record failed (wrong type, division by zero...).

    Becomes an ``error`` result for that record; never escapes ``Engine.run``.
    """


class LedgerError(IncentivesError):
    """The ledger cannot be used: unreachable, not initialised, or a schema this library does not know.

    The message names the ledger's URL with its password hidden.
    """


class LedgerUsageError(IncentivesError):
    """A ledger operation on something that does not exist or cannot be done (an unknown run, a void
    without a reason, a run paying a claim another period's run paid meanwhile...)."""


class UsageError(Exception):
    """A problem with how a command of the command line was called: printed, exit code 1."""
