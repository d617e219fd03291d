"""Loading program files: YAML → validated :class:`Program` models, every problem located.

``load_programs`` reads files and folders, validates each file with the
pydantic models, runs the checks that span fields and files, and raises one
:class:`ProgramError` listing every problem as ``file:line:col: message``.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path as FsPath
from typing import Any, Iterable, Iterator, Sequence

from pydantic import BaseModel, ValidationError

from . import own_outcome
from .errors import Problem, ProgramError
from .history import HISTORY_PREFIXES
from .kinds import KINDS
from .measures import model as measures_model
from .measures.model import MEASURE_TAGS, MeasuresFile
from .models import Program
from .money import format_rate
from .rules.checks import BOOLEAN, NUMBER, check_expression
from .rules.expressions import Expression
from .yamlsource import Path, SourceMap, YamlSourceError, load_yaml

RESULT_ATTRIBUTES = ("tier", "total", "eligible")
#: Keys whose expression is a condition (true or false) or a number (the common keys', then the kinds');
#: elsewhere (metrics, ``rate_by``) any value will do.
CONDITION_KEYS = frozenset({"when"}).union(*(kind.condition_keys for kind in KINDS.values()))
NUMBER_KEYS = frozenset({"amount"}).union(*(kind.number_keys for kind in KINDS.values()))
#: The ``this.*`` names that only one kind computes, with that kind.
OWN_NAME_KINDS = {name: kind.name for kind in KINDS.values() for name in kind.own_names}
PROGRAM_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class LoadedProgram:
    """One validated program version, with where it came from."""

    program: Program
    file: str
    sha256: str
    source: SourceMap


@dataclass(frozen=True, slots=True)
class LoadedMeasures:
    """One validated measures file (``kind: measures``), with where it came from."""

    measures: MeasuresFile
    file: str
    sha256: str
    source: SourceMap


class ProgramSet(Sequence[LoadedProgram]):
    """The programs of one load, in dependency (``uses``) order, then by id and version; and the measures
    files found with them (``measures``, by file name), which compute facts rather than pay."""

    def __init__(self, programs: Iterable[LoadedProgram], measures: Iterable[LoadedMeasures] = ()):
        self._programs = list(programs)
        self.measures = list(measures)

    def __getitem__(self, index):  # type: ignore[override]
        return self._programs[index]

    def __len__(self) -> int:
        return len(self._programs)

    @property
    def ids(self) -> list[str]:
        """Program ids in evaluation order, each once."""
        return list(dict.fromkeys(loaded.program.id for loaded in self._programs))

    def versions(self, program_id: str) -> list[LoadedProgram]:
        return [loaded for loaded in self._programs if loaded.program.id == program_id]


def load_programs(paths: str | FsPath | Iterable[str | FsPath]) -> ProgramSet:
    """Load program and measures files (``*.yaml``/``*.yml``; folders are searched, not recursively)."""
    files = _program_files([paths] if isinstance(paths, (str, FsPath)) else list(paths))
    loaded: list[LoadedProgram] = []
    measures: list[LoadedMeasures] = []
    problems: list[Problem] = []
    for file in files:
        try:
            item = load_file(file)
        except ProgramError as error:
            problems.extend(error.problems)
            continue
        if isinstance(item, LoadedMeasures):
            measures.append(item)
        else:
            loaded.append(item)
    if not problems:
        problems.extend(_check_program_set(loaded))
        problems.extend(_check_measures_set(measures))
    if problems:
        raise ProgramError(problems)
    return ProgramSet(_dependency_order(loaded), measures)


def _program_files(paths: list[str | FsPath]) -> list[FsPath]:
    files: list[FsPath] = []
    missing: list[Problem] = []
    for raw in paths:
        path = FsPath(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in PROGRAM_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(Problem("no such file or folder", str(path)))
    if missing:
        raise ProgramError(missing)
    if not files:
        raise ProgramError([Problem("no program files (*.yaml, *.yml) found", ", ".join(map(str, paths)))])
    return files


def load_program_file(file: str | FsPath) -> LoadedProgram:
    """Load and validate one program file; raises :class:`ProgramError` with every problem in it (a measures
    file is one: it is not a program)."""
    loaded = load_file(file)
    if isinstance(loaded, LoadedMeasures):
        raise ProgramError([Problem("a measures file, not a program (kind: measures)", str(file), 1, 1)])
    return loaded


def load_file(file: str | FsPath) -> LoadedProgram | LoadedMeasures:
    """Load and validate one program or measures file (``kind: measures``); raises :class:`ProgramError`
    with every problem in it."""
    name = str(file)
    try:
        raw = FsPath(file).read_bytes()
    except OSError as error:
        raise ProgramError([Problem(f"cannot read the file: {error.strerror}", name)]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ProgramError([Problem("the file is not UTF-8 text", name, line)]) from None
    try:
        data, source = load_yaml(text, name)
    except YamlSourceError as error:
        raise ProgramError(error.problems) from None
    if not isinstance(data, dict):
        raise ProgramError([Problem("expected a mapping of program keys at the top of the file", name, 1, 1)])
    if data.get("kind") == "measures":
        return _load_measures(data, source, name, raw)
    try:
        program = Program.model_validate(data)
    except ValidationError as error:
        raise ProgramError(_validation_problems(error, source)) from None
    problems = [source.problem(path, message) for path, message in check_program(program)]
    problems += [source.problem(path, message, offset=offset)
                 for path, offset, message in check_names(program) + check_expression_types(program)]
    if problems:
        raise ProgramError(problems)
    return LoadedProgram(program, name, hashlib.sha256(raw).hexdigest(), source)


def _load_measures(data: dict, source: SourceMap, name: str, raw: bytes) -> LoadedMeasures:
    try:
        measures = MeasuresFile.model_validate(data)
    except ValidationError as error:
        raise ProgramError(_validation_problems(error, source, MeasuresFile)) from None
    problems = [source.problem(path, message) for path, message in measures_model.check_measures(measures)]
    problems += [source.problem(path, message, offset=offset)
                 for path, offset, message in measures_model.check_expression_types(measures)]
    if problems:
        raise ProgramError(problems)
    return LoadedMeasures(measures, name, hashlib.sha256(raw).hexdigest(), source)


# --- pydantic errors → located problems -------------------------------------------------

def _validation_problems(error: ValidationError, source: SourceMap,
                         model: type[BaseModel] = Program) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        # a measure's tag (aggregation or derived) is in the location, not in the file
        path: Path = tuple(part for part in item["loc"] if model is not MeasuresFile or part not in MEASURE_TAGS)
        item = {**item, "loc": path}
        kind = item["type"]
        context = item.get("ctx") or {}
        if path and path[-1] == "[key]":  # a mapping's key (a metric's, a measure's name): blamed on the key
            path = path[:-1]
            problems.append(source.problem(path, _message({**item, "loc": path[:-1]}), prefer_key=True))
        elif kind == "extra_forbidden":
            problems.append(source.problem(path, _unknown_key_message(path, model), prefer_key=True))
        elif kind == "missing":
            problems.append(source.problem(path[:-1], f"missing required key '{path[-1]}'"))
        elif kind == "expression":
            problems.append(source.problem(path, f"invalid expression: {context['message']}",
                                           offset=context.get("offset", 0)))
        else:
            problems.append(source.problem(path, _message(item)))
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


_BOUNDS = {"greater_than": ("gt", "above"), "greater_than_equal": ("ge", "at least"),
           "less_than": ("lt", "below"), "less_than_equal": ("le", "at most")}


def _message(item: dict) -> str:
    message = item["msg"]
    found = item.get("input")
    if item["type"] in _BOUNDS:
        bound, words = _BOUNDS[item["type"]]
        limit = item["ctx"][bound]
        percent = isinstance(found, str) and found.strip().endswith("%")
        message = f"must be {words} {format_rate(Decimal(str(limit))) if percent else limit}"
    if item["type"].startswith(("literal_", "string_pattern", "greater", "less", "int_", "bool_",
                                "date_", "too_short", "list_", "dict_", "model_", "string_")):
        if not isinstance(found, (dict, list)):
            message += f", found {found!r}" if not isinstance(found, Decimal) else f", found {found}"
    key = next((part for part in reversed(item["loc"]) if isinstance(part, str)), None)
    return f"{key}: {message}" if key else message


def _unknown_key_message(path: Path, model: type[BaseModel]) -> str:
    key = str(path[-1])
    allowed = _allowed_keys(path[:-1], model)
    message = f"unknown key '{key}'"
    if allowed:
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean '{close[0]}'?"
        return f"{message}; expected one of: {', '.join(allowed)}"
    return message


def _allowed_keys(path: Path, root: type[BaseModel]) -> list[str]:
    """The keys the model at ``path`` in ``root`` accepts (by alias), for suggestions."""
    annotation: Any = root
    for part in path:
        if typing.get_origin(annotation) is dict:  # the part is a key of the mapping: its value's model
            annotation = typing.get_args(annotation)[1]
            continue
        annotation = _model_inside(annotation)
        if annotation is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for name, f in annotation.model_fields.items() if (f.alias or name) == part), None)
        if field is None:
            return []
        annotation = field.annotation
    model = _model_inside(annotation)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_inside(annotation: Any) -> type[BaseModel] | None:
    """The model class in ``X``, ``X | None``, ``list[X]`` or ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict, typing.Annotated):
        for argument in typing.get_args(annotation):
            model = _model_inside(argument)
            if model is not None:
                return model
    return None


# --- checks that span fields ---------------------------------------------------------

def check_program(program: Program) -> list[tuple[Path, str]]:
    """Rules of one program that no single field can check; each with the path to blame."""
    found: list[tuple[Path, str]] = []
    found += _check_kind_section(program)
    if program.effective.to is not None and program.effective.to < program.effective.from_:
        found.append((("effective", "to"), f"'to' ({program.effective.to}) is before 'from' "
                                           f"({program.effective.from_})"))
    if program.id in program.uses:
        found.append((("uses",), f"a program cannot use itself ('{program.id}')"))
    for kind in KINDS.values():
        section = getattr(program, kind.section)
        if section is not None:
            found += kind.check(section, program.rounding)
    found += _check_rule_ids(program)
    for index, bonus in enumerate(program.bonuses):
        if (bonus.multiplier is None) == (bonus.amount is None):
            found.append((("bonuses", index), f"bonus '{bonus.id}' needs exactly one of 'multiplier' or 'amount'"))
    found += _check_metric_order(program)
    found += _check_own_outcome_definitions(program)
    found += _check_money(program)
    found += _check_defaults(program)
    return found


def _check_money(program: Program) -> list[tuple[Path, str]]:
    """A cap or budget is an amount the engine pays exactly: it cannot be finer than a payout line."""
    places = program.rounding.places
    found = []
    for key in ("cap", "budget"):
        value = getattr(program, key)
        if isinstance(value, Decimal) and len(format(value, "f").partition(".")[2].rstrip("0")) > places:
            found.append(((key,), f"{key}: {value} has more decimals than rounding.places ({places})"))
    return found


def _check_defaults(program: Program) -> list[tuple[Path, str]]:
    """Defaults are facts: each must be a value a partner record could hold."""
    from .inputs import fact_row

    found = []
    for name, value in program.defaults.items():
        for problem in fact_row({"partner_id": "-", "period": "-", name: value}).problems:
            found.append((("defaults", name), f"defaults: {problem}"))
    return found


def _check_kind_section(program: Program) -> list[tuple[Path, str]]:
    found = []
    own_section = KINDS[program.kind].section
    for kind in KINDS.values():
        section = kind.section
        present = getattr(program, section) is not None
        if kind.name == program.kind and not present:
            found.append(((), f"a '{kind.name}' program needs a '{section}' section"))
        elif kind.name != program.kind and present:
            found.append(((section,), f"'{section}' is not allowed in a '{program.kind}' program "
                                      f"(kind: {program.kind} takes '{own_section}')"))
    return found


def _check_rule_ids(program: Program) -> list[tuple[Path, str]]:
    found = []
    seen: set[str] = set()
    for section, rules in (("eligibility", program.eligibility), ("bonuses", program.bonuses),
                           ("deductions", program.deductions)):
        for index, rule in enumerate(rules):
            if rule.id in seen:
                found.append(((section, index, "id"), f"duplicate rule id '{rule.id}'"))
            seen.add(rule.id)
    return found


def _check_metric_order(program: Program) -> list[tuple[Path, str]]:
    found = []
    metric_names = list(program.metrics)
    for index, (name, expression) in enumerate(program.metrics.items()):
        later = sorted(expression.names & set(metric_names[index:]))
        if later:
            found.append((("metrics", name), f"metric '{name}' reads {', '.join(later)}, which is defined "
                                             "at or after it; metrics are computed in file order"))
    return found


def check_expression_types(program: Program) -> list[tuple[Path, int, str]]:
    """What an expression is certain to get wrong for every partner (:mod:`incentives.rules.checks`).

    Each finding with the expression's path and the offset in its text. A metric's
    type, when its expression fixes it, is known to every expression after it.
    """
    found: list[tuple[Path, int, str]] = []
    metric_kinds: dict[str, str] = {}
    for path, expression in expressions_of(program):
        is_metric = len(path) == 2 and path[0] == "metrics"
        key = str(path[-1])
        expected = None if is_metric else BOOLEAN if key in CONDITION_KEYS else NUMBER if key in NUMBER_KEYS else None
        checked = check_expression(expression.node, metric_kinds, expected=expected, place=f"'{key}'")
        if is_metric and checked.kind is not None:
            metric_kinds[key] = checked.kind
        found += [(path, finding.offset, finding.message) for finding in checked.findings]
    return found


def check_names(program: Program) -> list[tuple[Path, int, str]]:
    """Names an expression cannot read where it is: ``this.*`` out of place, ``prior.``/``year_ago.`` of
    something that is not a fact. Each finding with the expression's path and the name's offset in its text."""
    found = []
    for path, expression in expressions_of(program):
        for name, offset in expression.first_offsets:
            message = _own_outcome_problem(program, path, name) or _earlier_period_problem(program, name)
            if message is not None:
                found.append((path, offset, message))
    return found


def _own_outcome_problem(program: Program, path: Path, name: str) -> str | None:
    """``this.*`` names: known ones, where the program's outcome exists, in a kind that computes them."""
    return (own_outcome.problem(name, str(path[0]), program.kind, OWN_NAME_KINDS) if own_outcome.is_own(name)
            else None)


def _earlier_period_problem(program: Program, name: str) -> str | None:
    """``prior.X`` and ``year_ago.X`` read the fact ``X`` of an earlier period's record: not a metric, not
    this program's outcome, not a used program's result (each would need that period computed)."""
    if not name.startswith(HISTORY_PREFIXES):
        return None
    prefix, _, fact = name.partition(".")
    root = fact.partition(".")[0]
    if root in program.metrics:
        why = f"'{root}' is a metric of this program"
    elif root == "this":
        why = "'this.' is this program's outcome in the period computed"
    elif root in program.uses:
        why = f"'{root}' is a used program's result"
    elif fact.startswith(HISTORY_PREFIXES):
        why = "'prior.' and 'year_ago.' reach one earlier period and do not chain"
    else:
        return None
    return (f"'{name}': {prefix}. reads facts of an earlier period's record, not metrics or results; {why} "
            f"(read the facts it is computed from, e.g. {prefix}.revenue)")


def _check_own_outcome_definitions(program: Program) -> list[tuple[Path, str]]:
    """Metrics and defaults cannot define a ``this.*`` name."""
    found = []
    for section, names in (("metrics", program.metrics), ("defaults", program.defaults)):
        for name in names:
            if own_outcome.is_own(name) or name + "." == own_outcome.PREFIX:
                found.append(((section, name), f"{section}: '{name}' cannot be defined: names beginning "
                                               f"'{own_outcome.PREFIX}' are the program's own outcome"))
    return found


def expressions_of(value: Any, path: Path = ()) -> Iterator[tuple[Path, Expression]]:
    """Every expression in a model, with its path."""
    if isinstance(value, Expression):
        yield path, value
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            yield from expressions_of(getattr(value, name), path + (field.alias or name,))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from expressions_of(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from expressions_of(item, path + (index,))


# --- checks across files --------------------------------------------------------------

def _check_program_set(loaded: list[LoadedProgram]) -> list[Problem]:
    problems: list[Problem] = []
    by_id: dict[str, list[LoadedProgram]] = defaultdict(list)
    for item in loaded:
        by_id[item.program.id].append(item)
    for versions in by_id.values():
        problems += _check_versions(versions)
    for item in loaded:
        problems += _check_references(item, by_id)
    problems += _check_cycles(by_id)
    return problems


def _check_measures_set(loaded: list[LoadedMeasures]) -> list[Problem]:
    """Measures files are one set of facts: an id, and a measure's name, once across them."""
    problems: list[Problem] = []
    ids: dict[str, LoadedMeasures] = {}
    names: dict[str, LoadedMeasures] = {}
    for item in loaded:
        measures = item.measures
        first = ids.setdefault(measures.id, item)
        if first is not item:
            problems.append(item.source.problem(("id",), f"measures id '{measures.id}' is also the id of "
                                                         f"{first.file}"))
        for name in measures.measures:
            first = names.setdefault(name, item)
            if first is not item:
                problems.append(item.source.problem(("measures", name), f"measure '{name}' is also defined "
                                                                        f"in {first.file}", prefer_key=True))
    return problems


def _check_versions(versions: list[LoadedProgram]) -> list[Problem]:
    problems = []
    ordered = sorted(versions, key=lambda item: item.program.effective.from_)
    for index, item in enumerate(ordered):
        for other in ordered[:index]:
            if other.program.version == item.program.version:
                problems.append(item.source.problem(("version",), f"version {item.program.version} of "
                                                    f"'{item.program.id}' is also defined in {other.file}"))
            elif _overlap(other.program, item.program):
                problems.append(item.source.problem(
                    ("effective",), f"effective window of '{item.program.id}' version {item.program.version} "
                    f"overlaps version {other.program.version} ({other.file})"))
        if item.program.kind != ordered[0].program.kind:
            problems.append(item.source.problem(("kind",), f"all versions of '{item.program.id}' must have "
                                                f"one kind; {ordered[0].file} has '{ordered[0].program.kind}'"))
    return problems


def _overlap(first: Program, second: Program) -> bool:
    first_end, second_end = first.effective.to, second.effective.to
    return ((first_end is None or second.effective.from_ <= first_end)
            and (second_end is None or first.effective.from_ <= second_end))


def _check_references(item: LoadedProgram, by_id: dict[str, list[LoadedProgram]]) -> list[Problem]:
    program = item.program
    problems = []
    for index, used in enumerate(program.uses):
        if used not in by_id:
            problems.append(item.source.problem(("uses", index), f"uses '{used}', which is not loaded"))
    for path, expression in expressions_of(program):
        for name in sorted(expression.names):
            root, _, attribute = name.partition(".")
            if root in program.uses and root in by_id and attribute not in RESULT_ATTRIBUTES:
                problems.append(item.source.problem(path, f"'{name}': a used program's result offers "
                                                    f"{', '.join(root + '.' + a for a in RESULT_ATTRIBUTES)}"))
            elif root in by_id and root not in program.uses and root != program.id:
                problems.append(item.source.problem(path, f"'{name}' reads program '{root}', which is not "
                                                    f"listed in 'uses'"))
    return problems


def _check_cycles(by_id: dict[str, list[LoadedProgram]]) -> list[Problem]:
    edges = {pid: sorted({u for item in items for u in item.program.uses if u in by_id})
             for pid, items in by_id.items()}
    state: dict[str, int] = {}
    problems: list[Problem] = []

    def visit(pid: str, trail: list[str]) -> None:
        state[pid] = 1
        for used in edges[pid]:
            if state.get(used) == 1:
                cycle = trail[trail.index(used):] + [pid, used] if used in trail else [pid, used]
                item = by_id[pid][0]
                problems.append(item.source.problem(("uses",), "'uses' forms a cycle: " + " → ".join(cycle)))
            elif used not in state:
                visit(used, trail + [pid])
        state[pid] = 2

    for pid in sorted(edges):
        if pid not in state:
            visit(pid, [])
    return problems


def _dependency_order(loaded: list[LoadedProgram]) -> list[LoadedProgram]:
    by_id: dict[str, list[LoadedProgram]] = defaultdict(list)
    for item in loaded:
        by_id[item.program.id].append(item)
    order: list[str] = []

    def place(pid: str) -> None:
        if pid in order:
            return
        for item in by_id[pid]:
            for used in item.program.uses:
                place(used)
        order.append(pid)

    for pid in sorted(by_id):
        place(pid)
    return [item for pid in order for item in sorted(by_id[pid], key=lambda i: i.program.version)]
