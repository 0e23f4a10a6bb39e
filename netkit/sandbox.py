"""Start, talk to and stop the isolated process that plays a lab's host.

A lab's host is `netkit.agent`, started under ``unshare`` in network, mount
and pid namespaces of its own (plus a user namespace when we are not root).
Nothing of the lab is ever linked to the machine's own network namespace.

The owner's side (`Sandbox`) talks to the agent in JSON lines over a pipe.
One thread reads the agent's answers; when the pipe reaches its end the lab
has ended (closed, `netkit down`, a crash), and that thread at once reaps the
``unshare`` process and lets go of the lab's name (`netkit.state.Claim`), so
no zombie waits for whatever the machine's pid 1 is, and the name is free.

Every call is bounded: the agent bounds its own work by the call's timeout,
the owner waits that long plus a margin, and Ctrl-C (KeyboardInterrupt)
asks the agent to stop the work at once, so the next call finds the lab
ready.

Programs (``ip``, ``unshare`` ...) are looked up on ``PATH`` and then in the
usual sbin and bin directories; ``NETKIT_TOOL_PATH`` (a ``PATH``-style list)
replaces those directories, e.g. to check the message a machine without
iproute2 gets.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from .errors import LabError, LabNotFound, NetkitError, SandboxError, from_wire
from .state import Claim, Identity, LabRecord, check_name
from .i18n import _, language, translated, untranslated

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
MARGIN = 20.0
"""Seconds the owner waits beyond a call's own timeout before it calls the lab stuck."""


def which(program: str) -> str | None:
    """Find a program on PATH or in the sbin directories a user's PATH may lack."""
    return shutil.which(program) or shutil.which(program, path=os.environ.get("NETKIT_TOOL_PATH", SEARCH_PATH))


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


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


_ENDED = object()


class Sandbox:
    """The owner's end of one lab's host process: start it, talk to it, end it."""

    def __init__(self, name: str, claim: Claim, *, on_event=None) -> None:
        self.name = check_name(name)
        self.claim = claim
        self.on_event = on_event
        self.userns = needs_user_namespace()
        self._lock = threading.Lock()
        self._next_id = 1
        self._answers: queue.Queue = queue.Queue()
        self._stderr: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.init_pid = 0
        self.ended = threading.Event()     # set once every process of the lab has gone
        self.closed_here = False           # True when this process ended it (close()), not someone else
        claim.hold()
        try:
            self._spawn()
        except BaseException:
            self.close()
            if self.proc is None:
                claim.drop()
            raise

    # -- start ------------------------------------------------------------
    def _spawn(self) -> None:
        missing = missing_tools(REQUIRED_TOOLS)
        if missing:
            raise SandboxError(
                _("this machine lacks {tools}; fix: sudo apt-get install {packages} (or run the README's "
                  "setup command)").format(tools=", ".join(sorted(missing)),
                                           packages=" ".join(sorted(set(missing.values())))))
        argv = unshare_argv(self.userns)
        # pid 1 of the lab is a shell that reaps orphans and waits for the agent; the agent
        # keeps the pipe as its stdin (a background job would otherwise get /dev/null). The shell
        # parks the pipe on a spare descriptor: a digit (all sh reads) none of the passed ones uses.
        passed = (self.claim.fd, self.claim.state.fd)
        spare = next(n for n in range(3, 10) if n not in passed)
        argv += ["sh", "-c", f'exec {spare}<&0; "$@" <&{spare} {spare}<&- & exec {spare}<&-; wait', "netkit-lab",
                 sys.executable, "-S", "-m", "netkit.agent", "--name", self.name, "--lock-fd", str(self.claim.fd),
                 "--state-dir-fd", str(self.claim.state.fd), "--state-file", self.claim.filename]
        # unshare's messages are read when the start fails (`_start_failure`): untranslated, in every locale.
        env = untranslated()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                          env.get("PYTHONPATH")]))
        # The lab's processes inherit the locked state file: the name is theirs while they live.
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, start_new_session=True, pass_fds=passed)
        threading.Thread(target=self._drain_stderr, daemon=True, name=f"netkit-{self.name}-stderr").start()
        threading.Thread(target=self._read_answers, daemon=True, name=f"netkit-{self.name}-answers").start()
        try:
            self.hello = self._answer(0, deadline=time.monotonic() + 30, op="start")
        except LabNotFound:
            raise self._start_failure() from None
        self.init_pid = self._find_init_pid()
        self.top = Identity.of(self.proc.pid)
        self.init = Identity.of(self.init_pid)
        if self.top is None or self.init is None:
            raise SandboxError(_("the lab's host process started but could not be read in /proc"))

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip())
            del self._stderr[:-50]

    def _read_answers(self) -> None:
        """Every line the agent writes, into the queue; at the end, reap the lab and let go of its name."""
        try:
            for line in self.proc.stdout:
                try:
                    self._answers.put(json.loads(line))
                except ValueError:
                    self._stderr.append(f"(not a message: {line[:200]!r})")
        finally:
            self._answers.put(_ENDED)
            try:
                self.proc.wait()       # unshare exits as soon as the lab's pid 1 has: reap it now
            finally:
                self.ended.set()
                self.claim.drop()

    def _start_failure(self) -> NetkitError:
        self.ended.wait(5)
        said = " ".join(self._stderr[-3:]) or f"exit {self.proc.returncode}"
        # EPERM/EACCES: user namespaces forbidden; ENOSPC: user.max_user_namespaces reached (e.g. 0).
        # unshare(1) reports the errno only as its C library's strerror (its exit status is 1 for any
        # failure), and it runs under LC_ALL=C (the Popen's env), so that text is the errno's C-locale
        # text, which os.strerror gives here too: never a sentence in the user's language.
        refused = any(os.strerror(code) in said for code in (errno.EPERM, errno.EACCES, errno.ENOSPC))
        from . import confinement   # only a refused start needs it
        runtime = confinement.where()[0]
        if refused and runtime:
            # In a container, say which flag is missing (a host that refuses user namespaces is
            # told so below, as anywhere else).
            missing = confinement.diagnose(confinement.gather(said))
            if [m.piece for m in missing] != ["user ns"]:
                return SandboxError(
                    _("{runtime} withholds what the lab needs: {missing}. `netkit doctor` (or notebook 00) "
                      "says more").format(runtime=translated(confinement.NAMES[runtime]),
                                          missing="; ".join(_("{piece} (fix: {fix})").format(
                                              piece=translated(m.piece), fix=m.fix) for m in missing)))
        if refused:
            if self.userns:
                return SandboxError(
                    _("this machine does not let an unprivileged user create the lab's namespaces (unshare "
                      "said: {said}); fix one of: run as root (sudo), or allow user namespaces: sudo sysctl "
                      "-w kernel.unprivileged_userns_clone=1 (Debian), sudo sysctl -w "
                      "kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+), sudo sysctl -w "
                      "user.max_user_namespaces=15000; `netkit doctor` checks which applies")
                    .format(said=said))
            return SandboxError(
                _("root could not create the lab's namespaces (unshare said: {said}); this looks like a "
                  "container without CAP_SYS_ADMIN: run the kit on a VM or laptop, or start the container as "
                  'the README\'s section "On macOS or Windows (a container)" says; `netkit doctor` says more')
                .format(said=said))
        return SandboxError(_("the lab's host process did not start: {said}; `netkit doctor` says what is "
                              "missing").format(said=said))

    def _find_init_pid(self) -> int:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            kids = _children(self.proc.pid)
            if kids:
                return kids[0]
            time.sleep(0.005)
        raise SandboxError(_("the lab's host process started but its pid could not be read from /proc"))

    @property
    def state_path(self) -> Path:
        """The lab's state file (its claim on the name)."""
        return self.claim.path

    def record(self, stage: str, *, kept: bool = False) -> LabRecord:
        """The state file's record for this sandbox, written into the lab's claimed file."""
        record = LabRecord(name=self.name, uid=os.geteuid(), pid=self.top.pid, pid_start=self.top.start,
                           init_pid=self.init.pid, init_start=self.init.start, owner_pid=os.getpid(),
                           userns=self.userns, stage=stage, started=time.time(), kept=kept)
        self.claim.write(record)
        return record

    # -- talk -------------------------------------------------------------
    def call(self, op: str, *, wait: float = 30.0, **args):
        """Ask the host to do `op` and wait at most `wait` (+ a margin) for the answer.

        Events on the way go to on_event; errors are raised here. Ctrl-C asks
        the host to stop the work and raises KeyboardInterrupt.
        """
        with self._lock:
            if self.proc is None or self.ended.is_set():
                raise self.gone()
            rid = self._next_id
            self._next_id += 1
            self._send({"id": rid, "op": op, "args": args, "lang": language()})   # the host answers in it
            try:
                return self._answer(rid, deadline=time.monotonic() + wait + MARGIN, op=op)
            except KeyboardInterrupt:
                self._send({"cancel": rid}, quiet=True)
                raise

    def _send(self, message: dict, quiet: bool = False) -> None:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            if not quiet:
                raise self.gone() from None

    def _answer(self, rid: int, *, deadline: float, op: str):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if rid:
                    self._send({"cancel": rid}, quiet=True)
                raise LabError(_("the lab {name!r} did not answer {op!r} in time; it has been asked to stop "
                                 "that work. If the next call is slow too, start again with lab.reset()")
                               .format(name=self.name, op=op),
                               name=self.name, op=op)
            try:
                message = self._answers.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if message is _ENDED:
                self._answers.put(_ENDED)   # later calls see the end too
                raise self.gone(unexpected=True)
            if "event" in message:
                if self.on_event:
                    self.on_event(message)
                continue
            if message.get("id") != rid:
                continue  # the answer to a call that was interrupted (Ctrl-C) or timed out
            if message["ok"]:
                return message["result"]
            raise from_wire(message["error"])

    def gone(self, unexpected: bool = False) -> LabNotFound:
        if self.closed_here:
            return LabNotFound(_("the lab {name!r} has ended (it was closed here); start a new one with Lab()")
                               .format(name=self.name),
                               name=self.name)
        said = " ".join(self._stderr[-3:])
        return LabNotFound(
            _("the lab {name!r} has ended (stopped from outside, e.g. `netkit down`, or its host process "
              "died{value}); start a new one with Lab()")
            .format(name=self.name, value=': ' + said if said and unexpected else ''), name=self.name)

    # -- stop -------------------------------------------------------------
    def hand_over(self) -> None:
        """Before a reset closes this host: the name's file now belongs to the new one, keep it."""
        self.call("keep_state")

    def close(self) -> None:
        """End the lab: close the pipe, and make sure every process of it is gone."""
        proc = self.proc
        if proc is None or self.closed_here:
            return
        self.closed_here = True
        try:
            proc.stdin.close()
        except OSError:
            pass
        if not self.ended.wait(2):
            # The agent did not leave when its pipe closed: end its pid 1 (it is ours, checked),
            # and the kernel ends the rest. --kill-child then takes unshare along.
            if self.init_pid and getattr(self, "init", None):
                self.init.kill()
            else:
                proc.kill()
            self.ended.wait(5)
        for stream in (proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
