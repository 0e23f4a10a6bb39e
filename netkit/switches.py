"""The switches an instructor flips: each is a step of the article, read back from the kernel.

A switch knows the commands a person types to turn it each way, and how to
read its real state. Nothing is cached: the lab's kernel is asked every
time, so a change made from a terminal (`netkit exec host -- iptables -P
FORWARD ACCEPT`) shows up too. Reading every switch is one round trip to the
lab's host: one ``iptables-save`` answers every rule and policy switch (a
rule switch is on when each of its rules is listed, as ``iptables -S``
prints it), and the other switches each run their own read command.

The switches themselves are declared with their scenario, in
`netkit.scenarios`, which keeps the registry (`netkit.scenarios.SWITCHES`, every registered switch by name).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NetkitError
from .rules import Rule
from .i18n import _


@dataclass(frozen=True)
class Switch:
    """One step of the article that can be turned either way."""

    name: str
    title: str
    values: tuple
    node: str
    commands: dict                # value -> the commands that set it, in order
    read: str = ""                # a shell command whose exit code (or output) gives the state
    parse: str = "exit"           # "exit": exit 0 means values[0]; "output": the output is the value
    rules: tuple[Rule, ...] = ()  # a rule switch: values[0] when every rule is in place
    policy: str = ""              # a policy switch: the filter chain whose policy is the value
    stages: tuple[str, ...] = ()  # only a lab at (or built on) one of these stages can take it; () any
    at: tuple = ()                # ((stage, {value: commands}), ...): other commands for a lab at that stage

    def commands_at(self, ancestors) -> dict:
        """value -> commands for a lab at a stage with these `ancestors` (`commands` unless `at` names one)."""
        return next((commands for stage, commands in self.at if stage in ancestors), self.commands)

    def spec(self) -> dict:
        """How the lab's host reads this switch (see `netkit.agent`'s op_switches)."""
        return {"name": self.name, "node": self.node, "read": self.read,
                "rules": [[r.table, r.line] for r in self.rules], "policy": self.policy}

    def value_from(self, found) -> object:
        """The switch's value from what the host found: True/False for rules, the policy, or (code, output)."""
        if self.rules:
            return self.values[0] if found else self.values[1]
        if self.policy:
            if found in self.values:
                return found
            raise NetkitError(_("could not read the switch {name!r}: the {policy} policy reads {found!r}")
                              .format(name=self.name, policy=self.policy, found=found))
        code, text = found
        if self.parse == "exit":
            return self.values[0] if code == 0 else self.values[1]
        for value in self.values:
            if str(value) == text.strip():
                return value
        raise NetkitError(_("could not read the switch {name!r}: {read!r} said {strip!r}")
                          .format(name=self.name, read=self.read, strip=text.strip()))


def rule_switch(name: str, title: str, rules: tuple[Rule, ...], verb: str = "-I") -> Switch:
    """A switch that is on when `rules` are in place: adds them with `verb`, removes them with -D."""
    return Switch(name, title, (True, False), "host",
                  {True: [rule.command(verb) for rule in rules], False: [rule.command("-D") for rule in rules]},
                  rules=tuple(rules))


def stage_refusal(sw: Switch, stage: str | None, ancestors) -> str:
    """Why a lab at `stage` cannot take the switch `sw` (`ancestors`: the stage and those it builds on), or ""."""
    if not sw.stages or stage is None or any(s in ancestors for s in sw.stages):
        return ""
    return (_("the switch {name!r} belongs to the stage {stages}, and this lab is at {stage!r}; go there "
              "first: lab.reset({first!r})")
            .format(name=sw.name, stages=" / ".join(sw.stages), stage=stage, first=sw.stages[0]))


def policy_switch(name: str, title: str, chain: str) -> Switch:
    return Switch(name, title, ("DROP", "ACCEPT"), "host",
                  {value: [f"iptables -P {chain} {value}"] for value in ("DROP", "ACCEPT")}, policy=chain)
