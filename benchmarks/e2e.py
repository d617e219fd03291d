"""One end-to-end run in a fresh process, measured: CSV facts and claims in, a run's files out.

    python -m benchmarks.e2e --size 1m                 # Engine.run_to, by columns
    python -m benchmarks.e2e --size 100k --engine per-record   # every record per record
    python -m benchmarks.e2e --size 10k --mode memory  # incentives.write_run(Engine.run(...), ...), for comparison
    python -m benchmarks.e2e --size 1m --order shuffled  # the same records in a random order
    python -m benchmarks.e2e --facts f.csv --claims c.csv --out /tmp/out
    python -m benchmarks.e2e --size 100k --ledger l.db            # reading a ledger; --record records the run
    python -m benchmarks.e2e --size 100k --no-memory              # wall and CPU seconds only
    python -m benchmarks.e2e --size 1m --timeline mem.txt         # every memory sample: where it peaks

Prints one JSON object: wall seconds (from loading the programs to the last
rename), the CPU seconds of this process (and of any child), and the peak
memory of the whole process tree (sampled every 50 ms: the sum of PSS over
this process and its live children, each shared page counted once; and the
sum of RSS), next to the process's own peak RSS; with the columnar engine, how
many records it computed per record, and why.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB: PSS shares each page among the processes that map it."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


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
    """Samples the memory of this process and its descendants; keeps the peak of the sums.

    Worker processes are forked: until written, their pages are the parent's,
    so the sum of RSS counts them twice; the sum of PSS counts each page once.
    """

    def __init__(self, interval: float = 0.05, timeline: Path | None = None):
        """``timeline``: a file to write each sample to, ``seconds pss_mb rss_mb`` a line (where in a run its
        memory peaks)."""
        super().__init__(daemon=True)
        self.interval = interval
        self.timeline = timeline
        self.peak_rss_kb = self.peak_pss_kb = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        started = time.perf_counter()
        with open(self.timeline or os.devnull, "w", encoding="ascii") as timeline:
            while not self.stopped.is_set():
                pids, rss, pss = [me], 0, 0
                while pids:
                    pid = pids.pop()
                    one_rss, one_pss = _memory_kb(pid)
                    rss, pss = rss + one_rss, pss + one_pss
                    pids += _children(pid)
                self.peak_rss_kb, self.peak_pss_kb = max(self.peak_rss_kb, rss), max(self.peak_pss_kb, pss)
                timeline.write(f"{time.perf_counter() - started:.2f} {pss // 1024} {rss // 1024}\n")
                self.stopped.wait(self.interval)

    def stop(self) -> tuple[int, int]:
        self.stopped.set()
        self.join()
        return self.peak_rss_kb, self.peak_pss_kb


@dataclass(frozen=True)
class MeasuredCommand:
    """One ``python -m incentives ...`` run in a child process: its output, wall and CPU seconds, and the peak
    PSS of the process tree."""

    stdout: str
    wall_s: float
    cpu_s: float
    peak_pss_mb_tree: int


def measure_incentives(*arguments: str) -> MeasuredCommand:
    """``python -m incentives ARGUMENTS`` in a fresh process, measured (a failed one stops the benchmark with
    what it printed)."""
    memory = TreeMemory()
    memory.start()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "incentives", *arguments], capture_output=True, text=True)
    wall = time.perf_counter() - started
    _, peak_pss_kb = memory.stop()
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return MeasuredCommand(done.stdout, round(wall, 2), round(usage.ru_utime + usage.ru_stime, 2),
                           round(peak_pss_kb / 1024))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="10k", help="10k, 100k or 1m (data cached in benchmarks/.data)")
    parser.add_argument("--facts", type=Path)
    parser.add_argument("--claims", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--engine", choices=("columnar", "per-record"), default="columnar")
    parser.add_argument("--backend", default="compiled")
    parser.add_argument("--mode", choices=("stream", "memory"), default="stream")
    parser.add_argument("--order", choices=("sorted", "shuffled"), default="sorted",
                        help="the facts records sorted by partner_id, or in a random order")
    parser.add_argument("--ledger", help="read fund balances and paid claims from this ledger")
    parser.add_argument("--record", action="store_true", help="with --ledger: record the run as a draft")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="do not sample memory: reading /proc/PID/smaps_rollup of every process every 50 ms "
                             "takes CPU in proportion to the processes' size, which skews comparing a small run "
                             "with a larger one")
    parser.add_argument("--timeline", type=Path,
                        help="write every memory sample to this file, 'seconds pss_mb rss_mb' a line")
    args = parser.parse_args(argv)
    from benchmarks.conftest import PROGRAMS, files

    facts, claims = (args.facts, args.claims) if args.facts else files(args.size, args.order)
    out = args.out or Path(tempfile.mkdtemp(prefix="incentives-e2e-"))
    if args.timeline and not args.memory:
        parser.error("--timeline samples memory: it cannot go with --no-memory")
    memory = TreeMemory(timeline=args.timeline)
    if args.memory:
        memory.start()
    started = time.perf_counter()
    import incentives
    from incentives.inputs import read_claims, read_facts

    clock = LedgerClock() if args.ledger else None
    ledger = incentives.Ledger(args.ledger) if args.ledger else None
    engine = incentives.Engine(incentives.load_programs(PROGRAMS), backend=args.backend, ledger=ledger)
    if args.mode == "stream":
        summary = engine.run_to(out, facts, claims, facts_sha256=None, force=True, record=args.record,
                                engine=args.engine)
        results, errors, per_record = summary.results, summary.errors, summary.per_record
    else:
        run = engine.run(read_facts(facts), read_claims(claims) if claims else ())
        incentives.write_run(run, out, force=True)
        results, errors, per_record = len(run.results), sum(c["error"] for c in run.counts.values()), {}
    seconds = time.perf_counter() - started
    peak_rss_kb, peak_pss_kb = memory.stop() if args.memory else (0, 0)  # reported as None
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "mode": args.mode, "backend": args.backend, "order": args.order, "facts": str(facts), "engine": args.engine,
        "per_record": per_record,
        "ledger": bool(args.ledger), "record": args.record,
        "results": results,
        "errors": errors, "seconds": round(seconds, 2),
        "cpu_seconds": round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 2),
        "peak_pss_mb_tree": round(peak_pss_kb / 1024) if args.memory else None,
        "peak_rss_mb_tree": round(peak_rss_kb / 1024) if args.memory else None,
        "peak_rss_mb_main": round(own.ru_maxrss / 1024),
        "output_mb": {name: round((out / name).stat().st_size / 2**20) for name in summary_files(out)},
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
    }
    if clock is not None:
        report["ledger_seconds"] = clock.report(seconds)
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return report


class LedgerClock:
    """The seconds a run spends reading its ledger, measured inside the run itself.

    On a machine whose speed swings by ±15% from one minute to the next, the
    ratio of two runs cannot resolve a 10% cost; the ledger's share of one run
    can. Counted: importing the ledger's modules (SQLAlchemy) and opening the
    ledger view (the claims already paid), then each MDF fund's opening
    balances, read once per program and period (each read appends its seconds
    to a file, by process).
    """

    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="incentives-ledger-clock-")
        os.close(handle)
        started = time.perf_counter()
        import incentives.ledger  # SQLAlchemy with it
        from incentives.ledger import book

        self.imported = time.perf_counter() - started
        self.viewed = 0.0
        view_init, fund_openings = incentives.ledger.LedgerView.__init__, book.fund_openings

        def timed_view(view, *args, **kwargs):
            began = time.perf_counter()
            view_init(view, *args, **kwargs)
            self.viewed += time.perf_counter() - began

        def timed_openings(*args, **kwargs):
            began = time.perf_counter()
            openings = fund_openings(*args, **kwargs)
            with open(self.path, "a", encoding="ascii") as handle:
                handle.write(f"{os.getpid()} {time.perf_counter() - began}\n")
            return openings

        incentives.ledger.LedgerView.__init__ = timed_view
        book.fund_openings = timed_openings

    def report(self, run_seconds: float) -> dict:
        by_process: dict[str, float] = {}
        with open(self.path, encoding="ascii") as handle:
            for line in handle:
                pid, seconds = line.split()
                by_process[pid] = by_process.get(pid, 0.0) + float(seconds)
        os.unlink(self.path)
        slowest = max(by_process.values(), default=0.0)
        waited = self.imported + self.viewed + slowest
        return {"import": round(self.imported, 3), "paid_claims": round(self.viewed, 3),
                "fund_openings_by_process": sorted(round(value, 3) for value in by_process.values()),
                "waited": round(waited, 3), "share_of_run": round(waited / run_seconds, 4)}


def summary_files(out: Path) -> list[str]:
    return [name for name in ("payouts.csv", "lines.csv", "results.jsonl", "run.json") if (out / name).exists()]


if __name__ == "__main__":
    print(json.dumps(main()))
