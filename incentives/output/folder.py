"""A run's output folder: locked while a run writes it, written fresh beside it, switched in whole.

Both ways of writing a run (:func:`~incentives.output.files.write_run`
and :meth:`Engine.run_to <incentives.engine.Engine.run_to>`) go through
:class:`OutputFolder`, so a reader of ``out/`` sees either the previous run's
files or the new run's — never a mix, never half a file — however a run
ends (killed, disk full, an exception while rendering):

1. **Lock.** ``<parent>/.<name>.lock`` is held with ``flock`` from before the
   folder is checked until the new run is in place. A second run into the same
   folder fails at once with :class:`OutputBusyError`. The kernel releases the
   lock when its process ends, however it ends, so whether a writer is alive
   is never guessed from a process id (which means nothing in another
   container's pid namespace). The lock file is never removed: a run that
   removed it could let a third run lock a new file under the same name while
   a second still holds the old one. (``flock`` excludes runs on one machine
   and across containers sharing a local filesystem; over NFS it depends on
   the server's lock support.)
2. **Check.** The folder may hold a run's files only (``payouts.csv``,
   ``lines.csv``, ``results.jsonl``, ``run.json``): the switch replaces it
   whole, so anything else in it is refused, even when forced, rather than
   deleted. A folder holding another run (other programs, facts or claims, or
   other results) and files that no ``run.json`` claims are only replaced when
   forced. A folder written by a version before ``results.jsonl`` (three files,
   the results inside ``run.json``) is a run's folder too, checked the same way.
3. **Write fresh.** The new run is written into a new hidden sibling,
   ``<parent>/.<name>.<token>.incentives-new``, made with the umask applied
   (``mkdir`` 0o777, files opened 0o666), then flushed to disk.
4. **Switch.** The new folder and the old one swap names in one
   ``renameat2(RENAME_EXCHANGE)`` (Linux), and the old run is removed. Where
   the system cannot exchange, the old folder is renamed aside
   (``.<name>.<token>.incentives-old``) and the new one into place: for an
   instant there is no folder, never a mixed one. A run killed between those
   two renames is finished by the next run into the folder: the new run
   (complete, it was on disk before the first rename) takes the name; were it
   missing, the old one is put back.
5. **Leftovers.** Under the lock no other run can be writing this folder, so
   every ``-new`` / ``-old`` sibling is a killed run's and is removed, as are
   the hidden temporaries that older versions left inside the folder.

A folder given as a symbolic link is switched where the link points; the link stays.
"""

from __future__ import annotations

import ctypes
import errno
import filecmp
import functools
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..errors import IncentivesError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: Windows locks a byte of the file instead
    fcntl = None  # type: ignore[assignment]
    import msvcrt

__all__ = ["OUTPUT_FILES", "RESULTS_FILE", "OutputBusyError", "OutputExistsError", "OutputFolder", "run_inputs"]

RESULTS_FILE = "results.jsonl"
OUTPUT_FILES = ("payouts.csv", "lines.csv", RESULTS_FILE, "run.json")
#: The files of a run's transactions that were rejected (a run that reads measures, when some are):
#: ``rejected_transactions.csv``, or one per measures file, ``rejected_transactions_<measures id>.csv``.
REJECTED_TRANSACTIONS = re.compile(r"rejected_transactions(?:_[A-Za-z0-9_.-]+)?\.csv")
NEW_SUFFIX, OLD_SUFFIX = ".incentives-new", ".incentives-old"
# What older versions left inside an output folder when killed: temporary files and spill folders.
_OLD_TEMPORARY = re.compile(r"\.(?:payouts\.csv|lines\.csv|run\.json)\.\d+\..*\.tmp|\.incentives-spill-\d+-.*")
_SCRATCH = ".scratch"
# Before results.jsonl, run.json held the results between these two keys (at indent 1).
_RESULTS_START, _RESULTS_END = b'\n "results": [', b'\n "totals": '
_OLD_RESULT_END = b"\n  }"  # in that array a closing brace at indent 2 ends a result
_HOLDER_WAIT = 0.5  # seconds a run that found the folder busy waits to learn who holds it
_HEAD_LIMIT = 64 << 20  # a run.json not read whole, nor its results started, within this many bytes is not ours


class OutputExistsError(IncentivesError):
    """The output folder holds another run's files (or files that are not a run's) and cannot be written."""


class OutputBusyError(OutputExistsError):
    """Another run is writing the output folder right now."""


def run_inputs(programs: Iterable[tuple[str, int | None, str]], facts_sha256: str | None,
               claims_sha256: str | None, measures: Iterable[tuple[str, str, str | None]] = ()) -> tuple:
    """What identifies a run's inputs: its programs (id, version, sha256), the facts and claims files' sha256,
    and the measures files it read (id, sha256, their transaction file's sha256: :func:`measures_inputs`)."""
    return tuple(tuple(program) for program in programs), facts_sha256, claims_sha256, \
        tuple(tuple(measures_file) for measures_file in measures)


def measures_inputs(measures: Iterable[Any]) -> list[tuple[str, str, str | None]]:
    """The measures files of a run (``MeasuresInfo``s, or run.json's objects of them) as :func:`run_inputs`
    takes them."""
    return [(info["id"], info["sha256"], info["source_sha256"]) if isinstance(info, dict) else
            (info.id, info.sha256, info.source_sha256) for info in measures]


class OutputFolder:
    """The output folder of one run, from the lock to the switch.

    ``with OutputFolder(folder, inputs, force=force) as output:`` takes the lock,
    tidies what killed runs left, checks the folder and makes the fresh folder
    :attr:`path`; write the run's files (:data:`OUTPUT_FILES`) into it
    (temporary files into :meth:`scratch`), then call :meth:`commit`. Leaving
    the block without committing (an exception) removes the fresh folder and
    leaves the output folder as it was. ``inputs`` come from :func:`run_inputs`.
    ``exchange=False`` switches by two renames, as on systems without an
    exchange (for tests of that path).
    """

    def __init__(self, folder: str | os.PathLike[str], inputs: tuple, *, force: bool = False,
                 exchange: bool = True):
        self.shown = os.fspath(folder)
        self.target = Path(os.path.realpath(folder))  # a symbolic link is switched where it points
        if not self.target.name:
            raise OutputExistsError(f"{self.shown} cannot be an output folder: the run replaces the folder "
                                    "whole, so it needs a parent folder")
        self.parent = self.target.parent
        self.inputs = inputs
        self.force = force
        self.exchange = exchange
        token = secrets.token_hex(8)
        self.path = self.parent / f".{self.target.name}.{token}{NEW_SUFFIX}"
        self.old = self.parent / f".{self.target.name}.{token}{OLD_SUFFIX}"
        self.lock = self.parent / f".{self.target.name}.lock"
        self.previous_run: Path | None = None  # a run's folder whose results the new run's must match
        self.committed = False
        self.descriptor: int | None = None

    def __enter__(self) -> "OutputFolder":
        self.parent.mkdir(parents=True, exist_ok=True)
        self.descriptor = _lock(self.lock, self.shown)
        try:
            self._tidy()
            self._check()
            os.mkdir(self.path, 0o777)  # not mkdtemp (0o700): the umask decides who may read the run
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self.committed:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self._unlock()

    def scratch(self) -> Path:
        """A hidden folder inside the fresh one for temporary files; removed before the switch."""
        scratch = self.path / _SCRATCH
        scratch.mkdir(mode=0o777, exist_ok=True)
        return scratch

    def commit(self) -> None:
        """Put the fresh folder in place of the output folder, atomically."""
        shutil.rmtree(self.path / _SCRATCH, ignore_errors=True)
        if self.previous_run is not None and not _same_results(self.previous_run, self.path):
            raise self._different_run()
        for name in os.listdir(self.path):
            _fsync(self.path / name)
        _fsync_folder(self.path)
        target = self.target
        if not os.path.lexists(target):
            os.rename(self.path, target)
            self.committed = True
            _fsync_folder(self.parent)
            return
        os.chmod(self.path, stat.S_IMODE(os.stat(target).st_mode))  # the folder keeps its permissions
        if self.exchange and _exchange(self.path, target):
            replaced = self.path  # the fresh folder's name now holds the previous run
        else:
            os.rename(target, self.old)
            try:
                os.rename(self.path, target)
            except BaseException:
                os.rename(self.old, target)  # the previous run goes back
                raise
            replaced = self.old
        self.committed = True
        _fsync_folder(self.parent)
        shutil.rmtree(replaced, ignore_errors=True)  # the run is in place: a leftover goes with the next run

    # -- under the lock ----------------------------------------------------------------------

    def _tidy(self) -> None:
        """Finish a switch a killed run left half done, and remove what killed runs left behind."""
        sibling = re.compile(re.escape(f".{self.target.name}.") + r"[0-9a-f]{16}"
                             + f"({re.escape(NEW_SUFFIX)}|{re.escape(OLD_SUFFIX)})")
        leftovers: dict[str, dict[str, Path]] = {}
        for entry in os.scandir(self.parent):
            found = sibling.fullmatch(entry.name)
            if found is not None:
                token = entry.name[len(self.target.name) + 2:found.start(1)]
                leftovers.setdefault(token, {})[found.group(1)] = Path(entry.path)
        if not os.path.lexists(self.target):
            for kinds in leftovers.values():
                if OLD_SUFFIX not in kinds:
                    continue
                new = kinds.get(NEW_SUFFIX)
                # killed between the two renames of a switch: the new run was complete before the first
                if new is not None and (new / "run.json").is_file():
                    os.rename(kinds.pop(NEW_SUFFIX), self.target)
                else:
                    os.rename(kinds.pop(OLD_SUFFIX), self.target)
                break
        for kinds in leftovers.values():
            for path in kinds.values():
                _remove(path)
        if self.target.is_dir():
            for entry in os.scandir(self.target):
                if _OLD_TEMPORARY.fullmatch(entry.name):
                    _remove(Path(entry.path))

    def _check(self) -> None:
        """The guard: what may be replaced, and when only if forced."""
        target = self.target
        if not os.path.lexists(target):
            return
        if not target.is_dir():
            raise OutputExistsError(f"{self.shown} is a file, not a folder; choose another output folder")
        names = set()
        foreign = []
        for entry in os.scandir(target):
            if (entry.name in OUTPUT_FILES or REJECTED_TRANSACTIONS.fullmatch(entry.name)) and \
                    entry.is_file(follow_symlinks=False):
                names.add(entry.name)
            else:
                foreign.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
        if foreign:
            foreign.sort()
            listed = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
            raise OutputExistsError(f"{self.shown} holds files that are not a run's output: {listed}; a run "
                                    "replaces its folder whole, so move them away or choose another folder")
        if self.force:
            return
        if "run.json" not in names:
            found = [name for name in OUTPUT_FILES if name in names]
            if found:
                listed = " and ".join([", ".join(found[:-1]), found[-1]] if len(found) > 1 else found)
                raise OutputExistsError(f"{self.shown} holds {listed} but no run.json (an unfinished "
                                        "run, or files of something else); choose another folder or force the "
                                        "overwrite (--force)")
            return
        if _recorded_inputs(target / "run.json") != self.inputs:
            raise self._different_run()
        self.previous_run = target

    def _different_run(self) -> OutputExistsError:
        return OutputExistsError(f"{self.shown} holds the output of a different run; choose another folder "
                                 "or force the overwrite (--force)")

    def _unlock(self) -> None:
        if self.descriptor is not None:
            _release(self.descriptor)
            self.descriptor = None


# --- the lock ----------------------------------------------------------------------------------

# Lock descriptors held by this process. A forked child (a worker process) closes its copies, so
# that the lock lives exactly as long as the run's own process: flock belongs to the open file,
# which a child's copy would otherwise keep locked after the run was killed.
_HELD: set[int] = set()
_HELD_GUARD = threading.Lock()


def _close_held_in_child() -> None:
    for descriptor in _HELD:
        try:
            os.close(descriptor)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


def _lock(path: Path, shown: str) -> int:
    """Lock ``path`` (made if missing) for this run, or raise :class:`OutputBusyError` at once."""
    # not through a symbolic link: in a shared folder one could point the lock (truncated below) at any file
    no_follow = getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | no_follow, 0o666)
        writable = True
    except PermissionError:  # a colleague's lock file: locking needs no write access
        descriptor = os.open(path, os.O_RDONLY | no_follow)
        writable = False
    if not _try_lock(descriptor):
        os.close(descriptor)
        holder = _holder(path)
        raise OutputBusyError(f"{shown} is being written by another run{holder}; wait for it to finish or "
                              f"choose another folder (the run holds the lock on {path})")
    with _HELD_GUARD:
        _HELD.add(descriptor)
    if writable:  # who holds it, for the message above: information only, the lock itself decides
        record = (json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n").encode()
        try:
            os.pwrite(descriptor, record, 0)
            os.ftruncate(descriptor, len(record))
        except OSError:
            pass  # a full disk: the lock still holds, only the information is missing
    return descriptor


def _try_lock(descriptor: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    try:  # pragma: no cover - not POSIX
        msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


def _release(descriptor: int) -> None:
    with _HELD_GUARD:
        _HELD.discard(descriptor)
    try:
        os.ftruncate(descriptor, 0)  # nobody holds it now: no holder to name (a killed run's stays till the next)
    except OSError:
        pass  # opened read-only: there was nothing of ours to clear
    os.close(descriptor)  # releases the lock


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder writes it just after locking: waited for a moment, since a run
    that found the lock held may have come just in between (a holder that cannot write never does)."""
    deadline = time.monotonic() + _HOLDER_WAIT
    while True:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            return f" (process {int(record['pid'])} on {record['host']}, started {record['started']})"
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.01)


# --- the switch --------------------------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """Linux ``renameat2`` (glibc 2.28 and later), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(first: Path, second: Path) -> bool:
    """Swap the names of two folders in one step; False where the system or filesystem cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    # A ctypes call raises no audit event of its own; this one says what is about to change on disk.
    sys.audit("incentives.output.exchange", str(first), str(second))
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(path: Path) -> None:
    """Make a folder's entries durable (POSIX; elsewhere a folder cannot be opened for this)."""
    if os.name != "posix":  # pragma: no cover
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):  # a filesystem that cannot sync folders
            raise
    finally:
        os.close(descriptor)


# --- what a run.json says ----------------------------------------------------------------------

_UNREADABLE = ("an unreadable run.json",)  # inputs no run has


def _recorded_inputs(path: Path) -> tuple:
    """The inputs a run.json names (:func:`run_inputs`): read whole, or, from an older version that held the
    results, read from its head, the part before its results."""
    try:
        with open(path, "rb") as handle:
            head = b""
            at = -1
            while at < 0 and len(head) < _HEAD_LIMIT:
                chunk = handle.read(1 << 20)
                if not chunk:
                    break
                head += chunk
                at = head.find(_RESULTS_START, max(0, len(head) - len(chunk) - len(_RESULTS_START)))
        text = head[:at].rstrip().rstrip(b",") + b"\n}" if at >= 0 else head
        recorded = json.loads(text)
        return run_inputs(((p["id"], p["version"], p["sha256"]) for p in recorded.get("programs", [])),
                          recorded.get("facts_sha256"), recorded.get("claims_sha256"),
                          measures_inputs(recorded.get("measures", [])))
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return _UNREADABLE


def _results_section(path: Path) -> Iterator[bytes]:
    """The bytes of an old run.json (results inside) between its "results" key and its "totals" key, in chunks."""
    with open(path, "rb") as handle:
        buffer = b""
        started = False
        while True:
            chunk = handle.read(1 << 22)
            buffer += chunk
            if not started:
                at = buffer.find(_RESULTS_START)
                if at < 0:
                    if not chunk:
                        return
                    buffer = buffer[-len(_RESULTS_START):]
                    continue
                buffer = buffer[at + len(_RESULTS_START):]
                started = True
            end = buffer.find(_RESULTS_END)
            if end >= 0:
                yield buffer[:end]
                return
            if not chunk:
                yield buffer
                return
            keep = len(_RESULTS_END)
            yield buffer[:-keep]
            buffer = buffer[-keep:]


def _old_results(path: Path) -> Iterator[Any]:
    """Each result of an old run.json (results inside), parsed: the array's items end at a closing brace
    at indent 2 (a JSON string never holds a raw line break)."""
    pending = b""
    for chunk in _results_section(path):
        pending += chunk
        start = 0
        while (end := pending.find(_OLD_RESULT_END, start)) >= 0:
            end += len(_OLD_RESULT_END)
            yield json.loads(pending[start:end].lstrip(b",\n "))
            start = end
        pending = pending[start:]


def _same_results(previous: Path, current: Path) -> bool:
    """Whether two run folders hold the same results: their results.jsonl files, byte for byte (both are
    written alike); a folder of an older version (results inside run.json, indented) result by result, parsed."""
    new = current / RESULTS_FILE
    if (previous / RESULTS_FILE).is_file():
        return filecmp.cmp(previous / RESULTS_FILE, new, shallow=False)
    with open(new, "rb") as lines:
        for old in _old_results(previous / "run.json"):
            line = lines.readline()
            if not line or json.loads(line) != old:
                return False
        return not lines.readline()
