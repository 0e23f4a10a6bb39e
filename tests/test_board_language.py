"""The class's progress board speaks the instructor's language (NETKIT_LANG of `./quickstart class`), in the
page the hub serves and in the script that redraws it every few seconds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest

from netkit import use_language
from netkit.classroom import board

pytestmark = pytest.mark.pure     # a page rendered from made-up data; node runs its script, no hub


def _data() -> dict:
    now = time.time()
    return {"exercises": ["icmp-only", "c2-out"], "at": now,
            "students": [{"student": "amy", "passed": 1, "last": now, "unreadable": "",
                          "cells": {"icmp-only": {"state": "passed", "attempts": 2, "last": now, "passed_at": now},
                                    "c2-out": {"state": "tried", "attempts": 3, "last": now, "passed_at": None}}},
                         {"student": "ben", "passed": 0, "last": None, "unreadable": "ELOOP",
                          "cells": {"icmp-only": {"state": "not started", "attempts": 0, "last": None,
                                                  "passed_at": None},
                                    "c2-out": {"state": "not started", "attempts": 0, "last": None,
                                               "passed_at": None}}}]}


@pytest.fixture
def zh():
    use_language("zh-TW")
    yield
    use_language(None)


def test_the_page_in_zh_tw(zh):
    page = board.page(_data(), api="/services/netkit-progress/api/board", xsrf="token")
    assert '<html lang="zh-TW">' in page and "<title>netkit：課堂進度</title>" in page
    table = board.table_html(_data())
    assert "<th>學生</th><th>已過關</th>" in table
    assert "還沒過關：試了 3 次，最後一次在" in table and "還沒開始" in table and "檔案沒有讀取：ELOOP" in table
    assert "not yet" not in table and "passed" not in table.replace('class="passed"', "")


def test_the_page_in_english_by_default():
    use_language(None)
    table = board.table_html(_data())
    assert "<th>student</th><th>passed</th>" in table and "not yet: 3 tries, last " in table


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (./quickstart class installs it)")
def test_the_pages_script_redraws_in_the_same_language(zh):
    page = board.page(_data(), api="/api", xsrf="token")
    said = re.search(r"^const said = (.*);$", page, re.M)[1]
    assert json.loads(said)["tried"] == "還沒過關：試了 {count} 次，最後一次在 {time}"
    fill = re.search(r"^const fill = .*;$", page, re.M)[0]
    words = re.search(r"^const words = cell => \{.*?^\};$", page, re.M | re.S)[0]
    script = (f"const said = {said};\n{fill}\n{words}\n"
              "console.log(JSON.stringify([words({state: 'tried', attempts: 1, last: 0}),"
              " words({state: 'tried', attempts: 4, last: 0}), words({state: 'not started'}),"
              " fill(said.failed, {why: 'HTTP 403'})]));")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["還沒過關：試了 1 次，最後一次在 ", "還沒過關：試了 4 次，最後一次在 ",
                                       "還沒開始", "無法讀取進度看板：HTTP 403"]


def test_the_hub_gives_the_board_its_instructors_language(monkeypatch):
    from netkit.classroom import hub
    monkeypatch.setenv("NETKIT_LANG", "zh-TW")
    use_language(None)

    class Config(dict):
        def __getattr__(self, name):
            return self.setdefault(name, Config())

        def __setattr__(self, name, value):
            self[name] = value

    c = Config()
    settings = hub.Settings(students=["amy"], admins=["teacher"], internal_ports={"board": 8101, "hub": 8102,
                                                                                   "proxy_api": 8103})
    hub.configure(c, settings)
    (service,) = [s for s in c.JupyterHub.services if s["name"] == hub.BOARD]
    assert service["environment"]["NETKIT_LANG"] == "zh-TW"
