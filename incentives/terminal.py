"""What the command line prints with: a rich console sized for a terminal, a log or a pipe."""

from __future__ import annotations

import os
from typing import Any, TextIO


def console(stream: TextIO) -> Any:
    from rich.console import Console

    # Not a terminal (a log, a pipe, a CI job): wide enough that a table does not wrap.
    width = None if stream.isatty() else max(160, int(os.environ.get("COLUMNS", "0") or 0))
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)
