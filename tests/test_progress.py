"""The progress store, the board's model and page, and the roster file: pure, no root, no hub."""

from __future__ import annotations

import json
import os
import stat

import pytest

from netkit import progress
from netkit.classroom import board
from netkit.classroom import roster as rosters
from netkit.scenarios import EXERCISES


def test_nothing_is_written_unless_a_class_asks(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert progress.record("masquerade", True) is False
    assert list(tmp_path.iterdir()) == []


def test_record_and_read_back_with_private_modes(tmp_path, monkeypatch):
    target = tmp_path / "home" / ".netkit" / "progress.jsonl"
    monkeypatch.setenv(progress.ENV, str(target))
    assert progress.record("masquerade", False)
    assert progress.record("masquerade", True)
    assert progress.record("publish", False)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    attempts = progress.read(target)
    assert [(a.exercise, a.passed) for a in attempts] == [("masquerade", False), ("masquerade", True),
                                                          ("publish", False)]
    states = progress.summary(attempts)
    assert states["masquerade"].state == "passed" and states["masquerade"].attempts == 2
    assert states["masquerade"].passed_at == attempts[1].at
    assert states["publish"] == progress.Status("tried", 1, attempts[2].at, None)


def test_a_pass_stays_a_pass_after_a_later_failed_check(tmp_path):
    path = tmp_path / "p.jsonl"
    for passed in (False, True, False):
        progress.record("icmp-only", passed, path=path)
    status = progress.summary(progress.read(path))["icmp-only"]
    assert (status.state, status.attempts) == ("passed", 3)
    assert status.passed_at is not None and status.last >= status.passed_at


def test_exercise_check_records_what_its_checker_said(tmp_path, monkeypatch):
    from netkit.exercises import Exercise, Feedback
    path = tmp_path / "p.jsonl"
    monkeypatch.setenv(progress.ENV, str(path))
    answers = iter([Feedback(False, "no"), Feedback(True, "yes")])
    exercise = Exercise("toy", "a toy", "do nothing", "part3-start", lambda lab: next(answers),
                        probe=("c1", "c2"))
    assert not exercise.check(None)
    assert exercise.check(None)
    assert [(a.exercise, a.passed) for a in progress.read(path)] == [("toy", False), ("toy", True)]


def test_a_file_that_cannot_be_written_does_not_break_a_check(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(progress.ENV, str(blocker / "sub" / "progress.jsonl"))   # a file as a folder
    assert progress.record("masquerade", True) is False


def test_read_skips_torn_lines_and_refuses_links_and_other_owners(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"exercise": "publish", "passed": true, "at": 5}\n{"exercise": "pub\nnot json\n')
    assert [(a.exercise, a.passed, a.at) for a in progress.read(path)] == [("publish", True, 5.0)]
    link = tmp_path / "link.jsonl"
    link.symlink_to(path)
    assert progress.read(link) == []                          # never through a symbolic link
    assert progress.read(path, owner=os.getuid() + 1) == []   # someone else's file
    assert progress.read(tmp_path / "missing.jsonl") == []
    assert progress.read(tmp_path) == []                      # a folder, not a file


def test_read_keeps_to_the_end_of_a_huge_file(tmp_path, monkeypatch):
    path = tmp_path / "p.jsonl"
    line = json.dumps({"exercise": "masquerade", "passed": False, "at": 1.0}) + "\n"
    path.write_text(line * (progress.READ_LIMIT // len(line) + 50) + line.replace("false", "true"))
    attempts = progress.read(path)
    assert attempts[-1].passed and len(attempts) <= progress.READ_LIMIT // len(line) + 1


def test_board_has_a_row_per_student_and_a_column_per_exercise():
    now = 1_700_000_000.0
    attempts = {
        "ana": [progress.Attempt("icmp-only", False, now), progress.Attempt("icmp-only", True, now + 60)],
        "ben": [progress.Attempt("icmp-only", False, now + i) for i in range(3)],
        "cy": [],
    }
    data = board.board(["ana", "ben", "cy"], attempts_of=attempts.__getitem__)
    assert data["exercises"] == list(EXERCISES)
    rows = {row["student"]: row for row in data["students"]}
    assert list(rows) == ["ana", "ben", "cy"]
    assert rows["ana"]["cells"]["icmp-only"]["state"] == "passed" and rows["ana"]["passed"] == 1
    assert rows["ben"]["cells"]["icmp-only"] == {"state": "tried", "attempts": 3, "last": now + 2,
                                                      "passed_at": None}
    assert all(cell["state"] == "not started" for cell in rows["cy"]["cells"].values())
    assert board.cell_text(rows["ben"]["cells"]["icmp-only"]).startswith("not yet: 3 tries, last ")
    page = board.table_html(data)
    assert page.count("<tr data-student=") == 3
    assert page.count('class="tried"') == 1 and page.count('class="passed"') == 1
    assert page.count('class="not-started"') == 3 * len(EXERCISES) - 2


def test_board_escapes_what_it_shows():
    data = board.board(["<b>x</b>"], attempts_of=lambda name: [], exercises=["a<script>"])
    page = board.table_html(data)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;" in page


# -- the roster ---------------------------------------------------------------------------------------
def test_roster_parses_comments_and_blank_lines():
    entries = rosters.parse("# class of 2026\n\nana,pass-one\n  ben , pass,with,commas \n")
    assert [(e.username, e.password, e.line) for e in entries] == [("ana", "pass-one", 3),
                                                                    ("ben", "pass,with,commas", 4)]
    assert "pass" not in repr(entries[0])


def test_every_bad_roster_line_is_named_at_once():
    with pytest.raises(rosters.RosterError) as caught:
        rosters.parse("ana,pw\nBad Name,pw\nnocomma\nana,again\nben,\ncy,a:b\n")
    message = str(caught.value)
    assert "5 bad line(s)" in message
    for expected in ("line 2: 'Bad Name' is not a valid account name", "line 3: no comma",
                     "line 4: 'ana' is already on line 1", "line 5: 'ben' has no password",
                     "line 6: the password of 'cy'"):
        assert expected in message, message
    with pytest.raises(rosters.RosterError, match="names nobody"):
        rosters.parse("# only a comment\n")


def test_generated_roster_is_written_for_its_owner_only(tmp_path):
    entries = rosters.generate(12)
    assert [e.username for e in entries][:2] == ["student01", "student02"] and len(entries) == 12
    assert len({e.password for e in entries}) == 12
    path = rosters.write(tmp_path / "class.csv", entries)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [(e.username, e.password) for e in rosters.load(path)] == [(e.username, e.password) for e in entries]
    with pytest.raises(rosters.RosterError, match="exists already"):
        rosters.write(path, entries)
    with pytest.raises(rosters.RosterError, match="from 1 to 500"):
        rosters.generate(0)
