"""The suite's own guards can fail: what they watch for is found when it is there (pure, no root), and
the machine guard is on every test that is not pure (a lab test).
"""

import os
import stat

import pytest

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


def test_a_notebook_whose_kernel_never_ran_is_told_from_one_that_failed(tmp_path):
    import nbformat

    from test_notebooks import never_started

    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("1")])
    path = tmp_path / "out.ipynb"
    nbformat.write(book, str(path))
    assert never_started(path)                       # papermill wrote it, the kernel ran nothing: may run again
    book.cells[1].execution_count = 1
    nbformat.write(book, str(path))
    assert not never_started(path)                   # a cell ran: a failure is the notebook's, never retried
    assert not never_started(tmp_path / "missing.ipynb")


def _setup_of(*argv: str) -> str:
    import subprocess
    import sys

    from helpers import REPO
    done = subprocess.run([sys.executable, "-m", "pytest", "--setup-show", "-p", "no:cacheprovider", "-q", *argv],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.lab
def test_the_machine_guard_is_on_every_lab_test_and_off_for_pure_ones():
    """`pytest -m pure` never reads the machine (so it starts at once); a lab test always runs under the guard."""
    pure = _setup_of("-m", "pure", "tests/test_netfilter.py")
    assert "machine_untouched" not in pure and "_machine_guard" in pure and " passed in " in pure
    lab = _setup_of("tests/test_errors.py::test_unknown_stage_refuses_to_start")
    assert "SETUP    S machine_untouched" in lab and "1 passed" in lab
