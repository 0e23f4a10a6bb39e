"""A memory, process count and CPU share per student's server, enforced by the kernel's cgroups.

JupyterHub's LocalProcessSpawner takes ``mem_limit`` but enforces nothing
(only the spawners that run a container or a systemd unit do). Here each
student's server is started inside a cgroup of its own, so the server, its
kernels and the labs they start (every descendant stays in the cgroup) share
one limit, and the kernel's OOM killer acts inside that cgroup only.

    group = Group.create("ana", "netkit-8000", memory=1 << 30, pids=512, cpu=1.0)
    group.join()          # in the server's process, before it drops to the student
    group.pids()          # who is in it
    group.end()           # SIGKILL whatever is left, by pid, then remove the cgroup

CPU: every student's group gets the same share (v1 ``cpu.shares`` 1024, v2
``cpu.weight`` 100), so when the cores are busy the scheduler splits them
between students, not between processes: sixteen busy loops of one student
weigh as much as another student's one probe. ``cpu`` (cores, e.g. 1.5)
also caps a group (v1 ``cpu.cfs_quota_us``, v2 ``cpu.max``), even on an
idle machine.

Processes: `pids_per_student` picks ``pids.max`` from the kernel's
``pid_max`` and the class's size, so that the whole class cannot take every
pid of the machine (the limit counts threads too).

Both layouts are handled:
- cgroup v1 (a hybrid layout, as on this project's machines): a directory
  under the memory, pids and cpu hierarchies, below the cgroup the hub itself
  runs in; ``memory.limit_in_bytes``, ``pids.max``, ``cpu.shares``;
- cgroup v2 (Debian 12 and Ubuntu 22.04+ by default): a directory below the
  root of the unified hierarchy, with the memory, pids and cpu controllers
  enabled for it; ``memory.max``, ``pids.max``, ``cpu.weight``.
Where neither offers a memory controller, `available()` says why and the
hub says that memory is not limited.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
PIDS_MOST, PIDS_LEAST = 1024, 256
PIDS_SHARE = 0.75
"""The class may hold at most this share of the kernel's pid_max; the rest stays the machine's."""
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _own_path(controller: str) -> str:
    """The cgroup this process is in for a v1 `controller` ("" for v2's line)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return "/"


def layout() -> str | None:
    """"v1" (a memory hierarchy of its own), "v2" (memory in the unified hierarchy), or None."""
    if (ROOT / "memory" / "memory.limit_in_bytes").exists():
        return "v1"
    controllers = ROOT / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return "v2"
    return None


def available() -> str | None:
    """None if per-server limits can be enforced here, else why not (for the hub's log)."""
    if os.geteuid() != 0:
        return "the hub does not run as root, so it cannot make cgroups"
    if layout() is None:
        return ("this machine has no cgroup memory controller the hub can use (neither a v1 memory "
                "hierarchy nor memory in the v2 cgroup.controllers)")
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as out:
        out.write(value)


@dataclass(frozen=True)
class Group:
    """The cgroup directories (one per v1 hierarchy, or one v2 directory) of one student's server."""

    dirs: tuple[Path, ...]

    @classmethod
    def parent_dirs(cls, class_name: str) -> tuple[Path, ...]:
        if not NAME_RE.match(class_name):
            raise ValueError(f"{class_name!r} is not a cgroup name")
        if layout() == "v1":
            found = []
            for controller in CONTROLLERS:
                base = ROOT / controller
                if base.is_dir():
                    found.append(base / _own_path(controller).lstrip("/") / class_name)
            return tuple(found)
        return (ROOT / class_name,)

    @classmethod
    def create(cls, user: str, class_name: str, *, memory: int | None, pids: int | None = None,
               cpu: float | None = None) -> "Group":
        """Make (or reuse) the student's cgroup and set its limits (`cpu`: at most that many cores)."""
        if not NAME_RE.match(user):
            raise ValueError(f"{user!r} is not a cgroup name")
        parents = cls.parent_dirs(class_name)
        dirs = []
        for parent in parents:
            parent.mkdir(exist_ok=True)
            if layout() == "v2":
                _enable_v2(parent)
            path = parent / user
            path.mkdir(exist_ok=True)
            dirs.append(path)
        group = cls(tuple(dirs))
        quota = str(round(cpu * CPU_PERIOD_US)) if cpu else "-1"
        for path in group.dirs:
            if layout() == "v1":
                controller = path.parts[len(ROOT.parts)]
                if controller == "memory" and memory:
                    _write(path / "memory.limit_in_bytes", str(memory))
                if controller == "pids" and pids:
                    _write(path / "pids.max", str(pids))
                if controller == "cpu" and (path / "cpu.shares").exists():
                    _write(path / "cpu.shares", "1024")
                    if (path / "cpu.cfs_quota_us").exists():
                        _write(path / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                        _write(path / "cpu.cfs_quota_us", quota)
            else:
                if memory:
                    _write(path / "memory.max", str(memory))
                    _write(path / "memory.swap.max", "0") if (path / "memory.swap.max").exists() else None
                if pids and (path / "pids.max").exists():
                    _write(path / "pids.max", str(pids))
                if (path / "cpu.weight").exists():
                    _write(path / "cpu.weight", "100")
                    _write(path / "cpu.max", f"{'max' if quota == '-1' else quota} {CPU_PERIOD_US}")
        return group

    def cpu(self) -> dict[str, float | None]:
        """The group's CPU share and cap as the kernel holds them: {"weight": ..., "cores": ... or None}."""
        found: dict[str, float | None] = {}
        for path in self.dirs:
            if (path / "cpu.shares").exists():
                found["weight"] = int((path / "cpu.shares").read_text())
                quota = int((path / "cpu.cfs_quota_us").read_text())
                period = int((path / "cpu.cfs_period_us").read_text())
                found["cores"] = None if quota < 0 else quota / period
            elif (path / "cpu.weight").exists():
                found["weight"] = int((path / "cpu.weight").read_text())
                quota, period = (path / "cpu.max").read_text().split()
                found["cores"] = None if quota == "max" else int(quota) / int(period)
        return found

    def pids_limit(self) -> int | None:
        for path in self.dirs:
            if (path / "pids.max").exists():
                value = (path / "pids.max").read_text().strip()
                return None if value == "max" else int(value)
        return None

    def join(self, pid: int = 0) -> None:
        """Move `pid` (0: the calling process) into every directory of the group."""
        pid = pid or os.getpid()
        for path in self.dirs:
            _write(path / "cgroup.procs", str(pid))

    def memory_limit(self) -> int | None:
        for path in self.dirs:
            for name in ("memory.limit_in_bytes", "memory.max"):
                if (path / name).exists():
                    value = (path / name).read_text().strip()
                    return None if value == "max" else int(value)
        return None

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this group."""
        for path in self.dirs:
            for name in ("memory.oom_control", "memory.events"):
                if (path / name).exists():
                    for line in (path / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill":
                            return int(value)
        return 0

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.dirs:
            try:
                found |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                continue
        return sorted(found)

    def end(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process left in the group (by pid), then remove it; True when it is gone."""
        deadline = time.monotonic() + timeout
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        gone = True
        for path in self.dirs:
            while path.exists() and time.monotonic() < deadline:
                try:
                    path.rmdir()
                except OSError:
                    time.sleep(0.05)   # the last process is still leaving
            gone = gone and not path.exists()
        return gone


def _enable_v2(parent: Path) -> None:
    wanted = [c for c in CONTROLLERS if c in (parent.parent / "cgroup.controllers").read_text().split()]
    for directory in (parent.parent, parent):
        enabled = (directory / "cgroup.subtree_control").read_text().split()
        for controller in wanted:
            if controller not in enabled:
                _write(directory / "cgroup.subtree_control", f"+{controller}")


def remove_class(class_name: str) -> None:
    """Remove the class's parent cgroups once every student's group is gone."""
    for parent in Group.parent_dirs(class_name):
        if parent.exists():
            for child in parent.iterdir():
                if child.is_dir():
                    Group((child,)).end()
            try:
                parent.rmdir()
            except OSError:
                pass


def parse_size(text: str | int) -> int:
    """'1G', '512M', '800000000' -> bytes."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    if not match:
        raise ValueError(f"{text!r} is not a size; write e.g. 1G or 512M")
    number, unit = float(match[1]), match[2].upper()
    return int(number * 1024 ** " KMGT".index(unit or " "))


def pid_max() -> int:
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def pids_per_student(students: int, machine_pids: int | None = None) -> int:
    """``pids.max`` for each of `students` servers: at most 1024, and the class together at most
    3/4 of the machine's pid_max (never under 256, which a server, a kernel and a lab need)."""
    machine_pids = pid_max() if machine_pids is None else machine_pids
    fair = int(machine_pids * PIDS_SHARE) // max(1, students)
    return max(PIDS_LEAST, min(PIDS_MOST, fair))


def pids_fit(students: int, per_student: int, machine_pids: int | None = None) -> bool:
    """Do `students` groups of `per_student` leave a quarter of pid_max to the rest of the machine?"""
    machine_pids = pid_max() if machine_pids is None else machine_pids
    return students * per_student <= machine_pids * PIDS_SHARE
