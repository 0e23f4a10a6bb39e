"""netkit: Docker's bridge network, rebuilt cell by cell in Linux namespaces.

Everything a notebook or an instructor uses is named here, and notebooks import
from ``netkit`` only::

    from netkit import Lab, Panel, Result, plots, use_language, ICMP_ONLY

- the lab: `Lab`, `Node`, `CommandResult`, and the topology's `NODES`,
  `POINTS`, `STAGES`;
- what a probe returns: `Journey`, its `Outcome` and the `Result` kinds;
- pictures: `plots` (`lab_map`, `ladder`, `grid`, also named here);
- the instructor's controls: `Panel`, `Dashboard`;
- the exercises by name (`ICMP_ONLY`, ...) and `EXERCISES`, all of them;
- `doctor`, `use_language`, `language`;
- the errors, one tree under `NetkitError`.

Everything else is private to the package. Importing netkit changes nothing
and starts nothing, and the names load when first used: the lab's host
process, which imports ``netkit.agent``, does not pay for `Lab` and its kin,
nor a notebook for matplotlib before its first picture.
"""

from importlib import import_module

from .errors import (
    BadArgument, CommandError, CommandNotFound, LabError, LabInUse, LabNotFound, NetkitError,
    NotRecorded, RuleError, SandboxError, StateError, TraceError, UnknownNode, UnknownPoint, UnknownStage,
)

_LAZY = {
    "Lab": "lab", "Node": "lab", "CommandResult": "lab",
    "NODES": "topology", "POINTS": "topology", "STAGES": "topology",
    "use_language": "i18n", "language": "i18n",
    "Journey": "journey", "Outcome": "outcome", "Result": "outcome",
    "lab_map": "plots", "ladder": "plots", "grid": "plots",
    "Panel": "widgets", "Dashboard": "dashboard",
    "EXERCISES": "scenarios", "ICMP_ONLY": "exercises", "C2_OUT": "exercises", "REPLIES_ONLY": "exercises",
    "PUBLISH_C2": "exercises", "LOCAL_ACCESS": "exercises", "DOCKER_USER": "exercises",
}
_MODULES = ("plots", "doctor")   # modules a notebook uses by name: netkit.plots.grid(...), doctor.report()

__all__ = [
    *_LAZY, *_MODULES,
    "NetkitError", "BadArgument", "SandboxError", "StateError", "LabError", "LabInUse", "LabNotFound",
    "UnknownNode", "UnknownStage", "UnknownPoint", "NotRecorded", "CommandError", "CommandNotFound", "RuleError",
    "TraceError",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _MODULES:
        value = import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'netkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
