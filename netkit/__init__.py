"""netkit: Docker's bridge network, rebuilt cell by cell in Linux namespaces.

The public names are all here; everything else is private to the package.
Importing netkit changes nothing and starts nothing; the names load when
first used, so the lab's host process, which imports ``netkit.agent``, does
not pay for `Lab` and its kin.
"""

from importlib import import_module

from .errors import (
    BadArgument, CommandError, CommandNotFound, LabError, LabInUse, LabNotFound, NetkitError,
    NotRecorded, RuleError, SandboxError, StateError, UnknownNode, UnknownStage,
)

_LAZY = {"Lab": "lab", "Node": "lab", "CommandResult": "lab", "NODES": "topology", "POINTS": "topology",
         "STAGES": "topology", "use_language": "i18n", "language": "i18n"}

__all__ = [
    "Lab", "Node", "CommandResult", "NODES", "POINTS", "STAGES", "use_language", "language",
    "NetkitError", "BadArgument", "SandboxError", "StateError", "LabError", "LabInUse", "LabNotFound",
    "UnknownNode", "UnknownStage", "NotRecorded", "CommandError", "CommandNotFound", "RuleError",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'netkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
