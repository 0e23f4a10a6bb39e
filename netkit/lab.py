"""`Lab`: what a notebook holds. A handle on one running copy of the article's lab.

    >>> from netkit import Lab
    >>> with Lab(stage="part3-start") as lab:
    ...     lab.run("c1", "ping 10.55.66.3 -c1 -W1").returncode
    1

The notebook's own process never changes its namespaces: every command runs
in the lab's host process (see `netkit.agent`), which runs it in the node.
Every change the lab makes is echoed as the command a person would type when
``trace=print`` (or any callable) is given.
"""

from __future__ import annotations

import html
import ipaddress
import random
import shlex
import weakref
from dataclasses import dataclass

from . import topology
from .errors import CommandError, CommandNotFound, LabNotFound, NetkitError, RuleError
from .journey import Journey
from .sandbox import Sandbox, check_name


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and how it ended, shown like a terminal."""

    node: str
    command: str
    stdout: str
    stderr: str
    returncode: int
    timed_out: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def output(self) -> str:
        """stdout and stderr together, as a terminal would show them."""
        return self.stdout + self.stderr

    def check(self) -> "CommandResult":
        """Self if the command succeeded, else CommandError with what it said."""
        if not self.ok:
            said = (self.stderr or self.stdout).strip()
            ending = "timed out" if self.timed_out else f"exit {self.returncode}"
            raise CommandError(f"[{self.node}] {self.command} failed ({ending}): {said}")
        return self

    def __str__(self) -> str:
        text = f"{self.node}$ {self.command}\n{self.output}"
        if self.timed_out:
            text += f"(stopped after {self.seconds:.1f} s: pass timeout= for longer)\n"
        return text

    def _repr_html_(self) -> str:
        status = "" if self.ok else f'<span style="color:#ff7b72">[exit {self.returncode}]</span>'
        return ('<pre style="background:#0d1117;color:#e6edf3;padding:6px 10px;border-radius:4px;'
                'font-size:12px;line-height:1.35">'
                f'<span style="color:#7ee787">{html.escape(self.node)}$</span> '
                f'{html.escape(self.command)} {status}\n{html.escape(self.output)}</pre>')


def _check_form(rule: str) -> str | None:
    """For an adding rule (-A CHAIN ... / -I CHAIN [N] ...), the `-C` command that tests for it."""
    words = shlex.split(rule)
    for index, word in enumerate(words):
        if word in ("-A", "--append", "-I", "--insert") and index + 1 < len(words):
            rest = words[index + 2:]
            if word in ("-I", "--insert") and rest and rest[0].isdigit():
                rest = rest[1:]
            return shlex.join(words[:index] + ["-C", words[index + 1]] + rest)
    return None


class Node:
    """One node of a lab, like Mininet's ``net['h1']``: ``lab['c1'].run('route -n')``."""

    def __init__(self, lab: "Lab", name: str) -> None:
        self.lab, self.name = lab, name

    def run(self, command: str, **kwargs) -> CommandResult:
        return self.lab.run(self.name, command, **kwargs)

    def __repr__(self) -> str:
        return f"<Node {self.name} of lab {self.lab.name!r}>"


def _ignore(event: dict) -> None:
    pass


def _close_sandbox(sandbox: Sandbox) -> None:
    sandbox.close()


_HELD: "weakref.WeakValueDictionary[str, Lab]" = weakref.WeakValueDictionary()
"""The labs this process holds, by name, for Lab(..., replace=True)."""


class Lab:
    """One running copy of the article's lab: nodes host, c1, c2, internet (and outside, from part 4).

    Lab(name="netkit", stage="part3-start", trace=None)

    - `name` is how a terminal finds the lab (`netkit exec --lab NAME c1 -- route -n`);
      names are per user, so every student can use the default.
    - `stage` is where in the article the lab starts (see `netkit.topology.STAGES`).
    - `trace`, if given, is called with each command the lab runs to change the
      network, e.g. ``trace=print``.
    - `replace=True` first closes a lab of the same name that this process
      holds, so a notebook's first cell can be run again; a lab of that name
      held by another process still raises LabInUse.

    Use it in a ``with`` block or call `close()`; if its owner dies the lab
    goes too, whatever the cause.
    """

    def __init__(self, name: str = "netkit", stage: str = topology.DEFAULT_STAGE, *, trace=None,
                 replace: bool = False) -> None:
        check_name(name)
        topology.stage(stage)
        held = _HELD.get(name)
        if replace and held is not None and not held.closed:
            held.close()  # a notebook's first cell, run again: start over
        self.name = name
        self.trace = trace
        self._resetting = False
        self._sandbox = self._start(stage)
        self._finalizer = weakref.finalize(self, _close_sandbox, self._sandbox)
        self.stage = stage
        _HELD[name] = self

    def _start(self, stage: str, claim: bool = True) -> Sandbox:
        # A weak reference: the sandbox must not keep the Lab alive, or its finalizer never runs.
        on_event = weakref.WeakMethod(self._on_event)
        sandbox = Sandbox(self.name, on_event=lambda event: (on_event() or _ignore)(event), claim=claim)
        try:
            sandbox.call("build", stage=stage)
            if claim:
                sandbox.write_record(stage)
        except BaseException:
            sandbox.close(keep_record=not claim)
            raise
        return sandbox

    def _on_event(self, event: dict) -> None:
        if event.get("event") == "step" and self.trace and not self._resetting:
            self.trace(f"[{event['node']}] {event['command']}")

    # -- the lab as a whole -------------------------------------------------
    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes the lab has at its stage (part 4 adds `outside`)."""
        return topology.nodes_at(self.stage)

    @property
    def points(self) -> tuple[str, ...]:
        """The points (node:ifname) where probes watch for packets at this stage."""
        return topology.points_at(self.stage)

    @property
    def pid(self) -> int:
        """Pid of the lab's host (its pid 1), as the machine sees it."""
        return self._sandbox.init_pid

    @property
    def closed(self) -> bool:
        return self._sandbox.proc is None

    def __getitem__(self, node: str) -> Node:
        return Node(self, topology.check_node(node, self.stage))

    def reset(self, stage: str | None = None) -> "Lab":
        """Go back to `stage` (default: the stage the lab is at) on a fresh host.

        The new host is built first; only when it is ready is the old one
        ended, so a failed reset leaves the lab as it was.
        """
        stage = stage or self.stage
        topology.stage(stage)
        if self.closed:
            raise LabNotFound(f"the lab {self.name!r} is closed; start a new one with Lab()")
        self._resetting = True
        try:
            new = self._start(stage, claim=False)  # the old host keeps the name meanwhile
        finally:
            self._resetting = False
        self._finalizer.detach()
        self._sandbox.close(keep_record=True)
        self._sandbox = new
        self._finalizer = weakref.finalize(self, _close_sandbox, new)
        new.write_record(stage)
        self.stage = stage
        if self.trace:
            count = len(topology.steps_to(stage))
            self.trace(f"(lab {self.name!r} rebuilt from scratch at stage {stage}: {count} commands, "
                       f"listed by netkit.topology.steps_to({stage!r}))")
        return self

    def close(self) -> None:
        """End the lab: every namespace, interface and process of it is gone."""
        self._finalizer()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"stage {self.stage!r}, pid {self.pid}"
        return f"<Lab {self.name!r}: {state}>"

    # -- commands -------------------------------------------------------------
    def run(self, node: str, command: str, *, timeout: float = 10.0, check: bool = False,
            stdin: str | None = None) -> CommandResult:
        """Run a shell command in `node` and return what it printed and its exit code.

        A non-zero exit is a result, not an error (a failing ping is the
        lesson); pass check=True to raise CommandError instead. A program
        that does not exist raises CommandNotFound.
        """
        topology.check_node(node, self.stage)
        if not isinstance(command, str) or not command.strip():
            raise CommandError(f"give the command to run in {node} as one string, e.g. 'route -n'")
        result = CommandResult(**self._sandbox.call("run", node=node, command=command,
                                                    timeout=timeout, stdin=stdin))
        if result.returncode == 127 and "not found" in result.stderr:
            program = shlex.split(command)[0] if command.strip() else command
            raise CommandNotFound(
                f"[{node}] {program!r}: no such program in the lab's nodes ({result.stderr.strip()}); "
                "check the spelling, or install it on the machine (the nodes share its programs), "
                "e.g. sudo apt-get install net-tools iputils-ping tcpdump conntrack")
        return result.check() if check else result

    def probe(self, src: str, dst: str, *, port: int | None = None, timeout: float | None = None,
              label: str = "") -> Journey:
        """Send one probe from node `src` to address `dst` and follow it through every point.

        Without `port` the probe is an ICMP echo (a ping); with `port` it is a
        TCP connection to that port (its SYN is followed; the answer is a
        SYN-ACK or a reset).

        Returns a Journey: where the request and the reply were seen and with
        which addresses, the netfilter verdicts in the host, the conntrack
        entry, and whether it was delivered and why not. Returns as soon as
        the outcome is known; `timeout` only bounds the wait when no reply
        comes and nothing says why.
        """
        from . import explain
        topology.check_node(src, self.stage)
        try:
            ipaddress.IPv4Address(dst)
        except ValueError:
            raise NetkitError(f"{dst!r} is not an IPv4 address; probe an address such as "
                              "'10.55.66.3' or '8.8.8.8' (nodes: lab.probe('c1', '10.55.66.3'))") from None
        if port is not None:
            if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
                raise NetkitError(f"{port!r} is not a TCP port; give a number from 1 to 65535, e.g. port=2345")
            raw = self._sandbox.call("probe", src=src, dst=dst, proto="tcp", port=port,
                                     timeout=1.0 if timeout is None else timeout)
        else:
            from scapy.layers.inet import ICMP
            from scapy.packet import Raw
            ident = random.randrange(1, 0xFFFE)
            echo = ICMP(type="echo-request", id=ident, seq=1) / Raw(b"netkit probe")
            raw = self._sandbox.call("probe", src=src, dst=dst, timeout=0.5 if timeout is None else timeout,
                                     ident=ident, packet=bytes(echo).hex())
        raw["label"] = label
        return explain.build(raw)

    def start(self, node: str, command: str, *, port: int | None = None) -> dict:
        """Start a program that keeps running in `node` (a server), like `command &` in a shell.

        With `port`, waits until the program listens on that TCP port. The
        program ends with the lab (or at the next reset).
        """
        topology.check_node(node, self.stage)
        if self.trace:
            self.trace(f"[{node}] {command} &")
        return self._sandbox.call("start", node=node, command=command, port=port)

    def tcpdump(self, point: str, node: str, command: str, *, expression: str = "icmp",
                timeout: float = 10.0) -> CommandResult:
        """What ``tcpdump -n -i IF EXPRESSION`` at `point` prints while `command` runs in `node`.

        The article's two terminal windows in one call: tcpdump is listening
        before the command starts and stops a moment after it ends.
        """
        where, _ = topology.split_point(point)
        topology.check_node(node)
        answer = self._sandbox.call("tcpdump", point=point, node=node, command=command,
                                    expression=expression, timeout=timeout)
        return CommandResult(**answer["capture"])

    # -- switches: the steps an instructor flips ------------------------------------
    def state(self) -> dict:
        """Every switch's real value, read from the lab's kernel now (see `netkit.switches`)."""
        from .switches import SWITCHES
        return {name: self.get(name) for name in SWITCHES}

    def get(self, name: str):
        """One switch's real value, read from the kernel."""
        from .switches import switch
        sw = switch(name)
        result = self.run(sw.node, sw.read)
        return sw.value_from(result.returncode, result.stdout)

    def set(self, name: str, value) -> list[CommandResult]:
        """Turn a switch to `value` by typing its commands; nothing is typed if it is there already."""
        from .switches import switch
        sw = switch(name)
        if value not in sw.commands:
            raise NetkitError(f"the switch {name!r} takes one of {list(sw.commands)}, not {value!r}")
        if self.get(name) == value:
            return []
        return [self.change(sw.node, command) for command in sw.commands[value]]

    def change(self, node: str, command: str) -> CommandResult:
        """Make one change to the network (a step), echo it, and fail loudly if refused."""
        if self.trace:
            self.trace(f"[{node}] {command}")
        return self.run(node, command, check=True)

    def iptables(self, rule: str, *, node: str = "host") -> CommandResult:
        """Run ``iptables RULE`` in `node` (default the host); RuleError if iptables refuses it.

        iptables changes its table in one transaction, so a refused rule
        leaves the lab exactly as it was.
        """
        check = _check_form(rule)
        if check and self.run(node, f"iptables {check} 2>/dev/null").ok:
            # Re-running a cell must not pile up copies of a rule: it is there already.
            return CommandResult(node, f"iptables {rule}", "", "(the rule is there already: nothing added)\n", 0)
        if self.trace:
            self.trace(f"[{node}] iptables {rule}")
        result = self.run(node, f"iptables {rule}")
        if not result.ok:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise RuleError(
                f"iptables refused `iptables {rule}` in {node}: {' '.join(said[:2])}; nothing was changed. "
                "Check the table (-t filter|nat|raw), the chain name (upper case: FORWARD, POSTROUTING) "
                "and the target (-j ACCEPT|DROP|MASQUERADE|DNAT); `iptables -h` lists the options")
        return result

    def sysctl(self, key: str, value=None, *, node: str = "host") -> str:
        """Read a sysctl in `node`, or set it when `value` is given; returns its value."""
        if value is None:
            return self.run(node, f"sysctl -n {shlex.quote(key)}", check=True).stdout.strip()
        return self.change(node, f"sysctl -w {shlex.quote(key)}={shlex.quote(str(value))}").stdout \
            .split("=")[-1].strip()
