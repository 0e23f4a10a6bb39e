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


def test_jupyterlab_opens_every_notebook_with_its_kernel_whichever_file_is_newer(tmp_path):
    """Git keeps no file times: a fresh clone may have every .ipynb newer than its .md. Jupytext must still
    open each one (it refuses an outdated source unless told the .md is the source), with its kernel."""
    import json
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    root = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", root)
    later = time.time() + 60
    for book in root.glob("*.ipynb"):
        os.utime(book, (later, later))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    argv = [str(Path(sys.executable).parent / "jupyter"), "server", "--no-browser", f"--port={port}",
            "--port-retries=0", "--ip=127.0.0.1", "--IdentityProvider.token=t0ken", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        opened = {}
        for book in sorted(root.glob("*.ipynb")):
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/{book.name}?token=t0ken",
                                                timeout=10) as answer:
                        opened[book.name] = json.load(answer)["content"]
                    break
                except OSError as exc:     # not up yet; an HTTP error (the 400) is raised at once
                    if getattr(exc, "code", None) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        for name, content in opened.items():
            assert content["metadata"]["kernelspec"]["name"] == "python3", name
            source = nbformat.read(str(REPO / "notebooks" / name), as_version=4)
            assert [c["source"] for c in content["cells"]] == [c.source for c in source.cells], name
    finally:
        server.terminate()
        server.wait(20)


def _imports(code: str) -> list[str]:
    """The modules a cell's code imports from (``import a.b`` and ``from a.b import c`` both give a.b)."""
    import ast
    try:
        tree = ast.parse(code)
    except SyntaxError:          # a cell with IPython syntax (%magic): none of ours has one
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


@pytest.mark.parametrize("book", sorted((REPO / "notebooks").rglob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_import_from_netkit_only_and_every_name_is_public(book):
    import netkit
    notebook = nbformat.read(book, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    modules = {module for source in code for module in _imports(source) if module.split(".")[0] == "netkit"}
    assert modules <= {"netkit"}, f"{book.name} imports {sorted(modules - {'netkit'})}: use `from netkit import ...`"
    import ast
    for source in code:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "netkit":
                assert all(alias.name in netkit.__all__ for alias in node.names), ast.unparse(node)


def test_the_import_check_catches_a_submodule_import():
    assert _imports("from netkit.widgets import Panel\nimport netkit.plots") == ["netkit.widgets", "netkit.plots"]
