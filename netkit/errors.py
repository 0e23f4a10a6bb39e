"""The one exception tree of netkit.

Every message names the object, says what went wrong, and says how to fix it::

    NetkitError                  anything netkit refuses or cannot do
    ├── SandboxError             a lab cannot start on this machine
    ├── LabError                 a lab by that name: in use, not found, gone
    │   ├── LabInUse
    │   └── LabNotFound
    ├── UnknownNode              no such node in the lab
    ├── UnknownStage             no such stage of the article
    ├── CommandError             a command in a node could not run
    │   └── CommandNotFound      the program does not exist in the node
    └── RuleError                iptables refused a rule; the lab is unchanged

The agent (the lab's host process) raises the same classes; they travel over
the pipe by name and are raised again in the notebook.
"""

from __future__ import annotations


class NetkitError(Exception):
    """Root of every error netkit raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        """What Jupyter shows instead of a traceback: the message names the fix already."""
        return [f"\033[1;31m{type(self).__name__}\033[0m: {self}"]


class SandboxError(NetkitError):
    """The machine cannot give this lab an isolated place to run."""

    def _render_traceback_(self) -> list[str]:
        return super()._render_traceback_() + [
            "",
            "The lab cannot start on this machine. Open 00-check-your-machine.ipynb (or run "
            "`netkit doctor` in a terminal): it checks what this machine allows and gives the fix for each "
            "missing piece. On Binder and most hosted notebooks user namespaces are switched off; run the "
            "kit on a Linux laptop or VM instead (see the README's quick start).",
        ]


class LabError(NetkitError):
    """Something about a lab as a whole (its name, whether it runs)."""


class LabInUse(LabError):
    """Another running lab already has this name."""


class LabNotFound(LabError):
    """No running lab has this name (or its host process has died)."""


class UnknownNode(NetkitError):
    """A node name that is not part of the lab."""


class UnknownStage(NetkitError):
    """A stage name that the article does not have."""


class CommandError(NetkitError):
    """A command could not be run in a node."""


class CommandNotFound(CommandError):
    """The program is not installed (or is misspelt)."""


class RuleError(NetkitError):
    """iptables refused a rule; nothing was changed."""


_BY_NAME = {cls.__name__: cls for cls in (
    NetkitError, SandboxError, LabError, LabInUse, LabNotFound, UnknownNode,
    UnknownStage, CommandError, CommandNotFound, RuleError)}


def to_wire(exc: NetkitError) -> dict:
    """An error as plain data, to cross the agent's pipe."""
    return {"kind": type(exc).__name__, "message": str(exc)}


def from_wire(data: dict) -> NetkitError:
    """The error that `to_wire` described, ready to raise."""
    return _BY_NAME.get(data.get("kind"), NetkitError)(data.get("message", "unknown error"))
