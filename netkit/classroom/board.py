"""The progress board: a JupyterHub service page that shows the instructor who is stuck where.

    /services/netkit-progress/           the board (HTML; refreshes itself every few seconds)
    /services/netkit-progress/api/board  the same as JSON

One row per student, one column per exercise of `netkit.scenarios.EXERCISES`:
passed (and when), tried but not yet (how many checks, the last one when), or
not started. The rows come from each student's own progress file
(`netkit.progress`, ``~/.netkit/progress.jsonl``), read as its owner wrote it.

Who may look: the hub's admins only. The page is a HubOAuth service, so the
hub asks who is there; the hub gives its admins the scope to reach services
and students none, so a student gets 403 from the hub or from here. The
handler checks ``admin`` again itself.

What a student can do to it: nothing that reaches another row. The service
runs as root (students' homes are mode 0700) and reads one file per listed
student, which that student controls, so `read_progress` trusts none of it:

- it walks the path from the home's directory, one step at a time
  (``openat`` with ``O_NOFOLLOW``), so a symbolic link anywhere on the way
  (``~/.netkit`` pointing at ``/proc/PID/root/...``, say) ends the walk;
- each step is opened with ``O_PATH``: nothing is *opened* for reading until
  ``fstat`` showed a regular file that the student owns, within
  `SIZE_LIMIT`. A device, a pty, a FIFO or a socket is never opened at all
  (so no controlling terminal, no blocking read), and the final open adds
  ``O_NOCTTY`` and ``O_NONBLOCK`` anyway;
- a timestamp that is not a finite number between `EARLIEST` and a day
  from now is dropped with its line;
- the JSON it serves is strict (no NaN or Infinity, which a browser's
  parser refuses), and a student's file that fails in any other way costs
  that student their row's contents, never the page or another row.

It shows nothing from a file but exercise names it knows, states and times.
Started by the hub (`netkit.classroom.hub`) with ``NETKIT_CLASS_STUDENTS``
(comma-separated names) in its environment.
"""

from __future__ import annotations

import errno
import html
import json
import logging
import math
import os
import pwd
import signal
import stat
import time

from .. import progress
from ..i18n import _, language
from ..scenarios import EXERCISES

PROGRESS_FILE = ".netkit/progress.jsonl"
"""Where, in each home, the class's servers record exercise checks (ClassSpawner sets NETKIT_PROGRESS)."""
REFRESH_SECONDS = 3
SIZE_LIMIT = 4 << 20
"""A progress file larger than this is not read (a class's checks write a few kilobytes)."""
EARLIEST = 946684800.0
"""2000-01-01 UTC: no check of this kit was made before it."""
LATEST_SLACK = 86400.0
"""A check may carry a time up to a day ahead of the board's clock (clocks differ a little), no more."""
log = logging.getLogger("netkit.board")


class Unreadable(Exception):
    """A student's progress file is not one the board reads; `errno` says why (ELOOP, EPERM, EFBIG...)."""

    def __init__(self, number: int, where: str) -> None:
        super().__init__(number, f"{where}: {os.strerror(number)}")
        self.errno, self.where = number, where


def _step(parent: int, name: str, uid: int, *, directory: bool) -> int:
    """An O_PATH descriptor of `name` in `parent`, never through a link, owned by `uid` (or root, for /home)."""
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0),
                     dir_fd=parent)
    except OSError as exc:
        raise Unreadable(exc.errno, name) from None
    info = os.fstat(fd)
    if stat.S_ISLNK(info.st_mode):            # O_PATH|O_NOFOLLOW hands back the link itself
        os.close(fd)
        raise Unreadable(errno.ELOOP, name)
    if info.st_uid != uid:
        os.close(fd)
        raise Unreadable(errno.EPERM, name)
    return fd


def read_progress(home: str, uid: int, relative: str = PROGRESS_FILE) -> list[progress.Attempt]:
    """The attempts in `home`/`relative`, read as the module's docstring says; [] if there is no file.

    Raises `Unreadable` for a file that is there but not one to read (a link on the way, another
    owner, not a regular file, too large).
    """
    try:
        top = os.open(home, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise Unreadable(exc.errno, home) from None
    fds = [top]
    try:
        if os.fstat(top).st_uid != uid:
            raise Unreadable(errno.EPERM, home)
        *folders, leaf = relative.split("/")
        try:
            for folder in folders:
                fds.append(_step(fds[-1], folder, uid, directory=True))
            fds.append(_step(fds[-1], leaf, uid, directory=False))
        except Unreadable as exc:
            if exc.errno == errno.ENOENT:
                return []
            raise
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(errno.EINVAL, relative)
        if info.st_size > SIZE_LIMIT:
            raise Unreadable(errno.EFBIG, relative)
        # Only now open it for reading: the very inode just checked, through its O_PATH descriptor.
        fd = os.open(f"/proc/self/fd/{fds[-1]}", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            again = os.fstat(fd)
            if (again.st_dev, again.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(again.st_mode):
                raise Unreadable(errno.ESTALE, relative)
            data = os.read(fd, SIZE_LIMIT + 1)[:SIZE_LIMIT]
        finally:
            os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)
    return sane(progress._parse(data.decode(errors="replace")))


def sane(attempts: list[progress.Attempt], now: float | None = None) -> list[progress.Attempt]:
    """Only the attempts whose time is a finite number from `EARLIEST` to a day after `now`."""
    latest = (time.time() if now is None else now) + LATEST_SLACK
    return [a for a in attempts if isinstance(a.at, float) and math.isfinite(a.at) and EARLIEST <= a.at <= latest]


def student_attempts(name: str) -> list[progress.Attempt]:
    """What `name`'s checks recorded, if `name` is an account and owns its file."""
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        return []
    return read_progress(user.pw_dir, user.pw_uid)


def board(students: list[str], attempts_of=student_attempts, exercises=None) -> dict:
    """The board as plain data: exercises in order, and per student a cell per exercise.

    A student whose file cannot be read gets an empty row with ``"unreadable"`` set (the errno's
    name), and every other row is as it would be.
    """
    names = list(EXERCISES if exercises is None else exercises)
    rows = []
    for student in students:
        problem = None
        try:
            states = progress.summary(sane(attempts_of(student)))
        except Unreadable as exc:
            states, problem = {}, errno.errorcode.get(exc.errno, str(exc.errno))
        except Exception as exc:   # noqa: BLE001 - one student's file must never cost the others their row
            log.warning("the progress of %s could not be read: %r", student, exc)
            states, problem = {}, type(exc).__name__
        cells = {}
        for exercise in names:
            status = states.get(exercise, progress.NOT_STARTED)
            cells[exercise] = {"state": status.state, "attempts": status.attempts, "last": status.last,
                               "passed_at": status.passed_at}
        last = max((s.last for s in states.values() if s.last), default=None)
        rows.append({"student": student, "cells": cells, "last": last, "unreadable": problem,
                     "passed": sum(c["state"] == "passed" for c in cells.values())})
    return {"exercises": names, "students": rows, "at": time.time()}


def _clock(when: float | None) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(when)) if when else ""
    except (OverflowError, ValueError, OSError):
        return "?"


def strict_json(data: dict) -> str:
    """JSON that every browser parses: a NaN or an Infinity raises here rather than break the page."""
    return json.dumps(data, allow_nan=False)


def words() -> dict[str, str]:
    """The page's phrases in the board's language (NETKIT_LANG of the class; see netkit.i18n), for the
    first drawing here and for the page's script, which draws the table again every few seconds."""
    return {
        "passed_at": _("passed {time}"),
        "tried_once": _("not yet: 1 try, last {time}"),
        "tried": _("not yet: {count} tries, last {time}"),
        "not_started": _("not started"),
        "student": _("student"),
        "passed": _("passed"),
        "unreadable": _("file not read: {why}"),
        "read_at": _("read at {time}"),
        "failed": _("could not read the board: {why}"),
    }


def cell_text(cell: dict, said: dict[str, str] | None = None) -> str:
    """What a cell says, in words (the page draws the same with colours)."""
    said = said or words()
    if cell["state"] == "passed":
        return said["passed_at"].format(time=_clock(cell["passed_at"]))
    if cell["state"] == "tried":
        template = said["tried_once"] if cell["attempts"] == 1 else said["tried"]
        return template.format(count=cell["attempts"], time=_clock(cell["last"]))
    return said["not_started"]


def table_html(data: dict) -> str:
    said = words()
    head = "".join(f"<th>{html.escape(name)}</th>" for name in data["exercises"])
    rows = []
    for row in data["students"]:
        cells = "".join(
            f'<td class="{row["cells"][e]["state"].replace(" ", "-")}">{html.escape(cell_text(row["cells"][e], said))}</td>'
            for e in data["exercises"])
        why = (' <small class="unreadable">(' + html.escape(said["unreadable"].format(why=row["unreadable"]))
               + ')</small>') if row.get("unreadable") else ""
        rows.append(f'<tr data-student="{html.escape(row["student"])}"><th>{html.escape(row["student"])}{why}</th>'
                    f'<td class="count">{row["passed"]}/{len(data["exercises"])}</td>{cells}</tr>')
    return (f'<table id="board"><thead><tr><th>{html.escape(said["student"])}</th>'
            f'<th>{html.escape(said["passed"])}</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def page(data: dict, *, api: str, xsrf: str) -> str:
    """The whole page, in the board's language."""
    said = words()
    return PAGE.format(
        lang=language(), title=html.escape(_("netkit: class progress")),
        legend=_("Passed, {not_yet} (checked but not passed: who may be stuck), or not started.").format(
            not_yet='<b style="color:#8a4500">' + html.escape(_("not yet")) + "</b>"),
        when=html.escape(said["read_at"].format(time=_clock(data["at"]))),
        again=html.escape(_("this page reads the students' checks again every {every} s.").format(
            every=REFRESH_SECONDS)),
        table=table_html(data), every=REFRESH_SECONDS, api=api, xsrf=xsrf,
        words=json.dumps(said).replace("</", "<\\/"))


PAGE = r"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ border: 1px solid #ccc; padding: 6px 10px; text-align: left; }}
td.passed {{ background: #d4f4e2; color: #00603c; }}
td.tried {{ background: #ffe3c2; color: #8a4500; font-weight: bold; }}
td.not-started {{ color: #999; }}
td.count {{ text-align: center; }}
#when {{ color: #555; }}
small.unreadable {{ color: #a00; font-weight: normal; }}
</style></head>
<body>
<h2>{title}</h2>
<p>{legend}
<span id="when">{when}</span>; {again}</p>
<div id="table">{table}</div>
<script>
const said = {words};
const fill = (template, values) => template.replace(/\{{(\w+)\}}/g, (all, key) => key in values ? values[key] : all);
const words = cell => {{
  const clock = t => t ? new Date(t * 1000).toTimeString().slice(0, 8) : "";
  if (cell.state === "passed") return fill(said.passed_at, {{time: clock(cell.passed_at)}});
  if (cell.state === "tried") return fill(cell.attempts === 1 ? said.tried_once : said.tried,
                                          {{count: cell.attempts, time: clock(cell.last)}});
  return said.not_started;
}};
const esc = s => String(s).replace(/[&<>"]/g, c => ({{"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}})[c]);
async function refresh() {{
  try {{
    const answer = await fetch("{api}", {{credentials: "same-origin", cache: "no-store",
                                          headers: {{"X-XSRFToken": "{xsrf}"}}}});
    if (!answer.ok) {{ document.getElementById("when").textContent = fill(said.failed, {{why: "HTTP " + answer.status}}); return; }}
    const data = await answer.json();
    const head = data.exercises.map(e => "<th>" + esc(e) + "</th>").join("");
    const why = r => r.unreadable ? ' <small class="unreadable">(' + esc(fill(said.unreadable, {{why: r.unreadable}})) + ")</small>" : "";
    const rows = data.students.map(r => '<tr data-student="' + esc(r.student) + '"><th>' + esc(r.student) + why(r) + '</th><td class="count">'
      + r.passed + "/" + data.exercises.length + "</td>" + data.exercises.map(e => '<td class="' + r.cells[e].state.replace(" ", "-") + '">'
      + esc(words(r.cells[e])) + "</td>").join("") + "</tr>").join("");
    document.getElementById("table").innerHTML = '<table id="board"><thead><tr><th>' + esc(said.student) + "</th><th>"
      + esc(said.passed) + "</th>" + head + "</tr></thead><tbody>" + rows + "</tbody></table>";
    document.getElementById("when").textContent = fill(said.read_at, {{time: new Date(data.at * 1000).toTimeString().slice(0, 8)}});
  }} catch (error) {{
    document.getElementById("when").textContent = fill(said.failed, {{why: String(error)}});
  }}
}}
setInterval(refresh, {every} * 1000);
</script>
</body></html>
"""


def make_app(students: list[str], prefix: str):
    """The tornado application of the service, for the hub to proxy at `prefix`."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
    from jupyterhub.utils import url_path_join
    from tornado import web

    class Admins(HubOAuthenticated, web.RequestHandler):
        def admin(self) -> dict:
            user = self.current_user
            if not user or not user.get("admin"):
                raise web.HTTPError(403, "the progress board is for the hub's admins only")
            return user

        def set_default_headers(self) -> None:
            self.set_header("Cache-Control", "no-store")

    class Page(Admins):
        @web.authenticated
        def get(self) -> None:
            self.admin()
            data = board(students)
            # The hub takes a cookie from a script's fetch only with the page's xsrf token beside it.
            self.finish(page(data, api=url_path_join(prefix, "api/board"),
                             xsrf=html.escape(self.xsrf_token.decode(), quote=True)))

    class Api(Admins):
        @web.authenticated
        def get(self) -> None:
            self.admin()
            self.set_header("Content-Type", "application/json")
            self.finish(strict_json(board(students)))

    return web.Application([
        (prefix, Page),
        (url_path_join(prefix, "api/board"), Api),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32))


def main() -> None:
    from urllib.parse import urlparse

    from tornado.ioloop import IOLoop
    students = [s for s in os.environ.get("NETKIT_CLASS_STUDENTS", "").split(",") if s]
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = make_app(students, prefix)
    app.listen(url.port, url.hostname)
    print(f"netkit progress board for {len(students)} student(s) at {prefix}", flush=True)
    loop = IOLoop.current()
    for signum in (signal.SIGINT, signal.SIGTERM):   # the hub stops its services with SIGINT, then SIGTERM
        signal.signal(signum, lambda *_: loop.add_callback_from_signal(loop.stop))
    loop.start()


if __name__ == "__main__":
    main()
