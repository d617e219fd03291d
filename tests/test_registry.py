"""The rule backends chosen by name (``incentives.rules.registry``)."""

from __future__ import annotations

import pytest

from incentives.rules.compiled import CompiledBackend
from incentives.rules.registry import make_backend


def test_compiled_is_the_generated_matcher_backend() -> None:
    backend = make_backend("compiled")
    assert type(backend) is CompiledBackend
    assert backend.name == "compiled"


def test_an_unknown_name_is_refused_with_the_names_there_are() -> None:
    with pytest.raises(ValueError) as caught:
        make_backend("rete")
    assert str(caught.value) == "unknown backend 'rete'; expected 'compiled' or 'durable'"
