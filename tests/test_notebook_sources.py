"""Every notebook is made from its source (notebooks/*.md, MyST Markdown through Jupytext), and stays so."""

from __future__ import annotations

import importlib.util
import shutil

import nbformat
import pytest

from helpers import REPO

spec = importlib.util.spec_from_file_location("notebook_tool", REPO / "tools" / "notebooks.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)

SOURCES = tool.sources()


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    books = {p.stem for p in (REPO / "notebooks").glob("*.ipynb")}
    assert books == {p.stem for p in SOURCES}
    assert {"00-check-your-machine", "01-container-to-container", "dashboard"} <= books


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_notebook_matches_its_source(source):
    assert tool.differences(source) == []


def test_the_shared_text_is_in_every_scenario_notebook():
    for source in SOURCES:
        if source.stem[:2] in ("01", "02", "03", "04"):
            text = source.read_text()
            assert "<!-- shared: credit -->" in text and "<!-- shared: safety -->" in text, source.name


def test_an_edit_on_one_side_only_is_caught(tmp_path):
    root = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", root)
    source = root / "01-container-to-container.md"
    # an instructor edits the .ipynb by hand, without Jupytext pairing it
    book = nbformat.read(str(source.with_suffix(".ipynb")), as_version=4)
    book.cells[2].source += "\n\nAn added sentence."
    nbformat.write(book, str(source.with_suffix(".ipynb")))
    assert any("does not match" in p for p in tool.differences(source))
    # the shared credit changes, but the sources were not refreshed
    (root / "shared" / "credit.md").write_text("A new credit line.\n")
    assert any("shared block differs" in p for p in tool.differences(source))
    # sync makes both right again, from the sources
    tool.sync(root)
    assert tool.differences(source) == []
    assert "A new credit line." in source.read_text()
    assert "An added sentence." not in source.with_suffix(".ipynb").read_text()
