"""The rule backends by name, as ``Engine(backend=...)`` and ``--backend`` choose them."""

from __future__ import annotations

from .backend import RuleBackend
from .compiled import CompiledBackend
from .durable import DurableBackend

__all__ = ["make_backend"]


def make_backend(name: str) -> RuleBackend:
    """The rule backend called ``name``: ``compiled`` (default) or ``durable``."""
    if name == "compiled":
        return CompiledBackend()
    if name == "durable":
        return DurableBackend()
    raise ValueError(f"unknown backend {name!r}; expected 'compiled' or 'durable'")
