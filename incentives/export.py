"""Writing a run: ``payouts.csv``, ``lines.csv`` and ``run.json``, atomically and deterministically.

The files are written into a fresh folder that then replaces the output folder
whole (:mod:`incentives.output.folder`), so a reader never sees a mixed or
half-written run. CSV amounts are plain decimals with the program's places (``21437.50``).
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .money import plain_amount
from .output.folder import OutputFolder, run_inputs
# where callers have always found them (the CLI, scripts catching OutputExistsError)
from .output.folder import OUTPUT_FILES, OutputBusyError, OutputExistsError  # noqa: F401

if TYPE_CHECKING:
    from .results import PayoutLine, PayoutResult, PayoutRun

PAYOUT_COLUMNS = ("partner_id", "period", "program_id", "program_version", "status", "tier", "attainment",
                  "total", "currency")
LINE_COLUMNS = ("partner_id", "period", "program_id", "n", "kind", "rule_id", "description", "basis", "rate",
                "amount", "formula")
ATTAINMENT_PLACES = Decimal("1E-6")


def write_run(run: "PayoutRun", folder: str | Path, *, force: bool = False) -> None:
    rows = [result_rows(result) for result in run.results]
    inputs = run_inputs(((program.id, program.version, program.sha256) for program in run.programs),
                        run.facts_sha256, run.claims_sha256)
    with OutputFolder(folder, inputs, force=force) as output:
        _write_text(output.path / "payouts.csv",
                    "".join([csv_line(PAYOUT_COLUMNS), *(payout for payout, _ in rows)]))
        _write_text(output.path / "lines.csv", "".join([csv_line(LINE_COLUMNS), *(lines for _, lines in rows)]))
        _write_text(output.path / "run.json", run.model_dump_json(indent=1) + "\n")
        output.commit()


def payout_row(result: "PayoutResult") -> list[str]:
    places = result.details.get("places", 2)
    attainment = "" if result.attainment is None else f"{result.attainment.quantize(ATTAINMENT_PLACES):f}"
    return [result.partner_id, result.period, result.program_id,
            "" if result.program_version is None else str(result.program_version), result.status,
            result.tier or "", attainment, plain_amount(result.total, places), result.currency or ""]


def line_row(head: tuple[str, str, str], line: "PayoutLine", places: int) -> list[str]:
    """One ``lines.csv`` row: ``head`` is the result's partner_id, period and program_id."""
    basis, rate = line.basis, line.rate
    return [head[0], head[1], head[2], str(line.n), line.kind, line.rule_id, line.description,
            "" if basis is None else plain_amount(basis, places), "" if rate is None else f"{rate.normalize():f}",
            plain_amount(line.amount, places), line.formula]


# --- CSV text without csv.writer ---------------------------------------------------------------
#
# csv.writer is the definition of the files' text (``payout_row`` and ``line_row`` through
# ``csv.writer(lineterminator="\n")``, QUOTE_MINIMAL); ``result_rows`` writes the same text
# several times faster: most cells need no quoting, and the cells that may (ids, texts,
# formulas) are checked with one regular expression for the characters csv.writer quotes.


def _csv_special() -> tuple[str, bool]:
    """The ASCII characters that make csv.writer quote a cell, and whether it quotes every one of them by
    doubling quote characters (``"a""b"``) and writes every other character as is.

    Asked of csv.writer itself, so another Python's rules are followed or noticed; only
    the delimiter, the quote character and the line terminator's characters can matter,
    all ASCII.
    """
    special, exact = [], True
    for code in range(128):
        cell = f"a{chr(code)}b"
        buffer = io.StringIO()
        try:
            csv.writer(buffer, lineterminator="\n").writerow([cell, "x"])
        except csv.Error:
            special.append(chr(code))
            exact = False
            continue
        text = buffer.getvalue()
        if text == f"{cell},x\n":
            continue
        special.append(chr(code))
        exact = exact and text == '"' + cell.replace('"', '""') + '",x\n'
    return "".join(special), exact


_CSV_SPECIAL, _CSV_QUOTING_KNOWN = _csv_special()
_CSV_NEEDS_QUOTES = re.compile(f"[{re.escape(_CSV_SPECIAL)}]" if _CSV_SPECIAL else "(?!)").search
# in cells joined with their commas: a special character other than the delimiter
_CSV_NEEDS_CARE = re.compile(f"[{re.escape(_CSV_SPECIAL.replace(',', ''))}]" if _CSV_SPECIAL.strip(",")
                             else "(?!)").search


def csv_line(cells: Iterable[str]) -> str:
    r"""One CSV row's text, as ``csv.writer(lineterminator="\n").writerow(cells)`` writes it."""
    cells = list(cells)
    if not _CSV_QUOTING_KNOWN or len(cells) < 2:  # a lone empty cell is written as "" by csv.writer
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        return buffer.getvalue()
    return ",".join([csv_cell(cell) for cell in cells]) + "\n"


def csv_cell(text: str) -> str:
    """One cell as csv.writer writes it in a row of two cells or more (cells are quoted one by one)."""
    if _CSV_NEEDS_QUOTES(text) is None:
        return text
    if _CSV_QUOTING_KNOWN:
        return '"' + text.replace('"', '""') + '"'
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([text, ""])
    return buffer.getvalue()[:-2]


def csv_head(partner_id: str, period: str, program_id: str) -> str:
    """The first three cells of a ``payouts.csv`` or ``lines.csv`` row, with the comma after them."""
    head = f"{partner_id},{period},{program_id},"
    if head.count(",") == 3 and _CSV_NEEDS_CARE(head) is None:
        return head
    return f"{csv_cell(partner_id)},{csv_cell(period)},{csv_cell(program_id)},"


def result_rows(result: "PayoutResult") -> tuple[str, str]:
    """The result's ``payouts.csv`` row and ``lines.csv`` rows, with their line endings, as csv.writer
    writes ``payout_row`` and ``line_row``.

    Cells are joined with their commas, then the joined text is checked: as many
    commas as cells call for and no other character csv.writer quotes means no
    cell needed quotes. The formula, often quoted (thousands separators), is
    quoted on its own; anything else quoted goes through csv.writer's rules cell by cell.
    """
    values = result.__dict__
    places = values["details"].get("places", 2)
    if not _CSV_QUOTING_KNOWN:
        ids = (values["partner_id"], values["period"], values["program_id"])
        return (csv_line(payout_row(result)),
                "".join([csv_line(line_row(ids, line, places)) for line in values["lines"]]))
    head = csv_head(values["partner_id"], values["period"], values["program_id"])
    attainment, version, tier, currency = (values["attainment"], values["program_version"], values["tier"],
                                           values["currency"])
    rest = (f'{"" if version is None else version},{values["status"]},{tier or ""},'
            f'{"" if attainment is None else format(attainment.quantize(ATTAINMENT_PLACES), "f")},'
            f'{plain_amount(values["total"], places)},{currency or ""}\n')
    if rest.count(",") == 5 and _CSV_NEEDS_CARE(rest, 0, len(rest) - 1) is None:
        payout = head + rest
    else:
        payout = csv_line(payout_row(result))
    lines = values["lines"]
    if not lines:
        return payout, ""
    rows = []
    for line in lines:
        fields = line.__dict__
        basis, rate = fields["basis"], fields["rate"]
        middle = (f'{fields["n"]},{fields["kind"]},{fields["rule_id"]},{fields["description"]},'
                  f'{"" if basis is None else plain_amount(basis, places)},'
                  f'{"" if rate is None else format(rate.normalize(), "f")},'
                  f'{plain_amount(fields["amount"], places)},')
        if middle.count(",") == 7 and _CSV_NEEDS_CARE(middle) is None:
            rows.append(f"{head}{middle}{csv_cell(fields['formula'])}\n")
        else:
            ids = (values["partner_id"], values["period"], values["program_id"])
            rows.append(csv_line(line_row(ids, line, places)))
    return payout, "".join(rows)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:  # plain open: the umask applies
        handle.write(text)
