"""A program's own outcome, ``this.*`` (SPEC "Program language additions").

Bonuses, deductions, ``cap`` and ``min_payout`` may read what the program has
computed so far for the record: ``this.tier``, ``this.base``,
``this.attainment`` and ``this.subtotal`` (the subtotal before the step that
reads it). They are not facts: they exist only once the base is computed, so
the loader refuses them everywhere else.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Mapping

PREFIX = "this."
TIER = "this.tier"
BASE = "this.base"
ATTAINMENT = "this.attainment"
SUBTOTAL = "this.subtotal"
NAMES = (TIER, BASE, ATTAINMENT, SUBTOTAL)

#: The program keys whose expressions run after the base, where ``this.*`` is known.
READERS = ("bonuses", "deductions", "cap", "min_payout")


def is_own(name: str) -> bool:
    """Whether ``name`` is one of the program's own values rather than a fact."""
    return name.startswith(PREFIX)


def own_names(names: Iterable[str]) -> set[str]:
    return {name for name in names if name.startswith(PREFIX)}


def problem(name: str, section: str, kind: str, only_in: Mapping[str, str]) -> str | None:
    """Why ``name`` (a ``this.`` name read under the top-level key ``section`` of a ``kind`` program) cannot be
    read, or ``None``. ``only_in``: the names that only one kind computes (in another kind they could never hold
    a value), with that kind."""
    if section not in READERS:
        return (f"'{name}' is the program's own outcome, known only in {', '.join(READERS[:-1])} and "
                f"{READERS[-1]}; '{section}' is computed before it")
    if name not in NAMES:
        close = difflib.get_close_matches(name, NAMES, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(NAMES)}"
        return f"unknown name '{name}'; {hint}"
    needed = only_in.get(name)
    if needed is not None and needed != kind:
        return f"'{name}' exists only in {needed} programs (this one is kind: {kind})"
    return None
