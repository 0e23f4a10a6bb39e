"""Pure: one error tree (netkit.errors), every class of it across the agent's pipe and back, and the typed
errors that replaced a RuntimeError and a KeyError."""

from __future__ import annotations

import ast
import functools
import importlib
import json
from pathlib import Path

import pytest

import netkit
from netkit import errors
from netkit.errors import NetkitError, from_wire, to_wire

pytestmark = pytest.mark.pure

NETKIT = Path(netkit.__file__).parent


def _every_module() -> None:
    """Import every module of netkit that defines an exception class, so each is in the tree (the class
    mode's spawner needs JupyterHub, which only the class's environment has; it defines none)."""
    for module in set(_defined().values()):
        importlib.import_module("netkit." + module[:-len(".py")].replace("/", ".").removesuffix(".__init__"))


@functools.lru_cache(maxsize=None)
def _defined() -> dict[str, str]:
    """Every exception class defined in netkit's source (by the AST): name -> module."""
    found = {}
    for path in NETKIT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception")) or b.id in found or
                                                 b.id in errors.classes()) for b in node.bases):
                found[node.name] = str(path.relative_to(NETKIT))
    return found


def test_every_error_of_netkit_is_in_the_one_tree():
    _every_module()
    tree = errors.classes()
    # signals inside one module, caught there and never raised to a caller
    private = {"_CannotDropPrivileges",   # netkit.agent: tcpdump -Z refused, tried again without it
               "Unreadable"}              # netkit.classroom.board: a progress file it skips, with its errno
    defined = {name: module for name, module in _defined().items() if name not in private}
    assert {"ClassError", "RosterError", "HubError", "KernelError", "TraceError", "UnknownPoint"} <= set(defined)
    outside = {name: module for name, module in defined.items() if name not in tree}
    assert outside == {}, f"errors outside netkit.errors' tree: {outside}"
    # a name stands for one class: the wire carries names
    assert len(tree) == len(set(tree.values()))
    assert all(issubclass(cls, NetkitError) for cls in tree.values())


def test_the_wire_registry_is_the_tree_itself():
    """A subclass defined anywhere, even here, crosses the pipe as itself: nothing is listed by hand."""
    class PlantedError(errors.LabError):
        """A class of the tree that no list names."""
    wire = json.loads(json.dumps(to_wire(PlantedError("planted", lab="x"))))
    back = from_wire(wire)
    assert type(back) is PlantedError and back.lab == "x" and isinstance(back, errors.LabError)


def _every_class() -> list[type[NetkitError]]:
    _every_module()
    return sorted(errors.classes().values(), key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", _every_class(), ids=lambda cls: cls.__name__)
def test_every_error_crosses_the_wire_with_its_class_message_and_data(cls):
    data = {"node": "c1", "command": "route -n", "returncode": 2, "errno": 28, "port": 8080,
            "stages": ["docker-29"], "said": "unshare: unshare 失敗"}
    sent = cls(f"{cls.__name__}: 一句話 with its fix", **data)
    wire = json.loads(json.dumps(to_wire(sent)))          # plain data, as it crosses the pipe
    assert wire == {"kind": cls.__name__, "message": str(sent), "data": data}
    back = from_wire(wire)
    assert type(back) is cls
    assert str(back) == str(sent) and back.data == data
    assert all(getattr(back, key) == value for key, value in data.items())
    assert isinstance(back, NetkitError) and to_wire(back) == wire


def test_an_unknown_kind_comes_back_as_the_root_with_its_message():
    back = from_wire({"kind": "NoSuchError", "message": "from a newer agent", "data": {"node": "c2"}})
    assert type(back) is NetkitError and str(back) == "from a newer agent" and back.node == "c2"


def test_a_point_a_journey_does_not_have_is_a_bad_argument_that_names_the_points():
    from netkit.journey import Journey
    journey = Journey.from_json(Path(__file__).parent / "data" / "recorded-s1-forward-drop.json")
    with pytest.raises(errors.UnknownPoint) as caught:
        journey.hop("c3:eth0")
    assert isinstance(caught.value, errors.BadArgument) and caught.value.point == "c3:eth0"
    assert "'c3:eth0'" in str(caught.value) and "host:veth0" in str(caught.value)


def test_the_trace_raises_typed_errors_only():
    from netkit import trace
    tree = ast.parse(Path(trace.__file__).read_text())
    raised = {node.exc.func.id for node in ast.walk(tree)
              if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name)}
    assert raised and raised <= set(errors.classes()), raised
