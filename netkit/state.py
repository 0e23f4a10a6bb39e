"""Where a user's labs are known: one state directory, one locked file per lab.

A terminal finds the lab a notebook holds through a small file,
``<state dir>/<lab name>.json``. The same file is the lab's claim on its
name: the process that starts a lab takes an open-file-description lock on
it (``F_OFD_SETLK``) and hands the locked descriptor to the lab's processes,
which keep it until the lab ends. So:

- **one lab per name, atomically**: taking the lock is the claim; twenty
  starts that race get exactly one lab, and the others `LabInUse`. A reader
  never deletes a file it did not lock, so a lab that is starting (its file
  still empty) is never taken for stale;
- **alive means held**: the kernel drops the lock when the last process of
  the lab exits, whatever killed it. A file nobody holds is stale;
- **identity, not a name**: the file records the lab's processes as
  (pid, start time, uid). Nothing is signalled or entered unless
  ``/proc/PID`` still shows that same process (`Identity.current`), so a
  recycled pid, even one whose command line looks like a lab, is left alone.

The state directory is per user: ``/run/netkit`` for root,
``$XDG_RUNTIME_DIR/netkit`` or ``/tmp/netkit-<uid>`` otherwise, or
``NETKIT_RUNTIME_DIR`` (a class hub sets it to ``~/.run/netkit`` for every
student's server, and where that folder exists it is the default too, so an
ssh login or root's ``--user`` finds the server's labs). It must be a real directory (not a symlink) owned by
that user and closed to everyone else (mode 700); files in it are opened
relative to it, without following symlinks. Anyone can make
``/tmp/netkit-<uid>`` first (uids are public, and /tmp's sticky bit then
stops its rightful user removing it), so when that name belongs to someone
else the default moves to ``~/.netkit-run`` in the user's own home, where
nobody else can squat; a directory named by ``NETKIT_RUNTIME_DIR`` that
someone else owns is refused, with the fix.

Odd cases are reported, not guessed at: a lab whose file was deleted by hand
is an *orphan*, found through the processes that still hold the deleted file;
a file with no lab is *stale*. `netkit status` lists both, `netkit down`
removes both.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pwd
import re
import signal
import stat
import struct
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import BadArgument, LabInUse, LabNotFound, StateError
from .procfs import fd_targets
from .i18n import _

RUNTIME_ENV = "NETKIT_RUNTIME_DIR"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
SUFFIX = ".json"
KEEPER = ".keeper"       # the keeper's own claim and socket (lab names cannot start with a dot)
_FLOCK = "hhqqi4x"       # struct flock: l_type, l_whence, l_start, l_len, l_pid


def check_name(name) -> str:
    """`name` if it can name a lab, else BadArgument saying what a name may be."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BadArgument(
            _("{name!r} is not a lab name; use 1 to 40 letters, digits, '.', '_' or '-', starting with a "
              "letter or digit, e.g. Lab(name='netkit')").format(name=name), value=repr(name)[:100])
    return name


# -- which process is which ------------------------------------------------------------
def _proc(pid: int) -> tuple[int, int, str] | None:
    """(start time in clock ticks, real uid, state letter) of `pid`, or None if there is none."""
    try:
        stat_text = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, ValueError):
        return None
    fields = stat_text.rsplit(")", 1)[1].split()
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
    if len(fields) < 20 or uid is None:
        return None
    return int(fields[19]), int(uid[1]), fields[0]


@dataclass(frozen=True)
class Identity:
    """One process, told apart from any later process that reuses its pid."""

    pid: int
    start: int   # clock ticks after boot (/proc/PID/stat, field 22)
    uid: int     # real uid, as the machine sees it

    @classmethod
    def of(cls, pid: int) -> "Identity | None":
        found = _proc(pid)
        return cls(pid, found[0], found[1]) if found else None

    def current(self) -> bool:
        """True if pid still is this very process and has not exited (a zombie has)."""
        found = _proc(self.pid)
        return found is not None and found[:2] == (self.start, self.uid) and found[2] not in "ZX"

    def kill(self, sig: int = signal.SIGKILL) -> bool:
        """Signal the process if, and only if, it is still this one; True if it was signalled."""
        if not self.current():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True


def reaps_children(pid: int) -> bool:
    """True if process `pid` catches or ignores SIGCHLD, so the children it adopts do not stay zombies."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    bit = 1 << (signal.SIGCHLD - 1)
    masks = [int(m, 16) for m in re.findall(r"^Sig(?:Cgt|Ign):\s+([0-9a-f]+)", status, re.M)]
    return any(mask & bit for mask in masks)


# -- the state directory ----------------------------------------------------------------
HOME_DIR = ".netkit-run"
"""The state directory in a user's own home, when /tmp/netkit-<uid> is taken by someone else."""
CLASS_DIR = ".run/netkit"
"""Where a class hub's servers keep their labs' state (NETKIT_RUNTIME_DIR, `netkit.classroom.spawner`)."""


def _home_of(uid: int) -> Path | None:
    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:
        return None
    return Path(home) if home and home != "/" else None


def _squatted(path: Path, uid: int) -> bool:
    """True if `path` exists (as anything, a link too) and belongs to a user other than `uid`."""
    try:
        return os.lstat(path).st_uid != uid
    except OSError:
        return False


def _default_dir(uid: int) -> Path:
    if uid == 0:
        return Path("/run/netkit")
    home = _home_of(uid)
    if home is not None and os.path.lexists(home / CLASS_DIR):
        return home / CLASS_DIR    # a class account: where its server's labs are (an ssh login finds them too)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if uid == os.geteuid() and xdg and os.access(xdg, os.W_OK):
        return Path(xdg) / "netkit"
    shared = Path(f"/tmp/netkit-{uid}")
    if home is not None and (_squatted(shared, uid) or os.path.lexists(home / HOME_DIR)):
        return home / HOME_DIR     # someone else holds the shared name (or it moved before): the home is ours
    return shared


def _fix(path: Path, uid: int | None = None, owner: int | None = None) -> str:
    if owner is not None and uid is not None and owner != uid and owner != os.geteuid():
        # Not the user's to remove (in sticky /tmp only its owner or root can): go elsewhere.
        return _("it is not yours to remove: ask root to remove it (sudo rm -r {path}), or point netkit at a "
                 "directory in your own home: export NETKIT_RUNTIME_DIR=$HOME/.netkit-run").format(path=path)
    return _("remove it (rm -r {path}) if it is not yours to keep, or point netkit at a directory of your own: "
             "export NETKIT_RUNTIME_DIR=$HOME/.netkit-run").format(path=path)


def _checked(path: Path, uid: int, info: os.stat_result) -> None:
    """StateError unless `info` (an lstat of `path`) is a private directory of `uid`."""
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        dangling = "" if os.path.exists(path) else _(", which points nowhere")
        raise StateError(_("the lab state directory {path} is a symlink (to {target}{dangling}); netkit does "
                           "not follow it, since whoever made it could redirect your lab's files: {fix}")
                         .format(path=path, target=target, dangling=dangling, fix=_fix(path)),
                         path=str(path))
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(_("the lab state directory {path} is a file, not a directory: {fix}")
                         .format(path=path, fix=_fix(path)),
                         path=str(path))
    if info.st_uid != uid:
        raise StateError(_("the lab state directory {path} belongs to uid {st_uid}, not to uid {uid}: its "
                           "owner could claim or fake that user's labs; {fix}")
                         .format(path=path, st_uid=info.st_uid, uid=uid, fix=_fix(path, uid, info.st_uid)),
                         path=str(path))
    if info.st_mode & 0o077:
        raise StateError(_("the lab state directory {path} is open to other users (mode {mode:04o}); a "
                           "lab's files must be private: chmod 700 {path}, or use a directory of your own: "
                           "export NETKIT_RUNTIME_DIR=$HOME/.netkit-run")
                         .format(path=path, mode=stat.S_IMODE(info.st_mode)),
                         path=str(path))


def _make(path: Path, uid: int) -> None:
    if uid != os.geteuid():
        raise LabNotFound(_("uid {uid} has no lab state directory ({path} does not exist), so no labs")
                          .format(uid=uid, path=path),
                          path=str(path))
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass  # made meanwhile (or a file is in the way): the check that follows says which
    except NotADirectoryError:
        raise StateError(_("cannot make the lab state directory {path}: a part of that path is a file; "
                           "export NETKIT_RUNTIME_DIR=$HOME/.netkit-run").format(path=path), path=str(path)) from None
    except PermissionError:
        raise StateError(_("cannot make the lab state directory {path}: permission denied; export "
                           "NETKIT_RUNTIME_DIR=$HOME/.netkit-run").format(path=path), path=str(path)) from None
    except OSError as exc:   # e.g. under /proc or /sys (ENOENT), a read-only or full file system
        raise StateError(_("cannot make the lab state directory {path}: {strerror} (errno {errno}); choose a "
                           "directory you can write, e.g. export NETKIT_RUNTIME_DIR=$HOME/.netkit-run")
                         .format(path=path, strerror=exc.strerror, errno=exc.errno),
                         path=str(path)) from None


class StateDir:
    """One user's state directory, checked and held open (files are opened relative to it)."""

    def __init__(self, uid: int | None = None) -> None:
        self.uid = os.geteuid() if uid is None else uid
        if self.uid == os.geteuid() and os.environ.get(RUNTIME_ENV):
            self.path = Path(os.environ[RUNTIME_ENV])
        else:
            self.path = _default_dir(self.uid)
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            _make(self.path, self.uid)
            info = os.lstat(self.path)
        except NotADirectoryError:
            raise StateError(_("the lab state directory {path} cannot exist: a part of that path is a file; "
                               "export NETKIT_RUNTIME_DIR=$HOME/.netkit-run")
                             .format(path=self.path), path=str(self.path)) from None
        except OSError as exc:   # a folder on the way that this user may not enter, say
            raise StateError(_("cannot reach the lab state directory {path}: {strerror} (errno {errno}); choose "
                               "a directory you can write, e.g. export NETKIT_RUNTIME_DIR=$HOME/.netkit-run")
                             .format(path=self.path, strerror=exc.strerror, errno=exc.errno),
                             path=str(self.path)) from None
        _checked(self.path, self.uid, info)
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise StateError(_("cannot open the lab state directory {path}: {strerror}; {fix}")
                             .format(path=self.path, strerror=exc.strerror, fix=_fix(self.path)),
                             path=str(self.path)) from None
        opened = os.fstat(self.fd)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            os.close(self.fd)
            raise StateError(_("the lab state directory {path} changed while netkit opened it; try again")
                             .format(path=self.path),
                             path=str(self.path))

    @property
    def user(self) -> str:
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return f"uid {self.uid}"

    def open(self, filename: str, flags: int) -> int:
        """A file of this directory, never through a symlink; StateError if it is not a plain file of ours."""
        try:
            fd = os.open(filename, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StateError(_("{value} is a symlink; netkit does not follow links in its state "
                                   "directory: remove it (rm {value})")
                                 .format(value=self.path / filename), path=str(self.path / filename)
                                 ) from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != self.uid:
            os.close(fd)
            raise StateError(_("{value} is not a plain file of uid {uid}; remove it (rm -r {value})")
                             .format(value=self.path / filename, uid=self.uid), path=str(self.path / filename))
        return fd

    def same_file(self, fd: int, filename: str) -> bool:
        """Is `fd` still the file linked at `filename` (not deleted or replaced meanwhile)?"""
        try:
            linked = os.stat(filename, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (held.st_dev, held.st_ino) == (linked.st_dev, linked.st_ino)

    def names(self) -> list[str]:
        """The lab names that have a file here."""
        return sorted(entry[:-len(SUFFIX)] for entry in os.listdir(self.fd)
                      if entry.endswith(SUFFIX) and NAME_RE.fullmatch(entry[:-len(SUFFIX)]))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "StateDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def state_dir_of(user: str | None = None) -> StateDir:
    """The state directory of `user` (a name or uid; default: whoever runs this)."""
    if user is None:
        return StateDir()
    try:
        entry = pwd.getpwuid(int(user)) if str(user).isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise BadArgument(_("there is no user {user!r} on this machine; give a login name, e.g. --user alice")
                          .format(user=user),
                          value=str(user)) from None
    if entry.pw_uid != os.geteuid() and os.geteuid() != 0:
        raise BadArgument(_("only root may look at another user's labs; {user!r} is not you").format(user=user))
    return StateDir(entry.pw_uid)


def runtime_dir() -> Path:
    """This user's state directory (checked, and created mode 700 if missing)."""
    with StateDir() as state:
        return state.path


# -- locks ---------------------------------------------------------------------------------
def _lock(fd: int) -> bool:
    """Take the whole-file lock on `fd`'s open file description; False if another holds it."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, 0, 0, 0, 0))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _held(fd: int) -> bool:
    """Does any open file description other than `fd`'s hold the lock? (Takes nothing.)"""
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, 0, 0, 0, 0))
    return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK


# -- what a lab's file says ------------------------------------------------------------
@dataclass(frozen=True)
class LabRecord:
    """What the state file of a running lab says (its processes, by identity)."""

    name: str
    uid: int
    pid: int             # the unshare process, in the machine's pid namespace
    pid_start: int
    init_pid: int        # pid 1 of the lab, as the machine sees it
    init_start: int
    owner_pid: int       # the process that holds the lab's pipe (a notebook, or the keeper)
    userns: bool
    stage: str
    started: float
    kept: bool = False   # held by the keeper (`netkit up`) rather than by a notebook or script

    @property
    def init(self) -> Identity:
        return Identity(self.init_pid, self.init_start, self.uid)

    @property
    def top(self) -> Identity:
        return Identity(self.pid, self.pid_start, self.uid)

    def alive(self) -> bool:
        """The lab's pid 1 is still the process this record names."""
        return self.init.current()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "LabRecord":
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class Claim:
    """This process's hold on a lab's name: the locked state file.

    Every sandbox of the lab (a reset makes a new one) holds the claim while
    its processes live; the lab's own processes inherit the locked descriptor.
    When the last hold is dropped the descriptor is closed, and the kernel
    frees the name once the lab's processes are gone too.
    """

    def __init__(self, name: str, state: StateDir | None = None) -> None:
        self.name = check_name(name)
        self.state = StateDir() if state is None else state
        self._own_state = state is None
        self.filename = name + SUFFIX
        self.path = self.state.path / self.filename
        self._lock = threading.Lock()
        self._holds = 1          # the starter's own, dropped once the lab is up (or failed)
        try:
            self.fd = self._take()
        except BaseException:
            if self._own_state:
                self.state.close()
            raise

    def _take(self) -> int:
        for _attempt in range(20):
            fd = self.state.open(self.filename, os.O_RDWR | os.O_CREAT)
            if not _lock(fd):
                os.close(fd)
                raise _in_use(self.name, self.state)
            if self.state.same_file(fd, self.filename):
                os.ftruncate(fd, 0)    # what a dead lab left, if anything
                return fd
            os.close(fd)               # deleted or replaced between our open and our lock: again
        raise LabInUse(_("could not claim the lab name {name!r}: its state file keeps changing; choose "
                         "another name").format(name=self.name), name=self.name)

    def hold(self) -> None:
        with self._lock:
            if self.fd < 0:
                raise LabNotFound(_("the lab {name!r} has ended; start a new one with Lab()").format(name=self.name), name=self.name)
            self._holds += 1

    def drop(self) -> None:
        """Give up one hold; the last one removes the file (we hold its lock, so it is ours) and lets go."""
        with self._lock:
            self._holds -= 1
            if self._holds > 0 or self.fd < 0:
                return
            try:
                if self.state.same_file(self.fd, self.filename):
                    os.unlink(self.filename, dir_fd=self.state.fd)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1
            if self._own_state:
                self.state.close()

    def write(self, record: LabRecord) -> None:
        """Put the lab's record in its file (readers treat a short file as 'starting')."""
        data = record.to_json().encode()
        with self._lock:
            if self.fd < 0:
                raise LabNotFound(_("the lab {name!r} has ended").format(name=self.name), name=self.name)
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)

    @property
    def released(self) -> bool:
        return self.fd < 0


def _in_use(name: str, state: StateDir) -> LabInUse:
    found = find(name, state)
    if found is not None and found.kind == "running":
        r = found.record
        return LabInUse(
            _("a lab called {name!r} is already running (pid {init_pid}, stage {stage}); close it "
              "(lab.close() or `netkit down --lab {name}`) or choose another name: Lab(name='other')")
            .format(name=name, init_pid=r.init_pid, stage=r.stage),
            name=name, pid=r.init_pid)
    return LabInUse(_("a lab called {name!r} is starting right now (or ending); choose another name, or wait "
                      "a moment and see `netkit status`").format(name=name), name=name)


# -- finding labs -------------------------------------------------------------------------
@dataclass
class Found:
    """A lab (or what is left of one) found in a state directory.

    kind: "running"  its file is held and names a live pid 1;
          "starting" its file is held but not written yet;
          "ended"    its file is held, but the pid 1 it names is gone (a holder has not let go yet);
          "stale"    a file nobody holds: the lab is gone;
          "orphan"   processes hold a lab file that was deleted by hand.
    """

    name: str
    kind: str
    user: str
    record: LabRecord | None = None
    holders: list[int] = field(default_factory=list)   # for orphans: pids holding the deleted file
    path: Path | None = None


def find(name: str, state: StateDir) -> Found | None:
    """The lab `name` in `state` as its file shows it (None if there is no file)."""
    filename = check_name(name) + SUFFIX
    try:
        fd = state.open(filename, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        held = _held(fd)
        text = os.pread(fd, 65536, 0).decode(errors="replace")
    finally:
        os.close(fd)
    record = None
    if text.strip():
        try:
            record = LabRecord.from_json(text)
        except (ValueError, TypeError):
            record = None
    where = state.path / filename
    if not held:
        return Found(name, "stale", state.user, record, path=where)
    if record is None or record.name != name or record.uid != state.uid:
        return Found(name, "starting", state.user, None, path=where)
    return Found(name, "running" if record.alive() else "ended", state.user, record, path=where)


def orphans(state: StateDir) -> list[Found]:
    """Labs whose state file was deleted by hand, found by the processes of this user still holding it."""
    prefix = str(state.path) + "/"
    held: dict[str, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        found = _proc(pid)
        if found is None or found[1] != state.uid:
            continue
        for target in fd_targets(pid):
            if target.startswith(prefix) and target.endswith(SUFFIX + " (deleted)"):
                name = target[len(prefix):-len(SUFFIX + " (deleted)")]
                if NAME_RE.fullmatch(name):
                    held.setdefault(name, []).append(pid)
    return [Found(name, "orphan", state.user, None, sorted(set(pids))) for name, pids in sorted(held.items())]


def every_lab(state: StateDir) -> list[Found]:
    """Everything `netkit status` reports: each file's lab (running, starting, ended, stale) and orphans."""
    labs = [found for name in state.names() if (found := find(name, state)) is not None]
    labs.sort(key=lambda f: (f.record.started if f.record else 0.0, f.name))
    return labs + orphans(state)


def require(name: str, state: StateDir) -> LabRecord:
    """The running lab `name`, or LabNotFound / LabInUse that says what there is instead."""
    found = find(name, state)
    if found is not None and found.kind == "running":
        return found.record
    if found is not None and found.kind == "starting":
        raise LabInUse(_("the lab {name!r} is still starting; try again in a moment").format(name=name), name=name)
    others = ", ".join(f.name for f in every_lab(state) if f.kind == "running") or "none"
    whose = "" if state.uid == os.geteuid() else _(" of user {user}").format(user=state.user)
    raise LabNotFound(
        _("no running lab called {name!r}{whose} (running labs: {others}); start one with `netkit up` or "
          "Lab() in a notebook, and pick it with --lab NAME").format(name=name, whose=whose, others=others), name=name)


# -- ending labs --------------------------------------------------------------------------
def _pid1_of_its_namespace(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    nspid = re.search(r"^NSpid:\s+(.*)$", status, re.M)
    return bool(nspid) and len(nspid[1].split()) > 1 and nspid[1].split()[-1] == "1"


def _wait_released(name: str, state: StateDir, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        found = find(name, state)
        if found is None or found.kind == "stale":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def remove_stale(name: str, state: StateDir) -> bool:
    """Delete the file of lab `name` if nobody holds it; False if a lab holds it now."""
    filename = name + SUFFIX
    try:
        fd = state.open(filename, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        if not _lock(fd):
            return False
        if state.same_file(fd, filename):
            os.unlink(filename, dir_fd=state.fd)
        return True
    finally:
        os.close(fd)


def stop(found: Found, state: StateDir, seconds: float = 3.0) -> str:
    """End what `found` describes; returns what was done, in a sentence."""
    whose = "" if state.uid == os.geteuid() else _(" of user {user}").format(user=found.user)
    if found.kind == "orphan":
        inits = [pid for pid in found.holders if _pid1_of_its_namespace(pid)]
        killed = [pid for pid in inits if (ident := Identity.of(pid)) and ident.uid == state.uid and ident.kill()]
        return (f"lab {found.name!r}{whose}, whose state file had been deleted, is down "
                f"(pid 1 {', '.join(map(str, killed)) or 'already gone'})")
    if found.kind == "stale":
        remove_stale(found.name, state)
        return f"removed the state file of lab {found.name!r}{whose}: no lab was running"
    if found.kind == "starting":
        raise LabInUse(_("the lab {name!r}{whose} is still starting; run `netkit down` again in a moment")
                       .format(name=found.name, whose=whose),
                       name=found.name)
    record = found.record
    if found.kind == "running":
        record.init.kill()   # the kernel ends every process of the lab's pid namespace with it
    if _wait_released(found.name, state, seconds):
        remove_stale(found.name, state)
        return f"lab {found.name!r}{whose} is down"
    if found.kind == "ended" or not record.alive():
        owner = Identity.of(record.owner_pid)
        by = f"pid {record.owner_pid}" if owner else "a process"
        return (f"lab {found.name!r}{whose} is down; its name stays taken until {by}, which held the lab, "
                "lets go of it (closing the notebook's lab does)")
    raise LabInUse(_("lab {name!r}{whose} did not end within {seconds:g} s")
                   .format(name=found.name, whose=whose, seconds=seconds), name=found.name)
