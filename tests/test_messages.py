"""netkit speaks English and Traditional Chinese, from one catalogue (netkit/i18n.py, tools/messages.py).

Every sentence in the code has its zh-TW translation (a sentence added in English
alone fails here), the placeholders agree, and the language is chosen as the
module says: use_language(), then the notebook's folder, then NETKIT_LANG.
Pure code: no lab is started.
"""

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import messages  # noqa: E402  (tools/messages.py)
from netkit import i18n  # noqa: E402
from netkit.errors import BadArgument  # noqa: E402

pytestmark = pytest.mark.pure   # recorded data only: no lab, no root (./quickstart test --fast)

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def english_afterwards(monkeypatch):
    monkeypatch.delenv(i18n.ENV, raising=False)
    yield
    i18n.use_language(None)


def test_every_sentence_in_the_code_has_its_translation():
    found, bad = messages.extract()
    assert not bad, "\n".join(bad)
    assert len(found) > 100, "the extractor found almost nothing: is _() still used?"
    said = messages.problems(found, messages.read("zh-TW"))
    assert not said, "\n".join(said[:40]) + ("\n..." if len(said) > 40 else "") + \
        "\n(run tools/messages.py update, translate, then tools/messages.py check)"


def test_a_sentence_added_in_english_alone_is_caught():
    found, _ = messages.extract()
    found = {**found, "A sentence nobody has translated yet.": ["netkit/new.py:1"]}
    said = messages.problems(found, messages.read("zh-TW"))
    assert any("A sentence nobody has translated yet." in line for line in said)


def test_placeholders_that_differ_are_caught():
    from babel.messages.catalog import Catalog
    catalogue = Catalog(locale="zh_TW")
    catalogue.add("the lab {name!r} has ended", "實驗環境 {lab} 已經結束")
    said = messages.problems({"the lab {name!r} has ended": ["x.py:1"]}, catalogue)
    assert said and "fields" in said[0]


def test_a_call_that_is_not_a_plain_literal_is_caught(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text('name = "x"\nmessage = _(f"no lab {name}")\nok = _("fine")\n')
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "n.md").write_text('lab.probe("c1", "8.8.8.8", label="no default route")\n')
    found, bad = messages.extract(package, notebooks)
    assert set(found) == {"fine", "no default route"}
    assert len(bad) == 1 and "m.py:2" in bad[0]


def test_a_notebook_probe_label_is_a_sentence_to_translate():
    found, _ = messages.extract()
    assert "no default route" in found and any(p.startswith("notebooks/") for p in found["no default route"])


def test_language_order_call_then_folder_then_environment(tmp_path, monkeypatch):
    assert i18n.language() == "en"
    monkeypatch.setenv(i18n.ENV, "zh_TW")
    assert i18n.language() == "zh-TW"
    monkeypatch.setenv(i18n.ENV, "klingon")
    assert i18n.language() == "en"                      # a bad setting does not stop the kit
    monkeypatch.delenv(i18n.ENV)
    (tmp_path / "zh-TW").mkdir()
    monkeypatch.chdir(tmp_path / "zh-TW")
    assert i18n.language() == "zh-TW"                   # a notebook in notebooks/zh-TW/
    assert i18n.use_language("en") == "en"              # papermill's lang wins over the folder
    assert i18n.use_language(None) == "zh-TW"


def test_an_unknown_language_is_refused_with_the_choices():
    with pytest.raises(BadArgument) as caught:
        i18n.use_language("fr")
    assert "'en'" in str(caught.value) and "'zh-TW'" in str(caught.value)
    assert i18n.language() == "en"                      # nothing changed


def test_errors_follow_the_language():
    from netkit.state import check_name
    with pytest.raises(BadArgument) as english:
        check_name("bad name!")
    i18n.use_language("zh-TW")
    with pytest.raises(BadArgument) as chinese:
        check_name("bad name!")
    assert not HAN.search(str(english.value)) and HAN.search(str(chinese.value))
    assert "'bad name!'" in str(chinese.value)           # the value is still there, as given


def test_the_kernels_own_words_stay_as_the_kernel_said_them():
    from netkit import explain
    from netkit.journey import Journey
    from netkit.outcome import Outcome, Result
    journey = Journey(src="c1", dst="8.8.8.8", proto="icmp", hops=()).decided(
        Outcome(Result.NO_ROUTE, node="c1", error="Network is unreachable"))
    i18n.use_language("zh-TW")
    said = explain.sentence(journey)
    assert HAN.search(said) and "Network is unreachable" in said and "8.8.8.8" in said


def _shadowing(source: str) -> list[int]:
    """Lines where a function binds the name `_` itself (a loop variable, `a, _ = ...`), which makes
    every `_()` in that function a call of the local value instead of the translator."""
    import ast
    tree = ast.parse(source)
    if not any(isinstance(n, ast.ImportFrom) and any(a.name == "_" for a in n.names) for n in ast.walk(tree)):
        return []
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
              ast.GeneratorExp, ast.ListComp, ast.SetComp, ast.DictComp)
    lines = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo = list(function.body)
            while todo:
                node = todo.pop()
                if isinstance(node, scopes):
                    continue
                if isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store):
                    lines.append(node.lineno)
                todo.extend(ast.iter_child_nodes(node))
    return sorted(set(lines))


def test_no_function_hides_the_translator_behind_a_local_underscore():
    found = {path.name: _shadowing(path.read_text()) for path in sorted((REPO / "netkit").glob("*.py"))}
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_the_underscore_check_finds_a_shadowing_function():
    source = "from .i18n import _\ndef f():\n    a, _ = 1, 2\n    return _('x')\n"
    assert _shadowing(source) == [3]
