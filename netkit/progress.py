"""Exercise progress: what a student's checks said, kept in the student's own home.

    progress.record("masquerade", passed=False)    # Exercise.check does this
    progress.read("/home/ana/.netkit/progress.jsonl")   -> [Attempt, ...]
    progress.summary(attempts)                      -> {exercise: Status}

Nothing is written unless ``NETKIT_PROGRESS`` names the file: a class hub
(`netkit.classroom`) sets it for every student's server, so a person working
alone, and the test suite, leave no file behind. The file is JSON lines, one
attempt a line, appended; its folder is made mode 0700 and the file 0600, so
only its owner (and root, which the progress board runs as) can read it.

A student can of course write this file by hand: the board shows what the
student's own checks reported, for an instructor to see who is stuck where,
not a mark anyone should trust. Recording never gets in the way of a check:
a file that cannot be written is skipped.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "NETKIT_PROGRESS"
READ_LIMIT = 1 << 20
"""At most this many bytes, from the end of the file, are read (a runaway file cannot stall the board)."""


@dataclass(frozen=True)
class Attempt:
    """One check of one exercise: which, whether it passed, and when (seconds since the epoch)."""

    exercise: str
    passed: bool
    at: float


@dataclass(frozen=True)
class Status:
    """One exercise for one student: `state` is "passed", "tried" or "not started"."""

    state: str
    attempts: int = 0
    last: float | None = None        # the last check, passed or not
    passed_at: float | None = None   # the first check that passed


NOT_STARTED = Status("not started")


def path_from_env() -> Path | None:
    """The file `record` writes to, or None when no class asked for one."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser() if value else None


def record(exercise: str, passed: bool, *, path: str | os.PathLike | None = None) -> bool:
    """Append one attempt; returns whether it was written (never raises for a file problem)."""
    target = Path(path).expanduser() if path is not None else path_from_env()
    if target is None:
        return False
    line = json.dumps({"exercise": str(exercise), "passed": bool(passed), "at": round(time.time(), 3)}) + "\n"
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


def _parse(text: str) -> list[Attempt]:
    attempts = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
            attempts.append(Attempt(str(item["exercise"]), item["passed"] is True, float(item["at"])))
        except (ValueError, KeyError, TypeError):
            continue   # a torn or hand-edited line: skip it, keep the rest
    return attempts


def read(path: str | os.PathLike, *, owner: int | None = None) -> list[Attempt]:
    """Every attempt in the file at `path`, oldest first; [] if there is none.

    With `owner`, the file must be a regular file owned by that uid, not
    reached through a symbolic link at its last step (the board, as root,
    reads only what each student wrote themselves).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (owner is not None and info.st_uid != owner):
            return []
        start = max(0, info.st_size - READ_LIMIT)
        os.lseek(fd, start, os.SEEK_SET)
        data = os.read(fd, READ_LIMIT)
    finally:
        os.close(fd)
    text = data.decode(errors="replace")
    if start:
        text = text.split("\n", 1)[-1]   # the first line was cut in half
    return _parse(text)


def summary(attempts: list[Attempt]) -> dict[str, Status]:
    """Each exercise tried at least once, with its state, attempt count and times."""
    out: dict[str, Status] = {}
    for attempt in sorted(attempts, key=lambda a: a.at):
        now = out.get(attempt.exercise, NOT_STARTED)
        passed_at = now.passed_at if now.passed_at is not None else (attempt.at if attempt.passed else None)
        out[attempt.exercise] = Status("passed" if passed_at is not None else "tried",
                                       now.attempts + 1, attempt.at, passed_at)
    return out
