"""One program version over a block of facts, by columns: :meth:`CompiledProgram.evaluate` for a block.

:class:`ProgramByColumns` runs the per-record path's order on columns: defaults
and facts → missing names → metrics → every condition (eligibility, the kind's,
the steps') → eligibility → the kind's base (its calculator by columns,
``Kind.by_columns``) → the shared steps (:mod:`incentives.kinds.steps_by_columns`).
Each row of the block is then either computed by columns — its ``payouts.csv``
row and ``lines.csv`` rows are the text ``output.files.result_rows`` gives the
per-record result — or flagged ``per record``: the per-record path raises there
(an error row) or reads the row itself (a cell the block could not type). What
flags a row: the block's ``per_record`` rows, a period cell that is not the
period's label, a missing required fact, and every row the expressions by
columns flag (a missing or mistyped fact an expression reads, a negative bonus,
deduction, cap or minimum, a value beyond 128-bit minor units, a division by zero, a quotient whose 28
digits do not fit its expression's scale), a row whose result of a program this one ``uses`` is not computed
by columns or is an error.

The texts are built in two stages after the numbers: the numbers (every step's columns, the flags) are
computed first, once; then each line slot's cells are built on the rows where it fires (a cap that fires on
a few rows costs a few rows), each cell once for both ``lines.csv`` and ``results.jsonl``, and put back at
their rows in slot order; then each row's ``payouts.csv`` row and ``results.jsonl`` line. polars computes an
expression again for every expression that reads it, so a text read twice is read from a column.

``this.*`` (a bonus, deduction, cap or minimum payout reading the program's own
outcome) is computed as per record: the steps read the tier, the attainment, the
base and the subtotal before each step from the block (``BlockEvaluation.own``).

``uses``: the results of the programs this one uses come in as those programs'
own :meth:`ProgramByColumns.evaluate` frames over the same block (``used``), and
become columns named as the per-record path names them (``partner_tier.tier``,
``.total``, ``.eligible``: :attr:`CompiledProgram.used_names`), which win over
facts and defaults of the same names, as per record. An MDF program's
claims come as a frame (:mod:`incentives.claims_by_columns`); what the kind flags for them is in
:class:`incentives.kinds.mdf_by_columns.MdfByColumns`.

A program the columns cannot compute exactly raises :class:`NotByColumns` with
the reason, for the whole program, when it is compiled (a block whose columns
make an expression refused — an ``if()`` whose branches read columns of two
kinds — raises when it is evaluated): a kind without a calculator by columns,
a default for the ``prorate_by`` fact, earlier periods (``prior.*``), and what
``rules.columns`` refuses (``/`` in a decimal context it does not emulate).
"""

from __future__ import annotations

import dataclasses
import importlib
from decimal import Decimal
from typing import Any, Callable, Mapping

import polars as pl

from .. import own_outcome
from ..claims_by_columns import ClaimsByColumns
from ..compiler import CompiledProgram
from ..fields import Rounding, Rule
from ..inputs import PARTNER_ID, PERIOD
from ..kinds import KINDS
from ..kinds.base import CalculatorByColumns, input_names
from ..kinds.block import COMPUTING, LINES_SO_FAR, NEEDS_RECORD, TOTAL, BlockEvaluation
from ..kinds.steps import Eligibility, eligibility_id
from ..kinds.steps_by_columns import AdjustmentsByColumns, BudgetByColumns, apply_budget_by_columns
from ..loading import expressions_of
from .. import json_by_columns
from ..json_by_columns import Written
from ..money_by_columns import plain_amount
from ..output.files import csv_text as constant_text
from ..periods import Period
from ..rules.ast import Binary, BoolOp, Call, Compare, If, ListLiteral, Name, Node, Unary
from ..rules.columns import Column, ColumnExpression, Kind, NotByColumns, compile_columns, ratio_by_columns
from .facts import LINE, PER_RECORD, FactBlock
from .rows import csv_text

_INT64_MAX = 2**63 - 1

#: The columns of :meth:`ProgramByColumns.evaluate`'s frame.
BY_COLUMNS = "by_columns"
STATUS = "status"
TIER = "tier"
PROGRAM_VERSION = "program_version"
#: the program's ``rounding.places``: the scale of ``total`` (a program that uses this one reads it at it)
PLACES = "places"
PAYOUT_ROW = "payout_row"
#: the ids of the eligibility rules that do not hold on an ineligible row, in the program's order (its
#: reasons in the results file; the values each rule read are the row's facts)
FAILED_RULES = "failed_rules"
#: whether every eligibility rule holds on a row (a working column)
ELIGIBLE = "eligible"
LINE_ROWS = "line_rows"
#: how many lines a row's result has
LINES = "lines"
#: the total a program that uses this one reads: before the budget's line, as per record
USED_TOTAL = "used_total"
#: a row's line of ``results.jsonl``: the bytes of ``output.files.result_json`` as text, its line feed included
RESULT_JSON = "result_json"

#: the prefix of the result's columns while the frame also holds the facts (a fact may be called 'status')
_OUT = "out:"
#: the running total once every step but the budget's has run
_UNBUDGETED_TOTAL = "unbudgeted_total"
#: the working columns of a line's texts
_N, _RULE_ID, _DESCRIPTION, _FORMULA, _AMOUNT, _BASIS, _RATE = ("n", "rule_id", "description", "formula", "amount",
                                                               "basis", "rate")
_BASIS_JSON, _RATE_JSON, _INPUTS_JSON = "basis_json", "rate_json", "inputs_json"
#: a line's texts, and a row's lines as JSON
_CSV_ROW, _LINES_JSON = "csv_row", "lines_json"


@dataclasses.dataclass(frozen=True)
class Prepared:
    """One program version's numbers over a block before any budget (:meth:`ProgramByColumns.prepare`): the
    steps' state, its frame lazy. :meth:`ProgramByColumns.finish` ends it, as many times as asked: a run's
    first pass over its budgets collects the frame once (:meth:`over`), and its second pass ends the same
    numbers with the budget and the texts rather than computing them again."""

    period: Period
    evaluation: BlockEvaluation
    #: each condition's column: whether it holds (by rule id)
    fired: Mapping[str, pl.Expr]
    #: the tier a row reached (null: none)
    tier: pl.Expr

    @property
    def frame(self) -> pl.LazyFrame:
        return self.evaluation.frame

    def over(self, frame: pl.LazyFrame) -> Prepared:
        """The same numbers read from ``frame``: this one's frame collected, as it is or kept on disk. (The
        claims the kind joined are in it: the state no longer holds them. The steps' lines are shared:
        :meth:`ProgramByColumns.finish` adds to a copy.)"""
        return dataclasses.replace(self, evaluation=dataclasses.replace(self.evaluation, frame=frame, claims=None))


class ProgramByColumns:
    """One compiled program version, ready to evaluate blocks of facts by columns (see the module)."""

    def __init__(self, compiled: CompiledProgram):
        program = compiled.program
        kind = KINDS[program.kind]
        if kind.by_columns is None:
            raise NotByColumns(f"{kind.name} programs are not computed by columns yet")
        if compiled.history_names:
            raise NotByColumns("earlier periods' facts (prior.*, year_ago.*)")
        self._compiled = compiled
        self._takes_claims = kind.takes_claims
        self._calculator = _calculator_by_columns(kind.by_columns)(program.section, program.rounding)
        self._adjustments = AdjustmentsByColumns(program)
        eligibility = Eligibility(program)
        self._conditions = eligibility.conditions() + self._calculator.conditions() + self._adjustments.conditions()
        self._eligibility_ids = sorted(eligibility.condition_ids)
        # a metric is its expression, earlier metrics inlined: the per-record path computes them in order
        self._metrics: dict[str, Node] = {}
        for name, expression in program.metrics.items():
            self._metrics[name] = _inlined(expression.node, self._metrics)
        # a kind's optional facts (an MDF fund's opening balance) are read too: results.jsonl shows them as written
        self._names = self._names_read() | kind.optional_facts
        #: the names a used program's result gives, which win over facts and defaults of the same names
        self._used_names = {name for _, *names in compiled.used_names for name in names}
        # what the columns refuse whatever the block ('/' in a decimal context they do not emulate, lists as
        # values) is refused now, once: over no columns every name is missing, which compiles
        for _, expression in expressions_of(program):
            compile_columns(_inlined(expression.node, self._metrics), {})

    def _names_read(self) -> set[str]:
        nodes = [*self._metrics.values(), *(condition.expression.node for condition in self._conditions)]
        names: set[str] = set(self._compiled.required) | set(self._compiled.defaults)
        for node in nodes:
            names |= _names(node)
        return names

    def evaluate(self, block: FactBlock, period: Period, used: Mapping[str, pl.DataFrame] | None = None, *,
                 claims: ClaimsByColumns | None = None, budget: BudgetByColumns | None = None,
                 texts: bool = True) -> pl.DataFrame:
        """Every row of ``block`` as this program's result for ``period``: ``line``, ``partner_id``, ``period``,
        ``by_columns``; where it is true, ``status``, ``tier``, ``total`` (Int128 minor units at the program's
        places), ``places``, ``program_version``, ``failed_rules`` (an ineligible row's), ``payout_row`` and
        ``line_rows`` (the CSV texts, line ends included) and ``result_json`` (the row's line of
        ``results.jsonl``, its line feed included).

        ``used``: for each program this one uses, that program's own ``evaluate`` frame over ``block`` (the same
        rows in the same order) for ``period``. A used program without a frame here (no version effective in the
        period, or not computed by columns) sends every row per record.

        ``budget``: the budget that scales this program version's results for ``period`` (a run's budgets are
        apportioned over the whole run first): its line closes the results of the partners it scales.
        ``texts``: false, the frame has no ``payout_row``, ``line_rows`` and ``result_json`` (polars does not
        compute them: what a run's first pass over its budgets reads).
        ``claims``: an MDF program's claims for the block's partners (those of other periods are not the
        block's records' and are left out); none given is no claims.

        The same as :meth:`finish` of :meth:`prepare` (a run's two passes over its budgets take the two
        apart: its first pass collects the numbers once, and its second ends them with the budget)."""
        return self.finish(self.prepare(block, period, used, claims=claims), budget=budget, texts=texts)

    def prepare(self, block: FactBlock, period: Period, used: Mapping[str, pl.DataFrame] | None = None, *,
                claims: ClaimsByColumns | None = None) -> Prepared:
        """``block``'s numbers for ``period`` up to the budget, lazily: every step but the budget's, and the
        total a program that uses this one reads (see :meth:`evaluate`)."""
        if claims is not None:
            if not self._takes_claims:
                raise ValueError(f"'{self._compiled.id}' is a {self._compiled.program.kind} program: only MDF "
                                 "programs take claims")
            claims = ClaimsByColumns(claims.frame.filter(pl.col(PERIOD) == period.label), claims.amount_scale,
                                     claims.amount_bound)
        compiled = self._compiled
        program = compiled.program
        if compiled.used_names:
            block = with_used(block, compiled.used_names, used or {})
        columns = dict(block.columns)
        frame = block.frame.lazy()
        frame, columns = self._with_defaults(frame, columns)
        frame, facts_written = self._facts_written(frame, block, columns)

        own: dict[str, ColumnExpression] = {}  # this.*, as each step sees it (BlockEvaluation.own)
        own_written: dict[str, Written] = {}  # and how each is written (BlockEvaluation.own_written)

        def compile(node: Node) -> ColumnExpression:
            return compile_columns(_inlined(node, self._metrics), columns, own)

        def written(node: Node) -> Written | None:
            return json_by_columns.written(_inlined(node, self._metrics), columns, {**facts_written, **own_written},
                                           own)

        missing = [pl.col(name).is_null() if name in columns else pl.lit(True) for name in compiled.required]
        needs = [pl.col(PER_RECORD), pl.col(PERIOD) != period.label, *missing]
        fraction = None
        fraction_decimals = None
        if compiled.prorate_by is not None:
            if compiled.prorate_by in compiled.defaults:
                raise NotByColumns(f"a default for the prorate_by fact '{compiled.prorate_by}'")
            fraction, inactive, fraction_decimals = _active_fraction(compiled.prorate_by, columns, period,
                                                                     program.rounding.ratio_places)
            needs.append(inactive)
        needs += [compile(node).needs_record for node in self._metrics.values()]
        fired: dict[str, pl.Expr] = {}
        for condition in self._conditions:
            holds = compile(condition.expression.node)
            needs.append(holds.needs_record if holds.kind is Kind.BOOLEAN else pl.lit(True))
            fired[condition.rule_id] = holds.value if holds.kind is Kind.BOOLEAN else pl.lit(False)
        frame = frame.with_columns(pl.any_horizontal(needs).fill_null(True).alias(NEEDS_RECORD),
                                   *(value.alias(f"fired:{rule_id}") for rule_id, value in fired.items()))
        fired = {rule_id: pl.col(f"fired:{rule_id}") for rule_id in fired}
        eligible = pl.all_horizontal([fired[rule_id] for rule_id in self._eligibility_ids]) \
            if self._eligibility_ids else pl.lit(True)
        frame = frame.with_columns(eligible.fill_null(False).alias(ELIGIBLE))
        frame = frame.with_columns((~pl.col(NEEDS_RECORD) & pl.col(ELIGIBLE)).alias(COMPUTING),
                                   pl.lit(0, pl.Int128).alias(TOTAL), pl.lit(0, pl.Int64).alias(LINES_SO_FAR))
        evaluation = BlockEvaluation(frame, compile, written, compiled.rounding, fraction=fraction, own=own,
                                     own_written=own_written, fraction_decimals=fraction_decimals, claims=claims)
        tier = self._calculator.base(evaluation, fired)
        # per record this.tier is None where there is no tier: a null is that None
        own[own_outcome.TIER] = ColumnExpression(tier, pl.lit(False), Kind.TEXT, none=True)
        self._adjustments.apply(evaluation, fired)
        # what a program that uses this one reads: the total before any budget (per record, budgets are applied
        # to the run's results once every record is computed)
        evaluation.frame = evaluation.frame.with_columns(pl.col(TOTAL).alias(_UNBUDGETED_TOTAL))
        return Prepared(period, evaluation, fired, tier)

    def finish(self, prepared: Prepared, *, budget: BudgetByColumns | None = None,
               texts: bool = True) -> pl.DataFrame:
        """The frame :meth:`evaluate` gives, from ``prepared`` (this program's :meth:`prepare`; it is left as
        it was: it may be finished again, with another budget or with texts)."""
        compiled = self._compiled
        program = compiled.program
        period, fired, tier = prepared.period, prepared.fired, prepared.tier
        evaluation = prepared.evaluation.copy()
        if budget is not None:
            apply_budget_by_columns(evaluation, budget)
        reasons = self._reasons_json(evaluation, fired)
        eligible = pl.col(ELIGIBLE)
        # the result's columns are named apart from the facts until the end: the texts read facts, and a fact
        # may be called 'status' or 'tier'
        numbers = evaluation.frame.with_columns(
            (~pl.col(NEEDS_RECORD)).alias(BY_COLUMNS),
            pl.when(eligible).then(pl.lit("ok")).otherwise(pl.lit("ineligible")).alias(_OUT + STATUS),
            pl.when(eligible).then(tier).alias(_OUT + TIER),
            pl.when(eligible).then(pl.col(TOTAL)).otherwise(pl.lit(0, pl.Int128)).alias(_OUT + TOTAL),
            pl.when(eligible).then(pl.col(_UNBUDGETED_TOTAL)).otherwise(pl.lit(0, pl.Int128))
            .alias(_OUT + USED_TOTAL),
            pl.col(LINES_SO_FAR).alias(_OUT + LINES),
            pl.lit(compiled.version, pl.Int64).alias(_OUT + PROGRAM_VERSION),
            pl.lit(compiled.rounding.places, pl.Int64).alias(_OUT + PLACES),
            _failed_rules(program.eligibility, fired).alias(_OUT + FAILED_RULES))
        kept = [STATUS, TIER, TOTAL, USED_TOTAL, LINES, PLACES, PROGRAM_VERSION, FAILED_RULES]
        if texts:
            # the numbers first, once: each text then reads them as columns (polars would compute an expression
            # a text reads again for every text that reads it), and a line's texts are built on its rows only
            computed = numbers.collect()
            numbers = computed.with_columns(self._line_texts(computed, evaluation, period)).lazy().with_columns(
                self._result_json(evaluation, period, reasons).alias(_OUT + RESULT_JSON),
                self._payout_row(evaluation, period).alias(_OUT + PAYOUT_ROW))
            kept += [PAYOUT_ROW, LINE_ROWS, RESULT_JSON]
        rows = pl.col(BY_COLUMNS)
        return numbers.select(LINE, PARTNER_ID, PERIOD, BY_COLUMNS,
                              *(pl.when(rows).then(pl.col(_OUT + name)).alias(name) for name in kept)).collect()

    def _with_defaults(self, frame: pl.LazyFrame,
                       columns: dict[str, Column]) -> tuple[pl.LazyFrame, dict[str, Column]]:
        """The block's columns with the program's defaults where a fact is missing (a null cell on a row the
        block typed, or a column the file lacks), as the per-record ``{**defaults, **facts}``."""
        filled = []
        for name, value in self._compiled.defaults.items():
            if name not in self._names or name in self._used_names:
                continue
            column = columns.get(name)
            if type(value) is Decimal:
                if not value.is_finite():
                    raise NotByColumns(f"the default {name} is not a finite number")
                scale = max(0, -int(value.as_tuple().exponent), column.scale if column else 0)
                units = int(value.scaleb(scale))
                if column is None:
                    expression, bound = pl.lit(units, pl.Int64), abs(units)
                elif column.kind is Kind.NUMBER:
                    factor = 10 ** (scale - column.scale)
                    expression = pl.col(name) * factor
                    bound = max(column.bound * factor, abs(units))
                else:
                    raise NotByColumns(f"the default of {name} is a number, its column is not")
                if bound > 2**62:
                    raise NotByColumns(f"the default of {name} at its column's scale exceeds 64-bit minor units")
                filled.append(expression.fill_null(units).cast(pl.Int64).alias(name))
                columns[name] = Column.number(scale, bound)
                continue
            kind = {str: Kind.TEXT, bool: Kind.BOOLEAN}.get(type(value))
            if kind is None:
                raise NotByColumns(f"the default of {name} is neither a number, a text nor a boolean")
            if column is not None and column.kind is not kind:
                raise NotByColumns(f"the default of {name} is a {kind.value}, its column is not")
            filled.append((pl.col(name) if column else pl.lit(None, Column(kind).dtype)).fill_null(value).alias(name))
            columns[name] = Column(kind)
        return (frame.with_columns(filled) if filled else frame), columns

    def _facts_written(self, frame: pl.LazyFrame, block: FactBlock,
                       columns: Mapping[str, Column]) -> tuple[pl.LazyFrame, dict[str, Written]]:
        """How each number fact (or used total) the program reads is written per record: with its cell's own decimals
        (``FactBlock.decimals``), a default's where it fills a missing cell (as its ``Decimal`` was written;
        one with a positive exponent, ``1E+3``, leaves its rows unknown). Kept as columns of the frame."""
        found: dict[str, Written] = {}
        kept = []
        # a used program's total is read as a fact (its decimals are the block's: see with_used)
        for name in sorted(self._names | self._used_names):
            column = columns.get(name)
            if column is None or column.kind is not Kind.NUMBER:
                continue
            default = self._compiled.defaults.get(name)
            exponent = default.as_tuple().exponent if type(default) is Decimal else None
            default_decimals = -exponent if isinstance(exponent, int) and exponent <= 0 else None
            if name not in block.decimals:  # a default alone: the file has no such column
                if default_decimals is None:
                    continue  # written() gives None: its rows are not by columns
                found[name] = Written(pl.lit(default_decimals, pl.Int32), pl.lit(False))
                continue
            decimals = pl.lit(block.decimals[name]).cast(pl.Int32)
            if default_decimals is not None:
                decimals = decimals.fill_null(default_decimals)
            kept.append(decimals.alias(f"decimals:{name}"))
            found[name] = Written(pl.col(f"decimals:{name}"),
                                  pl.col(f"decimals:{name}").is_null() & pl.col(name).is_not_null())
        return (frame.with_columns(kept) if kept else frame), found

    def _reasons_json(self, evaluation: BlockEvaluation, fired: Mapping[str, pl.Expr]) -> pl.Expr:
        """The JSON of an ineligible row's reasons (``Eligibility.failed``): each rule that does not hold, in
        the program's order, with the values it read."""
        ineligible = ~pl.col(ELIGIBLE)
        reasons = []
        for rule in self._compiled.program.eligibility:
            fails = ineligible & ~fired[eligibility_id(rule.id)]
            head = (f'{{"rule_id":{json_by_columns.constant(rule.id)},'
                    f'"description":{json_by_columns.constant(rule.description)},'
                    f'"when":{json_by_columns.constant(rule.when.text)},"values":')
            values = evaluation.inputs_json(input_names(rule.when), fails)
            reasons.append(pl.when(fails).then(pl.concat_str([pl.lit(head), values, pl.lit("}")])))
        return pl.concat_str(reasons, separator=",", ignore_nulls=True) if reasons else pl.lit("")

    def _result_json(self, evaluation: BlockEvaluation, period: Period, reasons: pl.Expr) -> pl.Expr:
        """The row's line of ``results.jsonl``: ``output.files.result_json`` of its per-record result (its lines'
        JSON from :meth:`_line_texts`; ``reasons``: an ineligible row's, as JSON)."""
        compiled = self._compiled
        constant = json_by_columns.constant
        eligible = pl.col(ELIGIBLE)

        def of_eligible(text: pl.Expr | None) -> pl.Expr:
            return pl.lit("null") if text is None else pl.when(eligible).then(text).otherwise(pl.lit("null"))

        tier = pl.col(_OUT + TIER)
        total = pl.when(eligible & (pl.col(LINES_SO_FAR) > 0)).then(evaluation.amount_json(pl.col(_OUT + TOTAL))) \
            .otherwise(pl.lit('"0"'))
        details = [pl.lit(f'{{"places":{evaluation.places}')]
        if evaluation.fraction is not None and evaluation.fraction_decimals is not None:
            # a fraction (1 or above 1/366) is never written in scientific notation
            fraction_json, _ = json_by_columns.decimal(evaluation.fraction.value, evaluation.fraction.scale,
                                                       evaluation.fraction_decimals)
            details += [pl.lit(',"proration":'), fraction_json]
        if evaluation.details_json is not None:
            details.append(pl.when(eligible).then(evaluation.details_json).otherwise(pl.lit("")))
        return pl.concat_str([
            pl.lit('{"partner_id":'), json_by_columns.string(pl.col(PARTNER_ID)),
            pl.lit(f',"period":{constant(period.label)},"program_id":{constant(compiled.id)},'
                   f'"program_version":{constant(compiled.version)},"currency":{constant(compiled.currency)},'
                   '"status":'),
            pl.when(eligible).then(pl.lit('"ok"')).otherwise(pl.lit('"ineligible"')),
            pl.lit(',"tier":'), of_eligible(pl.when(tier.is_null()).then(pl.lit("null"))
                                            .otherwise(json_by_columns.string(tier))),
            pl.lit(',"next_tier":'), of_eligible(evaluation.next_tier_json),
            pl.lit(',"attainment":'), of_eligible(evaluation.attainment_json),
            pl.lit(',"lines":['), pl.col(_LINES_JSON),
            pl.lit('],"total":'), total, pl.lit(',"reasons":['), reasons, pl.lit('],"errors":[],"details":'),
            *details, pl.lit("}}\n")])

    def _head(self, period: Period) -> pl.Expr:
        """The first cells of a payouts.csv or lines.csv row: partner_id, period, program_id."""
        return pl.concat_str([csv_text(pl.col(PARTNER_ID)),
                              pl.lit(f",{constant_text(period.label)},{constant_text(self._compiled.id)},")])

    def _payout_row(self, evaluation: BlockEvaluation, period: Period) -> pl.Expr:
        """The row's ``payouts.csv`` row, its line end included."""
        compiled = self._compiled
        places = evaluation.places
        # an ineligible row has no attainment (the kind's base does not run on it)
        attainment = pl.lit("") if evaluation.attainment_text is None else \
            pl.when(pl.col(ELIGIBLE)).then(evaluation.attainment_text).otherwise(pl.lit(""))
        return pl.concat_str([
            self._head(period), pl.lit(f"{compiled.version},"), pl.col(_OUT + STATUS), pl.lit(","),
            csv_text(pl.col(_OUT + TIER).fill_null("")), pl.lit(","), attainment, pl.lit(","),
            plain_amount(pl.col(_OUT + TOTAL), places, places, bound=evaluation.total_bound),
            pl.lit(f",{constant_text(compiled.currency or '')}\n")])

    def _line_texts(self, computed: pl.DataFrame, evaluation: BlockEvaluation, period: Period) -> list[pl.Series]:
        """Each row's lines as its ``lines.csv`` rows (line ends included) and as the members of its result's
        ``lines`` in ``results.jsonl`` (joined with commas), ``""`` for a row with none. A line's texts are built
        on the rows computed by columns where it fires, each cell once for both files, then put back in place."""
        places = evaluation.places
        head = self._head(period)
        constant = json_by_columns.constant
        slots = []
        for line in evaluation.lines:
            cells = computed.lazy().filter(pl.col(line.fires) & pl.col(BY_COLUMNS)).select(
                PARTNER_ID, pl.col(line.n).alias(_N), line.rule_id.alias(_RULE_ID),
                line.description.alias(_DESCRIPTION), line.formula.alias(_FORMULA),
                plain_amount(pl.col(line.amount), places, places, bound=evaluation.total_bound).alias(_AMOUNT),
                (pl.lit("") if line.basis is None else line.basis).alias(_BASIS),
                (pl.lit("") if line.rate is None else line.rate).alias(_RATE),
                line.basis_json.alias(_BASIS_JSON), line.rate_json.alias(_RATE_JSON),
                line.inputs_json.alias(_INPUTS_JSON))
            n = pl.col(_N).cast(pl.String)
            csv_row = pl.concat_str([
                head, n, pl.lit(f",{constant_text(line.kind)},"), csv_text(pl.col(_RULE_ID)), pl.lit(","),
                csv_text(pl.col(_DESCRIPTION)), pl.lit(","), pl.col(_BASIS), pl.lit(","), pl.col(_RATE),
                pl.lit(","), pl.col(_AMOUNT), pl.lit(","), csv_text(pl.col(_FORMULA)), pl.lit("\n")])
            json_line = pl.concat_str([
                pl.lit('{"n":'), n, pl.lit(f',"kind":{constant(line.kind)},"rule_id":'),
                json_by_columns.string(pl.col(_RULE_ID)), pl.lit(',"description":'),
                json_by_columns.string(pl.col(_DESCRIPTION)), pl.lit(',"basis":'), pl.col(_BASIS_JSON),
                pl.lit(',"rate":'), pl.col(_RATE_JSON), pl.lit(',"amount":"'), pl.col(_AMOUNT),
                pl.lit('","formula":'), json_by_columns.string(pl.col(_FORMULA)), pl.lit(',"inputs":'),
                pl.col(_INPUTS_JSON), pl.lit("}")])
            slots.append(cells.select(csv_row.alias(_CSV_ROW), json_line.alias(_LINES_JSON)))
        fired = [computed[line.fires] & computed[BY_COLUMNS] for line in evaluation.lines]
        csv_rows: list[pl.Series] = []
        json_lines: list[pl.Series] = []
        # each slot's texts back at the rows it fires on (in the block's order: a filter keeps it); a row's slots
        # are its lines in their order. Both files' texts go in one select: polars builds them side by side
        for fires, texts in zip(fired, pl.collect_all(slots)):
            if texts.is_empty():
                continue
            at = (fires.cast(pl.Int64).cum_sum() - 1).clip(0)
            back = texts.select(pl.when(pl.lit(fires)).then(pl.col(name).gather(at))
                                for name in (_CSV_ROW, _LINES_JSON))
            csv_rows.append(back[_CSV_ROW])
            json_lines.append(back[_LINES_JSON])
        if not csv_rows:
            return [pl.repeat("", computed.height, dtype=pl.String, eager=True).alias(_OUT + LINE_ROWS),
                    pl.repeat("", computed.height, dtype=pl.String, eager=True).alias(_LINES_JSON)]
        joined = pl.select(pl.concat_str(csv_rows, ignore_nulls=True).alias(_OUT + LINE_ROWS),
                           pl.concat_str(json_lines, separator=",", ignore_nulls=True).alias(_LINES_JSON))
        return joined.get_columns()

def with_used(block: FactBlock, used_names: tuple[tuple[str, str, str, str], ...],
              frames: Mapping[str, pl.DataFrame]) -> FactBlock:
    """``block`` with the values the results of the programs it uses give (``used_names``: the per-record
    ``(program_id, tier, total, eligible)`` names), read from each one's frame in ``frames``: ``X.tier``
    (text, null for ``None``: no tier), ``X.total`` (before X's budget, if any: :data:`USED_TOTAL`; a number at
    X's places, with its decimals as the per-record total has them: the places once a line is added, none
    before), ``X.eligible`` (whether X's status is ``ok``). A row whose result of X is not computed by columns, or is an error, is marked ``per_record`` (per
    record it is an error result, or its values are unknown here); so is every row when X has no frame."""
    frame, columns, decimals = block.frame, dict(block.columns), dict(block.decimals)
    unusable = [pl.col(PER_RECORD)]
    for program_id, tier, total, eligible in used_names:
        results = frames.get(program_id)
        if results is None:
            unusable.append(pl.lit(True))
            continue
        if not results[LINE].equals(frame[LINE]):
            raise ValueError(f"the results of '{program_id}' are not over the rows of the block")
        # a total beyond a fact column's Int64 is left to the per-record path (null: reading it flags the row)
        fits = pl.col(USED_TOTAL).abs() <= _INT64_MAX
        values = results.select(
            (~pl.col(BY_COLUMNS) | (pl.col(STATUS) == "error")).fill_null(True).alias(PER_RECORD),
            pl.col(TIER).alias(tier),
            pl.when(fits).then(pl.col(USED_TOTAL)).cast(pl.Int64).alias(total),
            (pl.col(STATUS) == "ok").alias(eligible),
            pl.when(pl.col(LINES) == 0).then(0).otherwise(pl.col(PLACES)).cast(pl.UInt8).alias("decimals"))
        unusable.append(pl.lit(values[PER_RECORD]))
        frame = frame.with_columns(values[tier], values[total], values[eligible])
        places = results[PLACES].max()
        columns[tier] = Column.text(none=True)
        columns[total] = Column.number(int(places or 0), int(values[total].abs().max() or 0))
        columns[eligible] = Column.boolean()
        decimals[total] = values["decimals"].alias(total)
        decimals.pop(tier, None)
        decimals.pop(eligible, None)
    frame = frame.with_columns(pl.any_horizontal(unusable).alias(PER_RECORD))
    return dataclasses.replace(block, frame=frame, columns=columns, decimals=decimals)


def _active_fraction(name: str, columns: Mapping[str, Column], period: Period,
                     places: int) -> tuple[ColumnExpression, pl.Expr, pl.Expr]:
    """``periods.active_fraction`` of each row's ``name`` (a date), as the per-record ``_fraction``: 1 without
    the fact (a null cell: a cell of another kind marks its row ``per_record``), else the active days over the
    period's, a ratio at ``places``. And the rows that go per record: a fraction of 0 (ineligible there, with a
    reason of its own), every row when the column is not of dates (per record an error where it has a value).
    And the decimals ``str()`` writes the fraction with (a result's details show it): ``money.ratio`` keeps an
    exact quotient as the division writes it (``1``, ``0.5``) and rounds any other to ``places`` decimals."""
    one = ColumnExpression(pl.lit(10**places, pl.Int128), pl.lit(False), Kind.NUMBER, places, 10**places, wide=True)
    column = columns.get(name)
    if column is None:
        return one, pl.lit(False), pl.lit(0, pl.Int32)
    if column.kind is not Kind.DATE:
        return one, pl.lit(True), pl.lit(0, pl.Int32)
    joined = pl.col(name)
    active_days = (pl.lit(period.end) - joined).dt.total_days() + 1
    share = ratio_by_columns(
        ColumnExpression(active_days, pl.lit(False), Kind.NUMBER, 0, period.days),
        ColumnExpression(pl.lit(period.days, pl.Int64), pl.lit(False), Kind.NUMBER, 0, period.days), places)
    whole_period = joined.is_null() | (joined <= pl.lit(period.start))
    value = pl.when(whole_period).then(one.value).otherwise(share.value)
    # days over days: the ideal exponent is 0, so an exact quotient has just its own decimals
    written = json_by_columns.ratio_written(share.value, places, (active_days * 10**places) % period.days == 0,
                                            pl.lit(0), pl.lit(0))
    decimals = pl.when(whole_period).then(pl.lit(0, pl.Int32)).otherwise(written.decimals)
    return (ColumnExpression(value, pl.lit(False), Kind.NUMBER, places, 10**places, wide=True),
            (joined > pl.lit(period.end)).fill_null(False), decimals)


def _calculator_by_columns(path: str) -> Callable[[Any, Rounding], CalculatorByColumns]:
    """The kind's calculator by columns its ``Kind.by_columns`` names (``"module:name"``), imported now."""
    module, name = path.split(":")
    calculator: Callable[[Any, Rounding], CalculatorByColumns] = getattr(importlib.import_module(module), name)
    return calculator


def _failed_rules(rules: list[Rule], fired: Mapping[str, pl.Expr]) -> pl.Expr:
    if not rules:
        return pl.lit([], pl.List(pl.String))
    return pl.concat_list([pl.when(~fired[eligibility_id(rule.id)]).then(pl.lit(rule.id))
                           for rule in rules]).list.drop_nulls()


def _names(node: Node) -> set[str]:
    if isinstance(node, Name):
        return {node.name}
    found: set[str] = set()
    for child in _children(node):
        found |= _names(child)
    return found


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case ListLiteral(items=parts) | BoolOp(operands=parts) | Call(args=parts):
            return tuple(parts)
        case Unary(operand=operand):
            return (operand,)
        case Binary(left=left, right=right):
            return (left, right)
        case Compare(left=left, comparators=comparators):
            return (left, *comparators)
        case If(condition=condition, then=then, otherwise=otherwise):
            return (condition, then, otherwise)
    return ()


def _inlined(node: Node, metrics: Mapping[str, Node]) -> Node:
    """``node`` with each metric it reads replaced by the metric's (inlined) expression."""
    match node:
        case Name(name=name) if name in metrics:
            return metrics[name]
        case ListLiteral(items=items):
            return dataclasses.replace(node, items=tuple(_inlined(item, metrics) for item in items))
        case BoolOp(operands=operands):
            return dataclasses.replace(node, operands=tuple(_inlined(part, metrics) for part in operands))
        case Call(args=args):
            return dataclasses.replace(node, args=tuple(_inlined(arg, metrics) for arg in args))
        case Unary(operand=operand):
            return dataclasses.replace(node, operand=_inlined(operand, metrics))
        case Binary(left=left, right=right):
            return dataclasses.replace(node, left=_inlined(left, metrics), right=_inlined(right, metrics))
        case Compare(left=left, comparators=comparators):
            return dataclasses.replace(node, left=_inlined(left, metrics),
                                       comparators=tuple(_inlined(part, metrics) for part in comparators))
        case If(condition=condition, then=then, otherwise=otherwise):
            return dataclasses.replace(node, condition=_inlined(condition, metrics), then=_inlined(then, metrics),
                                       otherwise=_inlined(otherwise, metrics))
    return node


__all__ = ["BY_COLUMNS", "FAILED_RULES", "LINES", "LINE_ROWS", "PAYOUT_ROW", "PLACES", "RESULT_JSON", "USED_TOTAL",
           "Prepared", "ProgramByColumns", "with_used"]
