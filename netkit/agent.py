"""The lab's host: a process that lives inside the sandbox and does the kernel work.

``netkit.sandbox`` starts it as::

    unshare --net --mount --pid --fork --mount-proc --kill-child [--user --map-root-user] \\
        sh -c '... "$@" & wait' netkit-lab python -m netkit.agent --name LAB --state FILE

so it is born in network, mount and pid namespaces of its own (the lab's
``host`` node). A shell is the lab's pid 1: it only reaps orphans and waits
for the agent. Requests and answers are JSON lines on stdin and stdout; the
agent never prints anything else there.

Nothing outlives the lab, and the kernel sees to it: when the notebook that
owns the lab goes away its end of the pipe closes, the agent exits, the shell
(pid 1) follows, and with pid 1 of a pid namespace gone the kernel kills
every process of the lab; the namespaces of c1, c2 and internet are bind
mounts in the lab's private mount namespace, so they go with it.

Only the standard library is imported: scapy builds probe packets in the
notebook's process, which has it loaded anyway, and the agent sends the bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import topology
from .errors import CommandError, NetkitError, SandboxError, UnknownStage, to_wire

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""Nodes get root's PATH, so `route`, `iptables` and `sysctl` are found as in the article."""

ENV = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb"}


def sys_read_only() -> bool:
    """True where /sys is mounted read-only: in a container (Docker, Podman, a pod)."""
    return bool(os.statvfs("/sys").f_flag & os.ST_RDONLY)


NODE_SYSFS = 'mount -t sysfs -o ro netkit-sys /sys && exec "$@"'


def sysfs_argv(mount: str = "mount") -> list[str]:
    """The mount of the lab host's own /sys (read-only where /sys is, see `_mount_private_dirs`)."""
    return [mount, "-t", "sysfs", *(["-o", "ro"] if sys_read_only() else []), "netkit-sys", "/sys"]


def node_argv(node: str, argv: list[str]) -> list[str]:
    """The argv that runs `argv` inside `node` (from the agent's namespace).

    `ip netns exec` enters the node and mounts a /sys showing the node's interfaces.
    In a container the lab's own /sys is read-only; `ip netns exec` unmounts it and
    asks for a read-write sysfs, which the kernel refuses inside a user namespace,
    so there the node is entered with nsenter and gets a read-only sysfs instead.
    """
    if node == "host":
        return argv
    if not sys_read_only():
        return ["ip", "netns", "exec", node, *argv]
    return ["nsenter", f"--net=/run/netns/{node}", "--", "unshare", "--mount", "--",
            "sh", "-c", NODE_SYSFS, f"netkit-{node}", *argv]


def run(node: str, command: str, timeout: float = 10.0, stdin: str | None = None) -> dict:
    """Run a shell command in a node; a dict like CommandResult, never raises on exit codes."""
    topology.check_node(node)
    started = time.monotonic()
    proc = subprocess.Popen(
        node_argv(node, ["sh", "-c", command]), env=ENV, cwd="/",
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        out, err = proc.communicate()
    return {
        "node": node, "command": command,
        "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace"),
        "returncode": proc.returncode, "timed_out": timed_out,
        "seconds": round(time.monotonic() - started, 4),
    }


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Agent:
    """Serves one lab: requests in, answers and events out."""

    def __init__(self, out) -> None:
        self.out = out
        self.detached = False
        self.stage: str | None = None
        self.lock = threading.Lock()
        self._prober = None
        self.background: list[subprocess.Popen] = []
        self._tcpdump_works: bool | None = None

    # -- the wire ---------------------------------------------------------
    def emit(self, message: dict) -> None:
        with self.lock:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()

    def serve(self, requests) -> None:
        for request in iter(requests.get, None):
            rid = request.get("id")
            try:
                handler = getattr(self, "op_" + request["op"])
                result = handler(**request.get("args", {}))
                self.emit({"id": rid, "ok": True, "result": result})
            except NetkitError as exc:
                self.emit({"id": rid, "ok": False, "error": to_wire(exc)})
            except Exception as exc:  # a bug in netkit: say so, keep serving
                self.emit({"id": rid, "ok": False, "error": {
                    "kind": "NetkitError",
                    "message": f"the lab's host hit an internal error: {type(exc).__name__}: {exc}; "
                               "please report it with `netkit doctor` output"}})

    # -- operations -------------------------------------------------------
    def op_hello(self) -> dict:
        return {"pid": os.getpid(), "uid": os.getuid(), "kernel": os.uname().release}

    def op_build(self, stage: str) -> dict:
        """Bring an empty sandbox to `stage`, echoing each step as it runs."""
        if self.stage is not None:
            raise UnknownStage(f"this lab was already built at {self.stage!r}; use lab.reset(stage)")
        steps = topology.steps_to(stage)
        started = time.monotonic()
        index = 0
        while index < len(steps):
            batch = _ip_batch(steps, index)
            for offset, step in enumerate(batch):
                self.emit({"event": "step", "node": step.node, "command": step.command,
                           "why": step.why, "index": index + offset, "total": len(steps)})
            if len(batch) > 1:
                result = run(batch[0].node, "ip -batch -", stdin="".join(s.command[3:] + "\n" for s in batch))
                if result["returncode"] != 0:
                    failed = re.search(r"Command failed -:(\d+)", result["stderr"])
                    step = batch[int(failed[1]) - 1] if failed else batch[0]
                    raise _build_error(step, result)
            elif batch[0].command.endswith("&"):
                self.op_start(batch[0].node, batch[0].command[:-1].strip(), batch[0].ready_port)
            else:
                result = run(batch[0].node, batch[0].command)
                if result["returncode"] != 0:
                    raise _build_error(batch[0], result)
            index += len(batch)
        _wait_for_links_up()
        self.stage = stage
        threading.Thread(target=self._warm, daemon=True).start()
        return {"stage": stage, "steps": len(steps), "seconds": round(time.monotonic() - started, 4)}

    def _warm(self) -> None:
        try:
            self.prober().warm()
        except Exception as exc:  # the first probe will say what is wrong, with context
            print(f"netkit agent: could not get probes ready: {exc}", file=sys.stderr)

    def op_run(self, node: str, command: str, timeout: float = 10.0, stdin: str | None = None) -> dict:
        return run(node, command, timeout, stdin)

    def op_start(self, node: str, command: str, port: int | None = None, timeout: float = 5.0) -> dict:
        """Start a program that keeps running (a server) in `node`; ready once `port` listens."""
        topology.check_node(node)
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(node_argv(node, ["sh", "-c", f"exec {command}"]), env=ENV, cwd="/",
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.background.append(proc)
        deadline = time.monotonic() + timeout
        while port is not None and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _listening(node, port):
                return {"pid": proc.pid, "node": node, "command": command, "port": port}
            time.sleep(0.01)
        if proc.poll() is None and port is None:
            return {"pid": proc.pid, "node": node, "command": command, "port": None}
        _kill_group(proc.pid)
        proc.wait()
        log.seek(0)
        said = log.read().decode(errors="replace").strip()[-500:]
        raise CommandError(f"[{node}] {command} did not start listening on port {port}: "
                           f"{said or f'exit {proc.returncode}'}")

    def op_probe(self, src: str, dst: str, proto: str = "icmp", timeout: float = 0.5,
                 ident: int | None = None, packet: str | None = None, port: int | None = None) -> dict:
        """Send one probe and record what every point, the trace and conntrack saw.

        icmp: `packet` is the ICMP echo (hex). tcp: a connection to `port`; its SYN is the probe.
        """
        if proto == "tcp":
            return self.prober().tcp(src, dst, port, timeout)
        if proto != "icmp":
            raise NetkitError(f"probes speak icmp or tcp, not {proto!r}")
        return self.prober().icmp(src, dst, timeout, ident, bytes.fromhex(packet) if packet else None)

    def prober(self):
        if self._prober is None:
            from .probe import Prober
            self._prober = Prober()
        return self._prober

    def op_tcpdump(self, point: str, node: str, command: str, expression: str = "icmp",
                   timeout: float = 10.0) -> dict:
        """Run tcpdump on `point` while `command` runs in `node`: the article's two windows."""
        where, ifname = topology.split_point(point)
        topology.check_node(node)
        shown = f"tcpdump -n -i {ifname} {expression}".strip()
        if self._tcpdump_works is not False:
            try:
                answer = _tcpdump(where, ifname, expression, lambda: run(node, command, timeout))
                self._tcpdump_works = True
            except _CannotDropPrivileges:
                self._tcpdump_works = False
            else:
                return {"capture": {"node": where, "command": shown, **answer}}
        # In a user namespace tcpdump cannot switch users (setgroups is denied), so it
        # refuses to run at all; netkit's own capture prints the same lines, and says so.
        from .probe import watch_point
        lines = watch_point(where, ifname, expression, lambda: run(node, command, timeout))
        note = ("(netkit's own capture, in tcpdump's format: tcpdump cannot drop privileges "
                "inside a user namespace)\n")
        return {"capture": {"node": where, "command": shown, "stdout": "".join(lines), "stderr": note,
                            "returncode": 0, "timed_out": False, "seconds": 0.0}}

    def op_detach(self) -> dict:
        """Keep running when the owner's pipe closes (for `netkit up`)."""
        self.detached = True
        return {"detached": True}


def _listening(node: str, port: int) -> bool:
    """Does something in `node` accept TCP connections on `port` (tried on 127.0.0.1)?"""
    import socket

    from .probe import socket_in
    sock = socket_in(node, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(0.2)
    try:
        return sock.connect_ex(("127.0.0.1", port)) == 0
    finally:
        sock.close()


def _wait_for_links_up(seconds: float = 2.0) -> None:
    """Wait until every interface of the host that is up also reports it (operstate "up").

    The kernel tells a bridge's carrier change late (up to a second, batched),
    so right after the build `ip link` would still say "state UNKNOWN" for
    hwchiu0; a lab is ready when it reads as the article shows it.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        waiting = []
        for name in os.listdir("/sys/class/net"):
            try:
                flags = int(open(f"/sys/class/net/{name}/flags").read(), 16)
                operstate = open(f"/sys/class/net/{name}/operstate").read().strip()
            except OSError:
                continue
            if name != "lo" and flags & 0x1 and operstate != "up":
                waiting.append(name)
        if not waiting:
            return
        time.sleep(0.01)


class _CannotDropPrivileges(Exception):
    pass


def _tcpdump(node: str, ifname: str, expression: str, during) -> dict:
    """tcpdump on node:ifname while `during()` runs; its output once it has stopped."""
    argv = node_argv(node, ["tcpdump", "-l", "-n", "-i", ifname, *expression.split()])
    dump = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    lines: list[tuple[str, str]] = []
    listening = threading.Event()

    def read(stream, kind) -> None:
        for line in stream:
            lines.append((kind, line))
            if "listening on" in line:
                listening.set()
        listening.set()

    readers = [threading.Thread(target=read, args=(dump.stderr, "err"), daemon=True),
               threading.Thread(target=read, args=(dump.stdout, "out"), daemon=True)]
    for reader in readers:
        reader.start()
    if not listening.wait(5) or dump.poll() is not None:
        _kill_group(dump.pid)
        dump.wait()
        said = "".join(text for _, text in lines).strip()
        if "Couldn't change to" in said:
            raise _CannotDropPrivileges(said)
        raise CommandError(f"tcpdump could not listen on {node}:{ifname}: {said or 'no answer'}")
    result = during()
    time.sleep(0.1)  # tcpdump prints what it saw a moment after the kernel passed it on
    os.killpg(dump.pid, signal.SIGINT)
    try:
        dump.wait(2)
    except subprocess.TimeoutExpired:
        _kill_group(dump.pid)
    for reader in readers:
        reader.join(1)
    return {"stdout": "".join(text for kind, text in lines if kind == "out"),
            "stderr": "".join(text for kind, text in lines if kind == "err" and "listening on" not in text),
            "returncode": 0, "timed_out": False, "seconds": result["seconds"]}


def _ip_batch(steps, start: int) -> list:
    """The longest run of `ip` steps in one node from `start` (one `ip -batch` runs them all)."""
    batch = [steps[start]]
    if not steps[start].command.startswith("ip ") or " netns " in steps[start].command:
        return batch
    for step in steps[start + 1:]:
        if step.node != batch[0].node or not step.command.startswith("ip ") or " netns " in step.command:
            break
        batch.append(step)
    return batch


def _build_error(step: topology.Step, result: dict) -> NetkitError:
    said = (result["stderr"] or result["stdout"]).strip()
    if "bridge-nf-call-iptables" in step.command and ("No such file" in said or "cannot stat" in said):
        return SandboxError(
            "the kernel module br_netfilter is not loaded, so bridged frames cannot go through "
            "iptables (scenario 1 of the article needs that); fix: sudo modprobe br_netfilter (in a container: "
            "on the machine or VM it runs on; `netkit doctor` says more)")
    return CommandError(f"building the lab failed at step {step}: {said or 'exit ' + str(result['returncode'])}")


def _read_requests(stream, queue, agent: Agent, on_exit) -> None:
    for line in stream:
        line = line.strip()
        if line:
            queue.put(json.loads(line))
    # The owner's end closed: the owner has gone (closed, crashed or was killed).
    if not agent.detached:
        on_exit()
        os._exit(0)


def _mount_private_dirs() -> None:
    """A /run of the lab's own (for /run/netns) and a /sys that shows the lab's interfaces.

    In a container /sys is read-only, and inside a user namespace the kernel refuses a
    read-write sysfs over a read-only one; the lab only reads /sys, so it then mounts
    its own read-only too (and enters nodes as `node_argv` says).
    """
    for argv in (["mount", "-t", "tmpfs", "-o", "mode=755", "netkit-run", "/run"], sysfs_argv()):
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise SandboxError(f"the lab could not mount its private {argv[-1]}: {done.stderr.strip()}; "
                               "`netkit doctor` says what this machine (or container) withholds, and the fix")
    os.makedirs("/run/netns", exist_ok=True)


def _die_with_parent() -> None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="netkit.agent")
    parser.add_argument("--name", required=True)
    parser.add_argument("--state", help="the lab's state file, removed when the lab ends")
    args = parser.parse_args(argv)

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by mistake goes to stderr, never onto the wire
    _die_with_parent()

    state_dir_fd = state_name = None
    if args.state:
        state_dir_fd = os.open(os.path.dirname(args.state) or ".", os.O_RDONLY | os.O_DIRECTORY)
        state_name = os.path.basename(args.state)

    try:
        _mount_private_dirs()
    except SandboxError as exc:
        out.write(json.dumps({"id": 0, "ok": False, "error": to_wire(exc)}) + "\n")
        os._exit(3)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import queue as queue_module
    requests: queue_module.Queue = queue_module.Queue()
    agent = Agent(out)

    def forget_state() -> None:
        if state_dir_fd is not None:
            try:
                os.unlink(state_name, dir_fd=state_dir_fd)
            except OSError:
                pass

    threading.Thread(target=_read_requests, args=(sys.stdin, requests, agent, forget_state),
                     daemon=True).start()
    agent.emit({"id": 0, "ok": True, "result": agent.op_hello()})
    agent.serve(requests)


if __name__ == "__main__":
    main()
