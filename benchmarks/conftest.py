"""Shared fixtures for the benchmarks: synthetic data per size, engines per backend, the ratio table.

Sizes are test ids (``10k``, ``100k``, ``1m``) so that ``-k 10k`` selects the
quick size. Data sets are generated once per session (seeded, see
``benchmarks/synth.py``); facts and claims CSV files are cached under
``benchmarks/.data/`` for the end-to-end runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import incentives
from incentives.inputs import Claim, FactRow, normalize_claim

from . import synth

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
DATA = Path(os.environ.get("INCENTIVES_BENCH_DATA", HERE / ".data"))
SEED = 2027
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
# Rounds per size for in-memory benchmarks: enough to take a minimum, few enough to stay quick.
ROUNDS = {"10k": 5, "100k": 1, "1m": 1}
# Untimed rounds first: the first pass over fresh data fills caches (period plans, typed texts) on both sides.
WARMUP_ROUNDS = {"10k": 1, "100k": 0, "1m": 0}


def backends() -> list[Any]:
    """``compiled`` always; ``durable`` when durable_rules imports and compiles (skipped otherwise)."""
    params: list[Any] = ["compiled"]
    reason = durable_unavailable()
    params.append(pytest.param("durable", marks=pytest.mark.skip(reason=reason)) if reason else "durable")
    return params


def durable_unavailable() -> str | None:
    try:
        engine = incentives.Engine(incentives.load_programs(PROGRAMS), backend="durable")
        engine.close()
    except Exception as error:  # noqa: BLE001 - any failure means: not available here
        return f"durable backend unavailable: {type(error).__name__}: {error}"
    return None


@dataclass
class Dataset:
    """One size of the synthetic partner base, in the forms each side of a benchmark takes."""

    size: int
    facts: list[dict[str, Any]]  # typed, flat records (what read_facts gives as FactRow.facts)
    rows: list[FactRow]  # the same records as the engine's FactRows
    claims: list[dict[str, Any]]  # typed claims for the reference
    claim_rows: list[Claim]  # the same claims normalised for the engine


_datasets: dict[str, Dataset] = {}
_timings: dict[tuple[str, str], float] = {}  # (benchmark, size) -> best seconds
_notes: dict[tuple[str, str], dict[str, Any]] = {}


def dataset(size_id: str) -> Dataset:
    """The records and claims of one size, generated once per session."""
    if size_id not in _datasets:
        _datasets.clear()  # one size in memory at a time: 1m records are large
        size = SIZES[size_id]
        facts = list(synth.partner_facts(size, SEED))
        claims = synth.claims_for(size, SEED)
        rows = [FactRow(None, record["partner_id"], record["period"], record) for record in facts]
        _datasets[size_id] = Dataset(size, facts, rows, claims, [normalize_claim(claim) for claim in claims])
    return _datasets[size_id]


def files(size_id: str, order: str = "sorted") -> tuple[Path, Path]:
    """The facts and claims CSV files of one size, written once and kept in ``benchmarks/.data``.

    ``order``: ``sorted`` (by partner_id, as the generator writes them) or ``shuffled`` (the same lines in
    a seeded random order, as real facts files come).
    """
    size = SIZES[size_id]
    facts = DATA / f"facts_{size_id}_{SEED}.csv"
    claims = DATA / f"claims_{size_id}_{SEED}.csv"
    if not facts.exists():
        synth.write_facts_csv(facts.with_suffix(".tmp"), size, SEED).rename(facts)
    if order == "shuffled":
        shuffled = DATA / f"facts_{size_id}_{SEED}_shuffled.csv"
        if not shuffled.exists():
            synth.shuffle_csv(facts, shuffled.with_suffix(".tmp"), SEED).rename(shuffled)
        facts = shuffled
    elif order != "sorted":
        raise ValueError(f"unknown order {order!r}; expected 'sorted' or 'shuffled'")
    if not claims.exists():
        synth.write_claims_csv(claims.with_suffix(".tmp"), size, SEED).rename(claims)
    return facts, claims


def end_to_end(size_id: str, *options: str) -> dict:
    """One ``python -m benchmarks.e2e`` run in a fresh process; its JSON report."""
    completed = subprocess.run([sys.executable, "-m", "benchmarks.e2e", "--size", size_id, *options],
                               cwd=HERE.parent, capture_output=True, text=True, check=False,
                               env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    if completed.returncode != 0:
        raise AssertionError(f"benchmarks.e2e failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def engine(backend: str = "compiled") -> incentives.Engine:
    return incentives.Engine(incentives.load_programs(PROGRAMS), backend=backend)


def best(benchmark: Any) -> float:
    """The fastest round of a finished benchmark, in seconds."""
    return float(benchmark.stats.stats.min)


def record(benchmark: Any, name: str, size_id: str, **info: Any) -> None:
    """Remember a timing (for ratios and the summary) and attach ``info`` to the benchmark's JSON."""
    _timings[(name, size_id)] = best(benchmark)
    _notes[(name, size_id)] = info
    benchmark.extra_info.update(info)


def note(name: str, size_id: str, seconds: float, **info: Any) -> None:
    """Remember a timing measured outside pytest-benchmark's own (e.g. the reference, interleaved)."""
    _timings[(name, size_id)] = seconds
    _notes[(name, size_id)] = info


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _timings:
        return
    write = terminalreporter.write_line
    terminalreporter.section("incentives: engine time as a ratio to the hand-written reference")
    write(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; ratios use the best round of each side")
    write(f"{'benchmark':34} {'size':>5} {'best s':>9} {'µs/record':>10} {'ratio':>7}  notes")
    for (name, size_id), seconds in sorted(_timings.items(), key=lambda item: (SIZES[item[0][1]], item[0][0])):
        info = _notes.get((name, size_id), {})
        ratio = info.get("ratio_to_reference")
        extra = ", ".join(f"{key}={value}" for key, value in info.items()
                          if key not in ("ratio_to_reference", "records"))
        write(f"{name:34} {size_id:>5} {seconds:9.3f} {seconds / SIZES[size_id] * 1e6:10.1f} "
              f"{'' if ratio is None else f'{ratio:7.2f}':>7}  {extra}")


def clock() -> float:
    return time.perf_counter()
