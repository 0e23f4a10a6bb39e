"""Running programs in a lab's nodes, from the lab's host: the nodes' PATH and environment, and how a node is
entered. The lab's host (`netkit.agent`) runs every command through `run`; its probes, traces and the
terminal's ``netkit exec`` build their argv with `node_argv`. Standard library only, like the host.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time

from . import arguments, topology
from .errors import CommandError
from .i18n import _

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")
"""The lab's own programs (its docker-proxy), first on the nodes' PATH."""

PATH = f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""Nodes get root's PATH, so `route`, `iptables` and `sysctl` are found as in the article, after the lab's
own folder: `docker-proxy` in a node is the lab's, even where Docker is installed on the machine."""

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


def run(node: str, command: str | None = None, timeout: float = 10.0, stdin: str | None = None, *,
        argv: list[str] | None = None, cancel: threading.Event | None = None,
        cap: int = arguments.OUTPUT_CAP) -> dict:
    """Run a shell command (or, with `argv`, one program without a shell) in a node.

    Returns a dict like CommandResult and never raises on exit codes. Each
    stream keeps its first `cap` bytes; the rest is read and counted, not
    kept. The command ends at `timeout`, or when `cancel` is set.
    """
    topology.check_node(node)
    program = argv if argv is not None else ["sh", "-c", command]
    shown = command if argv is None else shlex.join(argv)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            node_argv(node, program), env=ENV, cwd="/",
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        raise CommandError(_("[{node}] {shown} could not start: {strerror}")
                           .format(node=node, shown=shown, strerror=exc.strerror), node=node, command=shown,
                           errno=exc.errno) from None
    kept = {"stdout": bytearray(), "stderr": bytearray()}
    total = {"stdout": 0, "stderr": 0}

    def read(stream, key) -> None:
        while chunk := stream.read1(65536):
            total[key] += len(chunk)
            room = cap - len(kept[key])
            if room > 0:
                kept[key] += chunk[:room]

    readers = [threading.Thread(target=read, args=(proc.stdout, "stdout"), daemon=True),
               threading.Thread(target=read, args=(proc.stderr, "stderr"), daemon=True)]
    for reader in readers:
        reader.start()
    if stdin is not None:
        def feed() -> None:
            try:
                proc.stdin.write(stdin.encode())
                proc.stdin.close()
            except OSError:
                pass
        threading.Thread(target=feed, daemon=True).start()
    timed_out = cancelled = False
    deadline = started + timeout
    while proc.poll() is None:
        if cancel is not None and cancel.is_set():
            cancelled = True
        elif time.monotonic() >= deadline:
            timed_out = True
        else:
            try:
                proc.wait(0.02)
            except subprocess.TimeoutExpired:
                pass
            continue
        kill_group(proc.pid)
        proc.wait()
    for reader in readers:
        reader.join(1.0)   # a program that left a child holding the pipe is not waited for
    cut = {key: total[key] for key in total if total[key] > cap}
    return {
        "node": node, "command": shown,
        "stdout": kept["stdout"].decode(errors="replace"), "stderr": kept["stderr"].decode(errors="replace"),
        "returncode": proc.returncode, "timed_out": timed_out or cancelled,
        "seconds": round(time.monotonic() - started, 4), "cut": cut,
    }


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
