"""netkit in English and in Traditional Chinese (繁體中文).

Every sentence netkit shows a person is written in English in the code,
wrapped in ``_()``, and its Traditional Chinese lives in
``netkit/locale/zh_TW/LC_MESSAGES/netkit.po``, keyed by that English sentence::

    from .i18n import _
    raise LabNotFound(_("No lab named {name} is running.").format(name=name))

Placeholders are named (``{name}``) so a translation may put them in another
order. ``tools/messages.py update`` adds new sentences to the catalogue (and
marks changed ones); ``tests/test_messages.py`` fails while any sentence in
the code has no translation, so English cannot drift away from Chinese.

Which language, first match wins:

1. ``use_language("zh-TW")`` (a notebook passes its papermill parameter ``lang``);
2. the notebook's folder: a kernel that runs in ``.../zh-TW/`` speaks zh-TW;
3. the environment variable ``NETKIT_LANG`` (``en`` or ``zh-TW``);
4. English.

Commands, chain names, interface names, tool output and the Python API stay
as they are in every language.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from pathlib import Path

LANGUAGES = {"en": "English", "zh-TW": "繁體中文"}
ENV = "NETKIT_LANG"
CATALOGUES = os.path.join(os.path.dirname(os.path.realpath(__file__)), "locale")
"""(A plain path: pathlib is not imported at start-up, as the lab's host imports this module first.)"""
_ALIASES = {"en": "en", "en_us": "en", "en-us": "en", "zh-tw": "zh-TW", "zh_tw": "zh-TW",
            "zh-hant": "zh-TW", "zh_hant": "zh-TW", "zh-hant-tw": "zh-TW"}
_chosen: str | None = None


def normalise(lang: str) -> str:
    """``"zh_TW"``, ``"zh-tw"`` or ``"zh-Hant"`` as ``"zh-TW"``; anything unknown is refused."""
    from .errors import BadArgument
    key = str(lang).strip().lower()
    if key not in _ALIASES:
        raise BadArgument(f"netkit speaks {', '.join(map(repr, LANGUAGES))}, not {lang!r}. "
                          f"Pass one of those (or None to let the notebook's folder decide). / "
                          f"netkit 支援的語言是 {'、'.join(LANGUAGES)}，沒有 {lang!r}。")
    return _ALIASES[key]


def use_language(lang: str | None = None) -> str:
    """Speak *lang* from now on (``"en"`` or ``"zh-TW"``); None goes back to the automatic choice.

    Returns the language now in use, so a notebook's ``use_language(lang)``
    shows which one it got.
    """
    global _chosen
    _chosen = None if lang is None else normalise(lang)
    return language()


def language() -> str:
    """The language netkit speaks now (see the module's docstring for the order)."""
    if _chosen:
        return _chosen
    try:
        here = os.path.basename(os.getcwd())
        if here in LANGUAGES and here != "en":
            return here
    except OSError:                     # the working directory was removed
        pass
    wanted = os.environ.get(ENV, "").strip()
    if wanted:
        try:
            return normalise(wanted)
        except ValueError:
            return "en"                 # a bad NETKIT_LANG must not stop the kit; the doctor reports it
    return "en"


def po_path(lang: str) -> Path:
    from pathlib import Path
    return Path(CATALOGUES) / lang.replace("-", "_") / "LC_MESSAGES" / "netkit.po"


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """Every translated sentence of *lang*: English to translation (fuzzy and empty ones left out)."""
    path = po_path(lang)
    if lang == "en" or not path.exists():
        return {}
    from babel.messages.pofile import read_po
    with path.open("rb") as stream:
        read = read_po(stream, locale=lang.replace("-", "_"))
    return {m.id: m.string for m in read if m.id and m.string and not m.fuzzy and isinstance(m.id, str)}


def _(english: str) -> str:
    """*english* in the language in use (English itself when there is no translation)."""
    lang = language()
    if lang == "en":
        return english
    return catalogue(lang).get(english, english)



def N_(english: str) -> str:
    """Mark *english* for the catalogue where it is defined (a label, a title); show it with `translated`."""
    return english


def translated(english: str) -> str:
    """*english*, a sentence marked with `N_` (or a notebook's probe label), in the language in use."""
    return _(english) if english else english


def untranslated(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (this process's environment by default) for a program whose messages netkit reads.

    ``LC_ALL=C``: the program's own messages and the C library's strerror come untranslated, whatever the
    user's locale (with util-linux-locales and ``LANG=zh_TW.UTF-8``, unshare would say ``unshare 失敗:
    裝置上已無多餘空間``); ``LANGUAGE``, which GNU gettext reads before LC_ALL, goes too. Python started
    under it keeps UTF-8 for its files and pipes (PEP 540's UTF-8 mode in the C locale)."""
    env = dict(os.environ if env is None else env)
    env.pop("LANGUAGE", None)
    env["LC_ALL"] = "C"
    return env
