"""What a replay tells the student, besides the labels on results: the banner, the cell footer, an exercise
that is not checked.

- `announce`: a replay lab's first cell shows a `Banner`: that the lab is not
  live, why (`why`: NETKIT_REPLAY=1, Binder, and whether a live lab could
  start here), and the ways to a live lab (`LIVE_LAB`);
- `_CellWatch`: in a notebook, a cell that used a recording (`served`) and
  shows something that does not carry the label itself (a printed value, a
  dict) gets the label as its last line;
- `NotChecked`: what an exercise's ``check()`` gives in a replay.

The words of the label are `netkit.provenance.label`'s; `netkit.replay` uses all of this.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import os
import sys
from dataclasses import dataclass

from . import provenance
from .i18n import N_, _, translated
from .journey import Journey

ENV = "NETKIT_REPLAY"
"""The setting that switches replay mode on (`netkit.replay.mode`)."""

LIVE_LAB = N_("a live lab: a class server (an instructor's `./quickstart class`), the container on your own "
              "computer (README: \"On macOS or Windows\"), or a Linux laptop or VM (`./quickstart lab`)")
"""The ways to a live lab, as a sentence's end ("... you need {live_lab}."); shown with `translated`."""

_served = 0
_last_recorded = ""


def served(recorded: str) -> None:
    """Count one call answered from a recording (`_CellWatch` labels the cell it was made in)."""
    global _served, _last_recorded
    _served += 1
    _last_recorded = recorded


class _CellWatch:
    """In a notebook: a cell that used a recording and shows something unlabelled gets the label last.

    Journeys, command results, pictures and panels carry the label
    themselves; a value a cell prints (``print(mac)``) or returns (a dict of
    switches) does not, so this adds one line after it. Prints of the
    replay's own (the commands echoed with ``trace=print``) are not counted.
    """

    installed = False
    quiet = 0

    def __init__(self, shell) -> None:
        self.start = (0, 0)
        self.written = 0
        self.saved: tuple | None = None
        shell.events.register("pre_run_cell", self.before)
        shell.events.register("post_run_cell", self.after)

    @classmethod
    def install(cls) -> None:
        if cls.installed:
            return
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        if shell is None or not hasattr(shell, "events"):
            return
        cls.installed = True
        cls(shell)

    def before(self, info=None) -> None:
        """Count what the cell prints: wrap stdout's write for this cell (IPython puts its own back after it)."""
        self.start = (_served, self.written)
        stream = sys.stdout
        had = stream.__dict__.get("write") if hasattr(stream, "__dict__") else None
        original = stream.write

        def write(text):
            if not _CellWatch.quiet and text:
                self.written += 1
            return original(text)
        try:
            stream.write = write
        except (AttributeError, TypeError):
            return                          # a stream that cannot be watched: results are still watched
        self.saved = (stream, had)

    def after(self, result=None) -> None:
        try:
            if _served == self.start[0]:
                return
            shown = getattr(result, "result", None)
            if self.written != self.start[1] or (shown is not None and not provenance.labelled(shown)):
                quietly(print, provenance.line(_last_recorded))
        finally:
            if self.saved is not None:
                stream, had = self.saved
                self.saved = None
                if had is None:
                    stream.__dict__.pop("write", None)
                else:
                    stream.write = had


def quietly(action, *args):
    """Run `action`; what it prints is the replay's own, not counted as the cell's."""
    _CellWatch.quiet += 1
    try:
        return action(*args)
    finally:
        _CellWatch.quiet -= 1


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def on_binder() -> bool:
    return any(key.startswith("BINDER_") for key in os.environ)


@functools.lru_cache(maxsize=1)
def _live_here() -> tuple[bool, str]:
    from .doctor import try_lab_start
    try:
        return try_lab_start()
    except Exception as error:          # the banner must show whatever the check does
        return False, str(error)


def why() -> list[str]:
    """Why this is a replay, in a student's words: the setting, and whether a live lab could start here."""
    if on_binder():
        reasons = [_("{ENV}=1 is set (Binder sets it: Binder gives no user namespaces, so no lab can run "
                     "there).").format(ENV=ENV)]
    else:
        reasons = [_("{ENV}=1 is set.").format(ENV=ENV)]
    ok, said = _live_here()
    if ok:
        reasons.append(_("A live lab could start on this machine: unset {ENV} and restart the kernel.")
                       .format(ENV=ENV))
    else:
        reasons.append(_("A live lab cannot start on this machine either ({said}).")
                       .format(said=said or _("namespaces are refused")))
    return reasons


@dataclass(frozen=True)
class Banner:
    """What a replay lab's first cell shows: that it replays, why, and the ways to a live lab."""

    lab: str
    recorded: str
    reasons: tuple[str, ...]

    @property
    def lines(self) -> list[str]:
        return [_('REPLAY: lab {lab!r} is not live. Its results are recordings, each marked "{label}".')
                .format(lab=self.lab, label=provenance.label(self.recorded)),
                *self.reasons,
                _("Replay shows only what was recorded, in the notebook's order; exercises cannot be checked. "
                  "To try your own commands you need {live_lab}.").format(live_lab=translated(LIVE_LAB))]

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        first, *rest = self.lines
        items = "".join(f"<li>{html.escape(line)}</li>" for line in rest)
        return (f'<div style="border-left:6px solid {provenance.COLOR};padding:6px 12px;font-size:14px" '
                f'class="netkit-replay-banner"><b style="color:{provenance.COLOR}">{html.escape(first)}</b>'
                f"<ul>{items}</ul></div>")


def announce(lab) -> Banner:
    """Show a replay lab's banner: in a notebook as its cell's output (and watch the cells from then on), else on
    stderr."""
    banner = Banner(lab.name, lab.recorded, tuple(why()))
    if _in_notebook():
        from IPython.display import display
        quietly(display, banner)
        _CellWatch.install()
    else:
        print(banner, file=sys.stderr)
    return banner


# -- exercises -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NotChecked:
    """What an exercise's check() says in a replay: it cannot check, and what the model answer did."""

    exercise: str
    recorded: str
    solution: str
    model: dict | None = None          # the recorded check of the model answer: ok, message, journey

    ok = None                          # neither right nor wrong: nothing was checked

    def __bool__(self) -> bool:
        return False

    @property
    def journey(self) -> Journey | None:
        if not self.model or not self.model.get("journey"):
            return None
        return dataclasses.replace(Journey.from_dict(self.model["journey"]), recorded=self.recorded)

    @property
    def message(self) -> str:
        text = _("Not checked: checking needs a live lab, and this is a replay, which cannot tell whether your "
                 "answer works. The model answer, as recorded:\n{solution}").format(solution=self.solution)
        if self.model:
            said = self.model.get("message", "")
            text += "\n" + (_("its check said: RIGHT: {message}") if self.model.get("ok") else
                            _("its check said: NOT YET: {message}")).format(message=said)
        return text

    def __str__(self) -> str:
        return f"{provenance.line(self.recorded)}\n{self.message}"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        model = ""
        if self.model:
            word = _("Right.") if self.model.get("ok") else _("Not yet.")
            model = "<br>" + _("Its check said: {verdict} {message}").format(
                verdict=f"<b>{html.escape(word)}</b>", message=html.escape(self.model.get("message", "")))
        return (provenance.html_label(self.recorded)
                + f'<div style="border-left:6px solid {provenance.COLOR};padding:6px 12px;font-size:14px">'
                  f'<b style="color:{provenance.COLOR}">{html.escape(_("Not checked."))}</b> '
                  + html.escape(_("Checking needs a live lab: this replay cannot tell whether your answer works. "
                                  "The model answer, as recorded:"))
                  + f"<pre>{html.escape(self.solution)}</pre>{model}</div>")
