"""The Binder link of this repository, from the one place it is set: pyproject.toml's [project.urls].

    .venv/bin/python tools/binder_link.py        # prints the link and the README's badge line

Whoever publishes the repository sets `Repository = "https://github.com/OWNER/NAME"` under
[project.urls] once; this prints the mybinder.org address that opens notebook 01 in replay mode, and the
badge's Markdown for the README (tests/test_packaging.py checks that a badge in the README is exactly it).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = "notebooks/01-container-to-container.ipynb"
BADGE = ("[![Binder: the notebooks replayed from recordings, not live](https://img.shields.io/badge/"
         "Binder-replayed%20recordings%2C%20not%20live-F5A252?logo=jupyter)]({link})")


def repository(pyproject: Path = REPO / "pyproject.toml") -> str | None:
    """The repository's address from [project.urls], or None while nobody has set it."""
    urls = tomllib.loads(pyproject.read_text()).get("project", {}).get("urls", {})
    return urls.get("Repository")


def binder_link(repository_url: str) -> str:
    """mybinder.org's address for a GitHub repository, opening notebook 01 in JupyterLab."""
    parsed = urlparse(repository_url)
    parts = parsed.path.strip("/").removesuffix(".git").split("/")
    if parsed.netloc != "github.com" or len(parts) != 2 or not all(parts):
        raise ValueError(f"{repository_url!r} is not a GitHub repository's address "
                         "(https://github.com/OWNER/NAME)")
    return f"https://mybinder.org/v2/gh/{parts[0]}/{parts[1]}/HEAD?urlpath=lab/tree/{NOTEBOOK}"


def badge(repository_url: str) -> str:
    return BADGE.format(link=binder_link(repository_url))


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="binder_link.py", description=__doc__.splitlines()[0]).parse_args(argv)
    url = repository()
    if url is None:
        print("pyproject.toml has no Repository under [project.urls]: add\n\n[project.urls]\n"
              'Repository = "https://github.com/OWNER/NAME"\n\nwith your repository\'s address, then run this again.')
        return 1
    print(binder_link(url))
    print(badge(url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
