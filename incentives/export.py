"""Writing a run: ``payouts.csv``, ``lines.csv`` and ``run.json``, atomically and deterministically.

Each file is written to a temporary file in the output folder, flushed to
disk and renamed over its final name, so a reader never sees a half-written
file. CSV amounts are plain decimals with the program's places (``21437.50``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import IncentivesError
from .money import plain_amount

if TYPE_CHECKING:
    from .results import PayoutLine, PayoutResult, PayoutRun

PAYOUT_COLUMNS = ("partner_id", "period", "program_id", "program_version", "status", "tier", "attainment",
                  "total", "currency")
LINE_COLUMNS = ("partner_id", "period", "program_id", "n", "kind", "rule_id", "description", "basis", "rate",
                "amount", "formula")
OUTPUT_FILES = ("payouts.csv", "lines.csv", "run.json")
ATTAINMENT_PLACES = Decimal("1E-6")


class OutputExistsError(IncentivesError):
    """The output folder holds another run's files and overwriting was not forced."""


def write_run(run: "PayoutRun", folder: str | Path, *, force: bool = False) -> None:
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    _refuse_other_run(run, target, force)
    remove_stale_temporaries(target)
    # run.json is the commit mark, written last: while the CSVs are replaced, no run.json
    # claims them, so a run killed between two renames never leaves a folder that mixes runs.
    (target / "run.json").unlink(missing_ok=True)
    rows = [result_rows(result) for result in run.results]
    _write_atomic(target / "payouts.csv", "".join([csv_line(PAYOUT_COLUMNS), *(payout for payout, _ in rows)]))
    _write_atomic(target / "lines.csv", "".join([csv_line(LINE_COLUMNS), *(lines for _, lines in rows)]))
    _write_atomic(target / "run.json", run.model_dump_json(indent=1) + "\n")


def fingerprint(run_json: dict[str, Any]) -> tuple:
    """What identifies a run's inputs: programs (id, version, sha256), facts and claims sha256."""
    programs = tuple((p["id"], p["version"], p["sha256"]) for p in run_json.get("programs", []))
    return programs, run_json.get("facts_sha256"), run_json.get("claims_sha256")


SPILL_PREFIX = ".incentives-spill-"
# A temporary output file or spill folder, named with the id of the process that made it.
_TEMPORARY = re.compile(r"\.(?:payouts\.csv|lines\.csv|run\.json)\.(\d+)\..*\.tmp|"
                        + re.escape(SPILL_PREFIX) + r"(\d+)-.*")


def temporary_prefix(name: str) -> str:
    """How a temporary for the output ``name`` starts: hidden, with this process's id."""
    return f".{name}.{os.getpid()}."


def spill_prefix() -> str:
    """How this process's spill folder starts."""
    return f"{SPILL_PREFIX}{os.getpid()}-"


def remove_stale_temporaries(target: Path) -> None:
    """Remove the hidden temporaries and spill folders that killed runs left in ``target``.

    Each is named with the id of the process that made it, and only those whose
    process is gone are removed: a run writing into the same folder at the same
    time keeps its own.
    """
    for entry in os.scandir(target):
        found = _TEMPORARY.fullmatch(entry.name)
        if found is None or _running(int(found.group(1) or found.group(2))):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)


def _running(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def refuse_unclaimed_outputs(target: Path, force: bool) -> None:
    """Refuse a folder whose CSV outputs no run.json claims, unless forced.

    They are another program's files, or what a killed run left behind (run.json
    is removed first and written last): either way nobody can tell which run
    they belong to, so replacing them is the user's call.
    """
    if force or (target / "run.json").exists():
        return
    found = [name for name in OUTPUT_FILES[:2] if (target / name).exists()]
    if found:
        raise OutputExistsError(f"{target} holds {' and '.join(found)} but no run.json (an unfinished run, or "
                                "files of something else); choose another folder or force the overwrite (--force)")


def _refuse_other_run(run: "PayoutRun", target: Path, force: bool) -> None:
    refuse_unclaimed_outputs(target, force)
    existing = target / "run.json"
    if force or not existing.exists():
        return
    try:
        previous = json.loads(existing.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    current = json.loads(run.model_dump_json(include={"programs", "facts_sha256", "claims_sha256", "results"}))
    # Same programs and facts file, but other claims (or API records without a facts sha256)
    # are still another run: the results tell.
    if fingerprint(previous) != fingerprint(current) or previous.get("results") != current["results"]:
        raise OutputExistsError(f"{target} holds the output of a different run; choose another folder "
                                "or force the overwrite (--force)")


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


def _write_atomic(path: Path, text: str) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

