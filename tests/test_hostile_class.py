"""A curious (or malicious) student on a real class hub: each attack of issue 22, tried as that student.

One hub for the module (`class_hub` of tests/test_hub.py: ``./quickstart class`` itself, three
throwaway students and an admin, real PAM logins). Code runs as a student in two ways, as a
student has them: in a kernel of their own server (JupyterLab, a terminal in it), and with
``runuser`` in the machine's own namespaces, as an ssh login would (outside the server's private
/tmp and /proc). Each test asserts what the kernel did: an errno, a file's owner and type, a
cgroup's file, the board's JSON. The README's "what a student can and cannot do to another"
table names these tests; tests/test_class_rules.py checks that it does.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO
from netkit.classroom import accounts, install, limits, privacy
from test_hub import HUB_MARKS, class_hub, mentioning, processes_named, uid_of  # noqa: F401 - the module's hub

pytestmark = HUB_MARKS
PYTHON = str(install.python())


def as_user(name: str, code: str, *args: str, env: dict | None = None, timeout: float = 120) -> dict:
    """Run Python `code` as `name` in the machine's own namespaces (an ssh login); its printed JSON."""
    home = pwd.getpwnam(name).pw_dir
    done = subprocess.run(["runuser", "-u", name, "--", "env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}",
                           "LANG=C.UTF-8", *[f"{k}={v}" for k, v in (env or {}).items()],
                           PYTHON, "-c", code, *args],
                          capture_output=True, text=True, timeout=timeout, cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def ran(kernel, code: str) -> dict:
    return json.loads(kernel.run(code).strip().splitlines()[-1])


def kernel_of(class_hub, name: str):
    user = class_hub.user(name)
    user.start_server()
    return user.kernel()


def server_pid(name: str) -> int:
    (pid,) = processes_named(uid_of(name), b"jupyterhub-singleuser")
    return pid


# -- 1. another student's kernel: its iopub, live ------------------------------------------------------------
def test_attack_read_another_students_kernel_output(class_hub):
    owner, intruder = list(class_hub.students)[:2]
    home = pwd.getpwnam(owner).pw_dir
    victim, spy = kernel_of(class_hub, owner), kernel_of(class_hub, intruder)
    try:
        files = sorted(Path(home, ".run", "jupyter").glob(f"kernel-{victim.id}.json"))
        assert files, list(Path(home, ".run", "jupyter").iterdir())
        connection = json.loads(files[0].read_text())
        assert connection["transport"] == "ipc"
        assert connection["ip"].startswith(f"{home}/.run/jupyter/")
        iopub = f"{connection['ip']}-{connection['iopub_port']}"
        assert stat.S_ISSOCK(os.lstat(iopub).st_mode)
        # The owner types; root (the positive control) subscribes to the iopub socket and reads it.
        victim.run(TALK)
        assert subscribe([f"ipc://{iopub}"]) > 0, "nothing to overhear: the test would prove nothing"
        # The intruder, from their own kernel: the ipc socket is behind the 0700 home ...
        victim.run(TALK)
        seen = ran(spy, OVERHEAR.replace("IPC", repr(iopub)).replace(
            "PORTS", repr([p for p in listening_tcp_ports(uid_of(owner)) if p != server_port(class_hub, owner)])))
        assert seen["errno"] == errno.EACCES, seen
        # ... and the kernel's one TCP port (ipykernel's IOPub pipe: a PULL for forked subprocesses, keyed
        # with a random token) sends nothing to whoever connects to it.
        assert seen["ports"] and seen["heard"] == 0, seen
    finally:
        victim.shutdown()
        spy.shutdown()


TALK = """
import threading, time
def talk():
    for i in range(60):
        print("the owner typed this", i, flush=True)
        time.sleep(0.1)
threading.Thread(target=talk, daemon=True).start()
"""

OVERHEAR = """
import json, socket, time, zmq
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(IPC); number = 0
except OSError as exc:
    number = exc.errno
context = zmq.Context()
listeners = []
for port in PORTS:
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{port}")
    listeners.append(sub)
heard, end = 0, time.monotonic() + 4
poller = zmq.Poller()
for sub in listeners:
    poller.register(sub, zmq.POLLIN)
while time.monotonic() < end:
    for sub, _ in poller.poll(200):
        sub.recv_multipart(); heard += 1
print(json.dumps({"errno": number, "ports": PORTS, "heard": heard}))
"""


def subscribe(addresses: list[str], seconds: float = 4) -> int:
    """How many iopub messages a SUB socket connected to `addresses` receives in `seconds` (as root)."""
    import zmq
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    for address in addresses:
        sub.connect(address)
    heard, end = 0, time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            if sub.poll(200):
                sub.recv_multipart()
                heard += 1
    finally:
        sub.close(linger=0)
        context.term()
    return heard


def server_port(class_hub, name: str) -> int:
    """The TCP port of `name`'s single-user server (the one port of theirs the hub's proxy reaches)."""
    ports = {p for pid in processes_named(uid_of(name), b"jupyterhub-singleuser") for p in ports_of(pid)}
    (port,) = ports
    return port


def ports_of(pid: int) -> set[int]:
    """The TCP ports `pid` listens on, from its socket inodes and /proc/net/tcp*."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:
                found.add(int(fields[1].rsplit(":", 1)[1], 16))
    return found


def listening_tcp_ports(uid: int) -> list[int]:
    """TCP ports in LISTEN state owned by `uid`, in the machine's own network namespace (/proc/net/tcp*)."""
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        header, *rows = Path(table).read_text().splitlines()
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[7]) == uid:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


# -- 2. squatting another student's lab state directory --------------------------------------------------------
SQUAT_CHECK = """
import json, os, sys
from netkit import Lab, NetkitError
from netkit.state import runtime_dir
seen = {"dir": None}
try:
    seen["dir"] = str(runtime_dir())
    with Lab(name=sys.argv[1]) as lab:
        seen["lab"] = lab.run("c1", "true").returncode
except NetkitError as exc:
    seen["error"] = [type(exc).__name__, str(exc), getattr(exc, "data", {}).get("path")]
print(json.dumps(seen))
"""


def test_attack_squat_another_students_lab_state(class_hub):
    owner, squatter = list(class_hub.students)[:2]
    owner_uid, home = uid_of(owner), pwd.getpwnam(owner).pw_dir
    shared = Path(f"/tmp/netkit-{owner_uid}")
    assert not os.path.lexists(shared)
    made = as_user(squatter, f"import json, os; os.mkdir({str(shared)!r}, 0o700); print(json.dumps(os.stat("
                             f"{str(shared)!r}).st_uid))")
    assert made == uid_of(squatter) and shared.stat().st_uid != owner_uid
    # Outside class mode (an ssh login, no NETKIT_RUNTIME_DIR, no class labs yet): the labs move to the
    # home and start.
    assert not os.path.lexists(f"{home}/.run/netkit")
    seen = as_user(owner, SQUAT_CHECK, "squat-outside", env={"PYTHONPATH": str(REPO)})
    assert seen == {"dir": f"{home}/.netkit-run", "lab": 0}, seen
    # In the owner's server: the state lives in the home, the squat is not even seen.
    kernel = kernel_of(class_hub, owner)
    try:
        seen = ran(kernel, SQUAT_CHECK.replace("sys.argv[1]", "'squat-in-class'"))
    finally:
        kernel.shutdown()
    assert seen == {"dir": f"{home}/.run/netkit", "lab": 0}, seen
    # From then on an ssh login of the owner (and root's `netkit status --user`) looks where the server's labs are.
    seen = as_user(owner, "import json; from netkit.state import runtime_dir; print(json.dumps(str(runtime_dir())))",
                   env={"PYTHONPATH": str(REPO)})
    assert seen == f"{home}/.run/netkit"
    # Naming the squatted directory on purpose: refused, with the fix (root, or a folder in the home).
    seen = as_user(owner, SQUAT_CHECK, "squat-named", env={"PYTHONPATH": str(REPO),
                                                            "NETKIT_RUNTIME_DIR": str(shared)})
    kind, message, path = seen["error"]
    assert kind == "StateError" and path == str(shared), seen
    assert "NETKIT_RUNTIME_DIR=$HOME/" in message and "sudo rm -r" in message
    assert shared.stat().st_uid == uid_of(squatter) and list(shared.iterdir()) == []   # nothing written there


# -- 3. the progress board --------------------------------------------------------------------------------------
def board(class_hub) -> tuple[int, dict]:
    admin = class_hub.user(class_hub.admin[0])
    answer = admin.session.get(f"{class_hub.url}/services/netkit-progress/api/board", timeout=60)

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return answer.status_code, json.loads(answer.text, parse_constant=refuse) if answer.status_code == 200 else {}


def board_pid() -> int:
    (pid,) = [p for p in mentioning("netkit.classroom.board") if Path(f"/proc/{p}/status").exists()]
    return pid


BAD_TIMES = """
import json, os, time
path = os.environ["NETKIT_PROGRESS"]
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
good = {"exercise": "c2-out", "passed": False, "at": round(time.time(), 3)}
lines = [json.dumps(good)] + ['{"exercise": "icmp-only", "passed": true, "at": %s}' % bad
                              for bad in ("1e300", "-1e300", "Infinity", "-Infinity", "NaN", "0", "253402300800")]
with open(path, "a") as out:
    out.write("\\n".join(lines) + "\\n")
print(json.dumps(len(lines)))
"""

DEVICE_TRICK = """
import json, os, pty, shutil, subprocess, time
master, slave = pty.openpty()          # a terminal this student holds; kept open by the kernel
tty = os.ttyname(slave)
home = os.path.expanduser("~")
holder = subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private",
    "sh", "-c", "mkdir -p /tmp/trick && touch /tmp/trick/progress.jsonl && "
    "mount --bind " + tty + " /tmp/trick/progress.jsonl && echo ready && exec sleep 600"],
    stdout=subprocess.PIPE, text=True)
assert holder.stdout.readline().strip() == "ready"
shutil.rmtree(home + "/.netkit", ignore_errors=True)
os.symlink(f"/proc/{holder.pid}/root/tmp/trick", home + "/.netkit")
print(json.dumps({"holder": holder.pid, "tty": tty}))
"""


def test_attack_break_the_board(class_hub):
    timer, tricker, bystander = list(class_hub.students)
    # The bystander has one honest check on record.
    k3 = kernel_of(class_hub, bystander)
    k3.run("from netkit import progress\nassert progress.record('icmp-only', passed=True)")
    k3.shutdown()
    status, data = board(class_hub)
    assert status == 200
    before = {row["student"]: row for row in data["students"]}
    pid = board_pid()

    # Out-of-range and non-finite timestamps, written by hand into one's own file.
    k1 = kernel_of(class_hub, timer)
    try:
        assert ran(k1, BAD_TIMES) == 8
    finally:
        k1.shutdown()
    # The device trick: ~/.netkit through /proc/PID/root of the student's own namespace, onto a pty they hold.
    k2 = kernel_of(class_hub, tricker)
    trick = {}
    try:
        trick = ran(k2, DEVICE_TRICK)
        target = Path(pwd.getpwnam(tricker).pw_dir) / ".netkit" / "progress.jsonl"
        assert stat.S_ISCHR(os.stat(target).st_mode), "the trick did not put a terminal there"   # root follows it
        for _ in range(3):                                    # the page reads again every few seconds
            status, data = board(class_hub)
            assert status == 200
            k2.run("os.write(master, b'\\x03\\x03')")       # Ctrl-C, to whoever has that terminal
            time.sleep(0.5)
        page = class_hub.user(class_hub.admin[0]).session.get(f"{class_hub.url}/services/netkit-progress/",
                                                              timeout=60)
        assert page.status_code == 200
    finally:
        if trick:
            k2.run(f"import os, signal\nos.kill({trick['holder']}, signal.SIGKILL)")
        k2.shutdown()
    rows = {row["student"]: row for row in data["students"]}
    assert board_pid() == pid, "the board was restarted or killed"
    tty_nr = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[4])
    assert tty_nr == 0, "the board took a controlling terminal"
    # The timer's row: only the honest line counts; the bad times are dropped.
    cell = rows[timer]["cells"]
    assert cell["c2-out"]["state"] == "tried" and cell["c2-out"]["attempts"] == 1
    assert cell["icmp-only"] == before[timer]["cells"]["icmp-only"]
    # The tricker's row is empty and says why; the bystander's row is what it was.
    assert rows[tricker]["unreadable"] in ("ELOOP", "ENOTDIR") and rows[tricker]["passed"] == 0
    assert rows[bystander]["cells"] == before[bystander]["cells"]
    assert rows[bystander]["cells"]["icmp-only"]["state"] == "passed"


# -- 4. memory that outlives the server ---------------------------------------------------------------------
SHM_WRITE = """
import json, os
with open("/dev/shm/hoard", "wb") as out:
    for _ in range(300):
        out.write(b"x" * (1 << 20))
st = os.statvfs("/dev/shm")
print(json.dumps({"size": st.f_blocks * st.f_frsize, "ipc": os.readlink("/proc/self/ns/ipc"),
                  "mnt": os.readlink("/proc/self/ns/mnt")}))
"""


@pytest.mark.skipif(limits.available() is not None, reason=f"no cgroup memory controller: {limits.available()}")
def test_attack_hoard_memory_in_dev_shm(class_hub):
    name = list(class_hub.students)[0]
    uid = uid_of(name)
    user = class_hub.user(name)
    kernel = kernel_of(class_hub, name)
    group = folder("memory", cgroup(server_pid(name), "memory"))
    try:
        seen = ran(kernel, SHM_WRITE)
        used = usage(group)
    finally:
        kernel.shutdown()
    assert seen["size"] == 1500 << 20                                  # the tmpfs's own size limit
    assert seen["ipc"] != os.readlink("/proc/self/ns/ipc") and seen["mnt"] != os.readlink("/proc/self/ns/mnt")
    assert used >= 300 << 20, used                                      # charged to the student's cgroup
    assert accounts.leftovers(uid, ("/dev/shm",)) == []                 # not in the machine's /dev/shm
    user.stop_server()
    kernel = kernel_of(class_hub, name)
    try:
        again = ran(kernel, "import json, os; print(json.dumps(os.listdir('/dev/shm')))")
        used = usage(group)
    finally:
        kernel.shutdown()
    assert again == []                                                  # gone with the server
    assert used < 300 << 20, used


def usage(group: Path) -> int:
    """Bytes charged to a memory cgroup now (v1 memory.usage_in_bytes, v2 memory.current)."""
    name = "memory.usage_in_bytes" if (group / "memory.usage_in_bytes").exists() else "memory.current"
    return int((group / name).read_text())


def cgroup(pid: int, controller: str) -> str:
    """`pid`'s cgroup in the v1 hierarchy of `controller`, or in the v2 hierarchy where v1 has none."""
    unified = ""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
        if controllers == "":
            unified = path
    return unified


def folder(controller: str, path: str) -> Path:
    """The cgroup folder of `path` (from `cgroup()`) for `controller`, in this machine's layout."""
    return Path("/sys/fs/cgroup", controller if limits.layout() == "v1" else "", path.lstrip("/"))


# -- 5. CPU: every student's server has an equal share (the figures are in bench/bench_class.py) -------------
@pytest.mark.skipif(limits.available() is not None, reason=f"no cgroup controllers: {limits.available()}")
def test_attack_burn_the_cpu(class_hub):
    burner = list(class_hub.students)[1]
    kernel = kernel_of(class_hub, burner)
    loops = []
    try:
        loops = ran(kernel, """
import json, subprocess, sys
loops = [subprocess.Popen(["setsid", sys.executable, "-c", "while True: pass"]) for _ in range(8)]
print(json.dumps([p.pid for p in loops]))""")
        time.sleep(1)
        groups = set()
        for name in class_hub.students:
            pids = processes_named(uid_of(name), b"jupyterhub-singleuser")
            for pid in pids:
                groups.add(cgroup(pid, "cpu"))
        own = cgroup(server_pid(burner), "cpu")
        # setsid takes a loop out of its session, not out of the student's cgroup.
        loop_groups = set()
        for pid in accounts.processes_of(uid_of(burner)):
            if b"while True" in Path(f"/proc/{pid}/cmdline").read_bytes():
                loop_groups.add(cgroup(pid, "cpu"))
        assert loop_groups == {own}, loop_groups
        # pids.max, from the kernel's pid_max and the class's 4 accounts.
        pids = limits.Group((folder("pids", cgroup(server_pid(burner), "pids")),)).pids_limit()
        assert pids == limits.pids_per_student(4) == min(1024, limits.pid_max() * 3 // 4 // 4), pids
        for path in groups:
            shares, weight = folder("cpu", path) / "cpu.shares", folder("cpu", path) / "cpu.weight"
            weight = int(shares.read_text()) if shares.exists() else int(weight.read_text())
            assert weight in (1024, 100) and path.endswith(tuple(class_hub.students)), (path, weight)
    finally:
        kernel.run(f"import os, signal\nfor pid in {loops!r}: os.kill(pid, signal.SIGKILL)")
        kernel.shutdown()


# -- 6. seeing what the others run ---------------------------------------------------------------------------
PEEK = """
import json, os, subprocess
mine, others = 0, []
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            uid = os.stat(f"/proc/{entry}").st_uid
        except FileNotFoundError:
            continue
        mine += uid == os.getuid()
        if uid != os.getuid():
            others.append(int(entry))
tried = {}
for pid in TARGETS:
    for what in ("cmdline", "net/dev", "environ"):
        try:
            open(f"/proc/{pid}/{what}").read(); tried[f"{pid}/{what}"] = 0
        except OSError as exc:
            tried[f"{pid}/{what}"] = exc.errno
ps = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True)
undo = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "umount", "-l", "/proc"],
                      capture_output=True, text=True)
print(json.dumps({"mine": mine, "others": others, "tried": tried, "ps": sorted(set(ps.stdout.split())),
                  "undo": undo.returncode}))
"""


def test_attack_see_what_others_run(class_hub):
    owner, peeker = list(class_hub.students)[:2]
    victim, spy = kernel_of(class_hub, owner), kernel_of(class_hub, peeker)
    try:
        lab = int(victim.run("from netkit import Lab\nlab = Lab(name='seen', replace=True)\nprint(lab.pid)"))
        targets = [server_pid(owner), lab, *processes_named(uid_of(owner), b"ipykernel_launcher")]
        assert Path(f"/proc/{lab}/net/dev").read_text()                       # root sees it: it is there
        seen = ran(spy, PEEK.replace("TARGETS", repr(targets)))
        # Outside the server (as an ssh login, the machine's /proc): the pid is there, its namespaces are not
        # the peeker's to open.
        outside = as_user(peeker, f"""
import errno, json, os
found = {{}}
for kind in ("user", "net", "mnt"):
    try:
        os.close(os.open("/proc/{lab}/ns/" + kind, os.O_RDONLY)); found[kind] = 0
    except OSError as exc:
        found[kind] = exc.errno
print(json.dumps(found))""")
    finally:
        victim.run("lab.close()")
        victim.shutdown()
        spy.shutdown()
    assert seen["others"] == [] and seen["mine"] >= 2, seen         # its server and kernel, no one else
    assert set(seen["tried"].values()) == {errno.ENOENT}, seen["tried"]
    assert seen["ps"] == [str(uid_of(peeker))], seen["ps"]
    assert seen["undo"] != 0                                                  # the hiding /proc is locked in
    assert set(outside.values()) <= {errno.EACCES, errno.EPERM} and len(outside) == 3, outside
    assert privacy.hidden_proc(server_pid(peeker))
    # The machine's own /proc is as it was: root (and the tests) still see every process.
    assert not privacy.hidden_proc(1) and not privacy.hidden_proc()


# -- 7. a way in that skips the server's limits ---------------------------------------------------------------
def test_attack_log_in_outside_the_hub(class_hub):
    name = list(class_hub.students)[1]
    uid = uid_of(name)
    assert pwd.getpwnam(name).pw_shell == accounts.LOGIN_SHELL
    # A login shell (what ssh or su would start) ends at once, having run nothing.
    login = subprocess.run(["runuser", "-l", name, "-c", "touch /tmp/logged-in-" + name],
                           capture_output=True, text=True, timeout=30)
    assert login.returncode != 0 and not os.path.exists(f"/tmp/logged-in-{name}")
    # JupyterLab's terminal still opens, as bash, inside the server's cgroup.
    user = class_hub.user(name)
    user.start_server()
    answer = user.server_api("POST", "terminals")
    assert answer.status_code == 200, answer.text[:300]
    terminal = answer.json()["name"]
    try:
        deadline = time.monotonic() + 30
        while not (shells := processes_named(uid, b"/bin/bash")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert shells, "no bash of the student's terminal"
        if limits.available() is None:
            assert {cgroup(pid, "memory") for pid in shells} == {cgroup(server_pid(name), "memory")}
    finally:
        assert user.server_api("DELETE", f"terminals/{terminal}").status_code == 204


# -- 8. what a removed account leaves behind (last: it removes one student) -----------------------------------
LEAVE = """
import ctypes, json, os, subprocess
os.makedirs("/tmp/left-dir/deeper", exist_ok=True)
open("/tmp/left-dir/deeper/file", "w").write("x")
open("/var/tmp/left-file", "w").write("x")
open("/dev/shm/left-shm", "w").write("x")
open("/run/lock/left-lock", "w").write("x")
libc = ctypes.CDLL(None, use_errno=True)
segment = libc.shmget(0, 1 << 20, 0o1600)          # IPC_PRIVATE: outlives its process
subprocess.Popen(["setsid", "sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, start_new_session=True)
print(json.dumps(segment))
"""


def test_attack_leave_things_behind_for_the_next_class(class_hub, tmp_path):
    name = list(class_hub.students)[2]
    uid = uid_of(name)
    assert as_user(name, LEAVE) >= 0
    kernel = kernel_of(class_hub, name)                   # a server, a kernel and a lab running too
    kernel.run("from netkit import Lab\nlab = Lab(name='left', replace=True)")   # left running
    left = accounts.leftovers(uid)
    assert {"/tmp/left-dir", "/var/tmp/left-file", "/dev/shm/left-shm", "/run/lock/left-lock"} <= set(left), left
    assert any(item.startswith("shm ") for item in left), left
    assert accounts.processes_of(uid)
    roster = tmp_path / "one.csv"
    roster.write_text(f"{name},{class_hub.students[name]}\n")
    os.chmod(tmp_path, 0o755)
    other_port = free_tcp_port()      # not the hub's: its class's cgroups are not this command's to remove
    done = subprocess.run([sys.executable, "-m", "netkit.classroom", "--remove", "--roster", str(roster),
                           "--port", str(other_port), "--state-dir", str(tmp_path / "no-state")],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    assert accounts.processes_of(uid) == []
    assert accounts.leftovers(uid) == []
    assert not Path(f"/home/{name}").exists()


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
