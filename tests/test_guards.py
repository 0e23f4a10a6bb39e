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
