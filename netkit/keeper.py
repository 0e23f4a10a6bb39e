"""The keeper: one process per user that holds the labs `netkit up` starts.

A lab lives as long as somebody holds its pipe, and ends the moment that
holder goes (`netkit.sandbox`). A notebook holds its own labs. A lab started
from a terminal with `netkit up` must outlive the command, so the command
asks this user's keeper to start it, and the keeper holds it until
`netkit down` (or until the keeper itself is killed, which ends its labs).

Why one keeper, and not a process per lab: whoever exits last in a chain of
processes whose parent has gone is left for the machine's pid 1 to reap. In
a container or a JupyterHub single-user server that pid 1 may reap nothing,
so every lab that ended would leave a zombie. The keeper reaps each lab's
processes itself, and when it has no lab left it exits only if the process
that adopted it reaps (it catches or ignores SIGCHLD); otherwise it stays,
idle, so that nothing becomes a zombie, until `netkit down --all` ends it.

The keeper listens on ``<state dir>/.keeper.sock`` (the directory is the
user's own, mode 700, and the peer's uid is checked too) and claims
``.keeper.json`` like a lab claims its name, so two `netkit up` that race
start one keeper. Requests and answers are JSON lines:

    {"op": "up", "name": N, "stage": S}  -> {"event": ...}*, then {"ok": true, "record": {...}}
    {"op": "quit"}                       -> {"ok": true}; the keeper ends its labs and exits
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import topology
from .errors import LabError, NetkitError, from_wire, to_wire
from .sandbox import Sandbox
from .state import KEEPER, Claim, Identity, StateDir, _held, _lock, check_name, reaps_children
from .i18n import _

SOCKET = KEEPER + ".sock"
GRACE = 1.0
"""Seconds an idle keeper waits for another `netkit up` before it exits (where it may)."""


# -- the client side: `netkit up` and `netkit down --all` ------------------------------------
def _connect(state: StateDir) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(state.path / SOCKET))
    except OSError:
        sock.close()
        return None
    return sock


def running(state: StateDir) -> Identity | None:
    """The keeper of this state directory, if one runs (read from its claim file)."""
    try:
        fd = state.open(KEEPER + ".json", os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if not _held(fd):
            return None
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return None
    finally:
        os.close(fd)
    ident = Identity(data.get("pid", 0), data.get("start", 0), state.uid)
    return ident if ident.pid and ident.current() else None


def _start(state: StateDir) -> None:
    log = state.open(KEEPER + ".log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                      env.get("PYTHONPATH")]))
    env["NETKIT_RUNTIME_DIR"] = str(state.path)
    try:
        subprocess.Popen([sys.executable, "-m", "netkit.keeper"], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=log, cwd="/", env=env, start_new_session=True)
    finally:
        os.close(log)


def connect(state: StateDir, seconds: float = 15.0) -> socket.socket:
    """A connection to this user's keeper, starting one if none runs."""
    sock = _connect(state)
    if sock is not None:
        return sock
    _start(state)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
        sock = _connect(state)
        if sock is not None:
            return sock
    raise LabError(_("the netkit keeper did not start within {seconds:g} s; see {value}")
                   .format(seconds=seconds, value=state.path / (KEEPER + '.log')))


def _lines(sock: socket.socket):
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


def up(name: str, stage: str, on_event=None, state: StateDir | None = None) -> dict:
    """Have the keeper start lab `name` at `stage`; returns its record (a dict)."""
    check_name(name)
    topology.stage(stage)
    own = state is None
    state = StateDir() if own else state
    try:
        with connect(state) as sock:
            sock.sendall((json.dumps({"op": "up", "name": name, "stage": stage}) + "\n").encode())
            for message in _lines(sock):
                if "event" in message:
                    if on_event:
                        on_event(message)
                    continue
                if message.get("ok"):
                    return message["record"]
                raise from_wire(message["error"])
        raise LabError(_("the netkit keeper stopped before the lab was up; see {value}")
                       .format(value=state.path / (KEEPER + '.log')))
    finally:
        if own:
            state.close()


def quit(state: StateDir) -> bool:
    """Ask this user's keeper to end its labs and exit; False if none was running."""
    sock = _connect(state)
    if sock is None:
        return False
    with sock:
        sock.sendall(b'{"op": "quit"}\n')
        next(_lines(sock), None)
    ident = running(state)
    deadline = time.monotonic() + 5
    while ident is not None and ident.current() and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


# -- the keeper itself ---------------------------------------------------------------------
class Keeper:
    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.labs: dict[str, Sandbox] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.quitting = False

    def serve(self, server: socket.socket) -> None:
        threading.Thread(target=self._linger, daemon=True).start()
        while True:
            conn = server.accept()[0]
            uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid != self.state.uid:
                conn.close()   # the directory is private already; a stranger still gets nothing
                continue
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket, message: dict) -> None:
        conn.sendall((json.dumps(message) + "\n").encode())

    def _client(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = next(_lines(conn))
            except (StopIteration, ValueError, OSError):
                return
            try:
                if request.get("op") == "quit":
                    self._send(conn, {"ok": True})
                    self._quit()
                elif request.get("op") == "up":
                    record = self._up(conn, request.get("name"), request.get("stage"))
                    self._send(conn, {"ok": True, "record": record})
                else:
                    raise LabError(_("the keeper has no operation {get!r}").format(get=request.get('op')))
            except NetkitError as exc:
                try:
                    self._send(conn, {"ok": False, "error": to_wire(exc)})
                except OSError:
                    pass
            except OSError:
                pass   # the client went away (Ctrl-C on `netkit up`): _up has cleaned up

    def _up(self, conn: socket.socket, name, stage) -> dict:
        check_name(name)
        topology.stage(stage)
        with self.lock:
            if self.quitting:
                raise LabError(_("the netkit keeper is exiting; run `netkit up` again"))
        claim = Claim(name, self.state)
        try:
            box = Sandbox(name, claim, on_event=lambda event: self._send(conn, event))
        finally:
            claim.drop()        # the sandbox holds the claim from here on
        try:
            box.call("build", stage=stage, wait=120)
            record = box.record(stage, kept=True)
        except BaseException:
            box.close()
            raise
        with self.lock:
            self.labs[name] = box
            self.changed.notify_all()
        threading.Thread(target=self._forget_when_ended, args=(name, box), daemon=True).start()
        return record.__dict__

    def _forget_when_ended(self, name: str, box: Sandbox) -> None:
        box.ended.wait()           # `netkit down` ended it; its processes are reaped by now
        box.close()
        with self.lock:
            if self.labs.get(name) is box:
                del self.labs[name]
            self.changed.notify_all()

    def _quit(self) -> None:
        with self.lock:
            self.quitting = True
            boxes = list(self.labs.values())
        for box in boxes:
            box.close()
        os._exit(0)

    def _linger(self) -> None:
        """Exit once idle, where the adopting parent reaps; else stay (see the module's docstring)."""
        while True:
            with self.lock:
                while self.labs:
                    self.changed.wait()
            time.sleep(GRACE)
            with self.lock:
                if self.labs:
                    continue
                if reaps_children(os.getppid()):
                    self.quitting = True
                    os._exit(0)
                self.changed.wait()   # stay idle until a lab comes and goes again


def main() -> None:
    argparse.ArgumentParser(prog="netkit.keeper", description=__doc__.split("\n")[0]).parse_args()
    state = StateDir()
    # Claimed like a lab's name (the same lock), so two keepers never serve one directory.
    fd = state.open(KEEPER + ".json", os.O_RDWR | os.O_CREAT)
    if not _lock(fd) or not state.same_file(fd, KEEPER + ".json"):
        print("netkit keeper: another keeper serves this directory", file=sys.stderr)
        sys.exit(0)
    me = Identity.of(os.getpid())
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": me.pid, "start": me.start}).encode(), 0)
    path = state.path / SOCKET
    try:
        os.unlink(SOCKET, dir_fd=state.fd)   # a dead keeper's socket: we hold the claim now
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(16)
    print(f"netkit keeper {me.pid} serving {path}", file=sys.stderr, flush=True)
    Keeper(state).serve(server)


if __name__ == "__main__":
    main()
