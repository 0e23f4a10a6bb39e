"""The suite's own guards can fail: what they watch for is found when it is there (pure, no root)."""

import os
import stat

from helpers import engine_footprint


def test_an_engine_program_put_on_path_is_seen(tmp_path, monkeypatch):
    before = engine_footprint()
    program = tmp_path / "dockerd"
    program.write_text("#!/bin/sh\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ.get('PATH', '')}")
    after = engine_footprint()
    assert after["dockerd"].startswith(f"{program} inode ")
    assert {key for key in after if after[key] != before[key]} == {"dockerd"}
