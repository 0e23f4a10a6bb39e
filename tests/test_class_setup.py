"""`./quickstart class` refuses bad input before it makes anything; accounts and limits on the real machine.

Each refusal runs the real command (``python -m netkit.classroom``, what
``./quickstart class`` runs) as root, and then checks that nothing was made:
no account, no home, no hub state, no roster written, no cgroup. The
throwaway names (``nkt-<random>-N``) are removed in ``finally`` whatever happens.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpers import REPO, refused_user_namespaces
from netkit.classroom import accounts, checks, limits
from netkit.classroom.roster import Entry

pytestmark = [pytest.mark.hub,
              pytest.mark.skipif(os.geteuid() != 0, reason="class mode makes Unix accounts: needs root")]


def names(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"nkt-{tag}-{i}" for i in range(1, count + 1)]


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def run_class(*args: str, wrap=None, timeout: float = 60) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "netkit.classroom", *args]
    return subprocess.run(wrap(argv) if wrap else argv, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture
def place(tmp_path):
    state = tmp_path / "state"
    return tmp_path, state


def assert_nothing_made(users: list[str], state: Path, port: int) -> None:
    assert not [u for u in users if exists(u)], "an account was made"
    assert not [u for u in users if Path(f"/home/{u}").exists()], "a home was made"
    assert not state.exists(), "the hub's state directory was made"
    for parent in limits.Group.parent_dirs(f"netkit-class-{port}") if limits.layout() else ():
        assert not parent.exists(), f"a cgroup was made: {parent}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_roster_lines_are_all_named_and_nothing_is_made(place):
    tmp, state = place
    users = names(2)
    roster = tmp / "roster.csv"
    roster.write_text(f"{users[0]},good-pw\n{users[1]}\nNot Valid,pw\n")
    port = free_port()
    done = run_class("--roster", str(roster), "--port", str(port), "--state-dir", str(state))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "2 bad line(s)" in done.stderr and "line 2: no comma" in done.stderr
    assert "line 3: 'Not Valid' is not a valid account name" in done.stderr
    assert_nothing_made(users, state, port)


def test_a_name_that_belongs_to_a_real_user_is_refused(place):
    tmp, state = place
    users = names(1)
    roster = tmp / "roster.csv"
    roster.write_text(f"{users[0]},pw-1\ndaemon,pw-2\n")   # daemon: an account netkit did not make
    port = free_port()
    done = run_class("--roster", str(roster), "--port", str(port), "--state-dir", str(state))
    assert done.returncode == 2
    assert "'daemon' is already an account on this machine (uid 1, not made by netkit)" in done.stderr
    assert "nothing was created" in done.stderr
    assert pwd.getpwnam("daemon").pw_gecos.split(",")[0] != checks.MARK   # and it was left as it was
    assert_nothing_made(users, state, port)


def test_a_port_in_use_is_refused(place):
    tmp, state = place
    users = names(1)
    roster = tmp / "roster.csv"
    roster.write_text(f"{users[0]},pw-1\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_class("--roster", str(roster), "--port", str(port), "--state-dir", str(state))
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use by another program" in done.stderr
    assert_nothing_made(users, state, port)


def test_an_admin_without_an_account_is_refused(place):
    tmp, state = place
    users = names(2)
    roster = tmp / "roster.csv"
    roster.write_text(f"{users[0]},pw-1\n")
    port = free_port()
    done = run_class("--roster", str(roster), "--port", str(port), "--admin", users[1], "--state-dir", str(state))
    assert done.returncode == 2
    assert f"--admin {users[1]}: there is no such account" in done.stderr
    assert_nothing_made(users, state, port)


def test_students_n_writes_no_roster_when_a_check_fails(place):
    tmp, state = place
    roster = tmp / "new-roster.csv"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_class("--students", "3", "--roster", str(roster), "--port", str(port), "--state-dir", str(state))
    assert done.returncode == 2 and "in use" in done.stderr
    assert not roster.exists()
    assert_nothing_made([], state, port)


def test_a_kernel_that_refuses_user_namespaces_is_named_before_anything_is_made(place):
    """Root runs the command where the kernel refuses new user namespaces (as Binder, or Ubuntu 24.04's
    AppArmor default): the students' labs could never start, so the class is not set up."""
    tmp, state = place
    users = names(1)
    roster = tmp / "roster.csv"
    roster.write_text(f"{users[0]},pw-1\n")
    os.chmod(tmp, 0o755)
    limit = Path("/proc/sys/user/max_user_namespaces").read_text()
    port = free_port()
    done = run_class("--roster", str(roster), "--port", str(port), "--state-dir", str(state),
                     wrap=lambda argv: refused_user_namespaces(0, 0, argv))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "this kernel refuses user namespaces to unprivileged users" in done.stderr
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in done.stderr
    assert_nothing_made(users, state, port)
    assert Path("/proc/sys/user/max_user_namespaces").read_text() == limit


def test_the_checks_pass_on_this_machine_and_make_nothing(place):
    tmp, state = place
    users = names(2)
    roster = tmp / "roster.csv"
    roster.write_text("".join(f"{u},pw-{i}\n" for i, u in enumerate(users)))
    port = free_port()
    done = run_class("--check-only", "--roster", str(roster), "--port", str(port), "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    assert "the class of 2 can be set up on this machine" in done.stdout
    assert_nothing_made(users, state, port)


def test_accounts_get_private_homes_and_notebooks_and_removal_ends_their_processes(tmp_path):
    users = names(2)
    books = REPO / "notebooks"
    try:
        made = [accounts.ensure(Entry(u, f"pw-{u}"), books, admin=(i == 1), trace=lambda _: None)
                for i, u in enumerate(users)]
        for user, admin in zip(made, (False, True)):
            home = Path(user.pw_dir)
            assert user.pw_uid != 0 and checks.ours(user.pw_name)
            assert oct(home.stat().st_mode & 0o777) == "0o700"
            given = sorted(p.name for p in (home / "notebooks").iterdir())
            assert "01-container-to-container.ipynb" in given
            assert ("dashboard.ipynb" in given) is admin
            assert all(p.stat().st_uid == user.pw_uid for p in (home / "notebooks").iterdir())
        # One student cannot read the other's home.
        peek = subprocess.run(["runuser", "-u", users[0], "--", "ls", made[1].pw_dir],
                              capture_output=True, text=True)
        assert peek.returncode != 0 and "Permission denied" in peek.stderr
        # A process of the student's keeps running until the account is removed.
        sleeper = subprocess.Popen(["runuser", "-u", users[0], "--", "sleep", "600"])
        try:
            deadline = time.monotonic() + 5
            while not accounts.processes_of(made[0].pw_uid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert accounts.processes_of(made[0].pw_uid)
            assert accounts.remove(users[0], trace=lambda _: None)
            assert sleeper.wait(timeout=10) != 0
        finally:
            if sleeper.poll() is None:
                sleeper.kill()
        assert not exists(users[0]) and not Path(made[0].pw_dir).exists()
        assert accounts.processes_of(made[0].pw_uid) == []
        assert accounts.remove("daemon", trace=lambda _: None) is False and exists("daemon")
    finally:
        for user in users:
            if exists(user):
                accounts.remove(user, trace=lambda _: None)
    assert not [u for u in users if exists(u)]


@pytest.mark.skipif(limits.available() is not None, reason=f"no cgroup memory controller: {limits.available()}")
def test_the_memory_limit_is_enforced_by_the_kernel():
    """A process in a student's group that asks for more than the limit is ended by the OOM killer;
    one that stays below it is not. The group is gone afterwards."""
    name = f"netkit-test-{uuid.uuid4().hex[:6]}"
    group = limits.Group.create("student", name, memory=64 << 20, pids=64)
    try:
        assert group.memory_limit() == 64 << 20
        hog = "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); print('survived')"
        small = "b = bytearray(8 << 20); print('survived')"
        greedy = subprocess.run([sys.executable, "-c", hog], preexec_fn=group.join, capture_output=True, text=True)
        modest = subprocess.run([sys.executable, "-c", small], preexec_fn=group.join, capture_output=True, text=True)
        assert greedy.returncode == -9 and "survived" not in greedy.stdout
        assert modest.returncode == 0 and modest.stdout.strip() == "survived"
        assert group.oom_kills() >= 1
    finally:
        assert group.end()
        limits.remove_class(name)
    assert not any(d.exists() for d in group.dirs)
    assert not any(p.exists() for p in limits.Group.parent_dirs(name))


def test_quickstart_class_refuses_a_bad_roster_before_installing_anything(place):
    """The instructor's command: its checks run before apt, npm or the shared environment."""
    tmp, state = place
    users = names(1)
    roster = tmp / "roster.csv"
    roster.write_text(f"{users[0]}\n")
    port = free_port()
    done = subprocess.run([str(REPO / "quickstart"), "class", "--roster", str(roster), "--port", str(port),
                           "--state-dir", str(state)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "line 1: no comma; write username,password" in done.stderr
    assert "==>" not in done.stdout            # nothing was installed: quickstart says each install step
    assert_nothing_made(users, state, port)


def test_the_hub_config_says_what_the_class_needs_and_runs_the_instructors_extra_last(tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    from netkit.classroom.hub import BOARD, CULLER, EXTRA, Settings, write_config
    state = tmp_path / "state"
    settings = Settings(students=["ana", "ben"], admins=["teacher"], state_dir=str(state), port=8123,
                        mem_limit=1 << 30, idle_timeout=600)
    config = write_config(settings)
    (state / EXTRA).write_text("c.Spawner.start_timeout = 77\n")
    c = PyFileConfigLoader(str(config)).load_config()
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123"
    assert c.JupyterHub.hub_ip == "127.0.0.1" and c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.Authenticator.allowed_users == {"ana", "ben", "teacher"} and c.Authenticator.admin_users == {"teacher"}
    assert c.JupyterHub.spawner_class == "netkit.classroom.spawner.ClassSpawner"
    assert c.Spawner.mem_limit == 1 << 30 and c.Spawner.start_timeout == 77      # the extra file ran last
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services[BOARD]["environment"]["NETKIT_CLASS_STUDENTS"] == "ana,ben"  # the admin is not a row
    assert "--timeout=600" in services[CULLER]["command"]
    (role,) = c.JupyterHub.load_roles
    assert role["services"] == [CULLER] and "delete:servers" in role["scopes"]
    assert oct(state.stat().st_mode & 0o777) == "0o700"                        # the cookie secret lives there
