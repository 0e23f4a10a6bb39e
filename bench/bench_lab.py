#!/usr/bin/env python3
"""Benchmark of netkit labs, with Debian's Mininet as the peer.

    sudo .venv/bin/python bench/bench_lab.py [--runs 7] [--labs 3] [--no-mininet]

Prints one markdown table of medians (min, max) over --runs runs:

1. cold start: a new Python process does ``from netkit import Lab``,
   ``Lab(name=...)``, ``lab.iptables("-P FORWARD ACCEPT")`` and
   ``lab.run("c1", "ping -c1 -W1 10.55.66.3")`` (must exit 0), then closes the lab;
2. warm ``lab.reset("part3-start")`` / ``lab.reset("part3-end")`` in this process;
3. ``lab.close()``, and the time until every process of the lab is gone;
4. memory per lab: summed PSS of each lab's processes with --labs labs running;
5. Mininet (``mn --switch lxbr --controller none --topo single,2 --test pingall``)
   run cold inside a throwaway network namespace, and the ratio netkit / Mininet.

It never writes to the machine's own network namespace: labs live in their
own namespaces, Mininet runs under ``unshare --net --mount --pid`` with
/proc/sys remounted read-only (so Mininet's fixLimits() cannot raise the
machine-wide limits kernel.pty.max, net.core.*), and at the end the machine's
links, addresses, routes, netns list, iptables/nftables rules, the sysctls
involved and the mount table are compared with what they were at the start.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netkit import Lab  # noqa: E402  (after the sys.path line, so the repo's netkit is measured)

SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PING_TARGET = "10.55.66.3"  # c2, inside the lab
CHILD_TIMEOUT = 60.0

# --------------------------------------------------------------------------
# the cold-start child: a fresh Python process, as a notebook kernel would be
CHILD = r'''
import json, os, sys, time
t0 = time.monotonic()
from netkit import Lab
t1 = time.monotonic()
lab = Lab(name=sys.argv[1])
t2 = time.monotonic()
report = {"t0": t0, "t1": t1, "t2": t2, "ok": False}
try:
    pids = [lab._sandbox.proc.pid, lab.pid]
    def kids(pid):
        out = []
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return out
        for task in tasks:
            try:
                out += [int(p) for p in open(f"/proc/{pid}/task/{task}/children").read().split()]
            except OSError:
                pass
        return out
    todo = [lab.pid]
    while todo:
        for kid in kids(todo.pop()):
            if kid not in pids:
                pids.append(kid)
                todo.append(kid)
    stamps = []
    for pid in pids:
        try:
            stamps.append([pid, open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]])
        except OSError:
            pass
    report["pids"] = stamps
    lab.iptables("-P FORWARD ACCEPT")
    result = lab.run("c1", "ping -c1 -W1 %s")
    report["t3"] = time.monotonic()
    report["ping_rc"] = result.returncode
    report["ping_out"] = (result.stdout + result.stderr)[-400:]
    report["ok"] = result.returncode == 0
finally:
    lab.close()
    report["t4"] = time.monotonic()
    print(json.dumps(report), flush=True)
sys.exit(0 if report["ok"] else 1)
''' % PING_TARGET

# Mininet inside a throwaway net+mount+pid namespace. set -e: if /proc/sys
# cannot be made read-only, Mininet is not run at all.
MN_ARGS = "--switch lxbr --controller none --topo single,2 --test pingall"
MN_SCRIPT = ("set -e; ip link set lo up; mount -t tmpfs none /run; "
             "mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys; "
             "exec {mn} " + MN_ARGS)
MN_UNSHARE = ["--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
              "--propagation", "private"]


# The article's topology built by a plain shell script with `ip`, in a throwaway
# net+mount+pid namespace (like Mininet), until c1 pings c2: the floor for any kit.
PLAIN_SCRIPT = r"""
set -e
mount -t tmpfs none /run; mkdir -p /run/netns
ip link set lo up
ip netns add c1; ip netns add c2
ip link add hwchiu0 type bridge; ip link set hwchiu0 up
ip link add veth0 type veth peer name eth0 netns c1; ip link set veth0 master hwchiu0; ip link set veth0 up
ip link add veth1 type veth peer name eth0 netns c2; ip link set veth1 master hwchiu0; ip link set veth1 up
ip -n c1 addr add 10.55.66.2/24 dev eth0; ip -n c1 link set eth0 up; ip -n c1 link set lo up
ip -n c2 addr add 10.55.66.3/24 dev eth0; ip -n c2 link set eth0 up; ip -n c2 link set lo up
iptables -P FORWARD ACCEPT
ip netns exec c1 ping -c1 -W1 10.55.66.3 >/dev/null
"""


def plain_script(stats: Stats, record: bool = True) -> None:
    key = "plain ip script: launch -> first ping ok"
    started = time.monotonic()
    done = subprocess.run(["unshare", *MN_UNSHARE, "sh", "-c", PLAIN_SCRIPT], capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT)
    if done.returncode != 0:
        stats.error("plain", f"the plain script failed: {done.stderr.strip()[-300:]}")
    elif record:
        stats.add(key, ms(time.monotonic() - started))


# --------------------------------------------------------------------------
# /proc helpers
def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    seen, todo = [pid], [pid]
    while todo:
        for kid in children(todo.pop()):
            if kid not in seen:
                seen.append(kid)
                todo.append(kid)
    return seen


def starttime(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def alive(stamps: list[tuple[int, str]]) -> list[int]:
    """Which of (pid, starttime) still exist (a reused pid does not count)."""
    return [pid for pid, start in stamps if starttime(pid) == start]


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


# --------------------------------------------------------------------------
# the machine's own namespace, before and after
SYSCTLS = ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
           "net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-arptables",
           "net.core.wmem_max", "net.core.rmem_max", "net.core.netdev_max_backlog",
           "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.neigh.default.gc_thresh1",
           "net.ipv4.neigh.default.gc_thresh2", "net.ipv4.neigh.default.gc_thresh3",
           "net.ipv4.route.max_size", "kernel.pty.max", "fs.file-max"]


def _sh(argv: list[str]) -> str:
    exe = shutil.which(argv[0], path=SBIN_PATH)
    if exe is None:
        return f"({argv[0]} not installed)"
    done = subprocess.run([exe, *argv[1:]], capture_output=True, text=True)
    return done.stdout + (f"[exit {done.returncode}] {done.stderr}" if done.returncode else "")


def machine_snapshot(prefix: str) -> dict[str, str]:
    snap = {
        "ip -o link": _sh(["ip", "-o", "link"]),
        "ip -o addr": "\n".join(
            " ".join(w for w in line.split() if not w.endswith("sec") and w not in ("valid_lft", "preferred_lft"))
            for line in _sh(["ip", "-o", "addr"]).splitlines()),
        "ip route show table all": _sh(["ip", "route", "show", "table", "all"]),
        "ip netns list": _sh(["ip", "netns", "list"]),
        "iptables-save": "\n".join(l for l in _sh(["iptables-save"]).splitlines() if not l.startswith("#")),
        "ip6tables-save": "\n".join(l for l in _sh(["ip6tables-save"]).splitlines() if not l.startswith("#")),
        "nft list ruleset": _sh(["nft", "list", "ruleset"]),
        "mounts": "\n".join(" ".join(l.split()[3:5]) for l in Path("/proc/self/mountinfo").read_text().splitlines()),
    }
    values = []
    for key in SYSCTLS:
        try:
            values.append(f"{key} = {Path('/proc/sys/' + key.replace('.', '/')).read_text().strip()}")
        except OSError:
            values.append(f"{key} = (absent)")
    snap["sysctls"] = "\n".join(values)
    # what this run may leave: state files and processes named after our labs
    from netkit.state import runtime_dir
    snap["bench state files"] = "\n".join(sorted(p.name for p in runtime_dir().glob(prefix + "*")))
    procs = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if prefix.encode() in cmdline or b"mininet" in cmdline or cmdline.startswith(b"mnexec"):
                procs.append(cmdline.replace(b"\0", b" ").decode(errors="replace")[:80])
    snap["bench processes"] = "\n".join(sorted(procs))
    return snap


def snapshot_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    diffs = []
    for key in before:
        if before[key] != after[key]:
            old, new = set(before[key].splitlines()), set(after[key].splitlines())
            lines = [f"  - {l}" for l in sorted(old - new)] + [f"  + {l}" for l in sorted(new - old)]
            diffs.append(f"{key} changed:\n" + "\n".join(lines[:20]))
    return diffs


# --------------------------------------------------------------------------
class Stats:
    """Named samples, errors per figure."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}
        self.units: dict[str, str] = {}

    def add(self, key: str, value: float, unit: str = "ms") -> None:
        self.samples.setdefault(key, []).append(value)
        self.units[key] = unit

    def error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def median(self, key: str) -> float | None:
        values = self.samples.get(key)
        return statistics.median(values) if values else None


def ms(seconds: float) -> float:
    return seconds * 1000.0


# --------------------------------------------------------------------------
# 1. cold start
def cold_start(stats: Stats, python: str, name: str, record: bool = True) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    key = "cold"
    launched = time.monotonic()
    proc = subprocess.Popen([python, "-c", CHILD, name], cwd=str(REPO), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)  # the lab dies with its owner
        proc.communicate()
        raise
    exited = time.monotonic()
    try:
        report = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        stats.error(key, f"child exit {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}")
        return
    if not report.get("ok"):
        stats.error(key, f"ping from c1 failed (exit {report.get('ping_rc')}): "
                         f"{report.get('ping_out', '').strip()[-200:]} {err.decode(errors='replace')[-200:]}")
        return
    left = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        left = alive([tuple(p) for p in report.get("pids", [])])
        if not left:
            break
        time.sleep(0.01)
    if left:
        stats.error(key, f"lab processes {left} outlived the child process")
    if not record:
        return
    stats.add("cold: launch -> first ping ok", ms(report["t3"] - launched))
    stats.add("cold: whole child process (incl. close, exit)", ms(exited - launched))
    stats.add("  child: interpreter start-up", ms(report["t0"] - launched))
    stats.add("  child: import netkit", ms(report["t1"] - report["t0"]))
    stats.add("  child: Lab()", ms(report["t2"] - report["t1"]))
    stats.add("  child: iptables + ping", ms(report["t3"] - report["t2"]))
    stats.add("  child: lab.close()", ms(report["t4"] - report["t3"]))


# --------------------------------------------------------------------------
# 5. Mininet
def find_mn() -> str | None:
    return shutil.which("mn") or shutil.which("mn", path=SBIN_PATH)


def mininet_run(stats: Stats, mn: str, record: bool = True, sample_memory: bool = False) -> None:
    key = "mininet"
    unshare = shutil.which("unshare", path=SBIN_PATH) or "unshare"
    argv = [unshare, *MN_UNSHARE, "sh", "-c", MN_SCRIPT.format(mn=mn)]
    env = {"PATH": SBIN_PATH, "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb"}
    lines: list[tuple[float, str]] = []
    launched = time.monotonic()
    proc = subprocess.Popen(argv, cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    timer = threading.Timer(CHILD_TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    peak = (0, [])
    sampler = None
    if sample_memory:
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                pids = tree(proc.pid)
                per = [(pid, comm(pid), pss_kib(pid)) for pid in pids]
                total = sum(p[2] for p in per)
                if total > peak[0]:
                    peak = (total, per)
                time.sleep(0.01)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    try:
        for raw in proc.stdout:
            lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))
        proc.wait()
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)  # --kill-child: the whole throwaway namespace goes
        proc.wait()
        raise
    finally:
        timer.cancel()
        if sampler:
            stop.set()
            sampler.join()
    exited = time.monotonic()
    text = "\n".join(l for _, l in lines)
    results = [t for t, l in lines if l.startswith("*** Results:")]
    if proc.returncode != 0 or "0% dropped" not in text or "*** Results: 0% dropped" not in text:
        tail = " | ".join(l for _, l in lines[-6:])
        stats.error(key, f"mn exit {proc.returncode}; no '0% dropped': {tail[-300:]}")
        return
    if sample_memory and peak[0]:
        total, per = peak
        mn_py = sum(p[2] for p in per if p[1] == "mn" or p[1].startswith("python"))
        stats.add("mininet: peak PSS, whole tree incl. mn's Python", total / 1024, "MiB")
        stats.add("mininet: peak PSS, without mn's Python", (total - mn_py) / 1024, "MiB")
        stats.mn_procs = ", ".join(sorted(p[1] for p in per))  # type: ignore[attr-defined]
    if not record:
        return
    stats.add("mininet: launch -> pingall result", ms(results[0] - launched))
    stats.add("mininet: whole mn command", ms(exited - launched))
    for _, line in lines:
        if line.startswith("completed in "):
            stats.add("  mn: its own 'completed in'", float(line.split()[2]) * 1000)


# --------------------------------------------------------------------------
# 2-4. in-process figures
def lab_procs(lab: Lab) -> list[tuple[int, str]]:
    pids = [lab._sandbox.proc.pid] + [p for p in tree(lab.pid)]
    return [(pid, starttime(pid)) for pid in pids if starttime(pid)]


def lab_activity(lab: Lab) -> tuple[int, int, int]:
    """(CPU ticks, open fds, processes) of the lab: changes while the lab is still busy."""
    pids = [lab._sandbox.proc.pid] + tree(lab.pid)
    ticks = fds = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, IndexError, ValueError):
            pass
    return ticks, fds, len(pids)


def settle(lab: Lab, quiet: float = 0.3, limit: float = 5.0) -> float:
    """Wait until the lab's background work after Lab()/reset() (the agent's probe warm-up:
    imports, `nft monitor trace`, a packet socket per point) is over; seconds until its last change."""
    start = time.monotonic()
    last, changed = lab_activity(lab), start
    while time.monotonic() - changed < quiet and time.monotonic() - start < limit:
        time.sleep(0.01)
        now = lab_activity(lab)
        if now != last:
            last, changed = now, time.monotonic()
    return changed - start


def start_close(stats: Stats, prefix: str, i: int, labs: list) -> None:
    """Lab() with a breakdown from its step events; close() right away and after the lab settled.

    The host announces every step of the stage when the build begins (its batches then run several at a
    time), so the first event marks the end of the sandbox's start."""
    for settled in (False, True):
        events: list[tuple[float, str]] = []
        t0 = time.monotonic()
        lab = Lab(name=f"{prefix}close{i}{'s' if settled else 'f'}",
                  trace=lambda line: events.append((time.monotonic(), line)))
        t1 = time.monotonic()
        labs.append(lab)
        try:
            stats.add("warm Lab() in-process", ms(t1 - t0))
            if events:
                stats.add("  Lab(): sandbox start (unshare, agent up)", ms(events[0][0] - t0))
                stats.add("  Lab(): build steps", ms(t1 - events[0][0]))
            kind = "fresh lab (right after Lab())"
            if settled:
                stats.add("Lab() returns -> lab idle (background warm-up)", ms(settle(lab)))
                kind = "settled lab"
            procs = lab_procs(lab)
            c0 = time.monotonic()
            lab.close()
            c1 = time.monotonic()
            while alive(procs) and time.monotonic() - c1 < 5:
                time.sleep(0.001)
            c2 = time.monotonic()
            left = alive(procs)
            stats.add(f"lab.close(), {kind}", ms(c1 - c0))
            if left:
                stats.error("close", f"lab processes {left} still there 5 s after close()")
            else:
                stats.add(f"  close() -> all lab processes gone, {kind}", ms(c2 - c0))
        finally:
            lab.close()


def resets(stats: Stats, name: str, runs: int, labs: list) -> None:
    lab = Lab(name=name)
    labs.append(lab)
    try:
        lab.reset("part3-end")  # one untimed round trip first
        for _ in range(runs):
            for stage in ("part3-start", "part3-end"):
                settle(lab)  # a lab a student resets has been idle a while
                old = lab_procs(lab)
                t0 = time.monotonic()
                lab.reset(stage)
                t1 = time.monotonic()
                stats.add(f'lab.reset("{stage}")', ms(t1 - t0))
                # reset() returns once the new host serves; the old one is ended in the background
                while alive(old) and time.monotonic() - t1 < 5:
                    time.sleep(0.001)
                if alive(old):
                    stats.error("reset", f"old host processes {alive(old)} still there 5 s after reset({stage!r})")
                else:
                    stats.add(f'  reset("{stage}") -> old host processes gone', ms(time.monotonic() - t0))
        nat = lab.run("host", "iptables -t nat -S POSTROUTING").stdout
        if "MASQUERADE" not in nat:
            stats.error("reset", f'after reset("part3-end") the MASQUERADE rule is missing: {nat!r}')
    finally:
        lab.close()


def every_stage(stats: Stats, name: str, runs: int, labs: list) -> None:
    """lab.reset(stage) for every stage, at a student's pace (the lab idle, a second between resets): coming
    from the stage before it in STAGES, then once more at the same stage (an exercise starting over)."""
    from netkit import topology
    lab = Lab(name=name)
    labs.append(lab)
    try:
        lab.reset()                     # the first reset starts the spare the next ones build on
        for _ in range(runs):
            for stage in topology.STAGES:
                settle(lab)
                time.sleep(1.0)
                t0 = time.monotonic()
                lab.reset(stage)
                stats.add(f'reset("{stage}")', ms(time.monotonic() - t0))
                if lab.run("c1", "true").returncode != 0:
                    stats.error("reset", f"the lab does not answer after reset({stage!r})")
                settle(lab)
                time.sleep(1.0)
                t0 = time.monotonic()
                lab.reset(stage)           # again, at the stage the lab is at: an exercise starting over
                stats.add(f'  reset("{stage}") again', ms(time.monotonic() - t0))
    finally:
        lab.close()


def switches_and_pictures(stats: Stats, name: str, runs: int, labs: list) -> None:
    """lab.state() (every switch, one round trip), and a panel's toggle until its new picture is ready."""
    from netkit.widgets import Panel
    lab = Lab(name=name)
    labs.append(lab)
    try:
        panel = Panel(lab, ["forward-policy", "bridge-nf-call-iptables"], probe=("c1", "10.55.66.3"), view="map")
        settle(lab)
        for _ in range(runs):
            t0 = time.monotonic()
            lab.state()
            stats.add("lab.state(): every switch read from the kernel", ms(time.monotonic() - t0))
            for value in ("ACCEPT", "DROP"):
                t0 = time.monotonic()
                panel.controls["forward-policy"].value = value      # what a click does
                stats.add("panel toggle -> kernel changed, probe sent, new picture ready (in-process)",
                          ms(time.monotonic() - t0))
                if panel.journey.delivered != (value == "ACCEPT"):
                    stats.error("toggle", f"after FORWARD {value} the probe says {panel.journey.reason}")
    finally:
        lab.close()


def memory(stats: Stats, prefix: str, k: int, labs: list) -> None:
    me = os.getpid()
    owner_before = pss_kib(me)
    mine = []
    try:
        for i in range(k):
            lab = Lab(name=f"{prefix}mem{i}")
            labs.append(lab)
            mine.append(lab)
        for lab in mine:
            settle(lab)  # memory of labs in use, after their background warm-up
        for n, lab in enumerate(mine):
            pids = [lab._sandbox.proc.pid] + tree(lab.pid)
            if n == 0:
                stats.lab_procs = ", ".join(  # type: ignore[attr-defined]
                    f"{'pid 1 ' if pid == lab.pid else ''}{comm(pid)} {pss_kib(pid) / 1024:.1f}" for pid in pids)
            stats.add(f"memory per lab, {k} labs running (summed PSS)", sum(pss_kib(p) for p in pids) / 1024,
                      "MiB")
            stats.add("  processes per lab", len(pids), "")
        stats.owner_growth = (pss_kib(me) - owner_before) / 1024  # type: ignore[attr-defined]
        for lab in mine:
            lab.probe("c1", PING_TARGET)
            settle(lab)
        for lab in mine:
            pids = [lab._sandbox.proc.pid] + tree(lab.pid)
            stats.add(f"memory per lab, {k} labs running, after one probe each", sum(pss_kib(p) for p in pids) / 1024,
                      "MiB")
    finally:
        for lab in mine:
            lab.close()


# --------------------------------------------------------------------------
def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    if unit == "MiB":
        return f"{value:.1f}"
    return f"{value:g}"


HEADLINES = {  # the row that carries each group's error count
    "cold: launch -> first ping ok": "cold",
    'lab.reset("part3-start")': "reset",
    "lab.close(), fresh lab (right after Lab())": "close",
    "mininet: launch -> pingall result": "mininet",
}


def table(stats: Stats, order: list[str]) -> str:
    rows = ["| figure | unit | median | min | max | n | errors |", "|---|---|---:|---:|---:|---:|---:|"]
    for key in order:
        values = stats.samples.get(key) or []
        unit = stats.units.get(key, "ms")
        errs = len(stats.errors.get(HEADLINES[key], [])) if key in HEADLINES else ""
        label = "↳ " + key.strip() if key.startswith("  ") else key
        if values:
            cells = (fmt(statistics.median(values), unit), fmt(min(values), unit), fmt(max(values), unit))
        else:
            cells = ("-", "-", "-")
        rows.append(f"| {label} | {unit} | {' | '.join(cells)} | {len(values)} | {errs} |")
    return "\n".join(rows)


def machine_line(python: str) -> str:
    pyver = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                           capture_output=True, text=True).stdout.strip()
    try:
        model = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                     if l.startswith("model name"))
    except StopIteration:
        model = platform.machine()
    rev = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    os_name = "?"
    try:
        os_name = next(l.split("=", 1)[1].strip('"') for l in Path("/etc/os-release").read_text().splitlines()
                       if l.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        pass
    return (f"machine: {os_name}, kernel {platform.release()}, {os.cpu_count()} cores "
            f"({len(os.sched_getaffinity(0))} usable; {model}), Python {pyver} ({python}), "
            f"load avg {load}, uid {os.geteuid()}, netkit {rev}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (default 7)")
    parser.add_argument("--labs", type=int, default=3, help="labs running at once for the memory figure (default 3)")
    parser.add_argument("--python", default=sys.executable, help="the Python of the cold-start child")
    parser.add_argument("--no-mininet", action="store_true", help="skip the Mininet peer")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.labs < 1:
        parser.error("--runs and --labs must be at least 1")

    # SIGTERM ends the run like Ctrl-C, so every `finally` closes its lab
    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    prefix = f"bench-{os.getpid()}-"
    stats = Stats()
    labs: list = []
    started = time.monotonic()
    print(machine_line(args.python))
    mn = None if args.no_mininet else find_mn()
    if args.no_mininet:
        print("peer: Mininet skipped (--no-mininet)")
    elif mn is None:
        print("peer: Mininet not found (no `mn` on PATH); install it with `sudo apt-get install mininet` "
              "to get the comparison. Skipping the peer.")
    elif os.geteuid() != 0:
        print("peer: Mininet needs root; run the benchmark with sudo to get the comparison. Skipping the peer.")
        mn = None
    else:
        version = subprocess.run([mn, "--version"], capture_output=True, text=True)
        print(f"peer: Mininet {(version.stdout or version.stderr).strip()} ({mn}), `mn {MN_ARGS}` "
              "in a throwaway net/mount/pid namespace, /proc/sys read-only")
    print(f"runs: {args.runs} per figure (plus one untimed warm-up each for the cold starts), "
          f"{args.labs} labs for memory", flush=True)

    before = machine_snapshot(prefix)
    try:
        # warm-ups: page cache, Python bytecode caches
        cold_start(stats, args.python, f"{prefix}warm", record=False)
        plain_script(stats, record=False)
        if mn:
            mininet_run(stats, mn, record=False)
        # 1 + 5: interleaved, so drift in machine load hits all alike
        for i in range(args.runs):
            cold_start(stats, args.python, f"{prefix}cold{i}")
            plain_script(stats)
            if mn:
                mininet_run(stats, mn)
        if mn:  # one more, untimed, sampling memory
            mininet_run(stats, mn, record=False, sample_memory=True)
        # 3 (+ a Lab() breakdown)
        for i in range(args.runs):
            start_close(stats, prefix, i, labs)
        # 2
        resets(stats, f"{prefix}reset", args.runs, labs)
        every_stage(stats, f"{prefix}stages", max(1, args.runs // 2), labs)
        switches_and_pictures(stats, f"{prefix}toggle", args.runs, labs)
        # 4
        memory(stats, prefix, args.labs, labs)
    except KeyboardInterrupt:
        print("\ninterrupted; closing every lab", file=sys.stderr)
        raise
    finally:
        for lab in labs:
            try:
                lab.close()
            except Exception as exc:  # keep closing the others
                print(f"closing {lab!r} failed: {exc}", file=sys.stderr)

    order = [
        "cold: launch -> first ping ok", "cold: whole child process (incl. close, exit)",
        "  child: interpreter start-up", "  child: import netkit", "  child: Lab()",
        "  child: iptables + ping", "  child: lab.close()",
        "warm Lab() in-process", "  Lab(): sandbox start (unshare, agent up)", "  Lab(): build steps",
        "Lab() returns -> lab idle (background warm-up)",
        'lab.reset("part3-start")', '  reset("part3-start") -> old host processes gone',
        'lab.reset("part3-end")', '  reset("part3-end") -> old host processes gone',
        *[row for stage in __import__("netkit.topology").topology.STAGES
          for row in (f'reset("{stage}")', f'  reset("{stage}") again')],
        "lab.state(): every switch read from the kernel",
        "panel toggle -> kernel changed, probe sent, new picture ready (in-process)",
        "plain ip script: launch -> first ping ok",
        "lab.close(), fresh lab (right after Lab())", "  close() -> all lab processes gone, fresh lab (right after Lab())",
        "lab.close(), settled lab", "  close() -> all lab processes gone, settled lab",
        f"memory per lab, {args.labs} labs running (summed PSS)", "  processes per lab",
        f"memory per lab, {args.labs} labs running, after one probe each",
    ]
    if mn:
        order += ["mininet: launch -> pingall result", "mininet: whole mn command", "  mn: its own 'completed in'",
                  "mininet: peak PSS, whole tree incl. mn's Python", "mininet: peak PSS, without mn's Python"]
    print()
    print(table(stats, order))
    print()
    if mn:
        pairs = [("cold: launch -> first ping ok", "mininet: launch -> pingall result",
                  "netkit launch -> first ping / Mininet launch -> pingall result"),
                 ("cold: whole child process (incl. close, exit)", "mininet: whole mn command",
                  "netkit whole cold process / whole mn command")]
        for ours, theirs, label in pairs:
            a, b = stats.median(ours), stats.median(theirs)
            print(f"ratio (medians) {label}: " + (f"{a / b:.2f}" if a and b else "-")
                  + (" (goal <= 0.5)" if ours.startswith("cold: launch") else ""))
    a, b = stats.median("cold: launch -> first ping ok"), stats.median("plain ip script: launch -> first ping ok")
    print("ratio (medians) netkit launch -> first ping / plain ip script: " + (f"{a / b:.2f}" if a and b else "-")
          + " (goal <= 2)")
    if mn and hasattr(stats, "mn_procs"):
        print(f"Mininet's processes at its memory peak: {stats.mn_procs}")
    if hasattr(stats, "lab_procs"):
        print(f"one lab's processes (PSS MiB): {stats.lab_procs}")
    if hasattr(stats, "owner_growth"):
        print(f"owner (this Python) PSS change while {args.labs} labs ran: {stats.owner_growth:+.1f} MiB "
              "(not counted above; PSS can fall, as the labs' Pythons share its file pages)")

    after = machine_snapshot(prefix)
    diffs = snapshot_diff(before, after)
    bad = bool(diffs) or any(stats.errors.values())
    for group, messages in stats.errors.items():
        for message in messages:
            print(f"ERROR [{group}] {message}")
    if diffs:
        print("MACHINE NAMESPACE CHANGED:\n" + "\n".join(diffs))
    else:
        print("machine check: ip -o link, ip -o addr, routes, ip netns list, iptables-save, ip6tables-save, "
              "nft ruleset, mounts, " + str(len(SYSCTLS)) + " sysctls and leftover bench processes/state files: "
              "unchanged")
    print(f"benchmark took {time.monotonic() - started:.1f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
