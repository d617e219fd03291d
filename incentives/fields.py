"""The value types of a program file, and the parts of it that every program kind and the shared steps read.

Numbers are ``Decimal``; rates, weights, factors and attainments also accept
``"3.5%"``; expressions are parsed once here, into
:class:`incentives.rules.expressions.Expression`. The program model
(:mod:`incentives.models`) and each kind's section (:mod:`incentives.kinds`)
are built from them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError, PydanticKnownError

from .errors import ExpressionError
from .money import DEFAULT_RATIO_PLACES, EXACT
from .periods import validate_fiscal_year_start
from .rules.expressions import MAX_DIGITS, MAX_EXPONENT, Expression, parse_expression

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
_PERCENT = re.compile(r"^\s*([+-]?(?:\d[\d_]*)?(?:\.\d+)?)\s*%\s*$")
_DECIMAL_TEXT = re.compile(r"^\s*[+-]?(?:\d[\d_]*)(?:\.\d*)?\s*$|^\s*[+-]?\.\d+\s*$")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_type", "expected a number, found a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str) and _DECIMAL_TEXT.match(value):
        result = Decimal(value.strip().replace("_", ""))
    else:
        raise PydanticCustomError("decimal_type", "expected a number, found {found}", {"found": repr(value)})
    if not result.is_finite():
        raise PydanticCustomError("decimal_type", "expected a finite number, found {found}", {"found": repr(value)})
    return _in_range(result)


def _in_range(result: Decimal) -> Decimal:
    """The bounds of the expression language's literals: no number that only overflows later."""
    if len(result.as_tuple().digits) > MAX_DIGITS or abs(result.adjusted()) > MAX_EXPONENT:
        shown = str(result) if len(str(result)) <= 24 else f"{str(result)[:21]}..."
        raise PydanticCustomError("decimal_range", "number {found} is out of range (at most {digits} digits, "
                                  "exponent within ±{exponent})",
                                  {"found": shown, "digits": MAX_DIGITS, "exponent": MAX_EXPONENT})
    return result


def _to_rate(value: Any) -> Decimal:
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match and match.group(1) not in ("", "+", "-"):
            try:
                return _in_range(Decimal(match.group(1).replace("_", "")).scaleb(-2, EXACT))
            except InvalidOperation:
                pass
        elif "%" in value:
            raise PydanticCustomError("rate_type", "expected a percentage such as 3.5%, found {found}",
                                      {"found": repr(value)})
    return _to_decimal(value)


def _to_expression(value: Any) -> Expression:
    if isinstance(value, Expression):
        return value
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        # ``1e3`` in YAML is Decimal('1E+3'): audit formulas show it as 1000. Beyond the expression
        # language's range the exponent form is kept, and the parser refuses it with its usual message.
        text = format(value, "f") if value.is_finite() and abs(value.adjusted()) <= 100 else str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise PydanticCustomError("expression_type", "expected an expression (text or number), found {kind}",
                                  {"kind": type(value).__name__})
    try:
        return parse_expression(text)
    except ExpressionError as error:
        raise PydanticCustomError("expression", "{message}", {"message": error.message, "offset": error.offset})


def _to_amount_or_expression(value: Any) -> Decimal | Expression:
    """A fixed amount (a number, or a text that is one) at least 0, or else an expression text."""
    if isinstance(value, str) and not _DECIMAL_TEXT.match(value):
        return _to_expression(value)
    amount = _to_decimal(value)
    if amount < 0:
        raise PydanticKnownError("greater_than_equal", {"ge": 0})
    return amount


def _amount_or_expression_text(value: Decimal | Expression) -> Decimal | str:
    return value.text if isinstance(value, Expression) else value


_decimal_schema = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^[+-]?\d[\d_]*(\.\d+)?$"}]}
_rate_schema = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^[+-]?\d[\d_]*(\.\d+)?%$"}],
                "description": "a decimal (0.035) or a percentage (3.5%)"}
_expression_schema = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
                      "description": "an expression of the incentives expression language"}

Amount = Annotated[Decimal, BeforeValidator(_to_decimal), WithJsonSchema(_decimal_schema)]
NonNegativeAmount = Annotated[Amount, Field(ge=0)]
PositiveAmount = Annotated[Amount, Field(gt=0)]
Rate = Annotated[Decimal, BeforeValidator(_to_rate), WithJsonSchema(_rate_schema)]
Percent0To100 = Annotated[Rate, Field(ge=0, le=1)]
ExpressionField = Annotated[
    Expression,
    BeforeValidator(_to_expression),
    PlainSerializer(lambda expression: expression.text, return_type=str),
    WithJsonSchema(_expression_schema),
]
#: ``cap`` and ``min_payout``: a fixed amount, or an expression evaluated per record (it may read ``this.*``).
AmountOrExpression = Annotated[
    Decimal | Expression,
    PlainValidator(_to_amount_or_expression),
    PlainSerializer(_amount_or_expression_text),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}],
                    "description": "an amount (at least 0), or an expression of the incentives expression "
                                   "language evaluated per partner (it may read this.*)"}),
]
def _to_fiscal_year_start(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("fiscal_year_start", 'expected "MM-DD" in quotes, found {found}',
                                  {"found": repr(value)})
    try:
        return validate_fiscal_year_start(value)
    except ValueError as error:
        raise PydanticCustomError("fiscal_year_start", "{message}", {"message": str(error)})


#: The first day of the fiscal year, ``"MM-DD"`` (quoted: YAML would read 04-01 as a number).
FiscalYearStart = Annotated[str, BeforeValidator(_to_fiscal_year_start)]
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
FactName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")]


class StrictModel(BaseModel):
    """Unknown keys are errors, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True,
                              populate_by_name=True)


class Rounding(StrictModel):
    places: int = Field(2, ge=0, le=8, strict=True)
    mode: Literal["half_up", "half_even", "down", "up"] = "half_up"
    #: decimals a computed ratio (attainment, active fraction, curve factor) is rounded to, half-even
    ratio_places: int = Field(DEFAULT_RATIO_PLACES, ge=2, le=28, strict=True)


class Rule(StrictModel):
    id: Identifier
    when: ExpressionField
    description: str | None = None


class Bonus(StrictModel):
    id: Identifier
    when: ExpressionField
    multiplier: Annotated[Rate, Field(gt=0, le=10)] | None = None
    amount: ExpressionField | None = None
    description: str | None = None


class Deduction(StrictModel):
    """Subtracted after the additive bonuses, before the floor and cap; ``when`` absent: always."""

    id: Identifier
    when: ExpressionField | None = None
    amount: ExpressionField
    description: str = Field(min_length=1)
