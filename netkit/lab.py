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
import random
import re
import shlex
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import arguments, provenance, topology
from .errors import BadArgument, CommandError, CommandNotFound, RuleError
from .sandbox import Sandbox
from .state import Claim, check_name
from .i18n import _

if TYPE_CHECKING:
    from .journey import Journey


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
    cut: dict = field(default_factory=dict)   # stream -> bytes it printed in all, when more than was kept
    recorded: str = ""         # replayed from a recording: the kernel and date it was recorded on (netkit.provenance)

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
            ending = _("timed out") if self.timed_out else _("exit {code}").format(code=self.returncode)
            raise CommandError(_("[{node}] {command} failed ({ending}): {said}")
                               .format(node=self.node, command=self.command, ending=ending, said=said), node=self.node,
                               command=self.command, returncode=self.returncode, stderr=self.stderr[-2000:])
        return self

    @property
    def note(self) -> str:
        """What the output above does not show: a cut, or a timeout."""
        notes = [_("(the {stream} was cut after {kib} KiB: it printed {size:,} bytes in all)")
                 .format(stream=stream, kib=arguments.OUTPUT_CAP // 1024, size=size) + "\n"
                 for stream, size in sorted(self.cut.items())]
        if self.timed_out:
            notes.append(_("(stopped after {seconds:.1f} s: pass timeout= for longer)").format(seconds=self.seconds)
                         + "\n")
        return "".join(notes)

    def __str__(self) -> str:
        told = provenance.line(self.recorded) + "\n" if self.recorded else ""
        return f"{told}{self.node}$ {self.command}\n{self.output}{self.note}"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self) if self.recorded else repr(self))

    def _repr_html_(self) -> str:
        status = "" if self.ok else \
            f'<span style="color:#ff7b72">[{html.escape(_("exit {code}").format(code=self.returncode))}]</span>'
        told = provenance.html_label(self.recorded) if self.recorded else ""
        return (told + '<pre style="background:#0d1117;color:#e6edf3;padding:6px 10px;border-radius:4px;'
                'font-size:12px;line-height:1.35">'
                f'<span style="color:#7ee787">{html.escape(self.node)}$</span> '
                f'{html.escape(self.command)} {status}\n{html.escape(self.output + self.note)}</pre>')


def _check_form(words: list[str]) -> list[str] | None:
    """For an adding rule (-A CHAIN ... / -I CHAIN [N] ...), the `-C` words that test for it."""
    for index, word in enumerate(words):
        if word in ("-A", "--append", "-I", "--insert") and index + 1 < len(words):
            rest = words[index + 2:]
            if word in ("-I", "--insert") and rest and rest[0].isdigit():
                rest = rest[1:]
            return words[:index] + ["-C", words[index + 1]] + rest
    return None


NOT_FOUND = re.compile(r"^(?:sh: \d+: )?(\S+): (?:not found|command not found)$", re.M)
"""How the shell (dash, bash) says a program does not exist: `sh: 1: pnig: not found`."""


class Typed(list):
    """The commands a change typed, each a CommandResult; shown as the commands, as a terminal would."""

    def __repr__(self) -> str:
        return "\n".join(f"{r.node}$ {r.command}" for r in self) or _("(nothing typed: it was so already)")

    def _repr_html_(self) -> str:
        if not self:
            return f"<code>{html.escape(_('(nothing typed: it was so already)'))}</code>"
        return "<br>".join(f"<code>{html.escape(r.node)}$ {html.escape(r.command)}</code>" for r in self)


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


class _Hosts:
    """A lab's hosts: the one in use, and spares started ahead for the next reset.

    A reset builds its stage on a spare, an agent already started and
    waiting, and ends the old host in the background, so a reset costs only
    the steps from the spare's stage to the new one, not a new process. Two
    spares at most: one at the first stage, on the way to every stage, and
    one at the stage the lab is at, for the reset a student makes most (an
    exercise starting over, a cell run again), which then costs nothing to
    build. The spares hold the lab's name too (they are the same lab), and go
    when the lab closes.
    """

    def __init__(self, current: Sandbox) -> None:
        self.current = current
        self.spares: dict[str, Sandbox] = {}        # by the stage each is built at
        self.lock = threading.Lock()
        self.making: dict[str, threading.Thread] = {}
        self.building: set[Sandbox] = set()          # spares started, their stage still being built
        self.closing = False

    def make_spares(self, name: str, claim: Claim, on_event, stage: str) -> None:
        """Start the spares that are missing (at the first stage and at `stage`) in the background."""
        with self.lock:
            if self.closing or self.current.closed_here:
                return
            for wanted in dict.fromkeys((topology.DEFAULT_STAGE, stage)):
                if wanted in self.spares or (wanted in self.making and self.making[wanted].is_alive()):
                    continue
                self.making[wanted] = threading.Thread(target=self._spare, args=(name, claim, wanted),
                                                       daemon=True, name=f"netkit-{name}-spare-{wanted}")
                self.making[wanted].start()
            for extra in [built for built in self.spares if built not in (topology.DEFAULT_STAGE, stage)]:
                threading.Thread(target=self.spares.pop(extra).close, daemon=True).start()

    def _spare(self, name: str, claim: Claim, stage: str) -> None:
        try:
            spare = Sandbox(name, claim)     # silent: its steps are not the student's
        except Exception:
            return                       # no spare: the next reset starts a host itself
        with self.lock:
            closing = self.closing
            if not closing:
                self.building.add(spare)     # close() ends it even while it builds
        if closing:
            spare.close()
            return
        try:
            spare.call("build", stage=stage, wait=120)
            spare.built = stage
        except Exception:
            spare.close()
            return
        finally:
            with self.lock:
                self.building.discard(spare)
        with self.lock:
            keep = not self.closing and stage not in self.spares
            if keep:
                self.spares[stage] = spare
        if not keep:
            spare.close()

    def take_spare(self, stage: str) -> Sandbox | None:
        """The spare nearest to `stage` on its way (None if none is on the way)."""
        on_the_way = topology.ancestors(stage)
        for making in [thread for built, thread in list(self.making.items()) if built in on_the_way]:
            making.join(10)
        with self.lock:
            found = [built for built in on_the_way if built in self.spares]
            spare = self.spares.pop(found[0]) if found else None
        if spare is not None and spare.ended.is_set():
            return None
        return spare

    def close(self) -> None:
        """End the host and every spare, all at once (each waits for its processes to go), spares still
        being built included."""
        with self.lock:
            self.closing = True
            hosts = [self.current, *self.spares.values(), *self.building]
            self.spares = {}
        closing = [threading.Thread(target=host.close, daemon=True) for host in hosts]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()
        for making in list(self.making.values()):
            making.join(10)          # a spare begun as the lab closed ends itself (it sees `closing`)


def _close_hosts(hosts: _Hosts) -> None:
    hosts.close()


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

    With ``NETKIT_REPLAY=1`` in the environment, ``Lab(...)`` gives a
    `netkit.replay.ReplayLab` instead: the same methods, answered from the
    recordings shipped with netkit, every result labelled as replayed.
    """

    replayed = False     # True for a lab that answers from a recording (netkit.replay)

    def __new__(cls, *args, **kwargs):
        if cls is Lab:
            from .replay import lab_class
            cls = lab_class(cls)     # live, or a replay (NETKIT_REPLAY=1), or a recording (NETKIT_RECORD)
        return super().__new__(cls)

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
        self._claim = Claim(name)          # LabInUse if a lab (running or starting) has the name
        try:
            self._sandbox = self._start(stage)
            try:
                self._sandbox.record(stage)
            except BaseException:
                self._sandbox.close()
                raise
        finally:
            self._claim.drop()             # from here on the sandbox holds the name
        self._hosts = _Hosts(self._sandbox)
        self._finalizer = weakref.finalize(self, _close_hosts, self._hosts)
        self.stage = stage
        _HELD[name] = self

    def _events(self):
        # A weak reference: the sandbox must not keep the Lab alive, or its finalizer never runs.
        on_event = weakref.WeakMethod(self._on_event)
        return lambda event: (on_event() or _ignore)(event)

    def _start(self, stage: str, sandbox: Sandbox | None = None) -> Sandbox:
        if sandbox is not None and topology.steps_after(getattr(sandbox, "built", None), stage) is None:
            sandbox.close()              # a spare that cannot reach this stage
            sandbox = None
        sandbox = sandbox or Sandbox(self.name, self._claim, on_event=self._events())
        try:
            sandbox.call("build", stage=stage, wait=120)
        except BaseException:
            sandbox.close()
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
        """True once the lab has ended: closed here, or ended from outside (`netkit down`)."""
        return self._sandbox.closed_here or self._sandbox.ended.is_set()

    def _call(self, op: str, *, wait: float = 30.0, **args):
        return self._sandbox.call(op, wait=wait, **args)

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
            raise self._sandbox.gone()
        self._resetting = True
        try:
            new = self._start(stage, self._hosts.take_spare(stage))   # the same claim: the name stays this lab's
        finally:
            self._resetting = False
        old = self._hosts.current
        try:
            old.hand_over()
        except Exception:
            pass                            # the old host is gone already: nothing to keep
        self._hosts.current = self._sandbox = new
        threading.Thread(target=old.close, daemon=True, name=f"netkit-{self.name}-old").start()
        self._hosts.make_spares(self.name, self._claim, self._events(), stage)
        new.record(stage)
        self.stage = stage
        if self.trace:
            count = len(topology.steps_to(stage))
            self.trace(_("(lab {name!r} rebuilt from scratch at stage {stage}: {count} commands, listed by "
                         "netkit.topology.steps_to({stage!r}))").format(name=self.name, stage=stage, count=count))
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

    def _repr_html_(self) -> str:
        lab = f"<b>{html.escape(_('lab {name}').format(name=self.name))}</b>"
        if self.closed:
            return _("{lab} has ended.").format(lab=lab)
        return _("{lab} is ready at stage {stage}: nodes {nodes}. A terminal reaches it with {command}.").format(
            lab=lab, stage=f"<code>{html.escape(self.stage)}</code>", nodes=", ".join(self.nodes),
            command=f"<code>netkit exec --lab {html.escape(self.name)} c1 -- route -n</code>")

    # -- commands -------------------------------------------------------------
    def run(self, node: str, command: str, *, timeout: float = 10.0, check: bool = False,
            stdin: str | None = None) -> CommandResult:
        """Run a shell command in `node` and return what it printed and its exit code.

        A non-zero exit is a result, not an error (a failing ping is the
        lesson); pass check=True to raise CommandError instead. A program
        that does not exist raises CommandNotFound. `timeout` is at most
        600 s; each of stdout and stderr keeps its first 1 MiB.
        """
        topology.check_node(node, self.stage)
        command = arguments.command(command)
        timeout = arguments.timeout(timeout, maximum=arguments.RUN_TIMEOUT_MAX)
        stdin = arguments.stdin(stdin)
        result = CommandResult(**self._call("run", node=node, command=command, timeout=timeout, stdin=stdin,
                                            wait=timeout))
        self._not_found(result)
        return result.check() if check else result

    def _not_found(self, result: CommandResult) -> None:
        """CommandNotFound naming the program the shell could not find, when that ended the command."""
        missing = NOT_FOUND.findall(result.stderr)
        if result.returncode == 127 and missing:
            program = missing[-1]
            raise CommandNotFound(
                _("[{node}] {program!r}: no such program in the lab's nodes (in `{command}`); check the "
                  "spelling, or install it on the machine (the nodes share its programs), e.g. sudo apt-get "
                  "install net-tools iputils-ping tcpdump conntrack")
                .format(node=result.node, program=program, command=result.command),
                node=result.node, command=result.command, program=program, returncode=127)

    def _run_argv(self, node: str, argv: list[str], timeout: float = 10.0) -> CommandResult:
        """Run one program with its arguments, without a shell (so no word is read as shell syntax)."""
        return CommandResult(**self._call("run", node=node, argv=argv, timeout=timeout, wait=timeout))

    def probe(self, src: str, dst: str, *, port: int | None = None, timeout: float | None = None,
              label: str = "") -> Journey:
        """Send one probe from node `src` to address `dst` and follow it through every point.

        Without `port` the probe is an ICMP echo (a ping); with `port` it is a
        TCP connection to that port (its SYN is followed; the answer is a
        SYN-ACK or a reset).

        Returns a Journey: where the request and the reply were seen and with
        which addresses, the netfilter verdicts in the host, the conntrack
        entry, and whether it was delivered and why not. Returns as soon as
        the outcome is known; `timeout` (at most 30 s) only bounds the wait
        when no reply comes and nothing says why.
        """
        from . import explain
        raw = self._probe_raw(src, dst, port=port, timeout=timeout)
        raw["label"] = label if isinstance(label, str) else self._bad_label(label)
        return explain.build(raw)

    @staticmethod
    def _bad_label(label):
        raise BadArgument(_("label={label!r}: give the condition as a short string, e.g. label='FORWARD "
                            "ACCEPT'").format(label=label))

    def _probe_raw(self, src: str, dst: str, *, port: int | None = None, timeout: float | None = None) -> dict:
        """What the lab's host recorded for one probe (the records `netkit.explain.build` reads)."""
        topology.check_node(src, self.stage)
        dst = arguments.address(dst)
        if timeout is not None:
            timeout = arguments.timeout(timeout, maximum=arguments.PROBE_TIMEOUT_MAX)
        if port is not None:
            port = arguments.port(port)
            timeout = 1.0 if timeout is None else timeout
            return self._call("probe", src=src, dst=dst, proto="tcp", port=port, timeout=timeout, wait=timeout)
        from scapy.layers.inet import ICMP
        from scapy.packet import Raw
        timeout = 0.5 if timeout is None else timeout
        ident = random.randrange(1, 0xFFFE)
        echo = ICMP(type="echo-request", id=ident, seq=1) / Raw(b"netkit probe")
        return self._call("probe", src=src, dst=dst, timeout=timeout, ident=ident, packet=bytes(echo).hex(),
                          wait=timeout)

    def start(self, node: str, command: str, *, port: int | None = None) -> dict:
        """Start a program that keeps running in `node` (a server), like `command &` in a shell.

        With `port`, waits until the program listens on that TCP port. The
        program ends with the lab (or at the next reset).
        """
        topology.check_node(node, self.stage)
        command = arguments.command(command)
        port = None if port is None else arguments.port(port)
        if self.trace:
            self.trace(f"[{node}] {command} &")
        return self._call("start", node=node, command=command, port=port)

    def tcpdump(self, point: str, node: str, command: str, *, expression: str = "icmp",
                timeout: float = 10.0, verbose: bool = False) -> CommandResult:
        """What ``tcpdump -n -i IF EXPRESSION`` at `point` prints while `command` runs in `node`.

        The article's two terminal windows in one call: tcpdump is listening
        before the command starts and stops a moment after it ends.
        `expression` is a capture filter (e.g. 'icmp', 'tcp port 8000'), never
        an option: what tcpdump saw is printed, nothing is written to a file.
        ``verbose=True`` is the article's ``tcpdump -vvvnn``: each packet's IP
        header too, its TTL among them.
        """
        where = topology.split_point(point)[0]
        topology.check_node(where, self.stage)
        topology.check_node(node, self.stage)
        command = arguments.command(command)
        expression = arguments.expression(expression)
        timeout = arguments.timeout(timeout, maximum=arguments.RUN_TIMEOUT_MAX)
        answer = self._call("tcpdump", point=point, node=node, command=command, expression=expression,
                            timeout=timeout, verbose=bool(verbose), wait=timeout + 10)
        return CommandResult(**answer["capture"])

    # -- switches: the steps an instructor flips ------------------------------------
    def state(self, *names: str) -> dict:
        """Every switch's real value (or only those named), read from the lab's kernel now, in one round trip
        (see `netkit.switches`). Switches of nodes the lab does not have at its stage are left out."""
        from .scenarios import SWITCHES, switch
        chosen = [switch(name) for name in names] if names else list(SWITCHES.values())
        return self._read_switches([sw for sw in chosen if sw.node in self.nodes])

    def get(self, name: str):
        """One switch's real value, read from the kernel."""
        from .scenarios import switch
        sw = switch(name)
        topology.check_node(sw.node, self.stage)
        return self._read_switches([sw])[name]

    def _read_switches(self, switches) -> dict:
        found = self._call("switches", specs=[sw.spec() for sw in switches])
        return {sw.name: sw.value_from(found[sw.name]) for sw in switches}

    def set(self, name: str, value) -> "Typed":
        """Turn a switch to `value` by typing its commands; nothing is typed if it is there already."""
        from .scenarios import switch
        sw = switch(name)
        if value not in sw.commands:
            raise BadArgument(_("the switch {name!r} takes one of {list}, not {value!r}")
                              .format(name=name, list=list(sw.commands), value=value),
                              switch=name, value=repr(value))
        from .switches import stage_refusal
        refused = stage_refusal(sw, self.stage, topology.ancestors(self.stage) if self.stage else ())
        if refused:
            raise BadArgument(refused, switch=name, value=repr(value), stages=sw.stages)
        if self.get(name) == value:
            return Typed()
        commands = sw.commands_at(topology.ancestors(self.stage) if self.stage else ())[value]
        for step in commands:
            if isinstance(step, topology.Step) and step.ready_port is not None:
                self._port_free(step)
        return Typed(self.change(sw.node, command) for command in commands)

    def _port_free(self, step: topology.Step) -> None:
        """Refuse, before anything is typed, a program's start on a port something in the host holds."""
        for held in self._call("listeners", port=step.ready_port):
            if held["address"] in ("0.0.0.0", "::", step.ready_address):
                who = (_("{program} (pid {pid})").format(program=held["program"], pid=held["pid"])
                       if held["pid"] else _("a socket of the kernel"))
                raise CommandError(
                    _("port {port} of the host is held by {who}, so `{command}` could not listen there; nothing "
                      "was changed. Stop it first (netkit exec host -- kill {pid}), or start afresh: "
                      "lab.reset({stage!r})")
                    .format(port=step.ready_port, who=who, command=step.command, pid=held["pid"] or "PID",
                            stage=self.stage), node=step.node, command=step.command, port=step.ready_port,
                    holder=held["pid"])

    def change(self, node: str, command) -> CommandResult:
        """Make one change to the network (a step), echo it, and fail loudly if refused.

        `command` is a command line, or a `topology.Step`; a step that starts a program that keeps running
        (``docker-proxy ... &``) returns once the program listens on its port."""
        if isinstance(command, topology.Step):
            step = command
            if not step.command.endswith("&"):
                return self.change(step.node, step.command)
            if self.trace:
                self.trace(f"[{step.node}] {step.command}")
            self._call("start", node=step.node, command=step.command[:-1].strip(), port=step.ready_port,
                       address=step.ready_address)
            return CommandResult(step.node, step.command, "", "", 0)
        if self.trace:
            self.trace(f"[{node}] {command}")
        return self.run(node, command, check=True)

    def iptables(self, rule: str, *, node: str = "host") -> CommandResult:
        """Run ``iptables RULE`` in `node` (default the host); RuleError if iptables refuses it.

        The rule is split into words as a shell would, and iptables runs with
        them as its arguments, without a shell: ``;`` or ``&&`` cannot start
        a second command. iptables changes its table in one transaction, so a
        refused rule leaves the lab exactly as it was.
        """
        topology.check_node(node, self.stage)
        words = arguments.iptables_argv(rule)
        shown = f"iptables {shlex.join(words)}"
        check = _check_form(words)
        if check and self._run_argv(node, ["iptables", *check]).ok:
            # Re-running a cell must not pile up copies of a rule: it is there already.
            return CommandResult(node, shown, "", _("(the rule is there already: nothing added)") + "\n", 0)
        if self.trace:
            self.trace(f"[{node}] {shown}")
        result = self._run_argv(node, ["iptables", *words])
        if not result.ok:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise RuleError(
                _("iptables refused `{shown}` in {node}: {items}; nothing was changed. Check the table (-t "
                  "filter|nat|raw), the chain name (upper case: FORWARD, POSTROUTING) and the target (-j "
                  "ACCEPT|DROP|MASQUERADE|DNAT); `iptables -h` lists the options")
                .format(shown=shown, node=node, items=' '.join(said[:2])),
                node=node, command=shown, returncode=result.returncode, stderr=result.stderr[-2000:])
        return result

    def sysctl(self, key: str, value=None, *, node: str = "host") -> str:
        """Read a sysctl in `node`, or set it when `value` is given; returns its value."""
        topology.check_node(node, self.stage)
        key = arguments.sysctl_key(key)
        if value is None:
            return self.run(node, f"sysctl -n {key}", check=True).stdout.strip()
        value = arguments.sysctl_value(value)
        return self.change(node, f"sysctl -w {key}={shlex.quote(value)}").stdout.split("=")[-1].strip()
