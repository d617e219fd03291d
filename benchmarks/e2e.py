"""One end-to-end run in a fresh process, measured: CSV facts and claims in, the three files out.

    python -m benchmarks.e2e --size 1m                 # Engine.run_to, workers = cores
    python -m benchmarks.e2e --size 100k --workers 1   # one process
    python -m benchmarks.e2e --size 10k --mode memory  # Engine.run(...).write(...), for comparison
    python -m benchmarks.e2e --facts f.csv --claims c.csv --out /tmp/out

Prints one JSON object: wall seconds (from loading the programs to the last
rename), the CPU seconds of this process and its workers, and the peak
resident memory of the whole process tree (sampled every 20 ms: the sum over
this process and its live workers), next to each process's own peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    return found


class TreeMemory(threading.Thread):
    """Samples the resident memory of this process and its descendants; keeps the peak of the sum."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_kb = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stopped.is_set():
            pids, total = [me], 0
            while pids:
                pid = pids.pop()
                total += _rss_kb(pid)
                pids += _children(pid)
            self.peak_kb = max(self.peak_kb, total)
            self.stopped.wait(self.interval)

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.peak_kb


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="10k", help="10k, 100k or 1m (data cached in benchmarks/.data)")
    parser.add_argument("--facts", type=Path)
    parser.add_argument("--claims", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--backend", default="compiled")
    parser.add_argument("--mode", choices=("stream", "memory"), default="stream")
    args = parser.parse_args(argv)
    from benchmarks.conftest import PROGRAMS, files

    facts, claims = (args.facts, args.claims) if args.facts else files(args.size)
    out = args.out or Path(tempfile.mkdtemp(prefix="incentives-e2e-"))
    memory = TreeMemory()
    memory.start()
    started = time.perf_counter()
    import incentives
    from incentives.inputs import read_claims, read_facts

    engine = incentives.Engine(incentives.load_programs(PROGRAMS), backend=args.backend)
    if args.mode == "stream":
        summary = engine.run_to(out, facts, claims, facts_sha256=None, force=True, workers=args.workers)
        workers, results, errors = summary.workers, summary.results, summary.errors
    else:
        run = engine.run(read_facts(facts), read_claims(claims) if claims else ())
        run.write(out, force=True)
        workers, results, errors = 1, len(run.results), sum(c["error"] for c in run.counts.values())
    seconds = time.perf_counter() - started
    peak_kb = memory.stop()
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "mode": args.mode, "backend": args.backend, "facts": str(facts), "workers": workers, "results": results,
        "errors": errors, "seconds": round(seconds, 2),
        "cpu_seconds": round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 2),
        "peak_rss_mb_tree": round(peak_kb / 1024), "peak_rss_mb_main": round(own.ru_maxrss / 1024),
        "peak_rss_mb_worker": round(kids.ru_maxrss / 1024),
        "output_mb": {name: round((out / name).stat().st_size / 2**20) for name in summary_files(out)},
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
    }
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return report


def summary_files(out: Path) -> list[str]:
    return [name for name in ("payouts.csv", "lines.csv", "run.json") if (out / name).exists()]


if __name__ == "__main__":
    print(json.dumps(main()))
