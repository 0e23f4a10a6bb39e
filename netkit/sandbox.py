"""Start, find, enter and stop the isolated process that plays a lab's host.

A lab's host is `netkit.agent`, started under ``unshare`` in network, mount
and pid namespaces of its own (plus a user namespace when we are not root).
Nothing of the lab is ever linked to the machine's own network namespace.

Every running lab has a small state file, ``<runtime dir>/<lab name>.json``,
holding the pid of its ``unshare`` process and of the lab's pid 1, so that
``netkit exec`` and ``netkit status`` in a terminal find the lab a notebook
holds. The runtime directory is per user (``/run/netkit`` for root,
``$XDG_RUNTIME_DIR/netkit`` or ``/tmp/netkit-<uid>`` otherwise), so thirty
students on one server can each have a lab called ``netkit``.
``NETKIT_RUNTIME_DIR`` overrides it.

Programs (``ip``, ``unshare`` ...) are looked up on ``PATH`` and then in the
usual sbin and bin directories; ``NETKIT_TOOL_PATH`` (a ``PATH``-style list)
replaces those directories, e.g. to check the message a machine without
iproute2 gets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import confinement
from .errors import LabInUse, LabNotFound, NetkitError, SandboxError, from_wire

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")

REQUIRED_TOOLS = {
    # program: the Debian/Ubuntu package that brings it
    "unshare": "util-linux", "nsenter": "util-linux", "mount": "mount",
    "ip": "iproute2", "bridge": "iproute2", "sysctl": "procps",
    "iptables": "iptables", "nft": "nftables",
}
NODE_TOOLS = {
    "route": "net-tools", "ifconfig": "net-tools", "ping": "iputils-ping",
    "brctl": "bridge-utils", "tcpdump": "tcpdump", "conntrack": "conntrack",
    "curl": "curl", "python3": "python3",
}
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def runtime_dir() -> Path:
    """Where this user's labs keep their state files (created, mode 700)."""
    if os.environ.get("NETKIT_RUNTIME_DIR"):
        path = Path(os.environ["NETKIT_RUNTIME_DIR"])
    elif os.geteuid() == 0:
        path = Path("/run/netkit")
    elif os.environ.get("XDG_RUNTIME_DIR") and os.access(os.environ["XDG_RUNTIME_DIR"], os.W_OK):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "netkit"
    else:
        path = Path(f"/tmp/netkit-{os.geteuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if path.is_symlink() or info.st_uid != os.geteuid():
        # Someone else made it (in /tmp anyone can): their files could claim or fake our labs.
        raise SandboxError(
            f"the lab state directory {path} belongs to uid {info.st_uid}, not to you (uid {os.geteuid()}); "
            "remove it, or point netkit elsewhere: export NETKIT_RUNTIME_DIR=$HOME/.netkit-run")
    return path


def which(program: str) -> str | None:
    """Find a program on PATH or in the sbin directories a user's PATH may lack."""
    return shutil.which(program) or shutil.which(program, path=os.environ.get("NETKIT_TOOL_PATH", SEARCH_PATH))


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise NetkitError(
            f"{name!r} is not a lab name; use 1 to 40 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, e.g. Lab(name='netkit')")
    return name


def missing_tools(tools: dict[str, str]) -> dict[str, str]:
    """The programs of `tools` this machine lacks, with the package of each."""
    return {prog: pkg for prog, pkg in tools.items() if which(prog) is None}


def needs_user_namespace() -> bool:
    return os.geteuid() != 0


def unshare_argv(userns: bool) -> list[str]:
    """The unshare that starts a lab's host (and that `netkit doctor` tries): its namespaces and /proc."""
    argv = [which("unshare") or "unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc",
            "--propagation", "private", "--kill-child"]
    if userns:
        argv[1:1] = ["--user", "--map-root-user"]
    return argv


@dataclass(frozen=True)
class LabRecord:
    """What the state file of a running lab says."""

    name: str
    pid: int        # the unshare process, in the machine's pid namespace
    init_pid: int   # pid 1 of the lab, seen from outside
    owner_pid: int
    userns: bool
    stage: str
    started: float
    detached: bool = False

    @property
    def path(self) -> Path:
        return runtime_dir() / f"{self.name}.json"

    def alive(self) -> bool:
        try:
            cmdline = Path(f"/proc/{self.init_pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"netkit.agent" in cmdline and self.name.encode() in cmdline

    def nsenter_argv(self) -> list[str]:
        """The argv prefix that enters this lab's host (user, mount, net and pid namespaces)."""
        argv = [which("nsenter") or "nsenter", f"--target={self.init_pid}", "--mount", "--net", "--pid"]
        if self.userns:
            # Keep our ids (they map to root in the lab): resetting them would call setgroups(),
            # which a --map-root-user namespace denies to an unprivileged user.
            argv[2:2] = ["--user", "--preserve-credentials"]
        return argv


def read_record(name: str) -> LabRecord | None:
    """The running lab called `name`, or None; removes a stale state file."""
    path = runtime_dir() / f"{check_name(name)}.json"
    try:
        record = LabRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None
    if not record.alive():
        path.unlink(missing_ok=True)
        return None
    return record


def running_labs() -> list[LabRecord]:
    """Every running lab of this user, oldest first."""
    records = []
    for path in sorted(runtime_dir().glob("*.json")):
        record = read_record(path.stem) if NAME_RE.match(path.stem) else None
        if record:
            records.append(record)
    return sorted(records, key=lambda r: r.started)


def find(name: str) -> LabRecord:
    record = read_record(name)
    if record is None:
        labs = ", ".join(r.name for r in running_labs()) or "none"
        raise LabNotFound(
            f"no running lab called {name!r} (running labs: {labs}); "
            "start one with `netkit up` or Lab() in a notebook, and pick it with --lab NAME")
    return record


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Sandbox:
    """The owner's end of one lab's host process: start it, talk to it, end it."""

    def __init__(self, name: str, *, on_event=None, claim: bool = True) -> None:
        self.name = check_name(name)
        self.on_event = on_event
        self.userns = needs_user_namespace()
        self.state_path = runtime_dir() / f"{name}.json"
        self._lock = threading.Lock()
        self._next_id = 1
        self.proc: subprocess.Popen | None = None
        self.init_pid = 0
        if claim:
            self._claim()
        try:
            self._spawn()
        except BaseException:
            if claim:
                self.state_path.unlink(missing_ok=True)
            raise

    # -- start ------------------------------------------------------------
    def _claim(self) -> None:
        """Take the lab's name, atomically; LabInUse if a live lab has it."""
        for _ in range(2):
            try:
                fd = os.open(self.state_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                record = read_record(self.name)
                if record is not None:
                    raise LabInUse(
                        f"a lab called {self.name!r} is already running (pid {record.init_pid}, "
                        f"stage {record.stage}); close it (lab.close() or `netkit down --lab {self.name}`) "
                        "or choose another name: Lab(name='other')") from None
                # A file that is not yet written (another start in progress) or was stale.
                if self.state_path.exists() and time.time() - self.state_path.stat().st_mtime < 10:
                    raise LabInUse(f"a lab called {self.name!r} is starting right now; "
                                   "choose another name or wait for it") from None
                self.state_path.unlink(missing_ok=True)
                continue
            os.close(fd)
            return
        raise LabInUse(f"could not claim the lab name {self.name!r}; choose another name")

    def _spawn(self) -> None:
        missing = missing_tools(REQUIRED_TOOLS)
        if missing:
            raise SandboxError(
                "this machine lacks " + ", ".join(sorted(missing)) + "; fix: sudo apt-get install "
                + " ".join(sorted(set(missing.values()))) + " (or run the README's setup command)")
        argv = unshare_argv(self.userns)
        # pid 1 of the lab is a shell that reaps orphans and waits for the agent; the agent
        # keeps the pipe as its stdin (a background job would otherwise get /dev/null).
        argv += ["sh", "-c", 'exec 3<&0; "$@" <&3 3<&- & exec 3<&-; wait', "netkit-lab",
                 sys.executable, "-m", "netkit.agent", "--name", self.name, "--state", str(self.state_path)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                          env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, start_new_session=True)
        self._stderr: list[str] = []
        self._drainer = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drainer.start()
        try:
            hello = self._read_answer(0)
        except LabNotFound:
            raise self._start_failure() from None
        self.init_pid = self._find_init_pid()
        self.hello = hello

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip())
            del self._stderr[:-50]

    def _start_failure(self) -> NetkitError:
        self.proc.wait(timeout=5)
        self._drainer.join(timeout=2)  # what unshare said may still be in the pipe
        said = " ".join(self._stderr[-3:]) or f"exit {self.proc.returncode}"
        # EPERM/EACCES: user namespaces forbidden; ENOSPC: user.max_user_namespaces reached (e.g. 0)
        refused = any(text in said for text in ("Operation not permitted", "Permission denied",
                                                "No space left on device"))
        runtime, _ = confinement.where()
        if refused and runtime:
            # In a container, say which flag is missing (a host that refuses user namespaces is
            # told so below, as anywhere else).
            missing = confinement.diagnose(confinement.gather(said))
            if [m.piece for m in missing] != ["user ns"]:
                return SandboxError(
                    f"{confinement.NAMES[runtime]} withholds what the lab needs: "
                    + "; ".join(f"{m.piece} (fix: {m.fix})" for m in missing)
                    + ". `netkit doctor` (or notebook 00) says more")
        if refused:
            if self.userns:
                return SandboxError(
                    "this machine does not let an unprivileged user create the lab's namespaces "
                    f"(unshare said: {said}); fix one of: run as root (sudo), or allow user namespaces: "
                    "sudo sysctl -w kernel.unprivileged_userns_clone=1 (Debian), "
                    "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+), "
                    "sudo sysctl -w user.max_user_namespaces=15000; `netkit doctor` checks which applies")
            return SandboxError(
                f"root could not create the lab's namespaces (unshare said: {said}); this looks like a "
                "container without CAP_SYS_ADMIN: run the kit on a VM or laptop, or start the container as "
                "the README's section \"On macOS or Windows (a container)\" says; `netkit doctor` says more")
        return SandboxError(f"the lab's host process did not start: {said}; `netkit doctor` says what is missing")

    def _find_init_pid(self) -> int:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            kids = _children(self.proc.pid)
            if kids:
                return kids[0]
            time.sleep(0.005)
        raise SandboxError("the lab's host process started but its pid could not be read from /proc")

    def write_record(self, stage: str, detached: bool = False) -> LabRecord:
        record = LabRecord(name=self.name, pid=self.proc.pid, init_pid=self.init_pid,
                           owner_pid=os.getpid(), userns=self.userns, stage=stage,
                           started=time.time(), detached=detached)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record.__dict__))
        os.replace(tmp, self.state_path)
        return record

    # -- talk -------------------------------------------------------------
    def call(self, op: str, **args):
        """Ask the host to do `op`; events on the way go to on_event; errors are raised here."""
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                raise LabNotFound(f"the lab {self.name!r} has ended; start a new one with Lab()")
            rid = self._next_id
            self._next_id += 1
            try:
                self.proc.stdin.write((json.dumps({"id": rid, "op": op, "args": args}) + "\n").encode())
                self.proc.stdin.flush()
            except BrokenPipeError:
                raise LabNotFound(f"the lab {self.name!r} has ended; start a new one with Lab()") from None
            return self._read_answer(rid)

    def _read_answer(self, rid: int):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise LabNotFound(f"the lab {self.name!r} ended unexpectedly; "
                                  + (" ".join(self._stderr[-3:]) or "start a new one with Lab()"))
            message = json.loads(line)
            if "event" in message:
                if self.on_event:
                    self.on_event(message)
                continue
            if message.get("id") != rid:
                continue  # the answer to a call that was interrupted (Ctrl-C)
            if message["ok"]:
                return message["result"]
            raise from_wire(message["error"])

    # -- stop -------------------------------------------------------------
    def close(self, keep_record: bool = False) -> None:
        """End the lab: close the pipe, and make sure every process of it is gone."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()  # --kill-child takes the lab's pid 1, and the kernel the rest
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        if not keep_record:
            self.state_path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """True if `pid` exists and has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def stop(record: LabRecord, timeout: float = 2.0) -> None:
    """End a lab found by its state file (`netkit down`).

    Only the lab's pid 1 is killed: its parent, the unshare process, reaps it at once and
    exits. Killing unshare too would orphan pid 1, and its zombie would hold the lab's pid
    namespace until the machine's init gets round to reaping it.
    """
    try:
        os.kill(record.init_pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while (record.alive() or _running(record.pid)) and time.monotonic() < deadline:
        time.sleep(0.01)
    if _running(record.pid):
        os.kill(record.pid, signal.SIGKILL)
    record.path.unlink(missing_ok=True)
