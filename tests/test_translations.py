"""The Traditional Chinese notebooks (notebooks/zh-TW/) are twins of the English ones.

Same code in every code cell (comments may be translated), same cell tags, no English
prose left in the Chinese text beyond commands, names and output, the article's three
questions as headings with links to the article, and the glossary one click away.
Running them is tests/test_notebooks.py's job.
"""

import io
import re
import tokenize
from pathlib import Path

import jupytext
import pytest

pytestmark = pytest.mark.pure   # recorded data only: no lab, no root (./quickstart test --fast)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
ZH = NOTEBOOKS / "zh-TW"
TWINS = sorted(p.name for p in NOTEBOOKS.glob("*.md") if p.name != "glossary.md")
ARTICLE = "https://www.hwchiu.com/docs/2020/docker-network-model-"

# Four or more English words in a row is a sentence left untranslated. Code spans, links' targets,
# HTML comments and fenced code are taken out first; a name such as "Linux Bridge" is two words.
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:[ ,]+[A-Za-z][A-Za-z'’-]*){3,}")


def cells(path: Path):
    return jupytext.reads(path.read_text(), fmt="md:myst").cells


def code_without_comments(source: str) -> list[tuple[int, str]]:
    """The cell's Python tokens, comments and blank lines left out; a cell that does not tokenize is kept whole."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [(0, source)]
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}
    return [(t.type, t.string) for t in tokens if t.type not in skip]


def comments(source: str) -> list[str]:
    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(source + "\n").readline)
                if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []


def prose(markdown: str) -> str:
    """What a reader reads as sentences: code, link targets, comments and tables' code taken out."""
    text = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"https?://\S+", " ", text)
    return text


def english_runs(text: str) -> list[str]:
    return [m.group(0) for m in ENGLISH_RUN.finditer(text)]


def test_every_notebook_has_a_traditional_chinese_twin():
    assert TWINS, "no English notebook sources found"
    missing = [name for name in TWINS if not (ZH / name).exists()]
    assert not missing, f"notebooks/zh-TW/ lacks {missing}"
    extra = sorted({p.name for p in ZH.glob("*.md")} - set(TWINS))
    assert not extra, f"notebooks/zh-TW/ has {extra}, which no English notebook has"


@pytest.mark.parametrize("name", TWINS)
def test_the_twins_have_the_same_code(name):
    english, chinese = cells(NOTEBOOKS / name), cells(ZH / name)
    en_code = [(c.source, c.metadata.get("tags", [])) for c in english if c.cell_type == "code"]
    zh_code = [(c.source, c.metadata.get("tags", [])) for c in chinese if c.cell_type == "code"]
    assert len(en_code) == len(zh_code), f"{name}: {len(en_code)} code cells in English, {len(zh_code)} in zh-TW"
    for index, ((en, en_tags), (zh, zh_tags)) in enumerate(zip(en_code, zh_code)):
        assert code_without_comments(en) == code_without_comments(zh), \
            f"{name}, code cell {index}: the code differs (only comments may):\n--- en\n{en}\n--- zh-TW\n{zh}"
        assert en_tags == zh_tags, f"{name}, code cell {index}: tags {en_tags} != {zh_tags}"


@pytest.mark.parametrize("name", TWINS)
def test_no_english_prose_is_left_in_the_chinese_notebook(name):
    left = []
    for cell in cells(ZH / name):
        if cell.cell_type == "markdown":
            left += english_runs(prose(cell.source))
        else:
            left += [run for comment in comments(cell.source) for run in english_runs(re.sub(r"`[^`]*`", " ", comment))]
    assert not left, f"zh-TW/{name} still has English sentences: {left}"


def test_the_english_check_finds_english():
    # The check above must be able to fail: an untranslated sentence is caught, names and code are not.
    assert english_runs(prose("Run the cells in order, please.")) == ["Run the cells in order, please"]
    assert english_runs(prose("封包經過 Linux Bridge 與 `iptables -t nat -A POSTROUTING -j MASQUERADE`。")) == []
    assert english_runs(prose("請看[原文](https://www.hwchiu.com/docs/2020/a-long-english-slug-here)")) == []


def test_the_code_check_ignores_comments_only():
    assert code_without_comments("x = 1  # one\n") == code_without_comments("x = 1  # 一\n")
    assert code_without_comments("x = 1\n") != code_without_comments("x = 2\n")


@pytest.mark.parametrize("name", ["01-container-to-container.md", "02-container-to-internet.md"])
def test_the_articles_three_questions_are_headings_with_links(name):
    headings = [line for cell in cells(ZH / name) if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("#")]
    for question in ("封包要送給誰", "誰來處理封包", "誰來過濾封包"):
        found = [h for h in headings if question in h and ARTICLE in h]
        assert found, f"zh-TW/{name}: no heading {question!r} linking to the article"
    english = [line for cell in cells(NOTEBOOKS / name) if cell.cell_type == "markdown"
               for line in cell.source.splitlines() if line.startswith("#") and ARTICLE in line]
    assert len(english) >= 3, f"{name}: the English headings should link the article's sections too"


@pytest.mark.parametrize("name", TWINS)
def test_the_glossary_is_one_click_away(name):
    text = (ZH / name).read_text()
    assert "../glossary.ipynb" in text, f"zh-TW/{name} does not link the glossary"
    assert (NOTEBOOKS / "glossary.ipynb").exists()
