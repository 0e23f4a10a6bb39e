"""What the lab tests look at: the machine's own network, and the traces a lab leaves.

Everything here only *reads* the machine: `ip`, `iptables-save` and `nft`
without a write verb, and files under /proc. The tests change nothing
outside the lab's own namespaces.

- `machine_snapshot()` reads the machine's network (links, addresses, routes,
  rules, iptables, nftables, bridge and forwarding sysctls, named network
  namespaces, namespace mounts), with volatile counters masked;
  `snapshot_diff()` says what differs between two snapshots.
- `lab_traces(lab)` names everything a running lab is made of (its processes,
  its network, mount, pid and user namespaces by inode, its state file);
  `leftovers(traces)` scans all of /proc for any of them; `wait_gone()` polls
  that scan until nothing is left, for up to 10 s. The design promises a
  second; that is a speed goal, measured by bench/bench_lab.py ("close() ->
  all lab processes gone"), not timed here, where a loaded machine is slow.

The kernel hands a freed namespace's inode number to the next namespace it
makes (the lowest free number), so a new host started right after a reset
often shows the old host's `net:[...]`. Where the kernel gives each namespace
a 64-bit id it never reuses (NS_GET_ID, Linux 6.18), the traces keep it and
the scan tells the two apart; without it, a matching number counts.
"""

from __future__ import annotations

import difflib
import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

NAMES: set[str] = set()
"""Every lab name a test asked for, so the suite can check none of them outlives it."""


def lab_name(prefix: str = "t") -> str:
    """A lab name no other test and no other lab on this machine uses."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    NAMES.add(name)
    return name


# -- the machine's own namespace ----------------------------------------------------
_MASKS = (
    (re.compile(r"\[\d+:\d+\]"), "[n:m]"),                        # iptables-save counters
    (re.compile(r"counter packets \d+ bytes \d+"), "counter"),     # nft counters
    (re.compile(r"(valid|preferred)_lft \S+"), r"\1_lft -"),       # address lifetimes
    (re.compile(r"expires -?\d+sec"), "expires -"),                # route lifetimes
    (re.compile(r"(\w+_timer) +[\d.]+"), r"\1 -"),                   # bridge timers in `ip -d link`
)


def _mask(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue  # iptables-save's "Generated on <date>" and "Completed on <date>"
        for pattern, replacement in _MASKS:
            line = pattern.sub(replacement, line)
        lines.append(line.rstrip())
    return "\n".join(lines)


MACHINE_COMMANDS = (
    "ip -d link", "ip addr", "ip route show table all", "ip -6 route show table all", "ip rule",
    "ip -6 rule", "ip netns list", "iptables-save", "ip6tables-save", "nft list ruleset",
)


def _read_command(command: str) -> str:
    done = subprocess.run(command.split(), capture_output=True, text=True, timeout=20)
    return f"exit {done.returncode}\n{_mask(done.stdout)}\n{_mask(done.stderr)}"


ENGINE_PROGRAMS = ("docker", "dockerd", "containerd", "containerd-shim-runc-v2", "ctr", "docker-proxy", "docker-init")
"""What a Docker Engine brings: the tests run one unpacked in a cache (tests/docker_engine.py) and the lab has
its own docker-proxy (netkit/bin, on its nodes' PATH only); none of them may appear on the machine's PATH."""
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def engine_footprint() -> dict[str, str]:
    """Each engine program found on the machine's PATH (with the file's identity: inode, size, mtime), and the
    `docker` group, as they are now (reads only)."""
    import grp
    import shutil

    search = ":".join(dict.fromkeys(os.environ.get("PATH", "").split(":") + SYSTEM_PATH.split(":")))
    found = {}
    for program in ENGINE_PROGRAMS:
        where = shutil.which(program, path=search)
        if where is None:
            found[program] = "absent"
            continue
        info = os.stat(where)
        found[program] = f"{where} inode {info.st_ino} size {info.st_size} mtime {info.st_mtime_ns}"
    try:
        found["group docker"] = f"gid {grp.getgrnam('docker').gr_gid}"
    except KeyError:
        found["group docker"] = "absent"
    return found


def machine_snapshot() -> dict[str, str]:
    """The machine's own network as text, one entry per command or file (reads only)."""
    snap = {command: _read_command(command) for command in MACHINE_COMMANDS}
    for path in sorted(Path("/proc/sys/net/bridge").glob("*")) + [Path("/proc/sys/net/ipv4/ip_forward")]:
        try:
            snap[str(path)] = path.read_text().strip()
        except OSError as exc:
            snap[str(path)] = f"unreadable: {exc.strerror}"
    if not Path("/proc/sys/net/bridge").exists():
        snap["/proc/sys/net/bridge"] = "absent"
    # Mounts the lab could leak into the machine: namespace files and the lab's own tmpfs/sysfs.
    for pid in ("1", "self"):
        try:
            lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        except OSError:
            continue
        snap[f"/proc/{pid}/mountinfo (nsfs, netns, netkit)"] = "\n".join(
            " ".join(line.split()[3:]) for line in lines
            if "nsfs" in line or "netns" in line or "netkit" in line)
    return snap


def snapshot_diff(before: dict[str, str], after: dict[str, str]) -> str:
    """A unified diff of every entry that changed; empty when the machine reads the same."""
    out = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key, "<missing>"), after.get(key, "<missing>")
        if a != b:
            out.append(f"== {key} changed:")
            out.extend(difflib.unified_diff(a.splitlines(), b.splitlines(), "before", "after", lineterm=""))
    return "\n".join(out)


# -- what a lab is made of -------------------------------------------------------------
def _ns(pid: int | str, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def lab_traces(lab) -> dict:
    """Everything the running `lab` is made of, as plain data (JSON-safe)."""
    init = lab.pid
    netns = {"host": _ns(init, "net")}
    for node in ("c1", "c2", "internet"):
        netns[node] = lab.run(node, "readlink /proc/self/ns/net", check=True).stdout.strip()
    # The same namespaces, seen through the lab's private /run/netns bind mounts.
    inodes = lab.run("host", "stat -L -c '%n %i' /run/netns/c1 /run/netns/c2 /run/netns/internet",
                     check=True).stdout.split()
    for path, inode in zip(inodes[0::2], inodes[1::2]):
        assert netns[path.rsplit("/", 1)[1]] == f"net:[{inode}]", (path, inode, netns)
    namespaces = dict(netns=netns, mnt=_ns(init, "mnt"), pid=_ns(init, "pid"))
    user = _ns(init, "user")
    namespaces["user"] = user if user != _ns("self", "user") else None
    from netkit.state import runtime_dir
    sandbox = lab._sandbox
    return {
        "name": lab.name,
        "pids": {"unshare": sandbox.proc.pid, "init": init},
        "namespaces": namespaces,
        "namespace_ids": namespace_ids(init, netns),
        "state_file": str(sandbox.state_path),
        "machine_netns": _ns("self", "net"),
        "runtime_dir": str(runtime_dir()),
    }


def _ns_ids(traces: dict) -> set[str]:
    ns = traces["namespaces"]
    ids = set(ns["netns"].values()) | {ns["mnt"], ns["pid"]}
    if ns.get("user"):
        ids.add(ns["user"])
    return {i for i in ids if i}


NS_GET_ID = 0x8008B70D
"""_IOR(0xb7, 0xd, __u64) from <linux/nsfs.h>: a namespace's 64-bit id (Linux 6.18 and later)."""


def _ns_kernel_id(path: str) -> int | None:
    """The kernel's never-reused id of the namespace at `path`, or None (gone, or an older kernel)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return struct.unpack("Q", fcntl.ioctl(fd, NS_GET_ID, bytes(8)))[0]
    except OSError:
        return None
    finally:
        os.close(fd)


def namespace_ids(init: int, netns: dict) -> dict:
    """The kernel's own ids of a lab's namespaces (its pid 1's, and its nodes' under /run/netns),
    by their `net:[...]`-style names: ids the kernel never gives out twice."""
    paths = {_ns(init, kind): f"/proc/{init}/ns/{kind}" for kind in ("net", "mnt", "pid", "user")}
    paths.update({link: f"/proc/{init}/root/run/netns/{node}" for node, link in netns.items() if node != "host"})
    return {link: _ns_kernel_id(path) for link, path in paths.items() if link}


def _is_the_labs(traces: dict, link: str, path: str) -> bool:
    """Is the namespace `link` names, reached at `path`, the lab's own and not a recycled number?"""
    recorded = traces.get("namespace_ids", {}).get(link)
    if recorded is None:
        return True                 # no id to compare: the number alone decides
    now = _ns_kernel_id(path)
    return now is None or now == recorded   # gone in between: the next poll decides


def _alive(pid: int) -> bool:
    """True if `pid` is a process that has not exited (a zombie has: it holds nothing)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status and "\nState:\tX" not in status


def leftovers(traces: dict) -> list[str]:
    """Whatever of the lab `traces` describes still exists anywhere on the machine."""
    found = []
    for role, pid in traces["pids"].items():
        if _alive(pid):
            found.append(f"process {pid} ({role}) is still running")
    ids = _ns_ids(traces)
    assert ids and traces["machine_netns"] not in ids, "lab traces name the machine's own namespace"
    seen_mountinfo: set[str | None] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = entry.name
        # Every thread's namespaces (a thread can setns on its own).
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            for kind in ("net", "mnt", "pid", "pid_for_children", "user"):
                link = _ns(f"{pid}/task/{tid}", kind)
                if link in ids and _is_the_labs(traces, link, f"/proc/{pid}/task/{tid}/ns/{kind}"):
                    found.append(f"process {pid} (task {tid}) is in the lab's {kind} namespace {link}")
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            fds = []
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in ids and _is_the_labs(traces, target, f"/proc/{pid}/fd/{fd}"):
                found.append(f"process {pid} holds {target} open (fd {fd})")
        mnt = _ns(pid, "mnt")
        if mnt in seen_mountinfo:
            continue
        seen_mountinfo.add(mnt)
        try:
            mountinfo = Path(f"/proc/{pid}/mountinfo").read_text()
        except OSError:
            continue
        for line in mountinfo.splitlines():
            fields = line.split()
            ident = fields[3] if len(fields) > 4 else None
            if ident in ids and _is_the_labs(traces, ident, f"/proc/{pid}/root{_unescape(fields[4])}"):
                found.append(f"a mount of {ident} at {fields[4]} is still seen by process {pid}")
    if Path(traces["state_file"]).exists():
        found.append(f"the state file {traces['state_file']} is still there")
    return found


def _unescape(mount_point: str) -> str:
    """A mount point as /proc/PID/mountinfo writes it (space, tab, newline, backslash in octal)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mount_point)


def wait_gone(traces: dict, since: float, seconds: float = 10.0) -> list[str]:
    """Poll `leftovers` until nothing remains or `seconds` after `since` (time.monotonic())."""
    while True:
        left = leftovers(traces)
        if not left or time.monotonic() > since + seconds:
            return left
        time.sleep(0.01)


def running_lab(name: str):
    """The record of this user's running lab `name`, or None (read as `netkit status` reads it)."""
    from netkit import state
    with state.StateDir() as where:
        found = state.find(name, where)
    return found.record if found is not None and found.kind == "running" else None


def _runs_module(argv: list[bytes], module: bytes) -> bool:
    """Is this command line `python [options] -m MODULE ...` (not a shell or unshare quoting it)?"""
    return b"-m" in argv[1:4] and argv[argv.index(b"-m") + 1:argv.index(b"-m") + 2] == [module] \
        and b"python" in argv[0].rsplit(b"/", 1)[-1]


def lab_hosts(name: str) -> list[int]:
    """The pids of the agent processes (one per running lab) of labs called `name`, any user."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if _runs_module(argv, b"netkit.agent") and name.encode() in argv and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def keepers_running() -> set[int]:
    """The pids of every netkit keeper process on the machine."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if _runs_module(argv, b"netkit.keeper") and _alive(int(entry.name)):
                found.add(int(entry.name))
    return found


def agents_running(names) -> list[str]:
    """The lab host processes (netkit.agent) running for any of `names`, as 'pid name'."""
    wanted = {name.encode() for name in names}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"netkit.agent" in argv and "--name".encode() in argv:
            name = argv[argv.index(b"--name") + 1] if argv.index(b"--name") + 1 < len(argv) else b""
            if name in wanted and _alive(int(entry.name)):
                found.append(f"{entry.name} {name.decode()}")
    return found


# -- reading what the kernel did -----------------------------------------------------
def ping(lab, src: str, dst: str):
    """The article's ping: one echo, one second to answer."""
    return lab.run(src, f"ping {dst} -c1 -W1")


def assert_answers(result) -> None:
    assert result.returncode == 0, f"expected an answer:\n{result}"
    assert "1 received" in result.stdout and "ttl=" in result.stdout, str(result)


def assert_lost(result) -> None:
    assert result.returncode == 1, f"expected 100% loss (exit 1):\n{result}"
    assert "100% packet loss" in result.stdout, str(result)


def lab_state(lab, nodes=("host", "c1", "c2")) -> dict[str, str]:
    """The lab's rules, addresses and routes in `nodes`, counters masked (to compare before/after)."""
    state = {}
    for node in nodes:
        for command in ("iptables-save", "ip -4 addr", "ip -4 route", "ip -d link"):
            state[f"{node}: {command}"] = _mask(lab.run(node, command, check=True).stdout)
    state["host: sysctls"] = lab.run(
        "host", "sysctl net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables", check=True).stdout
    return state


def link_json(lab, node: str, ifname: str, stats: bool = False) -> dict:
    flag = "-s " if stats else ""
    return json.loads(lab.run(node, f"ip {flag}-j link show {ifname}", check=True).stdout)[0]


# -- a machine that refuses user namespaces ----------------------------------------------
REFUSE_USER_NAMESPACES = """
import ctypes, os, sys
uid, gid = int(sys.argv[1]), int(sys.argv[2])
argv = sys.argv[3:]
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
child = os.fork()
if child == 0:
    if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
        os._exit(90)
    os.write(ready_w, b"."); os.read(go_r, 1)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    os.setgroups([]); os.setgid(gid); os.setuid(uid)
    os.execv(argv[0], argv)
os.read(ready_r, 1)
for kind in ("uid_map", "gid_map"):
    with open(f"/proc/{child}/{kind}", "w") as f:
        f.write("0 0 65536\\n")
os.write(go_w, b".")
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def refused_user_namespaces(uid: int, gid: int, argv: list[str]) -> list[str]:
    """The argv that runs `argv` as uid/gid where the kernel refuses new user namespaces.

    Root makes a user namespace of its own (identity-mapped), sets user.max_user_namespaces
    to 0 there only, drops to the user and execs `argv`: like Binder or a locked-down
    distribution, while the machine's own limit stays as it is. Needs root.
    """
    return ["/usr/bin/python3", "-c", REFUSE_USER_NAMESPACES, str(uid), str(gid), *argv]
