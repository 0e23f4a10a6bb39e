"""Class mode for real: one hub, three students and an instructor, real PAM logins, real labs.

One hub serves every test of this module (`class_hub`): ``./quickstart class``
itself, as an instructor types it, on a free loopback port,
with a roster of three throwaway students (``nkt-<random>-N``) and an admin.
Each student logs in through the hub's login form over HTTP (the ``_xsrf``
field, PAM checking the password), and code runs in that student's own
server: a kernel started through the server's REST API and driven over its
WebSocket, through the hub's proxy (`netkit.classroom.client`). Notebook 01
runs there cell by cell, as the student, in the student's own lab.

Afterwards the hub is stopped like Ctrl-C, ``--remove`` deletes the
accounts, and the fixture checks that nothing is left: no account, home,
process of theirs, hub process, cgroup or hub state.

The browser test (marked ``browser`` too) comes first: it needs a student
whose progress is still empty, to watch the board change.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import REPO
from netkit.classroom import accounts, install, limits
from netkit.classroom.client import HubError, HubUser
from netkit.scenarios import EXERCISES

ARTIFACTS = REPO / "artifacts"
NOTEBOOK_01 = "01-container-to-container.ipynb"

HUB_MARKS = [
    pytest.mark.hub, pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="class mode makes Unix accounts and runs the hub: needs root"),
    pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")),
                       reason="no node/npm for the hub's proxy: apt-get install nodejs npm "
                              "(./quickstart class installs them)"),
]
"""What every test on a real class hub needs (tests/test_hostile_class.py runs on this module's hub too)."""
pytestmark = HUB_MARKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uid_of(name: str) -> int:
    return pwd.getpwnam(name).pw_uid


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def processes_named(uid: int, word: bytes) -> list[int]:
    """Pids of `uid` whose command line holds `word`."""
    found = []
    for pid in accounts.processes_of(uid):
        try:
            if word in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def cgroup_of(pid: int, controller: str = "memory") -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (controller == "" and controllers == ""):
            return path
    return ""


def mentioning(text: str) -> list[int]:
    """Pids of every process whose command line holds `text` (the hub, its proxy and services)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@dataclass
class ClassHub:
    url: str
    port: int
    students: dict[str, str]          # name -> password
    admin: tuple[str, str]
    state: Path
    log: Path
    proc: subprocess.Popen
    users: dict[str, HubUser] = field(default_factory=dict)

    def user(self, name: str) -> HubUser:
        """`name`, logged in through the form (once per module), with an API token."""
        if name not in self.users:
            password = self.students.get(name) or self.admin[1]
            user = HubUser(self.url, name, password)
            user.login()
            user.make_token()
            self.users[name] = user
        return self.users[name]


@pytest.fixture(scope="module")
def class_hub(tmp_path_factory):
    install.install(trace=lambda _: None)    # cached in /opt/netkit, keyed by pyproject.toml's hash
    place = tmp_path_factory.mktemp("class")
    os.chmod(place, 0o755)
    tag = uuid.uuid4().hex[:6]
    students = {f"nkt-{tag}-{i}": f"pw-{secrets.token_hex(6)}" for i in (1, 2, 3)}
    admin = (f"nkt-{tag}-t", f"pw-{secrets.token_hex(6)}")
    roster = place / "roster.csv"
    roster.write_text("".join(f"{n},{p}\n" for n, p in [*students.items(), admin]))
    os.chmod(roster, 0o600)
    port, state = free_port(), place / "state"
    log = ARTIFACTS / "hub" / "class-hub.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # The instructor's command itself (it execs Debian's python3 -m netkit.classroom after its checks).
    argv = [str(REPO / "quickstart"), "class", "--roster", str(roster), "--port", str(port),
            "--admin", admin[0], "--state-dir", str(state), "--mem-limit", "1500M"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    hub = ClassHub(f"http://127.0.0.1:{port}", port, students, admin, state, log, proc)
    uids: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 240
        while "the class is open at" not in log.read_text():
            assert proc.poll() is None, f"the class command ended (exit {proc.returncode}):\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"the hub did not open in 240 s:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        uids = {name: uid_of(name) for name in [*students, admin[0]]}
        yield hub
    finally:
        # Ctrl-C, as an instructor stops it; then --remove.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        removed = subprocess.run([sys.executable, "-m", "netkit.classroom", "--remove", "--roster", str(roster),
                                  "--port", str(port), "--state-dir", str(state)],
                                 capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        for name in [*students, admin[0]]:   # whatever --remove could not do, so nothing is left
            if exists(name):
                accounts.remove(name, trace=lambda _: None)
    assert proc.returncode == 0, f"the hub did not stop cleanly (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
    assert removed.returncode == 0, removed.stderr
    assert "Received signal SIGTERM" in log.read_text() or "Received signal SIGINT" in log.read_text()
    left = [n for n in [*students, admin[0]] if exists(n) or Path(f"/home/{n}").exists()]
    assert not left, f"accounts or homes outlived the class: {left}"
    assert not [uid for uid in uids.values() if accounts.processes_of(uid)], "processes of the students outlived it"
    assert not mentioning(str(state)), "a process of the hub outlived it"
    assert not state.exists()
    if limits.available() is None:
        assert not [p for p in limits.Group.parent_dirs(f"netkit-class-{port}") if p.exists()]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "something still listens on the hub's port"


def run_in_parallel(function, items) -> list:
    """function(item) for every item at once, in threads; the first exception is raised."""
    results: dict = {}

    def work(item):
        try:
            results[item] = function(item)
        except BaseException as exc:   # noqa: BLE001 - handed back to the test below
            results[item] = exc
    threads = [threading.Thread(target=work, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for item in items:
        if isinstance(results[item], BaseException):
            raise results[item]
    return [results[item] for item in items]


# -- 0. the browser: a student runs notebook 01 and passes its exercise; the instructor watches --------------
@pytest.mark.browser
def test_browser_student_runs_notebook_01_and_the_board_follows(class_hub):
    from test_browser import CHROMIUM, CHROMIUM_ARGS, expect_picture, local_only
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: apt-get install chromium (./quickstart test does) for the browser test")
    from playwright.sync_api import expect, sync_playwright
    shots = ARTIFACTS / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("class-*.png"):
        old.unlink()
    student, password = next(iter(class_hub.students.items()))
    board_url = f"{class_hub.url}/services/netkit-progress/"

    def login(context, name, secret):
        page = context.new_page()
        page.goto(f"{class_hub.url}/hub/login")
        page.fill("#username_input", name)
        page.fill("#password_input", secret)
        page.click("#login_submit")
        return page

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            teacher = chromium.new_context(viewport={"width": 1400, "height": 900})
            teacher.route("**/*", local_only)
            board = login(teacher, *class_hub.admin)
            board.wait_for_url(re.compile(r".*/(hub/home|hub/spawn|user/).*"), timeout=60_000)
            board.goto(board_url)
            row = board.locator(f"tr[data-student='{student}']")
            expect(row).to_be_visible(timeout=60_000)
            first = row.locator("td").nth(1)      # icmp-only, the exercise of notebook 01
            expect(first).to_have_text("not started")
            board.screenshot(path=str(shots / "class-01-board-before.png"))

            pupil = chromium.new_context(viewport={"width": 1400, "height": 1000})
            pupil.route("**/*", local_only)
            page = login(pupil, student, password)
            page.wait_for_url(re.compile(rf".*/user/{student}/lab.*"), timeout=180_000)
            page.goto(f"{class_hub.url}/user/{student}/lab/tree/{NOTEBOOK_01}")
            cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
            expect(cells.first).to_be_visible(timeout=90_000)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
                1, timeout=90_000)
            page.screenshot(path=str(shots / "class-02-student-notebook-opened.png"))

            # Run everything up to the exercise's solution, as a student does: the check says "Not yet".
            cells.filter(has_text="The automatic test of this notebook").first.click()
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Above Selected Cell").click()
            expect(page.locator(".jp-OutputArea-output").filter(has_text="Not yet.").first).to_be_visible(
                timeout=180_000)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
                1, timeout=60_000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert errors.filter(has_text="Traceback").count() == 0
            lab_map = cells.filter(has_text="plots.lab_map()").first
            lab_map.scroll_into_view_if_needed()
            picture = lab_map.locator(".jp-OutputArea-output img").first
            expect(picture).to_be_visible()
            assert picture.evaluate("img => img.naturalWidth") > 400        # the lab map was drawn
            lab_map.screenshot(path=str(shots / "class-03-student-lab-map.png"))
            panel = page.locator(".widget-vbox").filter(has=page.locator(".widget-label",
                                                                         has_text="bridge-nf-call-iptables")).last
            expect_picture(panel, delivered=False)                             # the panel's probe: dropped

            expect(first).to_have_text(re.compile(r"^not yet: 1 try, last \d\d:\d\d:\d\d$"), timeout=30_000)
            board.screenshot(path=str(shots / "class-04-board-tried.png"))

            # The student types the rule into the exercise's cell and checks again.
            mine = cells.filter(has_text='# lab.iptables("...")').first
            mine.locator(".cm-content").click()
            page.keyboard.press("Control+End")
            page.keyboard.press("Enter")
            page.keyboard.type('lab.iptables("-I FORWARD -i hwchiu0 -o hwchiu0 -p icmp -j ACCEPT")')
            page.keyboard.press("Shift+Enter")                                   # runs it, moves to the check
            page.keyboard.press("Shift+Enter")                                   # runs the check
            expect(page.locator(".jp-OutputArea-output").filter(has_text="Right.").first).to_be_visible(
                timeout=60_000)
            page.screenshot(path=str(shots / "class-05-student-right.png"))

            expect(first).to_have_text(re.compile(r"^passed \d\d:\d\d:\d\d$"), timeout=30_000)
            expect(row.locator("td.count")).to_have_text(f"1/{len(EXERCISES)}")
            board.screenshot(path=str(shots / "class-06-board-passed.png"))
        finally:
            chromium.close()
    # The student's server is stopped (its kernel holds lab nb01; the tests below start afresh).
    user = class_hub.user(student)
    user.stop_server()
    uid = uid_of(student)
    deadline = time.monotonic() + 15
    while accounts.processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert accounts.processes_of(uid) == [], "the student's server, kernel or lab outlived its stop"


# -- 1. logins and servers ---------------------------------------------------------------------------------
def test_each_student_logs_in_and_their_server_runs_as_them(class_hub):
    with pytest.raises(HubError, match="refused"):
        HubUser(class_hub.url, next(iter(class_hub.students)), "not-the-password").login()
    users = [class_hub.user(name) for name in class_hub.students]
    run_in_parallel(lambda user: user.start_server(), users)
    for user in users:
        uid = uid_of(user.name)
        servers = processes_named(uid, b"jupyterhub-singleuser")
        assert len(servers) == 1, f"{user.name}: {servers}"
        status = Path(f"/proc/{servers[0]}/status").read_text()
        assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.M), status
        kernel = user.kernel()
        try:
            seen = json.loads(kernel.run("import json, os; print(json.dumps([os.getuid(), os.geteuid(), "
                                         "os.path.expanduser('~'), os.environ.get('NETKIT_PROGRESS')]))"))
        finally:
            kernel.shutdown()
        home = pwd.getpwnam(user.name).pw_dir
        assert seen == [uid, uid, home, f"{home}/.netkit/progress.jsonl"]


# -- 2. notebook 01 in every student's server, at once --------------------------------------------------------
def test_each_students_kernel_runs_notebook_01_to_the_end(class_hub):
    def run(name: str) -> int:
        user = class_hub.user(name)
        book = json.loads((Path(pwd.getpwnam(name).pw_dir) / "notebooks" / NOTEBOOK_01).read_text())
        kernel = user.kernel()
        try:
            return kernel.run_notebook(book, {"lab_name": "nb01", "run_solutions": True}, timeout=180)
        finally:
            kernel.shutdown()
    counts = run_in_parallel(run, list(class_hub.students))
    assert all(count >= 20 for count in counts), counts


# -- 3. labs side by side: no cross-talk -------------------------------------------------------------------
LAB = "from netkit import Lab\nlab = Lab(name='class-check', stage='part3-start', replace=True)\nprint(lab.pid)"
PROBE = ("j = lab.probe('c1', '10.55.66.3')\n"
         "print(json.dumps([j.delivered, j.reason, lab.run('c1', 'ping 10.55.66.3 -c1 -W1').returncode]))")


@pytest.fixture(scope="module")
def labs(class_hub):
    """A kernel and a lab (at part3-start) in each student's server, kept for the tests below."""
    kernels = {}
    try:
        for name in class_hub.students:
            kernel = class_hub.user(name).kernel()
            kernels[name] = (kernel, int(kernel.run("import json\n" + LAB)))
        yield kernels
    finally:
        for kernel, _ in kernels.values():
            try:
                kernel.run("lab.close()")
            finally:
                kernel.shutdown()


def test_forward_accept_in_one_lab_leaves_the_others_dropped(class_hub, labs):
    first, *others = list(class_hub.students)
    before = {name: json.loads(labs[name][0].run(PROBE)) for name in class_hub.students}
    for name, (delivered, reason, ping) in before.items():
        assert (delivered, ping) == (False, 1) and "FORWARD policy DROP" in reason, (name, reason)
    labs[first][0].run("lab.iptables('-P FORWARD ACCEPT')")
    after = {name: json.loads(labs[name][0].run(PROBE)) for name in class_hub.students}
    assert after[first][0] is True and after[first][2] == 0, after[first]
    for name in others:
        assert after[name] == before[name], f"{first}'s FORWARD ACCEPT changed {name}'s lab: {after[name]}"
    pids = [pid for _, pid in labs.values()]
    assert len(set(pids)) == len(pids)
    nets = {os.readlink(f"/proc/{pid}/ns/net") for pid in pids}
    assert len(nets) == len(pids) and os.readlink("/proc/self/ns/net") not in nets


# -- 4. one student cannot reach another's server, files or lab --------------------------------------------
def test_a_student_cannot_open_another_students_server(class_hub):
    owner, intruder = list(class_hub.students)[:2]
    them = class_hub.user(intruder)
    assert them.server_api("GET", "status").status_code == 200                # their own: yes
    assert them.server_api("GET", "status", user=owner).status_code == 403     # the owner's: no
    assert them.server_api("GET", "contents/notebooks", user=owner).status_code == 403
    page = them.session.get(f"{class_hub.url}/user/{owner}/lab", timeout=60)   # with the browser's cookie
    assert page.status_code == 403 or f"/user/{owner}/lab" not in page.url, (page.status_code, page.url)
    assert "jupyter-config-data" not in page.text


def test_a_student_cannot_read_another_students_files_or_enter_their_lab(class_hub, labs):
    owner, intruder = list(class_hub.students)[1:3]     # the owner's lab still has FORWARD DROP
    kernel, owner_lab, intruder_lab = labs[intruder][0], labs[owner][1], labs[intruder][1]
    home = pwd.getpwnam(owner).pw_dir
    assert oct(Path(home).stat().st_mode & 0o777) == "0o700"
    code = f"""
import json, os, subprocess, sys
seen = {{}}
try:
    open({home + '/notebooks/' + NOTEBOOK_01!r}).read(); seen['read'] = 'read it'
except OSError as exc:
    seen['read'] = type(exc).__name__
done = subprocess.run([sys.executable, '-m', 'netkit', 'exec', '--lab', 'class-check', 'host', '--',
                       'readlink', '/proc/self/ns/net'], capture_output=True, text=True)
seen['exec'] = [done.returncode, done.stdout.strip()]
done = subprocess.run(['nsenter', '--target={owner_lab}', '--user', '--net', '--preserve-credentials', '--',
                       'iptables', '-P', 'FORWARD', 'ACCEPT'], capture_output=True, text=True)
seen['nsenter'] = [done.returncode, done.stderr.strip()]
seen['visible'] = os.path.exists('/proc/{owner_lab}/ns/user')
from netkit.state import runtime_dir
seen['runtime_dir'] = str(runtime_dir())
seen['other_dir'] = os.access('/tmp/netkit-{uid_of(owner)}', os.R_OK)
print(json.dumps(seen))
"""
    seen = json.loads(kernel.run(code))
    assert seen["read"] == "PermissionError"
    # `netkit exec --lab class-check` reaches the intruder's own lab of that name, never the owner's.
    returncode, netns = seen["exec"]
    assert returncode == 0
    assert netns == os.readlink(f"/proc/{intruder_lab}/ns/net") != os.readlink(f"/proc/{owner_lab}/ns/net")
    assert seen["runtime_dir"] == f"{pwd.getpwnam(intruder).pw_dir}/.run/netkit" and seen["other_dir"] is False
    # Entering the owner's lab by its pid fails: the server's /proc does not even show that pid (hidepid),
    # and the kernel would refuse the owner's user namespace anyway (tests/test_hostile_class.py).
    returncode, said = seen["nsenter"]
    assert returncode != 0 and seen["visible"] is False, said
    assert labs[owner][0].run("print(lab.get('forward-policy'))").strip() == "DROP"


# -- 5. limits ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(limits.available() is not None, reason=f"no cgroup memory controller: {limits.available()}")
def test_server_kernel_and_lab_share_the_students_memory_limit(class_hub, labs):
    for name in class_hub.students:
        uid = uid_of(name)
        server = processes_named(uid, b"jupyterhub-singleuser")[0]
        kernel = processes_named(uid, b"ipykernel_launcher")
        lab = labs[name][1]
        group = cgroup_of(server)
        assert group.endswith(f"/netkit-class-{class_hub.port}/{name}"), group
        assert kernel and all(cgroup_of(pid) == group for pid in kernel)
        assert cgroup_of(lab) == group                                   # the lab's pid 1, in its user namespace
        limit = Path("/sys/fs/cgroup/memory" + group) / "memory.limit_in_bytes"
        if limit.exists():
            assert int(limit.read_text()) == 1500 << 20


def test_the_idle_culler_runs_with_the_scopes_it_needs(class_hub):
    text = class_hub.log.read_text()
    assert "Starting service 'idle-culler'" in text
    assert re.search(r"200 GET /hub/api/users\S* \(idle-culler@127\.0\.0\.1\)", text), "the culler never read the users"
    assert mentioning("jupyterhub_idle_culler")


# -- 6. the progress board ---------------------------------------------------------------------------------
def test_progress_board_shows_each_student_to_the_admin_and_refuses_students(class_hub, labs):
    first, second, third = list(class_hub.students)
    # The third student tries the masquerade exercise and gets it wrong once.
    labs[third][0].run("from netkit.exercises import C2_OUT\nC2_OUT.prepare(lab)\n"
                       "assert not C2_OUT.check(lab).ok")
    admin = class_hub.user(class_hub.admin[0])
    answer = admin.session.get(f"{class_hub.url}/services/netkit-progress/api/board", timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    data = answer.json()
    assert data["exercises"] == list(EXERCISES)
    rows = {row["student"]: row["cells"] for row in data["students"]}
    assert sorted(rows) == sorted(class_hub.students)                  # the admin is not a row
    for name in class_hub.students:
        cell = rows[name]["icmp-only"]
        assert cell["state"] == "passed" and cell["attempts"] >= 2, (name, cell)   # notebook 01: not yet, then right
    assert rows[third]["c2-out"]["state"] == "tried" and rows[third]["c2-out"]["attempts"] == 1
    assert rows[first]["c2-out"]["state"] == rows[second]["c2-out"]["state"] == "not started"
    page = admin.session.get(f"{class_hub.url}/services/netkit-progress/", timeout=60)
    assert page.status_code == 200 and page.text.count("<tr data-student=\"nkt-") == 3
    assert "not yet: 1 try" in page.text

    for name in class_hub.students:
        student = class_hub.user(name)
        for path in ("", "api/board"):
            refused = student.session.get(f"{class_hub.url}/services/netkit-progress/{path}", timeout=60)
            assert refused.status_code == 403, (name, path, refused.status_code)
            assert "icmp-only" not in refused.text
        token = student.api("GET", "/services/netkit-progress/api/board")
        assert token.status_code == 403
        record = Path(pwd.getpwnam(name).pw_dir) / ".netkit" / "progress.jsonl"
        assert oct(record.stat().st_mode & 0o777) == "0o600" and record.stat().st_uid == uid_of(name)
        assert oct(record.parent.stat().st_mode & 0o777) == "0o700"
