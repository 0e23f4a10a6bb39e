"""netkit: Docker's bridge network, rebuilt cell by cell in Linux namespaces.

The public names are all here; everything else is private to the package.
Importing netkit changes nothing and starts nothing.
"""

from .errors import (
    BadArgument, CommandError, CommandNotFound, LabError, LabInUse, LabNotFound, NetkitError,
    RuleError, SandboxError, StateError, UnknownNode, UnknownStage,
)
from .lab import CommandResult, Lab, Node
from .topology import NODES, POINTS, STAGES

__all__ = [
    "Lab", "Node", "CommandResult", "NODES", "POINTS", "STAGES",
    "NetkitError", "BadArgument", "SandboxError", "StateError", "LabError", "LabInUse", "LabNotFound",
    "UnknownNode", "UnknownStage", "CommandError", "CommandNotFound", "RuleError",
]
__version__ = "0.1.0"
