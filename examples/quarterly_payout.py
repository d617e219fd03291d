#!/usr/bin/env python3
"""The quarterly payout, as a script finance can copy and adapt.

    python examples/quarterly_payout.py
    python examples/quarterly_payout.py --facts facts_2027Q2.csv --claims claims_2027Q2.csv --out out/2027-Q2

    # quarter after quarter, with a ledger: each run reads the funds' balances and the claims
    # already paid, and --post puts it on the books once it is written
    python examples/quarterly_payout.py --ledger ledger.db --post
    python examples/quarterly_payout.py --ledger ledger.db --post --facts examples/facts_2027Q2.csv \
        --claims examples/claims_2027Q2.csv --out out/2027-Q2

It does what ``incentives run`` does, in a dozen lines of the Python API:
load and validate the programs, stream the partner facts, read the MDF
claims, compute every partner against every program, write payouts.csv,
lines.csv, results.jsonl and run.json, and print the total per program; with a ledger,
record the run and post it. Adapt it to pull facts from your warehouse
(``engine.run`` takes any iterable of mappings).

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
from incentives.ledger import Ledger
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
    parser.add_argument("--ledger", help="a ledger (SQLite file or PostgreSQL URL): balances and paid claims are "
                                         "read from it and the run is recorded in it (created if needed)")
    parser.add_argument("--post", action="store_true", help="with --ledger: post the run once it is written")
    args = parser.parse_args(argv)

    # 1. Programs: every file is validated; a bad one stops here with file:line:col messages.
    try:
        programs = incentives.load_programs(args.programs)
    except incentives.ProgramError as error:
        print(error, file=sys.stderr)
        return 1

    # 2. Inputs: facts are streamed, claims read whole (they are few). With a ledger, each MDF fund opens
    #    with its balance there and claims paid in earlier periods are rejected; the run is recorded as a draft.
    ledger = Ledger(args.ledger) if args.ledger else None
    if ledger is not None:
        ledger.init()  # creates the ledger the first time, else checks (or upgrades) its schema
    try:
        has_claims = args.claims.exists()
        claims = read_claims(args.claims) if has_claims else []
        engine = incentives.Engine(programs, ledger=ledger)
        run = engine.run(read_facts(args.facts), claims, facts_sha256=sha256_of(args.facts),
                         claims_sha256=sha256_of(args.claims) if has_claims else None)
    except incentives.InputError as error:
        print(error, file=sys.stderr)  # file:line: message
        return 2

    # 3. Outputs: payouts.csv, lines.csv, results.jsonl and run.json, written atomically. A folder that holds
    #    another run (other programs or facts) is left alone unless --force is given.
    try:
        incentives.write_run(run, args.out, force=args.force)
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
    # 5. On the books: post the draft (payouts on each partner's payable account, accruals and paid claims on
    #    the funds), or leave it for finance to approve: `incentives ledger post RUN_ID`.
    if ledger is not None:
        print(ledger.post(run.run_id).message if args.post else
              f"recorded in the ledger as a draft: post it with `incentives ledger post {run.run_id}`")
    errors = sum(counts["error"] for counts in run.counts.values())
    return 3 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
