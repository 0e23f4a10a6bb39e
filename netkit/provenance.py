"""Where a result came from: the label every replayed output carries.

Pure code. A result the lab's kernel gave just now carries nothing. A result
read back from a recording (replay mode, `netkit.replay`) carries its
provenance, ``recorded``: the kernel and the date it was recorded on, e.g.
``"Linux 6.18.44, 2026-12-01"``. Everything a student sees from such a result
says so in the same words, from `label`::

    replayed: recorded on Linux 6.18.44, 2026-12-01, not your machine

- `CommandResult` and `Journey` put it in their text and HTML displays;
- `Recorded` is a string from a recording (a journey's ``reason``): equal to
  the plain text, so ``assert`` lines read it as ever, and labelled when shown;
- `labels_pictures` wraps the functions of `netkit.plots`, so a picture of a
  replayed journey gets a footnote line with the label (`footnote`), and its
  text form names it too;
- `labelled` says whether an object shows its label itself (the cell footer
  of `netkit.replay` adds one to anything else a replayed cell shows).
"""

from __future__ import annotations

import functools
import html

from .i18n import _

FOOTNOTE_GID = "provenance"
FOOTNOTE_INCHES = 0.4
COLOR = "#9A6700"        # amber: a warning, not an error


def label(recorded: str) -> str:
    """The one label of a replayed output."""
    return _("replayed: recorded on {recorded}, not your machine").format(recorded=recorded)


def line(recorded: str) -> str:
    """The label as a line of text, in brackets: "(replayed: recorded on ..., not your machine)"."""
    return _("({label})").format(label=label(recorded))


def html_label(recorded: str) -> str:
    """The label as a notebook's HTML shows it, above the replayed output."""
    return (f'<div style="color:{COLOR};font-size:13px;font-weight:bold;margin:2px 0" '
            f'class="netkit-replayed">⟲ {html.escape(label(recorded))}</div>')


class _WithLabel:
    """Mixed into a value read from a recording: it is shown with the label after it."""

    recorded: str

    def __repr__(self) -> str:
        return f"{super().__repr__()}\n{line(self.recorded)}"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


class Recorded(_WithLabel, str):
    """A string read from a recording: the same text (``==``, ``in``, ``startswith`` are unchanged),
    shown in a notebook with the label after it."""

    def __new__(cls, text: str, recorded: str) -> "Recorded":
        made = super().__new__(cls, text)
        made.recorded = recorded
        return made

    def __reduce__(self):
        return (Recorded, (str(self), self.recorded))


class RecordedState(_WithLabel, dict):
    """Switch values read from a recording (`lab.state()` in a replay): the same dict, shown with the label."""

    def __init__(self, values: dict, recorded: str) -> None:
        super().__init__(values)
        self.recorded = recorded

    def __reduce__(self):
        return (RecordedState, (dict(self), self.recorded))


# -- pictures -------------------------------------------------------------------------
def recorded_of(*values) -> str:
    """The provenance of the first replayed journey among `values` (journeys, or lists of them), or ""."""
    for value in values:
        items = value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            recorded = getattr(item, "recorded", "")
            if recorded and hasattr(item, "hops"):
                return recorded
    return ""


def footnote(fig, recorded: str, *, own_figure: bool = True):
    """Add the label as a footnote line under `fig` (once) and return the figure, its text form labelled.

    On a figure of its own the figure grows by one line at the bottom and
    every Axes keeps its size and place, so nothing of the picture moves; on
    a caller's figure (``ax=`` given) the line goes in its bottom left corner.
    """
    if any(text.get_gid() == FOOTNOTE_GID for text in fig.texts):
        return fig
    if own_figure:
        width, height = fig.get_size_inches()
        grown = height + FOOTNOTE_INCHES
        for ax in fig.axes:
            box = ax.get_position()
            ax.set_position([box.x0, (box.y0 * height + FOOTNOTE_INCHES) / grown,
                             box.width, box.height * height / grown])
        fig.set_size_inches(width, grown)
        y = 0.12 * FOOTNOTE_INCHES / grown
    else:
        y = 0.005
    from . import plots
    families = getattr(plots, "families", None)          # the pictures' fonts: a Chinese label needs a CJK one
    fonts = {"family": list(families())} if families else {}
    fig.text(0.01, y, "⟲ " + label(recorded), fontsize=13, color=COLOR, weight="bold", ha="left",
             va="bottom", gid=FOOTNOTE_GID, **fonts)
    fig.recorded = recorded
    if not isinstance(fig, _Labelled):
        fig.__class__ = _labelled_class(type(fig))
    return fig


class _Labelled:
    """Mixed into a replayed picture's class: its text form (what a notebook saves beside the PNG) says so."""

    def __repr__(self) -> str:
        return f"<{type(self).__mro__[2].__name__}: {label(self.recorded)}>"


@functools.lru_cache(maxsize=None)
def _labelled_class(base: type) -> type:
    return type(f"Replayed{base.__name__}", (_Labelled, base), {})


def labels_pictures(draw):
    """Wrap a drawing function of `netkit.plots`: a picture of a replayed journey gets the footnote."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        fig = draw(*args, **kwargs)
        recorded = recorded_of(*args, *kwargs.values())
        return footnote(fig, recorded, own_figure=kwargs.get("ax") is None) if recorded else fig
    return drawn


def labelled(value) -> bool:
    """Does `value` show its replay label itself when a notebook displays it?"""
    if getattr(value, "recorded", ""):
        return True
    if getattr(getattr(value, "lab", None), "replayed", False):   # a panel or dashboard on a replay
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(labelled(item) for item in value)
    return False


def show_widget(widget, recorded: str = "", what: str = "panel") -> None:
    """Display `widget`; a replay's also says so in its text form (what a saved notebook keeps of it)."""
    from IPython.display import display
    if not recorded:
        display(widget)
        return
    bundle = dict(widget._repr_mimebundle_())
    if what == "dashboard":
        said = _("the dashboard: each switch shows the outcome recorded for that combination of switches")
    else:
        said = _("the panel: each switch shows the outcome recorded for that combination of switches")
    bundle["text/plain"] = f"{line(recorded)}\n{said}"
    display(bundle, raw=True)
