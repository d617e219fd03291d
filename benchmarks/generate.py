"""Write a seeded synthetic facts CSV (and optionally its claims CSV).

    python benchmarks/generate.py 1000000 --out facts.csv --claims claims.csv [--seed 2027] [--shuffled]

The same ``N`` and ``--seed`` always give the same bytes. See ``benchmarks/synth.py``
for the spreads (log-normal revenue, skewed certifications, a few percent
ineligible, quotas and target incentives by segment, MDF claims).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import synth  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write N synthetic partner records as a facts CSV.")
    parser.add_argument("n", type=int, help="number of partner records")
    parser.add_argument("--out", type=Path, default=Path("facts.csv"), help="facts CSV to write (facts.csv)")
    parser.add_argument("--claims", type=Path, help="also write the partners' MDF claims to this CSV")
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--shuffled", action="store_true", help="the records in a random order (seeded)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    synth.write_facts_csv(args.out, args.n, args.seed)
    if args.shuffled:
        synth.shuffle_csv(args.out, args.out, args.seed)
    if args.claims:
        synth.write_claims_csv(args.claims, args.n, args.seed)
    print(f"wrote {args.n} records to {args.out}" + (f" and their claims to {args.claims}" if args.claims else "")
          + f" in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
