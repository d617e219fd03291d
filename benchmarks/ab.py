"""Per-record evaluation of each benchmark program, timed in two checkouts of the library, interleaved.

A change's cost per program kind ("a program that does not use a feature pays
nothing for it") is a few percent, and this machine's speed drifts by more than
that within minutes. So the two checkouts are timed in alternating processes,
each the best of several rounds over the same seeded records, and the figures
to compare are each side's best::

    git worktree add --detach /tmp/before <commit>
    python -m benchmarks.ab /tmp/before . --records 20000 --rounds 5 --alternations 5

Each process imports the library and the benchmark programs of the checkout it
times (``benchmarks/programs`` there); both sides evaluate the same records, made
by this file's own ``benchmarks/synth.py``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def time_checkout(checkout: Path, records: int, rounds: int) -> dict[str, float]:
    """In this process: the best seconds of each program's per-record evaluation over ``records`` records."""
    sys.path.insert(0, str(checkout))
    import incentives
    from incentives.inputs import FactRow, normalize_claim

    assert Path(incentives.__file__).resolve().is_relative_to(checkout.resolve()), incentives.__file__
    synth = _module(HERE / "synth.py")  # this file's generator, not the checkout's: the same records on both sides

    facts = list(synth.partner_facts(records, 2027))
    rows = [FactRow(None, record["partner_id"], record["period"], record) for record in facts]
    claims: dict[str, list] = {}
    for claim in synth.claims_for(records, 2027):
        claims.setdefault(claim["partner_id"], []).append(normalize_claim(claim))
    best = {}
    gc.disable()  # as Engine.run runs
    for loaded in incentives.load_programs(checkout / "benchmarks" / "programs"):
        engine = incentives.Engine([loaded])
        # Engine.evaluate less normalising an API record; checkouts before the run rules moved call it _evaluate
        evaluate = engine.evaluate_facts if hasattr(engine, "evaluate_facts") else getattr(engine, "_evaluate")

        def one_round() -> float:
            start = time.perf_counter()
            for row in rows:
                evaluate(row.partner_id, row.period, row.facts, row.problems, claims.get(row.partner_id, ()))
            return time.perf_counter() - start

        one_round()  # warm-up: period plans, typed texts
        best[loaded.program.id] = min(one_round() for _ in range(rounds))
    return best


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ab_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="a checkout of the library (the baseline)")
    parser.add_argument("after", type=Path, help="another checkout (the change)")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--alternations", type=int, default=5)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child process: time this checkout
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(time_checkout(args.one, args.records, args.rounds)))
        return
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    for _ in range(args.alternations):
        for side in ("before", "after"):
            output = subprocess.run(
                [sys.executable, "-m", "benchmarks.ab", str(args.before), str(args.after), "--one",
                 str(getattr(args, side)), "--records", str(args.records), "--rounds", str(args.rounds)],
                cwd=HERE.parent, check=True, capture_output=True, text=True).stdout
            for program_id, seconds in json.loads(output).items():
                best[side][program_id] = min(seconds, best[side].get(program_id, seconds))
    print(f"{'program':<20} {'before s':>9} {'after s':>9} {'after/before':>13}")
    for program_id, before in best["before"].items():
        after = best["after"].get(program_id)
        ratio = f"{after / before:13.3f}" if after is not None else f"{'(absent)':>13}"
        print(f"{program_id:<20} {before:9.4f} {after or 0:9.4f} {ratio}")


if __name__ == "__main__":
    main()
