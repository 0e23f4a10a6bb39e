"""Hardened lab state: one lab per name, identity not names, a private state directory, no zombies.

Each test sets up what went wrong on the earlier code (a race, a recycled
pid, a planted symlink, a deleted state file, a pid 1 that reaps nothing)
on real namespaces, and asserts what the kernel and /proc show afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from helpers import PYTHON, REPO, agents_running, lab_hosts, lab_name, lab_traces, wait_gone
from netkit import Lab, LabInUse, LabNotFound, StateError
from netkit import state

pytestmark = pytest.mark.lab


def netkit(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "netkit", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def private(tmp_path, monkeypatch):
    """A state directory of this test's own, for this process and the commands it runs; emptied after."""
    path = tmp_path / "run"
    monkeypatch.setenv("NETKIT_RUNTIME_DIR", str(path))
    env = dict(os.environ)
    yield path, env
    netkit("down", "--all", env=env)


# -- one lab per name ------------------------------------------------------------------------
@pytest.mark.parametrize("starts", [2, 5, 20])
def test_concurrent_starts_give_exactly_one_lab(private, starts):
    path, env = private
    name = lab_name("race")
    argv = [PYTHON, "-m", "netkit", "up", "--lab", name, "--quiet"]
    procs = [subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(starts)]
    results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    up = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] == 2]
    assert len(up) == 1, results
    assert len(refused) == starts - 1, results
    assert all(f"a lab called {name!r} is" in err for _, _, err in refused), refused
    # Exactly one lab process tree runs, and the state file names it.
    assert len(lab_hosts(name)) == 1
    status = netkit("status", env=env).stdout
    assert sum(line.startswith(name + " ") and " running " in line for line in status.splitlines()) == 1


def test_concurrent_lab_objects_give_exactly_one_lab(private):
    path, env = private
    name = lab_name("race")
    child = textwrap.dedent(f"""
        import sys, time
        from netkit import Lab, LabInUse
        try:
            lab = Lab(name={name!r})
        except LabInUse as exc:
            print("refused", flush=True)
            sys.exit(0)
        print("up", flush=True)
        sys.stdin.read()   # hold the lab until the test closes our stdin
    """)
    procs = [subprocess.Popen([PYTHON, "-c", child], cwd=REPO, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(5)]
    try:
        said = [p.stdout.readline().strip() for p in procs]
        assert sorted(said) == ["refused"] * 4 + ["up"], said
        assert len(lab_hosts(name)) == 1
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(30)
            p.stdout.close()


def test_a_starting_lab_is_not_taken_for_stale(private):
    path, env = private
    name = lab_name("starting")
    claim = state.Claim(name)          # a start in progress: claimed, nothing written yet
    try:
        assert (path / f"{name}.json").read_text() == ""
        row = next(line for line in netkit("status", env=env).stdout.splitlines() if line.startswith(name))
        assert " starting " in row
        with pytest.raises(LabInUse, match="starting right now"):
            Lab(name=name)
        down = netkit("down", "--lab", name, env=env)
        assert down.returncode == 2 and "still starting" in down.stderr
        assert (path / f"{name}.json").exists()   # nobody removed a claim in progress
    finally:
        claim.drop()
    assert not (path / f"{name}.json").exists()   # the claim's last hold removed its own file


# -- identity, not a name ----------------------------------------------------------------------
IMPOSTOR = "import sys, time; time.sleep(120)"


def _impostor(name: str, user: tuple[int, int] | None = None) -> subprocess.Popen:
    """A process whose command line looks like lab `name`'s host (what the old liveness check matched)."""
    def become():
        if user:
            os.setgid(user[1])
            os.setuid(user[0])
    return subprocess.Popen(["/usr/bin/python3", "-c", IMPOSTOR, "-m", "netkit.agent", "--name", name],
                            preexec_fn=become if user else None)


def test_a_record_naming_a_live_process_that_is_not_the_lab(private, netkit_test_user):
    path, env = private
    name = lab_name("reused")
    uid, gid, _ = netkit_test_user
    with Lab(name=name) as lab:
        record = (path / f"{name}.json").read_text()
    impostor = _impostor(name, (uid, gid))
    try:
        # What the old code trusted: the dead lab's record, now naming a live process whose
        # command line holds `netkit.agent` and the lab's name (and which is another user's).
        data = json.loads(record)
        data.update(init_pid=impostor.pid, pid=impostor.pid)
        (path / f"{name}.json").write_text(json.dumps(data))
        row = next(line for line in netkit("status", env=env).stdout.splitlines() if line.startswith(name))
        assert " stale " in row and " running " not in row
        done = netkit("exec", "--lab", name, "c1", "--", "true", env=env)
        assert done.returncode == 2 and f"no running lab called {name!r}" in done.stderr
        done = netkit("down", "--lab", name, env=env)
        assert done.returncode == 0 and "no lab was running" in done.stdout
        assert impostor.poll() is None, "netkit signalled a process that was not its lab"
        assert not (path / f"{name}.json").exists()
    finally:
        impostor.kill()
        impostor.wait()


def test_a_held_name_whose_pid_1_is_someone_else(private):
    """The lock is held (by a stranger) and the record names a live process with another start time."""
    path, env = private
    name = lab_name("held")
    with Lab(name=name):
        record = json.loads((path / f"{name}.json").read_text())
    impostor = _impostor(name)
    holder = open(path / f"{name}.json", "w+")
    try:
        fcntl.fcntl(holder.fileno(), fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
        record.update(init_pid=impostor.pid, pid=impostor.pid)   # the start times stay the dead lab's
        holder.write(json.dumps(record))
        holder.flush()
        row = next(line for line in netkit("status", env=env).stdout.splitlines() if line.startswith(name))
        assert " ended " in row
        assert netkit("exec", "--lab", name, "c1", "--", "true", env=env).returncode == 2
        done = netkit("down", "--lab", name, env=env)
        assert done.returncode == 0 and "stays taken" in done.stdout
        assert impostor.poll() is None, "netkit signalled a process it had not proven to be the lab's"
        with pytest.raises(LabInUse):
            Lab(name=name)    # the name is held: one name, one holder
    finally:
        holder.close()
        impostor.kill()
        impostor.wait()


RECYCLE = textwrap.dedent("""
    # Runs as pid 1 of a fresh pid namespace (with its own /proc), as root.
    import json, os, subprocess, sys, time
    from netkit import Lab
    name, user = sys.argv[1], sys.argv[2:]
    run = lambda *a: subprocess.run([sys.executable, "-m", "netkit", *a], capture_output=True, text=True)
    state = os.path.join(os.environ["NETKIT_RUNTIME_DIR"], name + ".json")
    lab = Lab(name=name)
    record, dead = open(state).read(), lab.pid
    lab.close()
    with open(state, "w") as f:
        f.write(record)                 # a state file left behind by the dead lab
    impostor = None
    for _ in range(50):                 # make the next pid the dead lab's, and start a stranger there
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(dead - 1))
        def become():
            os.setgid(int(user[1])); os.setuid(int(user[0]))
        p = subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(60)", "-m", "netkit.agent",
                              "--name", name], preexec_fn=become)
        if p.pid == dead:
            impostor = p
            break
        p.kill(); p.wait()
    out = {"dead": dead, "recycled": impostor is not None}
    if impostor:
        out["status"] = run("status").stdout
        out["exec"] = run("exec", "--lab", name, "host", "--", "true").returncode
        out["down"] = run("down", "--lab", name).stdout
        time.sleep(0.2)
        out["impostor_alive"] = impostor.poll() is None
        out["impostor_uid"] = os.stat(f"/proc/{impostor.pid}").st_uid
        impostor.kill(); impostor.wait()
    print(json.dumps(out), flush=True)
""")


def test_a_really_recycled_pid_is_never_taken_for_the_lab(private, netkit_test_user):
    """In a pid namespace of its own, the dead lab's pid 1 is handed to another user's process."""
    path, env = private
    uid, gid, _ = netkit_test_user
    name = lab_name("recycled")
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", PYTHON, "-c", RECYCLE,
                           name, str(uid), str(gid)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["recycled"], "could not hand the dead lab's pid to a new process"
    assert seen["impostor_uid"] == uid
    row = next(line for line in seen["status"].splitlines() if line.startswith(name))
    assert " running " not in row and " stale " in row
    assert seen["exec"] == 2
    assert "no lab was running" in seen["down"]
    assert seen["impostor_alive"]


# -- the state directory -----------------------------------------------------------------------
def _start_with() -> StateError:
    with pytest.raises(StateError) as caught:
        Lab(name=lab_name())
    return caught.value


def test_a_state_directory_open_to_everyone_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)            # like /tmp: anyone could plant a symlink there
    monkeypatch.setenv("NETKIT_RUNTIME_DIR", str(shared))
    error = _start_with()
    assert "open to other users (mode 1777)" in str(error) and "export NETKIT_RUNTIME_DIR=" in str(error)
    assert list(shared.iterdir()) == []
    done = netkit("status", env=dict(os.environ))
    assert done.returncode == 2 and "open to other users" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("case", ["file", "file-parent", "dangling-symlink", "symlink", "other-owner"])
def test_odd_state_directories_are_clear_errors(tmp_path, monkeypatch, case):
    target = tmp_path / "state"
    if case == "file":
        target.write_text("not a directory")
        expected = "is a file, not a directory"
    elif case == "file-parent":
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "state"
        expected = "a part of that path is a file"
    elif case == "dangling-symlink":
        target.symlink_to(tmp_path / "nowhere")
        expected = "points nowhere"
    elif case == "symlink":
        (tmp_path / "real").mkdir(mode=0o700)
        target.symlink_to(tmp_path / "real")
        expected = "is a symlink"
    else:
        target.mkdir(mode=0o700)
        os.chown(target, 65534, 65534)
        expected = "belongs to uid 65534"
    monkeypatch.setenv("NETKIT_RUNTIME_DIR", str(target))
    error = _start_with()
    assert expected in str(error) and "NETKIT_RUNTIME_DIR" in str(error)
    done = netkit("status", env=dict(os.environ))
    assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr
    if case == "symlink":
        assert list((tmp_path / "real").iterdir()) == []   # nothing written through the link


def test_a_symlink_planted_as_a_state_file_is_not_followed(private):
    path, env = private
    name = lab_name("planted")
    path.mkdir(mode=0o700, exist_ok=True)
    victim = path.parent / "victim"
    victim.write_text("precious\n")
    (path / f"{name}.json").symlink_to(victim)
    with pytest.raises(StateError, match="is a symlink"):
        Lab(name=name)
    assert victim.read_text() == "precious\n"
    assert agents_running({name}) == []


USER_CASES = textwrap.dedent("""
    import json, os, sys
    from netkit import Lab, NetkitError
    case, name = sys.argv[1], sys.argv[2]
    default = f"/tmp/netkit-{os.geteuid()}"
    if case == "file":
        open(default, "w").write("x")
    elif case == "dangling-symlink":
        os.symlink("/tmp/netkit-nowhere-" + name, default)
    elif case == "open-mode":
        os.mkdir(default); os.chmod(default, 0o755)
    try:
        Lab(name=name).close()
        print(json.dumps({"kind": None}))
    except NetkitError as exc:
        print(json.dumps({"kind": type(exc).__name__, "message": str(exc)}))
""")


@pytest.mark.rootless
@pytest.mark.parametrize("case, expected", [
    ("file", "is a file, not a directory"),
    ("dangling-symlink", "points nowhere"),
    ("open-mode", "open to other users (mode 0755)"),
])
def test_odd_default_state_directories_of_a_user(netkit_test_user, netkit_copy, case, expected):
    uid, _, home = netkit_test_user
    default = Path(f"/tmp/netkit-{uid}")
    subprocess.run(["rm", "-rf", str(default)], check=True)
    try:
        done = subprocess.run(
            ["runuser", "-u", "netkit-test", "--", "env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}",
             f"PYTHONPATH={netkit_copy}", "/usr/bin/python3", "-c", USER_CASES, case, lab_name()],
            capture_output=True, text=True, timeout=60, cwd="/")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["kind"] == "StateError", result
        assert expected in result["message"], result
        assert f"rm -r {default}" in result["message"] or f"chmod 700 {default}" in result["message"], result
    finally:
        subprocess.run(["rm", "-rf", str(default)], check=True)


# -- a lab without its file, a file without its lab, a lab ended from outside ----------------
def test_a_lab_whose_state_file_was_deleted_is_found_and_ended(private):
    path, env = private
    name = lab_name("orphan")
    lab = Lab(name=name)
    traces = lab_traces(lab)
    (path / f"{name}.json").unlink()                      # deleted by hand
    row = next(line for line in netkit("status", env=env).stdout.splitlines() if line.startswith(name))
    assert " orphan " in row and str(lab.pid) in row
    started = time.monotonic()
    done = netkit("down", "--lab", name, env=env)
    assert done.returncode == 0 and "had been deleted" in done.stdout and str(lab.pid) in done.stdout
    assert wait_gone(traces, started) == []
    assert lab.closed
    lab.close()


def test_a_state_file_without_a_lab_is_reported_and_removed(private):
    path, env = private
    name = lab_name("stale")
    with Lab(name=name):
        record = (path / f"{name}.json").read_text()
    (path / f"{name}.json").write_text(record)          # what a crash could leave
    row = next(line for line in netkit("status", env=env).stdout.splitlines() if line.startswith(name))
    assert " stale " in row
    done = netkit("down", "--all", env=env)
    assert f"removed the state file of lab {name!r}" in done.stdout
    assert not (path / f"{name}.json").exists()
    with Lab(name=name) as lab:                          # and a stale file never blocks a new lab
        assert lab.run("c1", "true").ok


def test_a_lab_ended_from_outside_says_so(private):
    path, env = private
    name = lab_name("outside")
    lab = Lab(name=name)
    try:
        done = netkit("down", "--lab", name, env=env)
        assert done.returncode == 0 and f"lab {name!r} is down" in done.stdout
        deadline = time.monotonic() + 1
        while not lab.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lab.closed
        with pytest.raises(LabNotFound, match="netkit down"):
            lab.reset()
        with pytest.raises(LabNotFound, match="netkit down"):
            lab.run("c1", "true")
        with Lab(name=name) as again:                    # the name is free at once
            assert again.run("c1", "true").ok
    finally:
        lab.close()


# -- reaping -------------------------------------------------------------------------------
PID1 = textwrap.dedent("""
    # Pid 1 of a fresh pid namespace that reaps nothing but its own direct children.
    import json, os, signal, subprocess, sys, time
    mode, name = sys.argv[1], sys.argv[2]
    def reap(*_):
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
    if mode == "reaping-pid1":
        signal.signal(signal.SIGCHLD, reap)
    run = lambda *a: subprocess.run([sys.executable, "-m", "netkit", *a], capture_output=True, text=True)

    def zombies():
        found = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    text = open(f"/proc/{pid}/stat").read()
                except OSError:
                    continue
                if text.rsplit(")", 1)[1].split()[0] == "Z":
                    found.append(text[:text.rindex(")") + 1])
        return found

    def keepers():
        found = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    argv = open(f"/proc/{pid}/cmdline").read().split("\\0")
                except OSError:
                    continue
                if argv[1:3] == ["-m", "netkit.keeper"]:
                    found.append(int(pid))
        return found

    out = {}
    if mode == "notebook":
        owner = subprocess.Popen([sys.executable, "-c", "import sys; from netkit import Lab; "
                                  f"lab = Lab(name={name!r}); print('up', flush=True); sys.stdin.read()"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert owner.stdout.readline().strip() == "up"
        out["down"] = run("down", "--lab", name).stdout
        time.sleep(0.5)
        out["zombies"] = zombies()
        owner.stdin.close(); owner.wait()
    else:
        out["up"] = run("up", "--lab", name, "--quiet").returncode
        out["down"] = run("down", "--lab", name).stdout
        time.sleep(0.5)
        out["zombies"] = zombies()
        time.sleep(1.5)        # the keeper's grace before it may exit
        out["keepers"] = keepers()
        out["zombies_later"] = zombies()
        out["status"] = run("status").stdout
    print(json.dumps(out), flush=True)
""")


@pytest.mark.parametrize("mode", ["notebook", "keeper", "reaping-pid1"])
def test_netkit_down_leaves_no_zombie_under_a_pid_1_that_reaps_nothing(private, mode):
    path, env = private
    name = lab_name("zombie")
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", PYTHON, "-c", PID1,
                           mode, name], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert f"lab {name!r} is down" in seen["down"]
    assert seen["zombies"] == [], seen
    if mode == "keeper":
        # Its parent (this pid 1) does not reap, so the keeper stays, idle, rather than become a zombie.
        assert len(seen["keepers"]) == 1 and seen["zombies_later"] == []
        assert "the netkit keeper, pid" in seen["status"]
    if mode == "reaping-pid1":
        assert seen["keepers"] == [] and seen["zombies_later"] == []   # it could go, so it went
