"""What each class account is given: the notebooks in both languages, and never through a link."""

from __future__ import annotations

import os
import pwd

import pytest

from helpers import REPO
from netkit.classroom import accounts
from netkit.classroom.checks import ClassError

pytestmark = pytest.mark.pure    # files in a temporary home: no account, no lab


def _user(home) -> pwd.struct_passwd:
    return pwd.struct_passwd(("student", "x", os.getuid(), os.getgid(), "", str(home), "/usr/sbin/nologin"))


def test_a_student_gets_every_notebook_in_english_and_in_zh_tw(tmp_path):
    given = accounts.give_notebooks(_user(tmp_path), REPO / "notebooks")
    names = {p.relative_to(tmp_path / "notebooks").as_posix() for p in given}
    english = {p.name for p in (REPO / "notebooks").glob(accounts.STUDENT_NOTEBOOKS)}
    chinese = {p.name for p in (REPO / "notebooks" / "zh-TW").glob(accounts.STUDENT_NOTEBOOKS)}
    assert english and english == chinese
    assert names == english | {f"zh-TW/{name}" for name in chinese}
    assert "dashboard.ipynb" not in names and "zh-TW/dashboard.ipynb" not in names
    # the zh-TW copy is the zh-TW notebook (it speaks Chinese because of its folder's name)
    assert (tmp_path / "notebooks" / "zh-TW" / "01-container-to-container.ipynb").read_bytes() == \
        (REPO / "notebooks" / "zh-TW" / "01-container-to-container.ipynb").read_bytes()


def test_the_admin_also_gets_the_dashboard_in_both_languages_and_work_is_kept(tmp_path):
    folder = tmp_path / "notebooks" / "zh-TW"
    folder.mkdir(parents=True)
    (folder / "01-container-to-container.ipynb").write_text("the student's own work")
    given = accounts.give_notebooks(_user(tmp_path), REPO / "notebooks", admin=True)
    names = {p.relative_to(tmp_path / "notebooks").as_posix() for p in given}
    assert {"dashboard.ipynb", "zh-TW/dashboard.ipynb"} <= names
    assert "zh-TW/01-container-to-container.ipynb" not in names
    assert (folder / "01-container-to-container.ipynb").read_text() == "the student's own work"


def test_a_language_folder_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "notebooks" / "zh-TW").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ClassError):
        accounts.give_notebooks(_user(tmp_path), REPO / "notebooks")
    assert list((tmp_path / "elsewhere").iterdir()) == []
