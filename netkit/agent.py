"""The lab's host: a process that lives inside the sandbox and does the kernel work.

``netkit.sandbox`` starts it as::

    unshare --net --mount --pid --fork --mount-proc --kill-child [--user --map-root-user] \\
        sh -c '... "$@" & wait' netkit-lab python -m netkit.agent --name LAB --lock-fd N

so it is born in network, mount and pid namespaces of its own (the lab's
``host`` node). A shell is the lab's pid 1: it only reaps orphans and waits
for the agent. Requests and answers are JSON lines on stdin and stdout; the
agent never prints anything else there.

Nothing outlives the lab, and the kernel sees to it: when the notebook that
owns the lab goes away its end of the pipe closes, the agent exits, the shell
(pid 1) follows, and with pid 1 of a pid namespace gone the kernel kills
every process of the lab; the namespaces of c1, c2 and internet are bind
mounts in the lab's private mount namespace, so they go with it.

Only the standard library is imported: scapy builds probe packets in the
notebook's process, which has it loaded anyway, and the agent sends the bytes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from . import arguments, build, links, topology
from .errors import BadArgument, CommandError, NetkitError, SandboxError, UnknownStage, to_wire
from .i18n import LANGUAGES, N_, _, use_language
from .nodes import ENV, kill_group, node_argv, run, sys_read_only
from .procfs import listeners, listening_programs

class Agent:
    """Serves one lab: requests in, answers and events out."""

    def __init__(self, out) -> None:
        self.out = out
        self.stage: str | None = None
        self.lock = threading.Lock()
        self._prober = None
        self._prober_lock = threading.Lock()
        self.background: list[subprocess.Popen] = []
        self._tcpdump_works: bool | None = None
        self.keep_state = False
        self.links_settled = threading.Event()   # every link that is up reports it (see netkit.links)
        self.current: int | None = None          # the request being served
        self.cancel = threading.Event()          # set to stop it (the owner pressed Ctrl-C)

    # -- the wire ---------------------------------------------------------
    def emit(self, message: dict) -> None:
        with self.lock:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()

    def cancel_request(self, rid) -> None:
        """Stop the work of request `rid` if it is the one being served (called by the reading thread)."""
        if rid is not None and rid == self.current:
            self.cancel.set()

    def serve(self, requests) -> None:
        for request in iter(requests.get, None):
            rid = request.get("id")
            self.cancel.clear()
            self.current = rid
            try:
                lang = request.get("lang") if request.get("lang") in LANGUAGES else None
                if lang not in (None, "en"):
                    _load_site()          # the catalogue's reader (Babel) is a site package
                use_language(lang)
                op, args = request.get("op"), request.get("args", {})
                handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
                if handler is None or not isinstance(args, dict):
                    raise BadArgument(_("the lab's host has no operation {op!r}").format(op=op))
                import inspect   # (here: the agent starts on the standard library's lightest modules)
                try:   # arguments the operation does not take: the caller's mistake, told from the signature
                    inspect.signature(handler).bind(**args)
                except TypeError as exc:
                    raise BadArgument(_("{op}: {exc}").format(op=op, exc=exc)) from None
                result = handler(**args)
                self.emit({"id": rid, "ok": True, "result": result})
            except NetkitError as exc:
                self.emit({"id": rid, "ok": False, "error": to_wire(exc)})
            except Exception as exc:  # a bug in netkit: say so, keep serving
                self.emit({"id": rid, "ok": False, "error": {
                    "kind": "NetkitError",
                    "message": f"the lab's host hit an internal error: {type(exc).__name__}: {exc}; "
                               "please report it with `netkit doctor` output",
                    "data": {"op": str(request.get("op")), "exception": type(exc).__name__}}})
            finally:
                self.current = None

    # -- operations -------------------------------------------------------
    def release(self) -> None:
        """Before the host exits: close the probes' packet sockets all at once (see `Capture.stop`); the
        exit would close them one after another, a lab at part 4 taking 120 ms to end instead of 20."""
        capture = self._prober.capture if self._prober is not None else None
        if capture is not None:
            capture.stop()

    def op_keep_state(self) -> dict:
        """Leave the lab's state file when this host ends: a reset's new host holds it now."""
        self.keep_state = True
        return {"keep_state": True}

    def op_hello(self) -> dict:
        return {"pid": os.getpid(), "uid": os.getuid(), "kernel": os.uname().release}

    def op_build(self, stage: str) -> dict:
        """Bring the sandbox to `stage` (see `netkit.build`): from nothing, or from the stage it was built at
        when that stage is on the way (a spare built ahead). Every step is announced, in the stage's order,
        before its batches run, several at a time."""
        steps = topology.steps_after(self.stage, stage)
        if steps is None:
            raise UnknownStage(_("this lab was built at {stage!r}, which is not on the way to {stage2!r}; "
                                 "use lab.reset(stage)")
                               .format(stage=self.stage, stage2=stage))
        started = time.monotonic()
        for index, step in enumerate(steps):
            self.emit({"event": "step", "node": step.node, "command": step.command,
                       "why": step.why, "index": index, "total": len(steps)})
        found = build.batches(steps)
        launched = self._run_batches(found, build.waits_for(found))
        for step, proc in launched:
            self._ready(step.node, step.command, proc, step.ready_port, timeout=10.0, address=step.ready_address)
        self.stage = stage
        self.links_settled.clear()
        threading.Thread(target=self._after_build, daemon=True).start()
        return {"stage": stage, "steps": len(steps), "seconds": round(time.monotonic() - started, 4)}

    def _run_batches(self, found: list, waits: list[set[int]]) -> list:
        """Run the batches, each as soon as the ones it waits for are done (see `build.waits_for`), at most
        four at once. Returns the programs started in the background; raises the first failed step's error
        (in the stage's order) once the batches already running have ended."""
        done: dict[int, BaseException | None] = {}
        launched: list[tuple[topology.Step, subprocess.Popen]] = []
        finished = threading.Condition()
        running: set[int] = set()

        def work(index: int) -> None:
            error = None
            try:
                launched.extend(self._run_batch(found[index]))
            except BaseException as exc:
                error = exc
            with finished:
                running.discard(index)
                done[index] = error
                finished.notify()

        with finished:
            while len(done) < len(found):
                failed = any(error is not None for error in done.values())
                ready = [i for i in range(len(found)) if i not in done and i not in running
                         and waits[i] <= done.keys() and not failed]
                for index in ready[:max(0, 4 - len(running))]:
                    running.add(index)
                    threading.Thread(target=work, args=(index,), daemon=True).start()
                if not running:
                    break                      # a batch failed: the ones waiting on nothing more never start
                finished.wait()
        for index in sorted(done):
            if done[index] is not None:
                raise done[index]
        return launched

    def _run_batch(self, batch) -> list:
        """One batch, through its tool's batch mode (see `netkit.build`)."""
        if batch.tool == "start":
            step = batch.steps[0]
            return [(step, self._launch(step.node, step.command[:-1].strip()))]
        if batch.tool == "ip":
            argv, lines = build.ip_argv(batch)
            self._step_run(batch, run(batch.node, argv=argv, stdin=lines), r"Command failed -:(\d+)")
        elif batch.tool == "iptables":
            text, origin = build.restore_input([s.command for s in batch.steps])
            result = run(batch.node, argv=["iptables-restore", "--noflush"], stdin=text)
            self._step_run(batch, result, r"line (\d+) failed", origin)
        elif batch.tool == "sysctl":
            self._step_run(batch, run(batch.node, argv=build.sysctl_argv(batch)))
        else:
            self._step_run(batch, run(batch.node, batch.steps[0].command))
        return []

    def _step_run(self, batch, result: dict, failed_line: str | None = None, origin: dict | None = None) -> None:
        """Raise the build error of the step that failed, if the batch failed."""
        if result["returncode"] == 0:
            return
        step = batch.steps[0]
        found = re.search(failed_line, result["stderr"]) if failed_line else None
        if found:
            line = int(found[1])
            position = origin.get(line, 0) if origin is not None else line - 1
            step = batch.steps[min(position, len(batch.steps) - 1)]
        raise _build_error(step, result)

    def _after_build(self) -> None:
        """In the background: wait for the links to report their state, then get probes ready."""
        _import_probes()
        try:
            links.wait_until_up()
        except Exception as exc:   # a display may show a link's state late; nothing else depends on it
            print(f"netkit agent: could not watch the links settle: {exc}", file=sys.stderr)
        finally:
            self.links_settled.set()
        self._warm()

    def _warm(self) -> None:
        try:
            self.prober().warm()
        except Exception as exc:  # the first probe will say what is wrong, with context
            print(f"netkit agent: could not get probes ready: {exc}", file=sys.stderr)

    def op_run(self, node: str, command: str | None = None, timeout: float = 10.0, stdin: str | None = None,
               argv: list | None = None) -> dict:
        timeout = arguments.timeout(timeout, maximum=arguments.RUN_TIMEOUT_MAX)
        stdin = arguments.stdin(stdin)
        if _shows_links(command if argv is None else " ".join(argv or [])):
            self.links_settled.wait(2.0)
        if argv is not None:
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise BadArgument(_("argv must be a list of strings, e.g. ['iptables', '-S']"))
            for word in argv:
                arguments.text(word, what=N_("argument"), example="'-S'", empty=True)
            return run(node, None, timeout, stdin, argv=argv, cancel=self.cancel)
        return run(node, arguments.command(command), timeout, stdin, cancel=self.cancel)

    def op_switches(self, specs: list) -> dict:
        """Read switches in one go (see `netkit.switches`): for rule and policy switches one iptables-save
        per node; for the others their own read command. Returns {name: what was found}."""
        if not isinstance(specs, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                                  for s in specs):
            raise BadArgument(_("specs must be a list of switch specs, as Switch.spec() makes them"))
        saved: dict[str, dict] = {}
        found = {}
        for spec in specs:
            node = topology.check_node(spec.get("node"))
            if spec.get("rules") or spec.get("policy"):
                if node not in saved:
                    saved[node] = _saved_tables(run(node, argv=["iptables-save"])["stdout"])
                tables = saved[node]
                if spec.get("rules"):
                    found[spec["name"]] = all(line in tables.get(table, {}).get("rules", ())
                                              for table, line in spec["rules"])
                else:
                    found[spec["name"]] = tables.get("filter", {}).get("policies", {}).get(spec["policy"])
            else:
                result = run(node, arguments.command(spec.get("read")))
                found[spec["name"]] = [result["returncode"], result["stdout"]]
        return found

    def op_start(self, node: str, command: str, port: int | None = None, timeout: float = 5.0,
                 address: str = "127.0.0.1") -> dict:
        """Start a program that keeps running (a server) in `node`; ready once `port` listens on `address`."""
        topology.check_node(node)
        command = arguments.command(command)
        port = None if port is None else arguments.port(port)
        address = arguments.listen_address(address)
        timeout = arguments.timeout(timeout, maximum=arguments.START_TIMEOUT_MAX)
        return self._ready(node, command, self._launch(node, command), port, timeout, address)

    def op_listeners(self, port: int | None = None) -> list:
        """Who listens on TCP `port` in the host (see `listening_programs`)."""
        return listening_programs(None if port is None else arguments.port(port))

    def _launch(self, node: str, command: str) -> subprocess.Popen:
        import tempfile   # not at start-up: only a stage with a server needs it
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(node_argv(node, ["sh", "-c", f"exec {command}"]), env=ENV, cwd="/",
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        proc.log = log
        self.background.append(proc)
        return proc

    def _ready(self, node: str, command: str, proc: subprocess.Popen, port: int | None, timeout: float,
               address: str = "127.0.0.1") -> dict:
        deadline = time.monotonic() + timeout
        while port is not None and time.monotonic() < deadline and not self.cancel.is_set():
            if proc.poll() is not None:
                break
            if _listening(node, port, address):
                return {"pid": proc.pid, "node": node, "command": command, "port": port}
            time.sleep(0.005)
        if proc.poll() is None and port is None:
            return {"pid": proc.pid, "node": node, "command": command, "port": None}
        kill_group(proc.pid)
        proc.wait()
        proc.log.seek(0)
        said = proc.log.read().decode(errors="replace").strip()[-500:]
        raise CommandError(_("[{node}] {command} did not start listening on port {port}: {value}")
                           .format(node=node, command=command, port=port, value=said or _('exit status {code}').format(code=proc.returncode)), node=node, command=command)

    def op_probe(self, src: str, dst: str, proto: str = "icmp", timeout: float = 0.5,
                 ident: int | None = None, packet: str | None = None, port: int | None = None) -> dict:
        """Send one probe and record what every point, the trace and conntrack saw.

        icmp: `packet` is the ICMP echo (hex). tcp: a connection to `port`; its SYN is the probe.
        """
        topology.check_node(src)
        dst = arguments.address(dst)
        timeout = arguments.timeout(timeout, maximum=arguments.PROBE_TIMEOUT_MAX)
        if proto == "tcp":
            return self.prober().tcp(src, dst, arguments.port(port), timeout, cancel=self.cancel)
        if proto != "icmp":
            raise BadArgument(_("probes speak icmp or tcp, not {proto!r}").format(proto=proto))
        if isinstance(ident, bool) or not isinstance(ident, int) or not 0 < ident < 0xFFFF:
            raise BadArgument(_("ident={ident!r} is not an ICMP echo identifier (1 to 65534); send probes "
                                "with lab.probe(), which builds the echo with scapy")
                              .format(ident=ident))
        try:
            echo = bytes.fromhex(packet)
        except (TypeError, ValueError):
            raise BadArgument(_("packet must be the ICMP echo as hex, as lab.probe() sends it")) from None
        if not 8 <= len(echo) <= 1400:
            raise BadArgument(_("packet must be an ICMP echo of 8 to 1400 bytes"))
        return self.prober().icmp(src, dst, timeout, ident, echo, cancel=self.cancel)

    def prober(self):
        """The lab's one Prober (the background warm-up and the first probe may ask at once)."""
        _import_probes()
        with self._prober_lock:
            if self._prober is None:
                from .probe import Prober
                self._prober = Prober()
            return self._prober

    def op_tcpdump(self, point: str, node: str, command: str, expression: str = "icmp",
                   timeout: float = 10.0, verbose: bool = False) -> dict:
        """Run tcpdump on `point` while `command` runs in `node`: the article's two windows."""
        where, ifname = topology.split_point(point)
        topology.check_node(node)
        command = arguments.command(command)
        expression = arguments.expression(expression)
        timeout = arguments.timeout(timeout, maximum=arguments.RUN_TIMEOUT_MAX)
        flags = "-vvvnn" if verbose else "-n"
        shown = f"tcpdump {flags} -i {ifname} {expression}".strip()

        def during() -> dict:
            return run(node, command, timeout, cancel=self.cancel)

        if self._tcpdump_works is not False:
            try:
                answer = _tcpdump(where, ifname, expression, during, verbose)
                self._tcpdump_works = True
            except _CannotDropPrivileges:
                self._tcpdump_works = False
            else:
                return {"capture": {"node": where, "command": shown, **answer}}
        # In a user namespace tcpdump cannot switch users (setgroups is denied), so it
        # refuses to run at all; netkit's own capture prints the same lines, and says so.
        from .capture import OWN_CAPTURE_FILTERS, watch_point
        if expression.strip() not in OWN_CAPTURE_FILTERS:
            raise BadArgument(_("tcpdump cannot run in this lab (it cannot drop privileges inside a user "
                                "namespace), and netkit's own capture understands only the filters {items} "
                                "or none, not {expression!r}")
                              .format(items=', '.join((repr(f) for f in OWN_CAPTURE_FILTERS if f)), expression=expression))
        lines = watch_point(where, ifname, expression, during, verbose)
        note = ("(netkit's own capture, in tcpdump's format: tcpdump cannot drop privileges "
                "inside a user namespace)\n")
        return {"capture": {"node": where, "command": shown, "stdout": "".join(lines), "stderr": note,
                            "returncode": 0, "timed_out": False, "seconds": 0.0, "cut": {}}}


def _listening(node: str, port: int, address: str = "127.0.0.1") -> bool:
    """Does something in `node` accept TCP connections on `port` at `address`?

    In the host (the agent's own namespace) the kernel's socket table says so
    without a connection: a connection to docker-proxy would make it open one to
    the container, and leave a conntrack entry no student made. Elsewhere a
    connection is tried.
    """
    import socket

    if node == "host":
        anywhere = "::" if ":" in address else "0.0.0.0"    # the wildcard of the address's own family
        return any(port == listen_port and listen_ip in (anywhere, address)
                   for listen_ip, listen_port, _ in listeners())
    from .netns import socket_in
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket_in(node, family, socket.SOCK_STREAM)
    sock.settimeout(0.2)
    try:
        return sock.connect_ex((address, port)) == 0
    finally:
        sock.close()



def _saved_tables(text: str) -> dict:
    """iptables-save's output as {table: {"rules": set of "-A ..." lines, "policies": {chain: policy}}}."""
    tables: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:], {"rules": set(), "policies": {}})
        elif current is not None and line.startswith(":"):
            chain, policy = line[1:].split()[:2]
            current["policies"][chain] = policy
        elif current is not None and line.startswith("-A "):
            current["rules"].add(line.strip())
    return tables


SHOWS_LINKS = re.compile(r"(^|[\s;|&(])(ip|ifconfig|bridge|brctl|networkctl)\b|/sys/class/net|operstate")
"""Commands that print a link's state, which the kernel reports up to a second after it changes."""


def _shows_links(command: str | None) -> bool:
    return bool(command) and bool(SHOWS_LINKS.search(command))


class _CannotDropPrivileges(Exception):
    pass


def _tcpdump(node: str, ifname: str, expression: str, during, verbose: bool = False) -> dict:
    """tcpdump on node:ifname while `during()` runs; its output once it has stopped."""
    flags = ["-vvv", "-nn"] if verbose else ["-n"]
    argv = node_argv(node, ["tcpdump", "-l", *flags, "-i", ifname, "--", *expression.split()])
    dump = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    lines: list[tuple[str, str]] = []
    listening = threading.Event()

    def read(stream, kind) -> None:
        for line in stream:
            lines.append((kind, line))
            if "listening on" in line:
                listening.set()
        listening.set()

    readers = [threading.Thread(target=read, args=(dump.stderr, "err"), daemon=True),
               threading.Thread(target=read, args=(dump.stdout, "out"), daemon=True)]
    for reader in readers:
        reader.start()
    heard = listening.wait(5) and any("listening on" in text for _, text in list(lines))
    if not heard or dump.poll() is not None:
        kill_group(dump.pid)
        dump.wait()
        said = "".join(text for _, text in lines).strip()
        if "Couldn't change to" in said:
            raise _CannotDropPrivileges(said)
        raise CommandError(_("tcpdump could not listen on {node}:{ifname}: {value}")
                           .format(node=node, ifname=ifname, value=said or _('no answer')))
    result = during()
    time.sleep(0.1)  # tcpdump prints what it saw a moment after the kernel passed it on
    os.killpg(dump.pid, signal.SIGINT)
    try:
        dump.wait(2)
    except subprocess.TimeoutExpired:
        kill_group(dump.pid)
    for reader in readers:
        reader.join(1)
    return {"stdout": "".join(text for kind, text in lines if kind == "out"),
            "stderr": "".join(text for kind, text in lines if kind == "err" and "listening on" not in text),
            "returncode": 0, "timed_out": False, "seconds": result["seconds"]}


def _build_error(step: topology.Step, result: dict) -> NetkitError:
    said = (result["stderr"] or result["stdout"]).strip()
    if "bridge-nf-call-iptables" in step.command and ("No such file" in said or "cannot stat" in said):
        return SandboxError(
            _("the kernel module br_netfilter is not loaded, so bridged frames cannot go through iptables "
              "(scenario 1 of the article needs that); fix: sudo modprobe br_netfilter (in a container: on "
              "the machine or VM it runs on; `netkit doctor` says more)"))
    return CommandError(_("building the lab failed at step {step}: {value}")
                        .format(step=step, value=said or _('exit status {code}').format(code=result['returncode'])))


class _StateFile:
    """The lab's state file, reached through descriptors opened before /run was mounted over."""

    def __init__(self, lock_fd: int | None, dir_fd: int | None, name: str | None) -> None:
        self.lock_fd, self.dir_fd, self.name = lock_fd, dir_fd, name
        for fd in (lock_fd, dir_fd):
            if fd is not None:
                try:
                    os.set_inheritable(fd, False)   # programs the agent starts need not hold them
                except OSError:
                    pass

    def remove(self) -> None:
        """Delete the file if it is still the one this lab locked (nobody else can hold its name)."""
        if None in (self.lock_fd, self.dir_fd, self.name):
            return
        try:
            held = os.fstat(self.lock_fd)
            linked = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
            if (held.st_dev, held.st_ino) == (linked.st_dev, linked.st_ino):
                os.unlink(self.name, dir_fd=self.dir_fd)
        except OSError:
            pass


def _read_requests(stream, requests, agent: Agent, state_file: _StateFile) -> None:
    """Requests into the queue, in order; a cancel acts at once. The owner gone: the lab ends."""
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except ValueError:
            print(f"netkit agent: not a request: {line[:200]!r}", file=sys.stderr)
            continue
        if "cancel" in message:
            agent.cancel_request(message["cancel"])
        else:
            requests.put(message)
    # The owner's end closed: the owner has gone (closed, crashed or was killed).
    if not agent.keep_state:
        state_file.remove()
    agent.release()
    os._exit(0)


def _mount_private_dirs() -> None:
    """A /run of the lab's own (for /run/netns) and a /sys that shows the lab's interfaces.

    mount(2) through ctypes: two fewer processes on the way to the lab's first command. In a
    container /sys is read-only, and inside a user namespace the kernel refuses a read-write sysfs over
    a read-only one; the lab only reads /sys, so it then mounts its own read-only too (and enters nodes
    as `node_argv` says).
    """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    MS_RDONLY = 0x1
    sysfs_flags = MS_RDONLY if sys_read_only() else 0
    for source, target, kind, flags, data in (("netkit-run", "/run", "tmpfs", 0, b"mode=755"),
                                              ("netkit-sys", "/sys", "sysfs", sysfs_flags, None)):
        if libc.mount(source.encode(), target.encode(), kind.encode(), flags, data) != 0:
            err = ctypes.get_errno()
            raise SandboxError(_("the lab could not mount its private {target}: {strerror}; `netkit doctor` "
                                 "says what this machine (or container) withholds, and the fix")
                               .format(target=target, strerror=os.strerror(err)))
    os.makedirs("/run/netns", exist_ok=True)


_IMPORTS = threading.Lock()


def _load_site() -> None:
    """The site packages, which the host starts without (python -S: its first command comes sooner); only
    a lab whose owner speaks another language than English needs them, for the catalogue's reader."""
    with _IMPORTS:
        if sys.flags.no_site and "site" not in sys.modules:
            import site
            site.main()


def _import_probes() -> None:
    """The modules probes need, imported once, in the background after a build. One thread at a time: two
    threads importing modules that import each other can see one of them half made. (Only netkit's own
    modules and the standard library: the host starts without the site packages, python -S.)"""
    with _IMPORTS:
        from . import capture, links, probe, trace  # noqa: F401


def _die_with_parent() -> None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def _options(argv: list[str]) -> dict:
    """``--name LAB --lock-fd N --state-dir-fd N --state-file F``, as the sandbox passes them (no argparse:
    its import alone would delay the lab's first command)."""
    options = {"name": None, "lock_fd": None, "state_dir_fd": None, "state_file": None}
    for flag, value in zip(argv[::2], argv[1::2]):
        key = flag.lstrip("-").replace("-", "_")
        if key not in options:
            raise SystemExit(f"netkit.agent: unknown option {flag}")
        options[key] = int(value) if key.endswith("_fd") else value
    if not options["name"]:
        raise SystemExit("netkit.agent: --name is required")
    return options


def main(argv: list[str] | None = None) -> None:
    args = _options(sys.argv[1:] if argv is None else argv)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by mistake goes to stderr, never onto the wire
    _die_with_parent()
    state_file = _StateFile(args["lock_fd"], args["state_dir_fd"], args["state_file"])

    try:
        _mount_private_dirs()
    except SandboxError as exc:
        out.write(json.dumps({"id": 0, "ok": False, "error": to_wire(exc)}) + "\n")
        os._exit(3)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import queue as queue_module
    requests: queue_module.Queue = queue_module.Queue()
    agent = Agent(out)
    threading.Thread(target=_read_requests, args=(sys.stdin, requests, agent, state_file), daemon=True).start()
    agent.emit({"id": 0, "ok": True, "result": agent.op_hello()})
    agent.serve(requests)


if __name__ == "__main__":
    main()
