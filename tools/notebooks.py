"""Keep the notebooks in step with their sources: ``notebooks/*.md`` (MyST Markdown, through Jupytext).

    .venv/bin/python tools/notebooks.py sync     # after editing a .md: refresh shared text, rewrite the .ipynb
    .venv/bin/python tools/notebooks.py check    # what the test runs: is every .ipynb its source's?

Each notebook has one source an instructor edits, ``NAME.md``; ``NAME.ipynb``
is made from it (`jupytext.toml` pairs them, so saving either one in
JupyterLab, which the kit installs with Jupytext, updates both). Text that
several notebooks share (the credit to the article, what a lab is) lives
once, in ``notebooks/shared/NAME.md``, and a source holds it between two
markers that the rendered notebook does not show::

    <!-- shared: credit -->
    ...the text of notebooks/shared/credit.md, kept up to date by `sync`...
    <!-- /shared -->

The Traditional Chinese notebooks are ``notebooks/zh-TW/NAME.md``, with the
same names, the same code (tests/test_translations.py compares it, comments
aside) and their own shared text in ``notebooks/zh-TW/shared/``.

The written ``.ipynb`` has no outputs and stable cell ids (``cell-00``, ...),
so a change to a source shows as a small diff.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LANGUAGE_FOLDERS = ("zh-TW",)        # beside the English notebooks, one folder per other language
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# A block's text may be empty, but never holds another marker: an unclosed block is left alone.
SHARED = re.compile(r"(<!-- shared: ([a-z0-9-]+) -->\n)((?:(?!<!-- /?shared).)*?)\n?(<!-- /shared -->)", re.S)


def shared_text(name: str, root: Path = NOTEBOOKS) -> str:
    path = root / "shared" / f"{name}.md"
    if not path.exists():
        raise SystemExit(f"a source includes shared text {name!r}, but {path} does not exist")
    return path.read_text().strip("\n")


def refreshed(text: str, root: Path = NOTEBOOKS) -> str:
    """`text` (a source) with every shared block holding its shared file's current text."""
    return SHARED.sub(lambda m: m[1] + shared_text(m[2], root) + "\n" + m[4], text)


def canonical(text: str, root: Path = NOTEBOOKS) -> str:
    """A source as Jupytext writes it, with its header naming the kernel (so JupyterLab opens the pair with
    its kernel) and its shared blocks refreshed."""
    book = jupytext.reads(refreshed(text, root), fmt="md:myst")
    book.metadata["kernelspec"] = KERNEL
    config = jupytext.config.load_jupytext_configuration_file(str(NOTEBOOKS / "jupytext.toml"))
    return jupytext.writes(book, fmt="md:myst", config=config)


def notebook(source: Path) -> nbformat.NotebookNode:
    """The .ipynb that `source` makes: no outputs, stable ids, the kernel and title as metadata."""
    book = jupytext.reads(source.read_text(), fmt="md:myst")
    for index, cell in enumerate(book.cells):
        cell.id = f"cell-{index:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags",)}
    title = next((c.source.splitlines()[0].lstrip("# ").strip() for c in book.cells
                  if c.cell_type == "markdown" and c.source.startswith("# ")), source.stem)
    book.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
        "title": title,
    }
    book.nbformat, book.nbformat_minor = 4, 5
    nbformat.validate(book)
    return book


def sources(root: Path = NOTEBOOKS) -> list[Path]:
    """Every notebook source: the English ones in `root`, then each language's folder."""
    found = sorted(root.glob("*.md"))
    for folder in LANGUAGE_FOLDERS:
        found += sorted((root / folder).glob("*.md"))
    return found


def differences(source: Path) -> list[str]:
    """What differs between `source` and its .ipynb (and its shared blocks and their files); empty if in step."""
    problems = []
    text = source.read_text()
    if refreshed(text, source.parent) != text:
        problems.append(f"{source.name}: a shared block differs from notebooks/shared/ (run tools/notebooks.py sync)")
    elif jupytext.reads(text, fmt="md:myst").metadata.get("kernelspec") != KERNEL:
        problems.append(f"{source.name}: its header does not name the kernel (run tools/notebooks.py sync)")
    target = source.with_suffix(".ipynb")
    if not target.exists():
        return problems + [f"{target.name} is missing (run tools/notebooks.py sync)"]
    want = notebook(source)
    have = nbformat.read(str(target), as_version=4)
    if [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in want.cells] != \
            [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in have.cells]:
        problems.append(f"{target.name} does not match {source.name}: edit the .md (or save in JupyterLab, which "
                        "pairs them), then run tools/notebooks.py sync")
    if any(c.get("outputs") for c in have.cells if c.cell_type == "code"):
        problems.append(f"{target.name} holds outputs; commit notebooks without them (tools/notebooks.py sync "
                        "rewrites it clean)")
    return problems


VERSION = re.compile(r"^    jupytext_version: .*$", re.M)


def _version(text: str) -> str:
    found = VERSION.search(text)
    return found[0] if found else ""


def _unversioned(text: str) -> str:
    """A source without the header line naming the Jupytext version that last wrote it."""
    return VERSION.sub("", text)


def sync(root: Path = NOTEBOOKS) -> None:
    for source in sources(root):
        text = source.read_text()
        fresh = canonical(text, source.parent)
        if _unversioned(fresh) != _unversioned(text):   # a newer Jupytext alone rewrites nothing
            source.write_text(fresh.replace(_version(fresh), _version(text)) if _version(text) else fresh)
        nbformat.write(notebook(source), str(source.with_suffix(".ipynb")))
        print(f"{source.relative_to(root)} -> {source.with_suffix('.ipynb').name}")


def main(argv: list[str]) -> int:
    if argv[1:] == ["sync"]:
        sync()
        return 0
    if argv[1:] == ["check"]:
        problems = [p for source in sources() for p in differences(source)]
        print("\n".join(problems) or "every notebook matches its source")
        return 1 if problems else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
