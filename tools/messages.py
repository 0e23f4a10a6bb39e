"""The sentences netkit shows people, and their Traditional Chinese (see netkit/i18n.py).

    .venv/bin/python tools/messages.py update   # add new sentences to the catalogue, mark changed ones fuzzy
    .venv/bin/python tools/messages.py check    # what tests/test_messages.py asserts: nothing missing
    .venv/bin/python tools/messages.py todo     # the sentences still waiting for a translation, with where

A sentence is any ``_("...")`` in the package (a plain string literal: no
f-string, no variable; put values in ``{named}`` fields and ``.format`` them
afterwards), and any probe label a notebook passes (``label="..."``), since
pictures show it. The catalogue is ``netkit/locale/zh_TW/LC_MESSAGES/netkit.po``,
a gettext file any translation editor (Poedit, Weblate, a text editor) opens.
``update`` uses Babel's merge: a sentence whose English changed a little
keeps its old translation marked *fuzzy*, which `check` refuses until a
person confirms it (removes the ``#, fuzzy`` line).
"""

from __future__ import annotations

import ast
import re
import string
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "netkit"
NOTEBOOKS = REPO / "notebooks"
sys.path.insert(0, str(REPO))

from netkit.i18n import LANGUAGES, po_path  # noqa: E402

LABEL = re.compile(r"""\blabel=(?P<q>["'])(?P<text>(?:(?!(?P=q)).)+)(?P=q)""")


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def extract(package: Path = PACKAGE, notebooks: Path = NOTEBOOKS) -> tuple[dict[str, list[str]], list[str]]:
    """Every sentence and where it is used, and the calls of ``_()`` that are not a plain literal."""
    found: dict[str, list[str]] = {}
    bad: list[str] = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "i18n.py":
            continue                      # the machinery itself
        where = _shown(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_"):
                first = node.args[0] if len(node.args) == 1 and not node.keywords else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value:
                    found.setdefault(first.value, []).append(f"{where}:{node.lineno}")
                else:
                    bad.append(f"{where}:{node.lineno}: {node.func.id}() takes one plain string literal (put values in "
                               "{named} fields and .format() them)")
    for path in sorted(notebooks.glob("*.md")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in LABEL.finditer(line):
                found.setdefault(match["text"], []).append(f"{_shown(path)}:{number}")
    return found, bad


def fields(text: str) -> set[str]:
    """The ``{named}`` fields of a format string (a bad one is reported as such)."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        return {f"<unparseable: {exc}>"}


def read(lang: str):
    from babel.messages.pofile import read_po
    path = po_path(lang)
    if not path.exists():
        return None
    with path.open("rb") as stream:
        return read_po(stream, locale=lang.replace("-", "_"))


def problems(found: dict[str, list[str]], catalogue, lang: str = "zh-TW") -> list[str]:
    """What stops *catalogue* from covering *found*: missing, empty, fuzzy, stale, or placeholders that differ."""
    if catalogue is None:
        return [f"{po_path(lang).relative_to(REPO)} is missing: run tools/messages.py update"]
    said = []
    entries = {m.id: m for m in catalogue if m.id}
    for english, places in sorted(found.items()):
        entry = entries.get(english)
        where = places[0]
        if entry is None:
            said.append(f"{where}: no {lang} entry for {english!r} (run tools/messages.py update, then translate)")
        elif not entry.string:
            said.append(f"{where}: {english!r} has no {lang} translation yet")
        elif entry.fuzzy:
            said.append(f"{where}: the {lang} translation of {english!r} is marked fuzzy (the English changed); "
                        "check it and remove the fuzzy flag")
        elif fields(english) != fields(entry.string):
            said.append(f"{where}: {english!r} has fields {sorted(fields(english))}, its {lang} translation "
                        f"{sorted(fields(entry.string))}")
    for stale in sorted(set(entries) - set(found)):
        said.append(f"{po_path(lang).relative_to(REPO)}: {stale!r} is no longer used (run tools/messages.py update)")
    return said


def update(lang: str = "zh-TW") -> int:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po
    found, bad = extract()
    template = Catalog(project="netkit", charset="utf-8")
    for english, places in found.items():
        template.add(english, locations=[(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in places],
                     flags=("python-brace-format",) if fields(english) else ())
    catalogue = read(lang) or Catalog(locale=lang.replace("-", "_"), project="netkit", charset="utf-8",
                                      header_comment=f"# netkit's sentences in {LANGUAGES[lang]} ({lang}).\n"
                                                     "# Written by tools/messages.py update; translate the empty "
                                                     "msgstr entries.",
                                      copyright_holder="netkit", last_translator="netkit",
                                      language_team=f"netkit {lang}")
    catalogue.update(template, update_header_comment=False, update_creation_date=False)
    catalogue.obsolete.clear()
    catalogue.fuzzy = False
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        write_po(stream, catalogue, width=100, sort_by_file=True, include_lineno=False, ignore_obsolete=True)
    missing = sum(1 for m in catalogue if m.id and (not m.string or m.fuzzy))
    print(f"{path.relative_to(REPO)}: {len(found)} sentences, {missing} to translate or confirm")
    for line in bad:
        print(line)
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "update":
        return max(update(lang) for lang in LANGUAGES if lang != "en")
    found, bad = extract()
    said = bad + [p for lang in LANGUAGES if lang != "en" for p in problems(found, read(lang), lang)]
    if command == "todo":
        print("\n".join(said) or "nothing to translate")
        return 0
    if command == "check":
        print("\n".join(said) or f"every one of {len(found)} sentences is translated")
        return 1 if said else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
