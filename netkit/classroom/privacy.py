"""What one student's server sees of the machine: its own /tmp, /var/tmp, /dev/shm, IPC and /proc view.

On a shared machine every student's server would otherwise share the
machine's /tmp, /var/tmp and /dev/shm (where a file outlives the server
that wrote it, and its memory stops being counted against the student once
the server's cgroup is gone), the machine's System V IPC objects, and a
/proc that shows everyone's processes, command lines and ``/proc/PID/net``.

`enter()` runs in the server's process after fork, as root, just before it
becomes the student (`netkit.classroom.spawner`), as systemd's PrivateTmp
and ProtectProc do for a service:

- a mount namespace of its own (its mounts propagate from the machine, never
  back): fresh tmpfs on /tmp, /var/tmp, /dev/shm and /run/lock (every folder
  any account may write to), each with a size limit;
  their pages are charged to the student's memory cgroup, and they vanish
  with the last process of the server (its kernels and labs included);
- an IPC namespace of its own: System V shared memory, semaphores and
  message queues die with the server too;
- a /proc of its own with ``hidepid=invisible``: the student's processes are
  listed, nobody else's (so no one else's command line, environment or
  ``/proc/PID/net``). The machine's own /proc is unchanged.

The student cannot undo any of it: mounts made by root and handed to a
less privileged namespace are locked together, so even root of a user
namespace the student makes cannot unmount the /proc to see the one below.
The machine itself does not change: its /proc, /tmp and /dev/shm read as
before for everyone outside the class's servers (an ssh login, say).
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
MS_NOSUID, MS_NODEV, MS_REC, MS_SLAVE = 0x2, 0x4, 0x4000, 0x80000
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
"""Every folder of a Debian machine that any account may write to (mode 1777)."""
SMALL_DIRS = {"/run/lock": 8 << 20}
"""Folders for a few small files: their tmpfs is smaller than the memory limit."""
PROC_OPTIONS = ("hidepid=invisible", "hidepid=2")   # Linux 5.8+ spells it invisible; older kernels 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _mount(source: str, target: str, kind: str | None, flags: int, options: str = "") -> None:
    _check(_libc.mount(source.encode(), target.encode(), kind.encode() if kind else None, flags,
                       options.encode() or None), f"mount {kind or ''} {target}")


def enter(size: int) -> None:
    """Give the calling process (root, about to become a student) private tmp dirs, IPC and /proc.

    `size` bounds each tmpfs, in bytes. Raises OSError if the kernel refuses a step.
    """
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
    _mount("none", "/", None, MS_REC | MS_SLAVE)           # nothing mounted here reaches the machine
    for directory in PRIVATE_DIRS:
        if os.path.isdir(directory):
            limit = min(size, SMALL_DIRS.get(directory, size))
            _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, f"size={limit},mode=1777")
    last: OSError | None = None
    for options in PROC_OPTIONS:
        try:
            _mount("proc", "/proc", "proc", 0, options)     # the flags of the machine's own /proc
            return
        except OSError as exc:
            last = exc
    raise last


def hidden_proc(pid: int | str = "self") -> bool:
    """Does the /proc that `pid` sees hide other users' processes (hidepid)?"""
    hidden = False
    for line in open(f"/proc/{pid}/mountinfo"):
        fields = line.split()
        if fields[4] == "/proc":
            options = line.split(" - ", 1)[1].split()[-1].split(",")
            hidden = any(o in ("hidepid=invisible", "hidepid=2", "hidepid=ptraceable") for o in options)
    return hidden
