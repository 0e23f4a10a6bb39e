"""Class mode's rules against a curious student, without a hub (issue 22).

Pure and fast: the board's reader on real files (links, FIFOs, sockets, oversized and hand-edited
files), its strict JSON, one bad row among good ones; pids.max from pid_max and the class size; a
NETKIT_RUNTIME_DIR that cannot be made; the README's "what a student can and cannot do to another"
table against tests/test_hostile_class.py. The CPU cap, marked ``hub`` (root, cgroups), is the
kernel's: a busy loop in a capped group gets no more CPU time than the cap allows.
"""

from __future__ import annotations

import ast
import errno
import json
import math
import os
import pty
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from netkit import progress
from netkit.classroom import board, limits
from netkit.errors import StateError

REPO = Path(__file__).resolve().parent.parent
NOW = time.time()


@pytest.fixture
def home(tmp_path):
    folder = tmp_path / "home"
    (folder / ".netkit").mkdir(parents=True)
    return folder


def write(home: Path, *lines: str) -> None:
    (home / ".netkit" / "progress.jsonl").write_text("".join(line + "\n" for line in lines))


def line(exercise: str, passed: bool, at) -> str:
    return '{"exercise": "%s", "passed": %s, "at": %s}' % (exercise, "true" if passed else "false", at)


def refused(home: Path) -> int:
    with pytest.raises(board.Unreadable) as caught:
        board.read_progress(str(home), os.getuid())
    return caught.value.errno


def test_the_board_reads_an_honest_file_and_drops_times_out_of_range(home):
    write(home, line("icmp-only", True, NOW), *(line("c2-out", False, bad) for bad in
          ("1e300", "-1e300", "Infinity", "-Infinity", "NaN", "0", "253402300800", '"soon"')))
    attempts = board.read_progress(str(home), os.getuid())
    assert [(a.exercise, a.passed) for a in attempts] == [("icmp-only", True)]
    assert all(math.isfinite(a.at) for a in attempts)
    assert board.read_progress(str(home / "nobody-here"), os.getuid()) == []      # no home yet: no row data


def test_the_board_follows_no_link_on_the_way(home, tmp_path):
    write(home, line("icmp-only", True, NOW))
    elsewhere = tmp_path / "elsewhere"
    (home / ".netkit").rename(elsewhere)
    (home / ".netkit").symlink_to(elsewhere)                                      # a link in the middle
    assert refused(home) in (errno.ELOOP, errno.ENOTDIR)
    (home / ".netkit").unlink()
    (home / ".netkit").mkdir()
    (home / ".netkit" / "progress.jsonl").symlink_to(elsewhere / "progress.jsonl")   # a link at the end
    assert refused(home) == errno.ELOOP
    assert board.read_progress(str(elsewhere.parent), os.getuid()) == []           # no .netkit there


def test_the_board_opens_no_terminal_fifo_or_socket(home):
    target = home / ".netkit" / "progress.jsonl"
    os.mkfifo(target)                                                             # would block a reader
    assert refused(home) == errno.EINVAL
    target.unlink()
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(target))
        assert refused(home) == errno.EINVAL
    target.unlink()
    master, slave = pty.openpty()
    try:
        target.symlink_to(os.ttyname(slave))
        assert refused(home) == errno.ELOOP
    finally:
        os.close(master)
        os.close(slave)


def test_the_board_skips_a_file_over_its_size_limit(home):
    target = home / ".netkit" / "progress.jsonl"
    write(home, line("icmp-only", True, NOW))
    os.truncate(target, board.SIZE_LIMIT + 1)
    assert refused(home) == errno.EFBIG


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_the_board_reads_only_what_the_student_owns(home):
    write(home, line("icmp-only", True, NOW))
    os.chown(home / ".netkit" / "progress.jsonl", 65534, 65534)
    assert refused(home) == errno.EPERM


def test_one_bad_file_costs_only_its_own_row_and_the_json_is_strict():
    def attempts_of(student):
        if student == "bad":
            raise board.Unreadable(errno.ELOOP, ".netkit")
        if student == "odd":
            raise RuntimeError("anything at all")
        if student == "forged":
            return [progress.Attempt("icmp-only", True, float("inf")), progress.Attempt("c2-out", False, 1e300)]
        return [progress.Attempt("icmp-only", True, NOW)]
    data = board.board(["good", "bad", "odd", "forged", "also-good"], attempts_of=attempts_of)
    rows = {row["student"]: row for row in data["students"]}
    assert rows["good"]["passed"] == rows["also-good"]["passed"] == 1
    assert rows["bad"]["unreadable"] == "ELOOP" and rows["odd"]["unreadable"] == "RuntimeError"
    assert rows["forged"]["passed"] == 0 and rows["forged"]["unreadable"] is None
    text = board.strict_json(data)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the board's JSON"))
    with pytest.raises(ValueError):
        board.strict_json({"at": float("nan")})
    page = board.table_html(data)
    assert page.count("<tr data-student=") == 5 and page.count("file not read: ") == 2
    assert "(file not read: ELOOP)" in page
    assert board._clock(1e300) == "?"


def test_pids_per_student_leave_the_machine_a_quarter_of_pid_max():
    assert limits.pids_per_student(3, 32768) == 1024
    assert limits.pids_per_student(30, 32768) == 819
    assert 30 * 819 <= 32768 * 3 // 4 and limits.pids_fit(30, 819, 32768)
    assert limits.pids_per_student(200, 32768) == 256 and not limits.pids_fit(200, 256, 32768)
    assert limits.pids_per_student(200, 4194304) == 1024
    assert limits.pids_per_student(10) >= 256


@pytest.mark.parametrize("where", ["/proc/netkit-nowhere/run", "/proc/self/netkit-run"])
def test_a_runtime_dir_that_cannot_be_made_is_a_clear_error(where):
    done = subprocess.run([sys.executable, "-m", "netkit", "status"], capture_output=True, text=True,
                          env={**os.environ, "NETKIT_RUNTIME_DIR": where, "NETKIT_LANG": "en"}, cwd=REPO, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and where in done.stderr and "NETKIT_RUNTIME_DIR=" in done.stderr
    from netkit.state import StateDir
    os.environ["NETKIT_RUNTIME_DIR"] = where
    try:
        with pytest.raises(StateError) as caught:
            StateDir()
    finally:
        del os.environ["NETKIT_RUNTIME_DIR"]
    assert caught.value.path == where


def test_readme_table_names_every_attack_test():
    readme = (REPO / "README.md").read_text()
    start = readme.index("<!-- student-table:")
    table = readme[start:].split("\n\n", 1)[0].splitlines()[1:]          # the comment, then the table
    rows = [row for row in table if row.startswith("| ")][1:]                 # less its header
    assert len(rows) == len(table) - 2                                          # and its |---| line
    named = [re.findall(r"`(test_\w+|tests/\w+\.py)`", row)[-1] for row in rows]
    source = (REPO / "tests" / "test_hostile_class.py").read_text()
    attacks = [node.name for node in ast.parse(source).body
               if isinstance(node, ast.FunctionDef) and node.name.startswith("test_attack_")]
    assert len(attacks) >= 7
    assert sorted(n for n in named if n.startswith("test_")) == sorted(attacks)
    assert all((REPO / n).exists() for n in named if n.startswith("tests/"))


@pytest.mark.hub
@pytest.mark.skipif(os.geteuid() != 0 or limits.available() is not None, reason="cgroups need root")
@pytest.mark.skipif(limits.layout() == "v1" and not Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists(),
                    reason="no CPU bandwidth control in this kernel")
def test_a_cpu_cap_is_kept_by_the_kernel():
    """A busy loop in a group capped at 0.2 cores gets at most that (plus a period) of CPU time."""
    name = f"netkit-test-{uuid.uuid4().hex[:6]}"
    group = limits.Group.create("student", name, memory=None, pids=64, cpu=0.2)
    try:
        assert group.cpu() == {"weight": 1024 if limits.layout() == "v1" else 100, "cores": 0.2}
        loop = subprocess.Popen([sys.executable, "-c", "import time\nend = time.monotonic() + 1.5\n"
                                 "while time.monotonic() < end: pass\nimport os\nprint(sum(os.times()[:2]))"],
                                preexec_fn=group.join, stdout=subprocess.PIPE, text=True)
        used = float(loop.communicate(timeout=30)[0])
        assert used <= 0.2 * 1.5 + 0.25, used          # 1.5 s of wall time, 0.2 of a core, one period slack
    finally:
        assert group.end()
        limits.remove_class(name)
    assert not any(d.exists() for d in group.dirs)


@pytest.mark.parametrize("value", ["-1", "0.001"])
def test_a_cpu_limit_no_server_can_get_is_refused_before_anything(tmp_path, value, capsys, monkeypatch):
    from netkit.classroom import cli
    monkeypatch.setenv("NETKIT_LANG", "en")
    roster = tmp_path / "roster.csv"
    roster.write_text("nkt-never-1,pw\n")
    state = tmp_path / "state"
    assert cli.main(["--roster", str(roster), "--cpu-limit", value, "--state-dir", str(state)]) == 2
    said = capsys.readouterr().err
    assert "--cpu-limit" in said and "0.01 or more" in said
    assert not state.exists()
