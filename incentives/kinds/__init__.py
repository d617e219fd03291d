"""The program kinds: the one place that lists them.

Each kind is one module (its section model, load checks, calculator) that
defines a :class:`~incentives.kinds.base.Kind`; the program model, the
loader, the compiler and the engine read the kinds from :data:`KINDS`. The
steps every kind shares are in :mod:`incentives.kinds.steps`.
"""

from __future__ import annotations

from .base import Kind
from .goal import GOAL
from .mdf import MDF
from .tier import TIER

#: The kinds by their ``kind:`` value, in the order the program file's sections and messages list them.
KINDS: dict[str, Kind] = {kind.name: kind for kind in (TIER, GOAL, MDF)}
