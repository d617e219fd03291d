#!/usr/bin/env python3
"""The quarterly payout, as a script finance can copy and adapt.

    python examples/quarterly_payout.py
    python examples/quarterly_payout.py --facts facts_2027Q2.csv --claims claims_2027Q2.csv --out out/2027-Q2

It does what ``incentives run`` does, in a dozen lines of the Python API:
load and validate the programs, stream the partner facts, read the MDF
claims, compute every partner against every program, write payouts.csv,
lines.csv and run.json, and print the total per program. Adapt it to pull
facts from your warehouse (``engine.run`` takes any iterable of mappings) or
to post the totals to your ledger.

Exit code 0 when every result is ok or ineligible, 3 when some results are
errors (the files are still written; look for status "error" in payouts.csv).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import incentives
from incentives.inputs import read_claims, read_facts
from incentives.money import format_amount

ROOT = Path(__file__).resolve().parent.parent


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compute the quarterly partner payout.")
    parser.add_argument("--programs", type=Path, default=ROOT / "programs", help="folder of program files")
    parser.add_argument("--facts", type=Path, default=ROOT / "examples" / "facts_2027Q1.csv")
    parser.add_argument("--claims", type=Path, default=ROOT / "examples" / "claims_2027Q1.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "2027-Q1", help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite an earlier, different run in --out")
    args = parser.parse_args(argv)

    # 1. Programs: every file is validated; a bad one stops here with file:line:col messages.
    try:
        programs = incentives.load_programs(args.programs)
    except incentives.ProgramError as error:
        print(error, file=sys.stderr)
        return 1

    # 2. Inputs: facts are streamed, claims read whole (they are few).
    try:
        has_claims = args.claims.exists()
        claims = read_claims(args.claims) if has_claims else []
        engine = incentives.Engine(programs)
        run = engine.run(read_facts(args.facts), claims, facts_sha256=sha256_of(args.facts),
                         claims_sha256=sha256_of(args.claims) if has_claims else None)
    except incentives.InputError as error:
        print(error, file=sys.stderr)  # file:line: message
        return 2

    # 3. Outputs: payouts.csv, lines.csv and run.json, written atomically. A folder that holds
    #    another run (other programs or facts) is left alone unless --force is given.
    try:
        run.write(args.out, force=args.force)
    except incentives.IncentivesError as error:
        print(error, file=sys.stderr)
        return 1

    # 4. Totals per program, to tie out against the ledger.
    places = {loaded.program.id: loaded.program.rounding.places for loaded in programs}
    currency = {loaded.program.id: loaded.program.currency for loaded in programs}
    width = max(len(program_id) for program_id in run.totals)
    print(f"{'program':<{width}}  {'ok':>4}  {'inelig.':>7}  {'error':>5}  {'total':>16}")
    for program_id, total in run.totals.items():
        counts = run.counts[program_id]
        print(f"{program_id:<{width}}  {counts['ok']:>4}  {counts['ineligible']:>7}  {counts['error']:>5}  "
              f"{format_amount(total, places[program_id]):>16} {currency[program_id]}")
    for note in run.notes:
        print(f"note: {note}")
    print(f"written to {args.out} (run {run.run_id})")
    errors = sum(counts["error"] for counts in run.counts.values())
    return 3 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
