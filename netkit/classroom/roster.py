"""The class roster: one ``username,password`` a line.

    ana,correct-horse-1
    # a comment, and blank lines, are skipped
    ben,battery-staple-2

`parse(text)` returns the entries or raises RosterError listing every bad
line with its number, so the instructor fixes the file in one go.
`generate(n)` makes accounts for a class of n (``student01`` ...) with
random passwords, and `write(path, entries)` saves them mode 0600, for the
instructor's eyes only. Pure: nothing here touches the machine's accounts.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import NetkitError

USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
"""What Debian's and Ubuntu's useradd accept without --badname: lower case, at most 32 characters."""

WORDS = ("amber", "bridge", "cedar", "delta", "ember", "fjord", "gamma", "harbor", "iris", "jade",
         "kelp", "lumen", "maple", "nova", "onyx", "pixel", "quartz", "raven", "sable", "tidal",
         "umber", "vapor", "willow", "xenon", "yarrow", "zephyr")


class RosterError(NetkitError):
    """The roster file cannot be used as it is; the message lists every bad line."""


@dataclass(frozen=True)
class Entry:
    username: str
    password: str
    line: int = 0

    def __repr__(self) -> str:   # never print a password by accident
        return f"Entry({self.username!r}, line {self.line})"


def check_username(name: str) -> str | None:
    """Why `name` cannot be a Unix account name here, or None if it can."""
    if not USERNAME_RE.match(name):
        return (f"{name!r} is not a valid account name: use 1 to 32 lower-case letters, digits, '_' or '-', "
                "starting with a letter or '_'")
    return None


def parse(text: str, source: str = "the roster") -> list[Entry]:
    entries: list[Entry] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "," not in line:
            problems.append(f"line {number}: no comma; write username,password")
            continue
        name, password = (part.strip() for part in line.split(",", 1))
        why = check_username(name)
        if why:
            problems.append(f"line {number}: {why}")
        elif name in seen:
            problems.append(f"line {number}: {name!r} is already on line {seen[name]}")
        if not password:
            problems.append(f"line {number}: {name!r} has no password; write {name},PASSWORD")
        elif ":" in password or any(ord(ch) < 32 for ch in password):
            problems.append(f"line {number}: the password of {name!r} holds ':' or a control character, "
                            "which chpasswd cannot take; choose another")
        seen.setdefault(name, number)
        entries.append(Entry(name, password, number))
    if problems:
        raise RosterError(f"{source} has {len(problems)} bad line(s); fix them and run the command again:\n  "
                          + "\n  ".join(problems))
    if not entries:
        raise RosterError(f"{source} names nobody; write one username,password a line "
                          "(or use --students N to make a roster)")
    return entries


def load(path: str | os.PathLike) -> list[Entry]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RosterError(f"no roster file at {path}; write one username,password a line, "
                          "or let --students N write it for you") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"the roster {path} cannot be read ({exc}); check the path and that it is text") from None
    return parse(text, str(path))


def password() -> str:
    """A random password a student can type: three words and two digits."""
    return "-".join(secrets.choice(WORDS) for _ in range(3)) + f"-{secrets.randbelow(90) + 10}"


def generate(count: int, prefix: str = "student") -> list[Entry]:
    if not isinstance(count, int) or not 1 <= count <= 500:
        raise RosterError(f"--students takes a number from 1 to 500, not {count!r}")
    width = max(2, len(str(count)))
    return [Entry(f"{prefix}{i:0{width}d}", password(), i) for i in range(1, count + 1)]


def write(path: str | os.PathLike, entries: list[Entry]) -> Path:
    """Save `entries` as a roster readable by its owner only; refuses to overwrite a file."""
    path = Path(path)
    text = "".join(f"{e.username},{e.password}\n" for e in entries)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RosterError(f"{path} exists already; --students writes a new roster: give another file "
                          f"name, or use that roster with --roster {path} alone") from None
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path
