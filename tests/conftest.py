"""Shared fixtures: write program YAML into a temporary folder and build an engine on it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest

import incentives

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def write_program(tmp_path: Path) -> Callable[..., Path]:
    """Write a program file (dedented YAML) into tmp_path/programs and return its path."""
    folder = tmp_path / "programs"
    folder.mkdir(exist_ok=True)

    def write(text: str, name: str = "program.yaml") -> Path:
        path = folder / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


@pytest.fixture
def engine_for(write_program: Callable[..., Path]) -> Callable[..., incentives.Engine]:
    """An engine over one or more program texts."""

    def build(*texts: str, backend: str = "compiled") -> incentives.Engine:
        paths = [write_program(text, f"program_{index}.yaml") for index, text in enumerate(texts)]
        return incentives.Engine(incentives.load_programs(paths), backend=backend)

    return build


HEADER = """
id: {id}
name: Test {id}
kind: {kind}
version: {version}
currency: USD
effective: {{from: 2027-01-01}}
period: quarter
"""


def program_text(*bodies: str, id: str = "test", kind: str = "tier", version: int = 1,
                 header: str | None = None) -> str:
    """A complete program: the common header plus each of ``bodies``, each dedented on its own."""
    head = header if header is not None else HEADER.format(id=id, kind=kind, version=version)
    return "".join(textwrap.dedent(part).strip() + "\n" for part in (head, *bodies))
