"""The model of a measures file (SPEC "Measures from transactions"): partner facts declared as aggregations
of a transaction file's rows, by partner and period.

A measures file knows its format and its single-file rules, nothing about
computing: :class:`MeasuresFile` is what ``incentives.loading`` validates a
``kind: measures`` file into (located like a program file), and
:func:`check_measures` the rules no single field can check.

Decisions the SPEC leaves open, and why:

* ``partner`` defaults to ``partner_id``, as in a facts file; ``source``,
  ``date`` and ``period`` are required (a transaction file has no usual names
  for them).
* A measure is an aggregation (a mapping with exactly one of ``sum``,
  ``count``, ``count_distinct``, ``min``, ``max``, ``avg``, and an optional
  ``where``) or a *derived* measure: an expression text over the measures
  defined before it in the file (as a program's metrics are), computed per
  partner and period. ``count`` takes ``true`` (it counts rows, not a column).
* A ``where`` reads a transaction row's columns; neither it nor a derived
  measure may read ``prior.``, ``year_ago.`` or ``this.`` names (they are
  computed before any program, one period at a time).
* A measure's name is a fact name without dots, and never ``partner_id`` or
  ``period``: the measures become a facts file's columns.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from ..fields import ExpressionField, FiscalYearStart, Identifier, StrictModel
from ..inputs import PARTNER_ID, PERIOD
from ..rules.checks import BOOLEAN, NUMBER, check_expression
from ..rules.expressions import Expression
from ..yamlsource import Path

__all__ = ["AGGREGATIONS", "Aggregation", "MeasuresFile", "check_expression_types", "check_measures"]

#: A transaction file's column, as an expression reads it.
ColumnName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
#: A measure's name: a column of the facts it gives.
MeasureName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
#: The aggregations, in the order a message lists them.
AGGREGATIONS = ("sum", "count", "count_distinct", "min", "max", "avg")
#: The names a facts record already has: no measure may take them.
_KEY_COLUMNS = (PARTNER_ID, PERIOD)
#: What an aggregation gives, where the kind is known before the data (``min`` and ``max`` give the kind of
#: their column: a number, a date or a text).
_NUMBER_AGGREGATIONS = frozenset({"sum", "count", "count_distinct", "avg"})


class Aggregation(StrictModel):
    """One aggregation of the rows of a partner and period where ``where`` holds (all rows without it)."""

    sum: ColumnName | None = None
    count: Literal[True] | None = None
    count_distinct: ColumnName | None = None
    min: ColumnName | None = None
    max: ColumnName | None = None
    avg: ColumnName | None = None
    where: ExpressionField | None = None

    @model_validator(mode="after")
    def _one_function(self) -> "Aggregation":
        given = [name for name in AGGREGATIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise PydanticCustomError("aggregation", "needs exactly one of {expected}{found}",
                                      {"expected": ", ".join(AGGREGATIONS),
                                       "found": f", found {', '.join(given)}" if given else ""})
        return self

    @property
    def function(self) -> str:
        """Which aggregation this is (the one key it has)."""
        return next(name for name in AGGREGATIONS if getattr(self, name) is not None)

    @property
    def column(self) -> str | None:
        """The column aggregated (``None`` for ``count``, which counts rows)."""
        value = getattr(self, self.function)
        return None if value is True else value


def _measure_kind(value: Any) -> str:
    return "aggregation" if isinstance(value, dict) else "derived"


#: A measure: an aggregation (a mapping), or a derived measure (an expression text). Told apart by the
#: value's shape, so a mistake in either is reported as that one's, not as "matches neither".
Measure = Annotated[Union[Annotated[Aggregation, Tag("aggregation")], Annotated[ExpressionField, Tag("derived")]],
                    Discriminator(_measure_kind)]
#: The tags of :data:`Measure` in a validation error's location (not keys of the file).
MEASURE_TAGS = ("aggregation", "derived")


# A measures file. (No docstring: the JSON Schema would show it as the file's description.)
class MeasuresFile(StrictModel):
    id: Identifier
    kind: Literal["measures"]
    description: str | None = None
    source: Identifier
    partner: ColumnName = "partner_id"
    date: ColumnName
    period: Literal["month", "quarter", "half", "year"]
    fiscal_year_start: FiscalYearStart = "01-01"
    measures: dict[MeasureName, Measure] = Field(min_length=1)

    @property
    def aggregations(self) -> dict[str, Aggregation]:
        return {name: measure for name, measure in self.measures.items() if isinstance(measure, Aggregation)}

    @property
    def derived(self) -> dict[str, Expression]:
        return {name: measure for name, measure in self.measures.items() if isinstance(measure, Expression)}


def check_measures(measures: MeasuresFile) -> list[tuple[Path, str]]:
    """Rules of one measures file that no single field can check; each with the path to blame."""
    found: list[tuple[Path, str]] = []
    names = list(measures.measures)
    for index, (name, measure) in enumerate(measures.measures.items()):
        path: Path = ("measures", name)
        if name in _KEY_COLUMNS:
            found.append((path, f"'{name}' names a facts record's key; a measure needs a name of its own"))
        if isinstance(measure, Aggregation):
            continue
        # a dotted name (prior.x) is told apart: check_expression_types
        unread = sorted(other for other in measure.names - set(names[:index]) if "." not in other)
        later = [other for other in unread if other in names]
        unknown = [other for other in unread if other not in names]
        if later:
            found.append((path, f"derived measure '{name}' reads {', '.join(later)}, defined at or after it; "
                                "derived measures are computed in file order"))
        if unknown:
            found.append((path, f"derived measure '{name}' reads {', '.join(unknown)}, which "
                                f"{'is not a measure' if len(unknown) == 1 else 'are not measures'} of this file"))
    return found


def check_expression_types(measures: MeasuresFile) -> list[tuple[Path, int, str]]:
    """What a ``where`` or a derived measure is certain to get wrong (:mod:`incentives.rules.checks`), and the
    names they cannot read (``prior.``, ``year_ago.``, ``this.``); each with the expression's path and the
    offset in its text."""
    found: list[tuple[Path, int, str]] = []
    kinds: dict[str, str] = {}
    for name, measure in measures.measures.items():
        if isinstance(measure, Aggregation):
            if measure.function in _NUMBER_AGGREGATIONS:
                kinds[name] = NUMBER
            if measure.where is not None:
                path: Path = ("measures", name, "where")
                found += _dotted_names(path, measure.where, "a 'where' reads the columns of a transaction")
                checked = check_expression(measure.where.node, expected=BOOLEAN, place="'where'")
                found += [(path, finding.offset, finding.message) for finding in checked.findings]
            continue
        path = ("measures", name)
        found += _dotted_names(path, measure, "a derived measure reads the measures before it")
        checked = check_expression(measure.node, kinds)
        if checked.kind is not None:
            kinds[name] = checked.kind
        found += [(path, finding.offset, finding.message) for finding in checked.findings]
    return found


def _dotted_names(path: Path, expression: Expression, readable: str) -> list[tuple[Path, int, str]]:
    return [(path, offset, f"'{name}' cannot be read here: {readable} "
                           "(earlier periods' measures feed the programs' prior. and year_ago.)")
            for name, offset in expression.first_offsets if "." in name]
