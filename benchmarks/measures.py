"""``incentives measures`` on a generated deals file in a fresh process, measured.

    python -m benchmarks.measures --rows 1m                 # 1M deals of 10,000 partners (cached in benchmarks/.data)
    python -m benchmarks.measures --rows 10m --partners 100000
    python -m benchmarks.measures --deals deals.csv          # a file of your own (benchmarks/programs_measures)

Prints one JSON object: wall seconds of the command (from its start to the
facts file in place), its CPU seconds, and the peak memory of its process tree
(PSS, sampled every 50 ms, as ``benchmarks.e2e`` samples it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.conftest import DATA  # noqa: E402
from benchmarks.e2e import measure_incentives  # noqa: E402
from benchmarks.synth import write_deals_csv  # noqa: E402

PROGRAMS = ROOT / "benchmarks" / "programs_measures"
_SIZES = {"k": 1_000, "m": 1_000_000}


def rows_of(text: str) -> int:
    return int(text[:-1]) * _SIZES[text[-1].lower()] if text[-1].lower() in _SIZES else int(text)


def deals_file(rows: int, partners: int) -> Path:
    path = DATA / f"deals_{rows}_{partners}.csv"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        write_deals_csv(path.with_suffix(".tmp"), rows, partners)
        path.with_suffix(".tmp").rename(path)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1m", help="deals to generate: 100k, 1m, 10m...")
    parser.add_argument("--partners", type=int, help="partners they belong to (default: rows / 100)")
    parser.add_argument("--deals", type=Path, help="a deals file instead of a generated one")
    args = parser.parse_args(argv)
    rows = rows_of(args.rows)
    deals = args.deals or deals_file(rows, args.partners or max(1, rows // 100))
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "facts.csv"
        done = measure_incentives("measures", "--programs", str(PROGRAMS), "--transactions", f"deals={deals}",
                                  "--out", str(out))
        found = {"deals": str(deals), "wall_s": done.wall_s, "cpu_s": done.cpu_s,
                 "peak_pss_mb_tree": done.peak_pss_mb_tree, "summary": done.stdout.splitlines()[0]}
    print(json.dumps(found))
    return found


if __name__ == "__main__":
    main()
