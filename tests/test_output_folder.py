"""The output folder (incentives.output.folder): lock, fresh folder, atomic switch, leftovers, umask.

Kill and concurrency cases really kill and really race processes:

- Kill at every step: the run goes on in a forked child with an audit hook
  (Python's own ``sys.addaudithook``) that counts the filesystem changes the
  run makes — ``open`` for writing, ``os.mkdir``, ``os.rename``/``os.replace``,
  ``os.remove``, ``os.rmdir``, ``os.chmod``, ``shutil.rmtree``, the folder
  exchange — and SIGKILLs the child (and any worker it started) just before the
  N-th one. A first run counts them; then every N is killed in turn and the
  folder must hold the old run or the new one, whole, and the next run must
  succeed and leave nothing behind.
- Races: two real ``python -m incentives run`` processes into one folder,
  released together; a live run in another process (or pid namespace) holds a
  folder while another run tries it.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

import incentives
from conftest import program_text
from incentives.cli import main
from incentives.inputs import read_facts
from incentives.output.folder import OUTPUT_FILES, OutputBusyError, OutputExistsError, OutputFolder, run_inputs

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs fork and SIGKILL")

PROGRAM = program_text("""
    tiers:
      qualify_on: revenue
      mode: incremental
      levels:
        - {name: Registered, from: 0,      rate: 1%}
        - {name: Silver,     from: 100000, rate: 2%}
        - {name: Gold,       from: 500000, rate: 3.5%}
    bonuses:
      - {id: new_logo, when: "new_logos >= 1", amount: "500 * new_logos"}
    """, id="partner_tier")
SMALL = 40  # records of the runs killed at every step: small, so that every step is cheap
RACE = 6000  # records of the racing runs: each holds the folder for a good part of a second


def _facts(path: Path, seed: int, records: int) -> Path:
    rng = random.Random(seed)
    rows = ["partner_id,period,revenue,new_logos"]
    rows += [f"P{index:05d},2027-Q1,{rng.randint(0, 900_000)}.{rng.randint(0, 99):02d},{rng.randint(0, 2)}"
             for index in range(records)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class World:
    root: Path
    programs: Path
    engine: incentives.Engine
    facts: dict[str, Path]  # "A", "B": small facts files; "raceA", "raceB": large ones
    runs: dict[str, incentives.PayoutRun]  # "A", "B"
    references: dict[str, Path]  # a folder written by each run (and by each race run)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("folder")
    programs = root / "programs"
    programs.mkdir()
    (programs / "partner_tier.yaml").write_text(PROGRAM, encoding="utf-8")
    engine = incentives.Engine(incentives.load_programs(programs))
    facts = {"A": _facts(root / "a.csv", 1, SMALL), "B": _facts(root / "b.csv", 2, SMALL),
             "raceA": _facts(root / "race_a.csv", 3, RACE), "raceB": _facts(root / "race_b.csv", 4, RACE)}
    runs, references = {}, {}
    for name, path in facts.items():
        run = engine.run(read_facts(path), facts_sha256=_sha256(path))
        references[name] = root / f"reference_{name}"
        incentives.write_run(run, references[name])
        if name in ("A", "B"):
            runs[name] = run
    return World(root, programs, engine, facts, runs, references)


def _files(folder: Path) -> dict[str, bytes]:
    """A run's files, run id and time blanked; anything else in the folder fails the test."""
    assert sorted(os.listdir(folder)) == sorted(OUTPUT_FILES), sorted(os.listdir(folder))
    files = {name: (folder / name).read_bytes() for name in OUTPUT_FILES}
    head = json.loads(files["run.json"])
    files["run.json"] = files["run.json"].replace(head["run_id"].encode(), b"RUN").replace(
        head["created_at"].encode(), b"TIME")
    return files


def _which(world: World, folder: Path, names: tuple[str, ...] = ("A", "B")) -> str | None:
    """The run whose complete files ``folder`` holds (None: no folder); a mix or a partial file fails."""
    if not os.path.lexists(folder):
        return None
    files = _files(folder)
    for name in names:
        if files == _files(world.references[name]):
            return name
    raise AssertionError(f"{folder} holds neither run's files: {({k: len(v) for k, v in files.items()})}")


def _beside(folder: Path) -> list[str]:
    """What the library keeps beside ``folder``: its lock file, and leftovers (which there should not be)."""
    if not folder.parent.exists():
        return []
    return sorted(name for name in os.listdir(folder.parent) if name.startswith(f".{folder.name}."))


def _place(world: World, run: str, folder: Path) -> None:
    """Make ``folder`` hold ``run``'s reference files and nothing of the library's beside it."""
    _clear(folder)
    shutil.copytree(world.references[run], folder)


def _clear(folder: Path) -> None:
    if os.path.lexists(folder):
        shutil.rmtree(folder)
    for name in _beside(folder):
        path = folder.parent / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _write_a(world: World, folder: Path, *, force: bool, exchange: bool) -> None:
    """Run A's reference files through OutputFolder directly (to choose the switch)."""
    run = world.runs["A"]
    inputs = run_inputs(((p.id, p.version, p.sha256) for p in run.programs), run.facts_sha256, run.claims_sha256)
    with OutputFolder(folder, inputs, force=force, exchange=exchange) as output:
        for name in OUTPUT_FILES:
            shutil.copyfile(world.references["A"] / name, output.path / name)
        output.commit()


# --- running in a child that is killed -----------------------------------------------------------

_CHANGES = frozenset({"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.truncate", "os.symlink",
                      "os.link", "shutil.rmtree", "shutil.move", "incentives.output.exchange"})
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@dataclass
class Outcome:
    killed: bool
    changes: int = 0  # filesystem changes the child made (when not killed)
    result: str = ""  # what the action returned, or the exception it raised
    stderr: str = ""


@dataclass(frozen=True)
class Fresh:
    """An action run by a fresh interpreter (``code``: a Python expression, its value the result): a run
    computes with polars, whose thread pool a process forked from pytest (which ran polars before) lacks,
    so that a forked child would wait for it forever."""

    code: str


# What the fresh interpreter runs: the same hook as a forked child's, then the action, then the report.
_FRESH = f"""
import os, signal, sys
code, report, kill_before = sys.argv[1], sys.argv[2], int(sys.argv[3])
changes, me = 0, os.getpid()
def hook(event, args):
    global changes
    if os.getpid() != me:
        return
    if event in {sorted(_CHANGES)!r} or (event == "open" and isinstance(args[2], int) and args[2] & {_WRITING}):
        changes += 1
        if changes == kill_before:
            os.killpg(0, signal.SIGKILL)
sys.addaudithook(hook)
try:
    result = repr(eval(code))
except BaseException as error:
    result = f"{{type(error).__name__}}: {{error}}"
sys.stderr.flush()
text = f"{{changes}}\\n{{result}}"
with open(report, "w", encoding="utf-8") as handle:
    handle.write(text)
"""


def _in_child(action: Callable[[], Any] | Fresh, *, kill_before: int | None = None,
              file_size_limit: int | None = None, stderr: Path | None = None) -> Outcome:
    """Run ``action`` in a forked child (a :class:`Fresh` one in a fresh interpreter the child becomes);
    ``kill_before``: SIGKILL it (and its workers) just before its kill_before-th filesystem change;
    ``file_size_limit``: RLIMIT_FSIZE, a disk that is full past that size."""
    report = Path(tempfile.mkdtemp()) / "report"  # a file, not a pipe: a worker the child forks may outlive it
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.setsid()  # its own process group: the kill takes its workers too, never pytest
            if file_size_limit is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
            if isinstance(action, Fresh):
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                os.dup2(os.open(stderr or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
                # -B: no bytecode written, so that every run makes the same filesystem changes
                os.execv(sys.executable, [sys.executable, "-B", "-c", _FRESH, action.code, str(report),
                                          str(kill_before or 0)])
            sys.stdout = open(os.devnull, "w")
            sys.stderr = open(stderr or os.devnull, "w")
            me, changes = os.getpid(), 0

            def hook(event: str, args: tuple) -> None:
                nonlocal changes
                if os.getpid() != me:  # a worker process: its spill files are not the commit's steps
                    return
                if event in _CHANGES or (event == "open" and isinstance(args[2], int) and args[2] & _WRITING):
                    changes += 1
                    if changes == kill_before:
                        os.killpg(0, signal.SIGKILL)

            sys.addaudithook(hook)
            try:
                result = repr(action())
            except BaseException as error:  # noqa: BLE001 - reported to the parent
                result = f"{type(error).__name__}: {error}"
            sys.stderr.flush()
            report.write_text(f"{changes}\n{result}", encoding="utf-8")
        except BaseException:  # noqa: BLE001
            report.write_text(f"0\nharness: {traceback.format_exc()}", encoding="utf-8")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    try:
        os.killpg(pid, signal.SIGKILL)  # workers the kill may have orphaned
    except ProcessLookupError:
        pass
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        shutil.rmtree(report.parent)
        return Outcome(True)
    changes, _, result = report.read_text(encoding="utf-8").partition("\n")
    shutil.rmtree(report.parent)
    assert not result.startswith("harness:"), result
    return Outcome(False, int(changes), result, stderr.read_text(encoding="utf-8") if stderr else "")


def _cli_run(world: World, out: Path) -> Fresh:
    """``incentives run`` of run A's inputs into ``out``, forced, in a fresh interpreter: its exit code."""
    args = ["run", "--programs", str(world.programs), "--facts", str(world.facts["A"]), "--out", str(out), "--force"]
    return Fresh(f"__import__('incentives.cli').cli.main({args!r})")


def _kill_at_every_step(world: World, folder: Path, action: Callable[[], Any] | Fresh, *, before: str | None,
                        after_kill: Callable[[str | None], None]) -> dict[str | None, int]:
    """Kill ``action`` before each of its filesystem changes in turn, ``folder`` holding run ``before``;
    check what the folder holds each time (``after_kill`` then runs the next run); returns how often the
    folder held each run."""
    def reset() -> None:
        _clear(folder)
        if before is not None:
            _place(world, before, folder)

    reset()
    full = _in_child(action)
    assert not full.killed and "Error" not in full.result, full.result
    assert _which(world, folder) == "A"
    assert full.changes > 5, full.changes  # the hook sees the run's steps
    seen: dict[str | None, int] = {}
    for step in range(1, full.changes + 1):
        reset()
        assert _in_child(action, kill_before=step).killed, step
        state = _which(world, folder)
        seen[state] = seen.get(state, 0) + 1
        after_kill(state)
        assert _which(world, folder) == "A", step
        assert _beside(folder) == [f".{folder.name}.lock"], step  # the next run left nothing behind
    return seen


@pytest.mark.parametrize("how", ["cli", "run_to", "write"])
def test_a_rerun_killed_at_any_step_leaves_the_old_run_or_the_new_one_whole(world: World, tmp_path: Path,
                                                                           how: str) -> None:
    out = tmp_path / "out"
    actions: dict[str, Callable[[], Any] | Fresh] = {
        "cli": _cli_run(world, out),
        "run_to": Fresh(f"__import__('incentives').Engine({str(world.programs)!r}).run_to("
                        f"{str(out)!r}, {str(world.facts['A'])!r}, facts_sha256={_sha256(world.facts['A'])!r}, "
                        f"force=True).results"),
        "write": lambda: incentives.write_run(world.runs["A"], out, force=True),
    }
    action = actions[how]

    def next_run(state: str | None) -> None:
        assert state in ("A", "B")  # never a mix, never nothing: the old run stays until the new one replaces it
        incentives.write_run(world.runs["A"], out, force=True)  # every way of writing shares the folder's code: the quickest

    seen = _kill_at_every_step(world, out, action, before="B", after_kill=next_run)
    assert seen.get("A") and seen.get("B"), seen  # killed before the switch and after it


def test_a_first_run_killed_at_any_step_leaves_no_folder_or_the_whole_run(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def next_run(state: str | None) -> None:
        assert state in (None, "A")
        incentives.write_run(world.runs["A"], out)

    seen = _kill_at_every_step(world, out, lambda: incentives.write_run(world.runs["A"], out), before=None, after_kill=next_run)
    assert seen.get(None) and seen.get("A"), seen  # killed before renaming the fresh folder into place, and after


def test_the_switch_without_exchange_killed_at_any_step_is_finished_by_the_next_run(world: World,
                                                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"

    def next_run(state: str | None) -> None:
        if state is None:  # killed between the two renames: the old run is beside, the new one complete
            assert any(name.endswith(".incentives-old") for name in _beside(out)), _beside(out)
            _write_a(world, out, force=False, exchange=False)  # not forced: the folder is run A's again first
        else:
            assert state in ("A", "B")
            _write_a(world, out, force=True, exchange=False)

    seen = _kill_at_every_step(world, out, lambda: _write_a(world, out, force=True, exchange=False), before="B",
                               after_kill=next_run)
    assert seen.get(None) and seen.get("A") and seen.get("B"), seen


def test_a_switch_left_half_done_puts_the_old_run_back_when_the_new_one_is_incomplete(world: World,
                                                                                      tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(world.references["B"], tmp_path / ".out.0123456789abcdef.incentives-old")
    partial = tmp_path / ".out.0123456789abcdef.incentives-new"
    partial.mkdir()
    shutil.copyfile(world.references["A"] / "payouts.csv", partial / "payouts.csv")
    with pytest.raises(OutputExistsError, match="holds the output of a different run"):
        incentives.write_run(world.runs["A"], out)  # the folder is run B's again, which run A does not replace unforced
    assert _which(world, out) == "B"
    assert _beside(out) == [".out.lock"]


# --- full disk, failures while writing ----------------------------------------------------------


@pytest.mark.parametrize("how", ["cli", "write"])
def test_a_full_disk_leaves_the_previous_run_as_it_was(world: World, tmp_path: Path, how: str) -> None:
    out = tmp_path / "out"
    _place(world, "B", out)
    before = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    assert len(before["payouts.csv"]) > 1024
    action: Callable[[], Any] | Fresh
    if how == "cli":
        action = _cli_run(world, out)
    else:
        action = lambda: incentives.write_run(world.runs["A"], out, force=True)  # noqa: E731
    failed = _in_child(action, file_size_limit=1024, stderr=tmp_path / "stderr")
    if how == "cli":
        assert (failed.result, failed.stderr) == ("1", f"incentives run: cannot write to {out}: File too large\n")
    else:
        assert failed.result.startswith("OSError: [Errno 27] File too large"), failed.result
    assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == before
    assert sorted(os.listdir(out)) == sorted(OUTPUT_FILES)
    assert _beside(out) == [".out.lock"]
    incentives.write_run(world.runs["A"], out, force=True)  # the next run, with room
    assert _which(world, out) == "A" and _beside(out) == [".out.lock"]


def test_text_that_cannot_be_written_leaves_the_previous_run_as_it_was(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _place(world, "B", out)
    before = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    bad = world.runs["A"].model_copy(deep=True)
    bad.results[3].lines[0].description = "tier \ud800"  # a lone surrogate: not UTF-8
    with pytest.raises(UnicodeEncodeError):
        incentives.write_run(bad, out, force=True)
    assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == before
    assert sorted(os.listdir(out)) == sorted(OUTPUT_FILES)
    assert _beside(out) == [".out.lock"]


# --- concurrent runs --------------------------------------------------------------------------------

WAITER = """
import os, sys, time
from incentives.cli import main
ready, go = sys.argv[1:3]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0005)
sys.exit(main(sys.argv[3:]))
"""


def test_two_runs_into_one_empty_folder_at_once_exclude_each_other(world: World, tmp_path: Path) -> None:
    busy = 0
    for pair in range(5):  # until a pair overlaps (the first, nearly always)
        out, go = tmp_path / f"out{pair}", tmp_path / f"go{pair}"
        out.mkdir()  # empty: both runs pass every other check
        processes = []
        for run in ("raceA", "raceB"):
            ready = tmp_path / f"ready_{run}{pair}"
            processes.append(subprocess.Popen(
                [sys.executable, "-c", WAITER, str(ready), str(go), "run", "--programs", str(world.programs),
                 "--facts", str(world.facts[run]), "--out", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready_{run}{pair}").exists() for run in ("raceA", "raceB")):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        go.touch()  # released together
        ended = []
        for process in processes:
            _, message = process.communicate(timeout=120)
            ended.append((process.returncode, message))
        codes = sorted(code for code, _ in ended)
        assert codes == [0, 1], ended
        winner = ("raceA", "raceB")[[code for code, _ in ended].index(0)]
        loser_message = next(message for code, message in ended if code == 1)
        assert _which(world, out, ("raceA", "raceB")) == winner, ended  # its run.json describes its CSVs
        assert _beside(out) == [f".{out.name}.lock"], ended
        if "is being written by another run" in loser_message:
            busy += 1
            # who holds the lock is written into the lock file just after locking: a loser arriving in
            # between is told without it (the message's other parts are the same)
            assert loser_message.startswith(f"incentives run: {out} is being written by another run"), ended
            assert loser_message.endswith(f"(the run holds the lock on {tmp_path / f'.{out.name}.lock'})\n"), ended
            break
        # the loser started after the winner had finished: the folder then held another run
        assert "holds the output of a different run" in loser_message, ended
    assert busy, "the runs never overlapped"


HOLDER = """
import sys
from incentives.output.folder import OutputFolder
with OutputFolder(sys.argv[1], ((), None, None), force=True) as output:
    (output.path / "payouts.csv").write_text("being written\\n")
    print(output.path, flush=True)
    sys.stdin.read()  # until the test ends it, or kills it
"""


def _live_run(folder: Path, namespace: bool) -> tuple[subprocess.Popen, Path]:
    """A run writing ``folder`` in another process (in another pid namespace: another container)."""
    command = [sys.executable, "-c", HOLDER, str(folder)]
    if namespace:
        if shutil.which("unshare") is None or subprocess.run(["unshare", "--pid", "--fork", "true"],
                                                             capture_output=True).returncode:
            pytest.skip("cannot make a pid namespace here (unshare)")
        command = ["unshare", "--pid", "--fork", *command]
    holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    assert holder.stdout is not None
    staging = Path(holder.stdout.readline().strip())
    assert staging.is_dir(), staging
    return holder, staging


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process and its children (unshare's child runs the holder) and wait until they are gone."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    pids = [process.pid, *map(int, children.read_text().split())] if children.exists() else [process.pid]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in pids[1:]):
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("namespace", [False, True], ids=["same pid namespace", "other pid namespace"])
def test_a_live_runs_folder_is_left_alone_and_a_killed_runs_leftovers_are_removed(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], namespace: bool) -> None:
    out = tmp_path / "out"
    _place(world, "B", out)
    before = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    holder, staging = _live_run(out, namespace)
    try:
        code = main(["run", "--programs", str(world.programs), "--facts", str(world.facts["A"]), "--out", str(out),
                     "--force"])
        assert code == 1
        message = capsys.readouterr().err
        assert message.startswith(f"incentives run: {out} is being written by another run (process ")
        assert f" on {socket.gethostname()}, started " in message
        assert message.endswith(f"; wait for it to finish or choose another folder (the run holds the lock on "
                                f"{tmp_path / '.out.lock'})\n")
        with pytest.raises(OutputBusyError):
            incentives.write_run(world.runs["A"], out, force=True)
        assert (staging / "payouts.csv").read_text() == "being written\n"  # its fresh folder is left alone
        assert {name: (out / name).read_bytes() for name in OUTPUT_FILES} == before
    finally:
        _kill_group(holder)  # killed: its fresh folder stays behind
    assert staging.exists()
    incentives.write_run(world.runs["A"], out, force=True)
    assert _which(world, out) == "A" and _beside(out) == [".out.lock"]


def test_a_worker_process_does_not_keep_the_lock_of_a_killed_run(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    worker_pid = tmp_path / "worker.pid"

    def killed_with_a_worker_alive() -> None:
        with OutputFolder(out, ((), None, None), force=True):
            worker = os.fork()
            if worker == 0:  # a worker process, as multiprocessing forks them: outlives the run
                os.setpgid(0, 0)
                time.sleep(30)
                os._exit(0)
            os.setpgid(worker, worker)  # out of the run's process group, which the harness kills
            worker_pid.write_text(str(worker))
            os.kill(os.getpid(), signal.SIGKILL)

    assert _in_child(killed_with_a_worker_alive).killed
    worker = int(worker_pid.read_text())
    try:
        os.kill(worker, 0)  # still alive (its process group was not killed)
        incentives.write_run(world.runs["A"], out)  # not busy
    finally:
        os.kill(worker, signal.SIGKILL)
    assert _which(world, out) == "A"


# --- what a folder may hold ---------------------------------------------------------------------


def test_a_folder_holding_other_files_is_refused_even_when_forced(world: World, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    _place(world, "B", out)
    (out / "notes.txt").write_text("kept\n", encoding="utf-8")
    (out / ".keep").write_text("", encoding="utf-8")
    (out / "archive").mkdir()
    (out / "archive" / "2026-Q4.csv").write_text("old\n", encoding="utf-8")
    before = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    expected = (f"{out} holds files that are not a run's output: .keep, archive/, notes.txt; a run replaces its "
                "folder whole, so move them away or choose another folder")
    for force in (False, True):
        with pytest.raises(OutputExistsError) as refused:
            incentives.write_run(world.runs["A"], out, force=force)
        assert str(refused.value) == expected
        with pytest.raises(OutputExistsError) as refused:
            world.engine.run_to(out, world.facts["A"], force=force)
        assert str(refused.value) == expected
    code = main(["run", "--programs", str(world.programs), "--facts", str(world.facts["A"]), "--out", str(out),
                 "--force"])
    assert (code, capsys.readouterr().err) == (1, f"incentives run: {expected}\n")
    assert {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    assert _beside(out) == [".out.lock"]


def test_a_file_where_the_folder_should_be_is_refused(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("a file\n", encoding="utf-8")
    with pytest.raises(OutputExistsError, match=f"^{out} is a file, not a folder; choose another output folder$"):
        incentives.write_run(world.runs["A"], out, force=True)
    assert out.read_text(encoding="utf-8") == "a file\n"


def test_leftovers_of_killed_runs_are_removed_and_other_folders_are_not_touched(world: World,
                                                                                tmp_path: Path) -> None:
    out = tmp_path / "out"
    _place(world, "B", out)
    leftovers = [tmp_path / ".out.00112233445566ff.incentives-new", tmp_path / ".out.8899aabbccddeeff.incentives-old"]
    for path in leftovers:
        path.mkdir()
        (path / "payouts.csv").write_text("partial\n", encoding="utf-8")
    # what older versions left inside the folder: a temporary file, a spill folder (named by process ids)
    (out / ".lines.csv.4242.x1y2z3.tmp").write_text("partial\n", encoding="utf-8")
    (out / ".incentives-spill-4242-q9").mkdir()
    (out / ".incentives-spill-4242-q9" / "w0.pay").write_bytes(b"spilled")
    # other folders' files: another output folder whose name starts alike, a file of the user's
    others = [tmp_path / ".out.x.00112233445566ff.incentives-new", tmp_path / ".out2.00112233445566ff.incentives-new",
              tmp_path / ".out.notes"]
    for path in others:
        path.write_text("not ours\n", encoding="utf-8")
    incentives.write_run(world.runs["A"], out, force=True)
    assert _which(world, out) == "A"
    assert not any(os.path.lexists(path) for path in leftovers)
    assert all(path.read_text(encoding="utf-8") == "not ours\n" for path in others)
    assert _beside(out) == [".out.lock", ".out.notes", ".out.x.00112233445566ff.incentives-new"]


# --- permissions, symbolic links ------------------------------------------------------------------


@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
@pytest.mark.parametrize("how", ["write", "run_to", "run_to, records in any order"])
def test_output_files_respect_the_umask(world: World, tmp_path: Path, umask: int, file_mode: int,
                                        folder_mode: int, how: str) -> None:
    out = tmp_path / "deep" / "out"
    records = list(read_facts(world.facts["A"]))
    random.Random(7).shuffle(records)
    previous = os.umask(umask)
    try:
        if how == "write":
            incentives.write_run(world.runs["A"], out)
        elif how == "run_to":
            world.engine.run_to(out, world.facts["A"])
        else:
            world.engine.run_to(out, iter(records))
    finally:
        os.umask(previous)
    assert {name: stat.S_IMODE((out / name).stat().st_mode) for name in OUTPUT_FILES} == dict.fromkeys(
        OUTPUT_FILES, file_mode)
    assert stat.S_IMODE(out.stat().st_mode) == folder_mode
    assert stat.S_IMODE(out.parent.stat().st_mode) == folder_mode  # a folder the run made on the way


def test_a_replaced_folder_keeps_its_permissions(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _place(world, "B", out)
    out.chmod(0o750)
    incentives.write_run(world.runs["A"], out, force=True)
    assert _which(world, out) == "A"
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


def test_a_folder_given_as_a_symbolic_link_is_switched_where_it_points(world: World, tmp_path: Path) -> None:
    real = tmp_path / "shares" / "payouts-2027-Q1"
    _place(world, "B", real)
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)
    incentives.write_run(world.runs["A"], link, force=True)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert _which(world, real) == "A"
    assert _beside(real) == [".payouts-2027-Q1.lock"] and _beside(link) == []
