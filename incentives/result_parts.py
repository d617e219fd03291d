"""The parts of a result: its lines, its reasons, the next tier; and the trusted constructors of result models.

The engine builds them without validation (its values are already exact),
through trusted constructors equivalent to ``model_construct`` (``new_line``,
``new_reason``...); reading one back from JSON validates as usual. They sit
below the program kinds, whose calculators make lines; the result that holds
them (:mod:`incentives.results`) sits above the kinds, whose details it
carries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Callable, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .inputs import type_text

LineKind = Literal["base", "band", "multiplier", "bonus", "deduction", "floor", "cap", "minimum", "budget",
                   "mdf_claim"]


class ResultModel(BaseModel):
    """A result model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def _typed_fact(value: Any) -> Any:
    """A fact value read back from JSON, typed as a facts file types its cells.

    JSON has no decimals or dates, so both are written as text; facts obey the
    input typing rules (text that reads as a number is a number), so typing the
    text again gives back exactly the value that was written.
    """
    if isinstance(value, str):
        return type_text(value)
    if isinstance(value, list):
        return tuple(_typed_fact(item) for item in value)
    return value


FactValue = Annotated[Any, BeforeValidator(_typed_fact)]


class PayoutLine(ResultModel):
    """One rounded amount, with the rule that produced it and how."""

    n: int
    kind: LineKind
    rule_id: str
    description: str
    basis: Decimal | None = None
    rate: Decimal | None = None
    amount: Decimal
    formula: str
    inputs: dict[str, FactValue] = Field(default_factory=dict)


class NextTier(ResultModel):
    """The next level up: how far ``qualify_on`` is from it, and which requirements fail."""

    name: str
    gap: Decimal
    unmet: list[str] = Field(default_factory=list)


class Reason(ResultModel):
    """A failed eligibility rule, with the values it saw."""

    rule_id: str
    description: str | None = None
    when: str
    values: dict[str, FactValue] = Field(default_factory=dict)


# --- fast construction for the engine's per-record path -------------------------------------

def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    """The ``__set__`` of the descriptor behind ``name`` on pydantic models.

    Calling it directly skips the attribute lookup ``object.__setattr__`` makes
    on every call: about a third of the cost of a trusted construction.
    """
    for klass in ResultModel.__mro__:
        if name in vars(klass):
            return vars(klass)[name].__set__
    raise AttributeError(name)


def trusted_constructor(model: type[ResultModel]) -> Any:
    """A ``model_construct`` for values that are already exact and given for *every* field, in field order.

    ``model_construct`` walks every field looking for aliases and defaults on
    each call; the engine always passes every field, so this sets the same four
    slots directly (``__dict__``, the fields set, no extra, no private). It is
    checked once against ``model_construct`` at import; should a pydantic
    release lay models out differently, the engine falls back to it.
    """
    fields = tuple(model.model_fields)
    # Every field is set, so every instance's fields set is this same set: pydantic only
    # ever adds a field name to it (already there) or copies it (model_copy), and one
    # shared set spares an allocation (and the garbage collector a container) per model.
    every_field = set(fields)
    new = object.__new__

    def fallback(values: dict[str, Any]) -> Any:
        return model.model_construct(**values)

    try:
        set_dict, set_fields, set_extra, set_private = (
            _slot_setter(name)
            for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))
    except AttributeError:  # pragma: no cover - a pydantic that keeps these elsewhere
        return fallback

    def construct(values: dict[str, Any]) -> Any:
        instance = new(model)
        set_dict(instance, values)
        set_fields(instance, every_field)
        set_extra(instance, None)
        set_private(instance, None)
        return instance

    try:
        sample = {name: None for name in fields}
        fast, slow = construct(dict(sample)), model.model_construct(**sample)
        same = (fast.__dict__ == slow.__dict__ and fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
                and fast.__pydantic_extra__ == slow.__pydantic_extra__
                and fast.__pydantic_private__ == slow.__pydantic_private__
                and list(fast.__dict__) == list(slow.__dict__))
    except Exception:  # pragma: no cover - a pydantic that refuses the direct layout
        same = False
    return construct if same else fallback


#: ``new_line({...every PayoutLine field...})``: see :func:`trusted_constructor`.
new_line = trusted_constructor(PayoutLine)
new_next_tier = trusted_constructor(NextTier)
new_reason = trusted_constructor(Reason)
