"""The one exception tree of netkit.

Every message names the object, says what went wrong, and says how to fix it::

    NetkitError                  anything netkit refuses or cannot do
    ├── BadArgument              a value the caller gave is not usable (also a ValueError)
    ├── SandboxError             a lab cannot start on this machine
    ├── StateError               the labs' state directory (or a file in it) is not safe to use
    ├── LabError                 a lab by that name: in use, not found, gone, not answering
    │   ├── LabInUse
    │   └── LabNotFound
    ├── UnknownNode              no such node in the lab (also a BadArgument)
    ├── UnknownStage             no such stage of the article (also a BadArgument)
    ├── UnknownPoint             no such point in a journey (also a BadArgument)
    ├── NotRecorded              replay mode: a call the recording does not hold (see netkit.replay)
    ├── CommandError             a command in a node could not run
    │   └── CommandNotFound      the program does not exist in the node
    ├── RuleError                iptables refused a rule; the lab is unchanged
    ├── TraceError               the lab's host cannot read netfilter's trace (netkit.trace)
    └── class mode (netkit.classroom):
        ├── ClassError           the class cannot be set up as asked (checks)
        ├── RosterError          a roster file with bad lines (roster)
        ├── HubError             the hub refused or did not answer in time (client)
        └── KernelError          code run in a student's kernel raised (client)

An error may carry data besides its message, as keyword arguments
(``CommandError(msg, node="c1", command="route -n", returncode=2)``); each is
an attribute of the exception and is listed in ``error.data``. The agent (the
lab's host process) raises the same classes; they cross the pipe as their
name, message and data, and are raised again in the notebook with all three.
Which name stands for which class is read from the tree itself (`classes`):
a subclass of NetkitError, wherever it is defined, crosses the pipe by its name.
"""

from __future__ import annotations

from .i18n import _


class NetkitError(Exception):
    """Root of every error netkit raises on purpose."""

    def __init__(self, message: str = "", **data) -> None:
        super().__init__(message)
        self.data = data
        for key, value in data.items():
            setattr(self, key, value)

    def _render_traceback_(self) -> list[str]:
        """What Jupyter shows instead of a traceback: the message names the fix already."""
        return [f"\033[1;31m{type(self).__name__}\033[0m: {self}"]


class BadArgument(NetkitError, ValueError):
    """A value the caller passed cannot be used: wrong type, out of range, or unsafe."""


class SandboxError(NetkitError):
    """The machine cannot give this lab an isolated place to run."""

    def _render_traceback_(self) -> list[str]:
        return super()._render_traceback_() + [
            "",
            _("The lab cannot start on this machine. Open 00-check-your-machine.ipynb (or run "
              "`netkit doctor` in a terminal): it checks what this machine allows and gives the fix for each "
              "missing piece. On Binder and most hosted notebooks user namespaces are switched off; run the "
              "kit on a Linux laptop or VM instead (see the README's quick start), in the container, or on a "
              "class server. To read the notebooks here anyway, replayed from recordings made on a real "
              "kernel and labelled as such, start Jupyter with NETKIT_REPLAY=1 (Binder does)."),
        ]


class StateError(NetkitError):
    """The directory where labs keep their state, or a file in it, is not safe to use."""


class LabError(NetkitError):
    """Something about a lab as a whole (its name, whether it runs, whether it answers)."""


class LabInUse(LabError):
    """Another running (or starting) lab already has this name."""


class LabNotFound(LabError):
    """No running lab has this name (or its host process has ended)."""


class UnknownNode(BadArgument):
    """A node name that is not part of the lab (at its stage)."""


class UnknownStage(BadArgument):
    """A stage name that the article does not have."""


class NotRecorded(NetkitError):
    """Replay mode: the recording holds no such call at this point; only a live lab can answer it."""


class CommandError(NetkitError):
    """A command could not be run in a node."""


class CommandNotFound(CommandError):
    """The program is not installed (or is misspelt)."""


class RuleError(NetkitError):
    """iptables refused a rule; nothing was changed."""


class UnknownPoint(BadArgument):
    """A point (``node:ifname``) that is not part of a journey."""


class TraceError(NetkitError):
    """The lab's host cannot read netfilter's trace: its netlink subscription, or its trace table."""


def classes() -> dict[str, type[NetkitError]]:
    """Every class of the tree by its name: NetkitError and all its subclasses, wherever they are defined
    (the class mode's are there once `netkit.classroom` is imported)."""
    found: dict[str, type[NetkitError]] = {}
    todo: list[type[NetkitError]] = [NetkitError]
    while todo:
        cls = todo.pop(0)
        found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found


def to_wire(exc: NetkitError) -> dict:
    """An error as plain data, to cross the agent's pipe: its class, message and data."""
    return {"kind": type(exc).__name__, "message": str(exc), "data": dict(getattr(exc, "data", {}))}


def from_wire(data: dict) -> NetkitError:
    """The error that `to_wire` described, ready to raise."""
    cls = classes().get(data.get("kind"), NetkitError)
    message = data["message"] if "message" in data else _("unknown error")
    return cls(message, **(data.get("data") or {}))
