"""How the lab's host carries out a stage: the commands a person types, a batch at a time.

Every step is echoed exactly as the command a person would type
(``ip link add veth0 type veth peer name eth0 netns c1``,
``iptables -t nat -A POSTROUTING ...``). To be quick, consecutive steps of
one tool in one node run together, through that tool's own batch mode:

- ``ip`` steps as one ``ip -batch -``, in the steps' node;
- ``iptables`` steps as one ``iptables-restore --noflush`` transaction:
  the same rules, chains and policies, written in the form
  ``iptables-save`` prints;
- ``sysctl -w`` steps as one ``sysctl -w A=1 B=2``;
- a program that keeps running (``... &``) starts at once, and the build
  waits for its port only at the end, so its start-up overlaps the rest;
- batches that do not depend on each other run at the same time
  (`waits_for`): the containers' own ``ip`` batches once the host has made
  their namespaces and links, and the host's ``iptables-restore`` from the
  start. Each process that changes nftables waits on its way out for the
  kernel's RCU grace period (about 15 ms here), which is then not on the
  build's path.

Why the lab is built with iproute2 and not through pyroute2's netlink API:
the command echoed is then the command that ran, so what a student reads can
never drift from what the kernel was told, and a batch costs one process
(about two milliseconds), less than importing pyroute2 would. Netlink itself
is used where it does better than a tool: reading netfilter's trace messages
(`netkit.trace`) and waking on link events (`netkit.links`).

`batches`, `waits_for` and `restore_input` are pure, and tested from the
stages' data (tests/test_build.py, which also builds every stage both ways on
the kernel).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .topology import Step


WILDCARDS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Batch:
    """Steps run by one process: `tool` is "ip", "iptables", "sysctl", "start" (a background program) or "sh"."""

    node: str
    tool: str
    steps: tuple[Step, ...]


def tool_of(step: Step) -> str:
    if step.command.endswith("&"):
        return "start"
    first = step.command.split(maxsplit=1)[0]
    if first == "ip" or first == "iptables":
        return first
    if step.command.startswith("sysctl -w "):
        return "sysctl"
    return "sh"


def batches(steps) -> list[Batch]:
    """The steps in order, consecutive steps of one tool in one node together (a shell step stays alone)."""
    found: list[Batch] = []
    for step in steps:
        tool = tool_of(step)
        last = found[-1] if found else None
        if last and last.node == step.node and last.tool == tool and tool in ("ip", "iptables", "sysctl"):
            found[-1] = Batch(last.node, tool, last.steps + (step,))
        else:
            found.append(Batch(step.node, tool, (step,)))
    return found


def _enters(batch: Batch) -> set[str]:
    """The nodes whose namespace a batch makes or moves an interface into (``netns add N``, ``netns N``)."""
    nodes = set()
    for step in batch.steps:
        words = step.command.split()
        nodes.update(words[i + 1] for i, word in enumerate(words[:-1]) if word == "netns" and words[i + 1] != "add")
        nodes.update(words[i + 2] for i, word in enumerate(words[:-2]) if word == "netns" and words[i + 1] == "add")
    return nodes


def waits_for(found: list[Batch]) -> list[set[int]]:
    """For each batch, the earlier batches it must wait for; the rest may run at the same time.

    In one node, batches keep their order, with two exceptions: iptables batches wait only for earlier
    iptables batches of their node (rules name interfaces, they do not need them to exist), and a server
    started in the background that listens on every address (``0.0.0.0``, ``::``) waits for nothing of
    its node (its Python then starts while the rest is built). A batch in a container waits for every batch
    that made its namespace or moved an interface into it.
    """
    waits: list[set[int]] = []
    for index, batch in enumerate(found):
        before = set()
        for earlier in range(index):
            other = found[earlier]
            if other.node == batch.node and _ordered(other, batch):
                before.add(earlier)
            elif other.node != batch.node and batch.node in _enters(other):
                before.add(earlier)
        waits.append(before)
    return waits


def _ordered(earlier: Batch, later: Batch) -> bool:
    """Must `later` wait for `earlier`, a batch of the same node?"""
    if (earlier.tool == "iptables") != (later.tool == "iptables"):
        return False
    if later.tool == "start" and later.steps[0].ready_address in WILDCARDS:
        return earlier.tool == "start"              # the node's servers start in their stage's order
    return True


def ip_argv(batch: Batch) -> tuple[list[str], str]:
    """(argv, stdin) of one `ip -batch`, run in the batch's node (entered as every command is: see
    `netkit.nodes.node_argv`; `ip -n` would remount /sys, which a container's user namespace refuses)."""
    lines = "".join(step.command[len("ip "):] + "\n" for step in batch.steps)
    return ["ip", "-batch", "-"], lines


def sysctl_argv(batch: Batch) -> list[str]:
    return ["sysctl", "-w", *[step.command[len("sysctl -w "):] for step in batch.steps]]


def restore_input(commands: list[str]) -> tuple[str, dict[int, int]]:
    """iptables commands as one `iptables-restore` input, and which command each of its lines came from.

    ``iptables -N C`` becomes ``:C - [0:0]``, ``iptables -P C POLICY`` becomes
    ``:C POLICY [0:0]``, and each rule keeps its words, grouped by table in the
    order the tables first appear.
    """
    tables: dict[str, list[tuple[str, int]]] = {}
    for index, command in enumerate(commands):
        words = shlex.split(command)[1:]
        table = "filter"
        if "-t" in words:
            at = words.index("-t")
            table = words[at + 1]
            del words[at:at + 2]
        verb = words[0]
        if verb in ("-N", "--new-chain"):
            line = f":{words[1]} - [0:0]"
        elif verb in ("-P", "--policy"):
            line = f":{words[1]} {words[2]} [0:0]"
        else:
            line = " ".join(f'"{w}"' if any(c.isspace() for c in w) else w for w in words)
        tables.setdefault(table, []).append((line, index))
    text, origin, number = [], {}, 0
    for table, lines in tables.items():
        text.append(f"*{table}")
        number += 1
        # chains and policies first, so every rule can name the chains of its table
        for line, index in sorted(lines, key=lambda item: not item[0].startswith(":")):
            text.append(line)
            number += 1
            origin[number] = index
        text.append("COMMIT")
        number += 1
    return "\n".join(text) + "\n", origin
