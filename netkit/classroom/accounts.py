"""The class's Unix accounts: made from the roster, given the notebooks, removed with everything they ran.

Every account made here carries `checks.MARK` in its comment field, has no
login shell (`LOGIN_SHELL`: the hub is the way in), and only
such accounts are ever changed or removed: a name that belongs to a real
user is refused before anything is made (`checks.check_names`). Homes are
mode 0700, so no student reads another's notebooks, progress or lab state.

Removing an account first ends every process that runs as it (found by uid
in /proc, killed by pid, until none is left), then removes what it owned
where every account may write: files and folders in /tmp, /var/tmp,
/dev/shm, /run/lock and /dev/mqueue (walked from directory descriptors, never through a
link, never onto another file system) and its System V IPC objects; then
``userdel --remove`` (its home, its mail). The next class may be given the
same uid, so nothing of this one may be waiting for it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import signal
import subprocess
import time
from pathlib import Path

from .checks import MARK, ClassError, ours
from .roster import Entry

LOGIN_SHELL = "/usr/sbin/nologin"
"""A class account's login shell: its way in is the hub, where its server has its cgroup, its own /tmp and
/proc; a login over ssh or su would have none of that (JupyterLab's terminals run bash, see the spawner)."""
STUDENT_NOTEBOOKS = "[0-9][0-9]-*.ipynb"
INSTRUCTOR_NOTEBOOKS = ("dashboard.ipynb",)
FOLDER = "notebooks"
"""The folder in each home that holds the notebooks (the server opens there)."""
LANGUAGE_FOLDERS = ("zh-TW",)
"""The notebooks' translations, each in a folder named after its language (a notebook there speaks it)."""


def _run(argv: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise ClassError(f"{argv[0]} failed (exit {done.returncode}): {done.stderr.strip()}")


def ensure(entry: Entry, notebooks: Path, *, admin: bool = False, trace=print) -> pwd.struct_passwd:
    """Make (or refresh) the account for `entry`: password, home 0700, the notebooks in ~/notebooks."""
    try:
        pwd.getpwnam(entry.username)
        existed = True
    except KeyError:
        existed = False
    if existed and not ours(entry.username):
        raise ClassError(f"{entry.username!r} is an account netkit did not make; it was left alone")
    if not existed:
        _run(["useradd", "--create-home", "--shell", LOGIN_SHELL, "--user-group",
              "--comment", MARK, entry.username])
        trace(f"  made the account {entry.username}")
    elif pwd.getpwnam(entry.username).pw_shell != LOGIN_SHELL:
        _run(["usermod", "--shell", LOGIN_SHELL, entry.username])   # an account of an earlier class
    _run(["chpasswd"], stdin=f"{entry.username}:{entry.password}\n")
    user = pwd.getpwnam(entry.username)
    home = Path(user.pw_dir)
    os.chmod(home, 0o700)
    give_notebooks(user, notebooks, admin=admin)
    return user


def give_notebooks(user: pwd.struct_passwd, notebooks: Path, *, admin: bool = False) -> list[Path]:
    """Copy the notebooks a student runs (and the dashboard, for an admin) into ~/notebooks, and their
    translations into ~/notebooks/zh-TW (the class may read either language).

    A notebook already there is kept: it may hold the student's own work.
    """
    folder = Path(user.pw_dir) / FOLDER
    pairs = []
    for source_dir, target_dir in [(notebooks, folder)] + [(notebooks / lang, folder / lang) for lang in LANGUAGE_FOLDERS
                                                            if (notebooks / lang).is_dir()]:
        names = sorted(source_dir.glob(STUDENT_NOTEBOOKS))
        if admin:
            names += [source_dir / name for name in INSTRUCTOR_NOTEBOOKS if (source_dir / name).exists()]
        pairs += [(source, target_dir / source.name) for source in names]
    given = []
    for target_dir in dict.fromkeys(target.parent for _, target in pairs):
        if target_dir.is_symlink():
            raise ClassError(f"{target_dir} is a symbolic link; remove it and run the command again")
        target_dir.mkdir(exist_ok=True)
        os.chown(target_dir, user.pw_uid, user.pw_gid)
    for source, target in pairs:
        if target.exists() or target.is_symlink():
            continue
        shutil.copyfile(source, target, follow_symlinks=False)
        os.chown(target, user.pw_uid, user.pw_gid)
        os.chmod(target, 0o644)
        given.append(target)
    return given


def processes_of(uid: int) -> list[int]:
    """Pids of every process whose real or effective uid is `uid`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry.name}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                real, effective = line.split()[1:3]
                if uid in (int(real), int(effective)) and "\nState:\tZ" not in status:
                    found.append(int(entry.name))
                break
    return found


def end_processes(uid: int, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process of `uid`, by pid, until none is left; returns the pids killed."""
    if uid == 0:
        raise ClassError("refusing to end the processes of uid 0")
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while (pids := processes_of(uid)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    left = processes_of(uid)
    if left:
        raise ClassError(f"processes of uid {uid} would not end: {left}")
    return killed


def remove(name: str, *, trace=print) -> bool:
    """End every process of the class account `name` and delete it with its home; False if not ours."""
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        return False
    if not ours(name):
        trace(f"  left {name} alone: netkit did not make that account")
        return False
    end_processes(user.pw_uid)
    # userdel leaves what the user owned outside the home (e.g. a lab state dir /tmp/netkit-<uid>).
    gone = remove_leftovers(user.pw_uid)
    _run(["userdel", "--remove", name])
    trace(f"  removed the account {name} and its home" +
          (f", and {len(gone)} thing(s) it left in {', '.join(SHARED_DIRS)} or System V IPC" if gone else ""))
    return True


SHARED_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
"""Where any account may leave files that outlive its processes and its home."""
IPC_KINDS = {"shm": ("shmid", "-m"), "msg": ("msqid", "-q"), "sem": ("semid", "-s")}


def _walk_owned(fd: int, where: str, uid: int, device: int, found: list[tuple[int, str, bool]], depth: int) -> None:
    """Collect (directory fd, name, is_dir) of every entry under the open directory `fd` that `uid` owns."""
    for entry in os.scandir(fd):
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_dev != device:
            continue                                  # another file system mounted here: not ours to walk
        is_dir = stat.S_ISDIR(info.st_mode)
        if info.st_uid == uid:
            found.append((fd, entry.name, is_dir))    # a folder of its own goes whole
        elif is_dir and depth < 32:
            try:
                child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError:
                continue
            found.append((child, "", True))           # to close afterwards
            _walk_owned(child, f"{where}/{entry.name}", uid, device, found, depth + 1)


def leftovers(uid: int, dirs=SHARED_DIRS) -> list[str]:
    """What `uid` owns in the shared dirs and in System V IPC (paths, and 'shm 1234'-like names)."""
    return [what for what, _ in _leftovers(uid, dirs, remove=False)]


def remove_leftovers(uid: int, dirs=SHARED_DIRS) -> list[str]:
    """Remove everything `uid` owns in the shared dirs and its System V IPC objects; what was removed."""
    return [what for what, ok in _leftovers(uid, dirs, remove=True) if ok]


def _leftovers(uid: int, dirs, remove: bool) -> list[tuple[str, bool]]:
    if uid == 0:
        raise ClassError("refusing to remove the files of uid 0")
    out: list[tuple[str, bool]] = []
    for top in dirs:
        try:
            fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        found: list[tuple[int, str, bool]] = [(fd, "", True)]
        try:
            _walk_owned(fd, top, uid, os.fstat(fd).st_dev, found, 0)
            for parent, entry, is_dir in found:
                if not entry:
                    continue
                ok = True
                if remove:
                    try:
                        if is_dir:
                            shutil.rmtree(entry, dir_fd=parent)
                        else:
                            os.unlink(entry, dir_fd=parent)
                    except FileNotFoundError:
                        pass
                    except OSError:
                        ok = False
                out.append((f"{os.readlink(f'/proc/self/fd/{parent}')}/{entry}", ok))
        finally:
            for parent, entry, _ in found:
                if not entry:
                    os.close(parent)
    for kind, (column, flag) in IPC_KINDS.items():
        for ident in _ipc_of(kind, column, uid):
            ok = True
            if remove:
                done = subprocess.run(["ipcrm", flag, str(ident)], capture_output=True)
                ok = done.returncode == 0
            out.append((f"{kind} {ident}", ok))
    return out


def _ipc_of(kind: str, column: str, uid: int) -> list[int]:
    """Ids of the System V IPC objects of `kind` whose owner or creator is `uid` (/proc/sysvipc)."""
    try:
        header, *lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
    except (OSError, ValueError):
        return []
    names = header.split()
    found = []
    for line in lines:
        row = dict(zip(names, line.split()))
        if str(uid) in (row.get("uid"), row.get("cuid")):
            found.append(int(row[column]))
    return found
