"""Writing a run: ``payouts.csv``, ``lines.csv``, ``results.jsonl`` and ``run.json``, atomically and
deterministically.

The files are written into a fresh folder that then replaces the output folder
whole (:mod:`incentives.output.folder`), so a reader never sees a mixed or
half-written run. CSV amounts are plain decimals with the program's places (``21437.50``).
``results.jsonl`` holds one compact JSON object per result, in output order;
``run.json`` the run's metadata (:func:`run_json`), which names the results file and counts its lines.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol, Sequence

from ..money import plain_amount
from .folder import RESULTS_FILE, OutputFolder, measures_inputs, run_inputs

if TYPE_CHECKING:
    from ..result_parts import PayoutLine
    from ..results import MeasuresInfo, PayoutResult, ProgramInfo

PAYOUT_COLUMNS = ("partner_id", "period", "program_id", "program_version", "status", "tier", "attainment",
                  "total", "currency")
LINE_COLUMNS = ("partner_id", "period", "program_id", "n", "kind", "rule_id", "description", "basis", "rate",
                "amount", "formula")
ATTAINMENT_PLACES = Decimal("1E-6")


class RunToWrite(Protocol):
    """What writing needs of a run (:class:`incentives.PayoutRun`, which sits above this layer)."""

    programs: Sequence["ProgramInfo"]
    facts_sha256: str | None
    claims_sha256: str | None
    measures: Sequence["MeasuresInfo"]
    results: Sequence["PayoutResult"]

    def model_dump(self, *, mode: str, exclude: set[str]) -> dict[str, Any]: ...


def write_run(run: RunToWrite, folder: str | Path, *, force: bool = False) -> None:
    """``payouts.csv``, ``lines.csv``, ``results.jsonl`` and ``run.json`` of ``run`` into ``folder``,
    replacing it whole.

    Refuses (:class:`~incentives.output.folder.OutputExistsError`) a folder holding another run's
    files unless ``force``; :class:`~incentives.output.folder.OutputBusyError` while another run writes it.
    """
    rows = [result_rows(result) for result in run.results]
    inputs = run_inputs(((program.id, program.version, program.sha256) for program in run.programs),
                        run.facts_sha256, run.claims_sha256, measures_inputs(run.measures))
    with OutputFolder(folder, inputs, force=force) as output:
        _write_text(output.path / "payouts.csv",
                    "".join([csv_line(PAYOUT_COLUMNS), *(payout for payout, _ in rows)]))
        _write_text(output.path / "lines.csv", "".join([csv_line(LINE_COLUMNS), *(lines for _, lines in rows)]))
        with open(output.path / RESULTS_FILE, "wb") as handle:  # plain open: the umask applies
            handle.writelines(result_json(result) for result in run.results)
        _write_text(output.path / "run.json", run_json(run, len(run.results)))
        output.commit()


def result_json(result: "PayoutResult") -> bytes:
    """One result's line of ``results.jsonl``: pydantic's compact JSON, with its line end."""
    return result.__pydantic_serializer__.to_json(result) + b"\n"


def run_json(run: RunToWrite, results: int) -> str:
    """The text of ``run.json``: every field of ``run`` but its results, which are in ``results.jsonl``
    (named by ``results_file``, ``results`` lines of it: ``results_count``), in the model's order.

    Values are written as pydantic writes them (decimals as strings), so the file reads back into the model.
    """
    fields = run.model_dump(mode="json", exclude={"results"})
    head = ("run_id", "created_at", "engine_version", "programs", "facts_sha256", "claims_sha256", "measures")
    ordered = {name: fields.pop(name) for name in head}
    ordered.update(results_file=RESULTS_FILE, results_count=results)
    ordered.update(fields)  # totals, counts, notes
    return json.dumps(ordered, indent=1, ensure_ascii=False) + "\n"


# --- CSV cells: one rule for every CSV file the project writes ---------------------------------
#
# Quoting (RFC 4180): a cell holding a comma, a quote, a newline or a carriage return is
# written between quotes, its quotes doubled; rows end with "\n". Formula neutralising
# (OWASP, "CSV injection"): a spreadsheet reads a cell starting with = + - @, a tab or a
# carriage return as a formula, so a *text* cell starting with one of them is written with
# a leading ' . Number cells (amounts, rates, counts) are never prefixed: -200.00 stays a number.

#: What a spreadsheet takes for the start of a formula, and the characters that put a cell between quotes:
#: the rule every CSV writer follows, per cell here and by columns (``incentives.columnar.rows``).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTED_CHARACTERS = ',"\n\r'
_NEEDS_QUOTES = re.compile(f"[{re.escape(QUOTED_CHARACTERS)}]").search
# in cells joined with their commas: a character other than the comma that needs quotes
_NEEDS_CARE = re.compile(r'["\n\r]').search


def text_cell(text: str) -> str:
    """The cell of a text column as a CSV reader reads it back: text a spreadsheet would take for a
    formula gets a leading ``'``; the rest is unchanged (an empty cell stays empty)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(cell: str) -> str:
    r"""One cell's text in a CSV row: between quotes, quotes doubled, when it holds , " \n or \r."""
    if _NEEDS_QUOTES(cell) is None:
        return cell
    return '"' + cell.replace('"', '""') + '"'


def csv_text(text: str) -> str:
    """A text column's cell as written in a CSV row: neutralised, then quoted if need be."""
    return csv_cell(text_cell(text))


def csv_line(cells: Iterable[str]) -> str:
    """One CSV row's text, with its line end; the cells as a CSV reader should read them back."""
    cells = list(cells)
    if cells == [""]:  # an empty line is no row to a CSV reader: the lone empty cell is quoted
        return '""\n'
    return ",".join([csv_cell(cell) for cell in cells]) + "\n"


def payout_row(result: "PayoutResult") -> list[str]:
    """One ``payouts.csv`` row's cells, as a CSV reader reads them back (text cells neutralised)."""
    places = result.details.get("places", 2)
    attainment = "" if result.attainment is None else f"{result.attainment.quantize(ATTAINMENT_PLACES):f}"
    return [text_cell(result.partner_id), text_cell(result.period), text_cell(result.program_id),
            "" if result.program_version is None else str(result.program_version), text_cell(result.status),
            text_cell(result.tier or ""), attainment, plain_amount(result.total, places),
            text_cell(result.currency or "")]


def line_row(head: tuple[str, str, str], line: "PayoutLine", places: int) -> list[str]:
    """One ``lines.csv`` row's cells, as a CSV reader reads them back (text cells neutralised);
    ``head`` is the result's partner_id, period and program_id."""
    basis, rate = line.basis, line.rate
    return [text_cell(head[0]), text_cell(head[1]), text_cell(head[2]), str(line.n), text_cell(line.kind),
            text_cell(line.rule_id), text_cell(line.description),
            "" if basis is None else plain_amount(basis, places), "" if rate is None else f"{rate.normalize():f}",
            plain_amount(line.amount, places), text_cell(line.formula)]


def csv_head(partner_id: str, period: str, program_id: str) -> str:
    """The first three cells of a ``payouts.csv`` or ``lines.csv`` row, with the comma after them."""
    head = f"{partner_id},{period},{program_id},"
    if (head.count(",") == 3 and _NEEDS_CARE(head) is None and not partner_id.startswith(FORMULA_STARTS)
            and not period.startswith(FORMULA_STARTS) and not program_id.startswith(FORMULA_STARTS)):
        return head
    return f"{csv_text(partner_id)},{csv_text(period)},{csv_text(program_id)},"


def result_rows(result: "PayoutResult") -> tuple[str, str]:
    """The result's ``payouts.csv`` row and ``lines.csv`` rows, with their line endings: the text of
    ``csv_line(payout_row(result))`` and of ``csv_line(line_row(...))`` for each line, built faster.

    Most cells need neither quotes nor a prefix, and number cells never do. Cells
    are joined with their commas, then checked at once: as many commas as cells, no
    other character that needs quotes and no text cell starting a formula mean each
    was written as it is. The formula, often quoted (thousands separators), goes
    through the rule on its own; any other row is written from ``payout_row``/``line_row``.
    """
    values = result.__dict__
    places = values["details"].get("places", 2)
    head = csv_head(values["partner_id"], values["period"], values["program_id"])
    attainment, version, status, tier, currency = (values["attainment"], values["program_version"],
                                                   values["status"], values["tier"] or "", values["currency"] or "")
    rest = (f'{"" if version is None else version},{status},{tier},'
            f'{"" if attainment is None else format(attainment.quantize(ATTAINMENT_PLACES), "f")},'
            f'{plain_amount(values["total"], places)},{currency}\n')
    if (rest.count(",") == 5 and _NEEDS_CARE(rest, 0, len(rest) - 1) is None
            and not status.startswith(FORMULA_STARTS) and not tier.startswith(FORMULA_STARTS)
            and not currency.startswith(FORMULA_STARTS)):
        payout = head + rest
    else:
        payout = csv_line(payout_row(result))
    lines = values["lines"]
    if not lines:
        return payout, ""
    rows = []
    for line in lines:
        fields = line.__dict__
        kind, rule_id, description = fields["kind"], fields["rule_id"], fields["description"]
        texts = f"{kind},{rule_id},{description}"
        if (texts.count(",") == 2 and _NEEDS_CARE(texts) is None and not kind.startswith(FORMULA_STARTS)
                and not rule_id.startswith(FORMULA_STARTS) and not description.startswith(FORMULA_STARTS)):
            basis, rate = fields["basis"], fields["rate"]
            rows.append(f'{head}{fields["n"]},{texts},{"" if basis is None else plain_amount(basis, places)},'
                        f'{"" if rate is None else format(rate.normalize(), "f")},'
                        f'{plain_amount(fields["amount"], places)},{csv_text(fields["formula"])}\n')
        else:
            ids = (values["partner_id"], values["period"], values["program_id"])
            rows.append(csv_line(line_row(ids, line, places)))
    return payout, "".join(rows)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:  # plain open: the umask applies
        handle.write(text)
