"""``incentives report`` on a benchmark run folder in a fresh process, measured.

    python -m benchmarks.report --size 1m           # runs the 1M × 3 benchmark programs first (cached)
    python -m benchmarks.report --run-folder out    # a run folder of your own

Prints one JSON object: wall seconds of the command (from its start to the
HTML in place), its CPU seconds, the peak memory of its process tree (PSS,
sampled every 50 ms, as ``benchmarks.e2e`` samples it) and the HTML's size.
The bar (issue #15): a 1M-partner run's report in < 60 s, < 10 MB of HTML.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.conftest import DATA, PROGRAMS, files  # noqa: E402
from benchmarks.e2e import measure_incentives  # noqa: E402


def run_folder(size: str) -> Path:
    """The benchmark programs' run of ``size`` partners, computed once into benchmarks/.data."""
    folder = DATA / f"run_{size}"
    if not (folder / "run.json").exists():
        facts, claims = files(size, "sorted")
        done = subprocess.run([sys.executable, "-m", "incentives", "run", "--programs", str(PROGRAMS), "--facts",
                               str(facts), "--claims", str(claims), "--out", str(folder), "--force"],
                              capture_output=True, text=True)
        if done.returncode not in (0, 3):
            raise SystemExit(done.stdout + done.stderr)
    return folder


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="100k", help="10k, 100k or 1m (the run cached in benchmarks/.data)")
    parser.add_argument("--run-folder", type=Path, help="a run folder instead of the benchmark's")
    args = parser.parse_args(argv)
    folder = args.run_folder or run_folder(args.size)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "report.html"
        done = measure_incentives("report", str(folder), "--out", str(out))
        found = {"run_folder": str(folder), "wall_s": done.wall_s, "cpu_s": done.cpu_s,
                 "peak_pss_mb_tree": done.peak_pss_mb_tree, "html_kb": round(out.stat().st_size / 1024),
                 "summary": done.stdout.strip()}
    print(json.dumps(found))
    return found


if __name__ == "__main__":
    main()
