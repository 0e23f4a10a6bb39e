"""What a caller may pass to a lab, checked before anything reaches the kernel.

Pure code. `Lab` checks every argument here, and the agent checks them again
(a request may come from something other than `Lab`), so that a mistake is a
`BadArgument` whose message names the fix, never an "internal error", a hang
or a surprise on the machine.

The limits, and why:

=====================  ==========  ==============================================
timeout of a command   600 s       a student's cell should come back; longer
                                   programs belong in ``lab.start()``
timeout of a probe     30 s        a probe's outcome is known in well under a second
a command              64 KiB      the kernel refuses one argument over 128 KiB
stdin of a command     1 MiB
output kept            1 MiB       per stream; the rest is counted, and the result
                                   says it was cut
a tcpdump expression   1 KiB       a filter, never options: it comes after ``--``
an iptables rule       4 KiB       split like a shell would, then run without one
=====================  ==========  ==============================================
"""

from __future__ import annotations

import ipaddress
import math
import re
import shlex

from .errors import BadArgument
from .i18n import N_, _, translated

RUN_TIMEOUT_MAX = 600.0
PROBE_TIMEOUT_MAX = 30.0
START_TIMEOUT_MAX = 60.0
COMMAND_MAX = 64 * 1024
STDIN_MAX = 1024 * 1024
OUTPUT_CAP = 1024 * 1024
EXPRESSION_MAX = 1024
RULE_MAX = 4096


def timeout(value, *, maximum: float, what: str = "timeout") -> float:
    """A positive, finite number of seconds up to `maximum`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadArgument(_("{what}={value!r} is not a number of seconds; give one such as {what}=5")
                          .format(what=what, value=value),
                          value=repr(value))
    if math.isnan(value) or value <= 0:
        raise BadArgument(_("{what}={value!r} is not a usable time; give a positive number of seconds, e.g. "
                            "{what}=5").format(what=what, value=value), value=repr(value))
    if value > maximum:
        raise BadArgument(_("{what}={value!r} is too long: netkit waits at most {maximum:g} s for this; give "
                            "{what}={maximum:g} or less (a program that should keep running belongs in "
                            "lab.start(node, command))")
                          .format(what=what, value=value, maximum=maximum), value=repr(value), maximum=maximum)
    return float(value)


def port(value) -> int:
    """A TCP port number, 1 to 65535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise BadArgument(_("{value!r} is not a TCP port; give a whole number from 1 to 65535, e.g. port=2345")
                          .format(value=value),
                          value=repr(value))
    return value


def listen_address(value) -> str:
    """An IPv4 or IPv6 address a server may listen on (``127.0.0.1``, ``::1``), written as Python writes it."""
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise BadArgument(_("{value!r} is not an IP address; give the address the program listens on, e.g. "
                            "'127.0.0.1' or '::1'").format(value=value), value=repr(value)[:200]) from None


def text(value, *, what: str, example: str, maximum: int = COMMAND_MAX, empty: bool = False) -> str:
    """A string a program will receive: not empty, no NUL byte, not too long."""
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise BadArgument(_("give the {what} as one string, e.g. {example}").format(what=translated(what), example=example), value=repr(value)[:200])
    if "\0" in value:
        raise BadArgument(_("the {what} contains a NUL byte (\\0), which no program can receive; remove it")
                          .format(what=translated(what)),
                          value=repr(value)[:200])
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > maximum:
        raise BadArgument(_("the {what} is {size:,} bytes long; netkit takes at most {maximum:,}. For a long "
                            "script, write it to a file in the lab and run the file")
                          .format(what=translated(what), size=size, maximum=maximum), size=size, maximum=maximum)
    return value


def command(value) -> str:
    return text(value, what=N_("command to run in the node"), example="'route -n'")


def stdin(value) -> str | None:
    if value is None:
        return None
    return text(value, what=N_("stdin"), example="stdin='hello\\n'", maximum=STDIN_MAX, empty=True)


UNUSABLE_DESTINATIONS = (
    (ipaddress.IPv4Network("0.0.0.0/8"), N_("means 'this host' and is answered by the sender itself")),
    (ipaddress.IPv4Network("224.0.0.0/4"), N_("is a multicast group, which no single node answers")),
    (ipaddress.IPv4Network("240.0.0.0/4"), N_("is reserved (255.255.255.255 is the broadcast address)")),
)


def address(value) -> str:
    """An IPv4 address a probe can be sent to (one node can answer it)."""
    try:
        parsed = ipaddress.IPv4Address(value)
    except (ValueError, TypeError):
        raise BadArgument(_("{value!r} is not an IPv4 address; probe an address such as '10.55.66.3' or "
                            "'8.8.8.8', e.g. lab.probe('c1', '10.55.66.3')")
                          .format(value=value), value=repr(value)[:200]) from None
    for network, why in UNUSABLE_DESTINATIONS:
        if parsed in network:
            raise BadArgument(_("{value} {why}, so a probe to it says nothing about the lab; probe a node's "
                                "address, e.g. '10.55.66.3' (c2) or '8.8.8.8' (the internet)")
                              .format(value=value, why=translated(why)), value=str(value))
    return str(parsed)


def expression(value) -> str:
    """A tcpdump filter expression: words of a filter, never an option such as -w."""
    text(value, what=N_("tcpdump expression"), example="'icmp'", maximum=EXPRESSION_MAX, empty=True)
    for word in value.split():
        if word.startswith("-"):
            raise BadArgument(_("the tcpdump expression {value!r} holds an option ({word}); give only a "
                                "filter, e.g. 'icmp' or 'tcp port 8000' (lab.tcpdump prints what it "
                                "captured: nothing is written to a file)")
                              .format(value=value, word=word), value=value)
    return value


def iptables_argv(rule) -> list[str]:
    """The words of an iptables rule, split as a shell would; each becomes one argument."""
    text(rule, what=N_("iptables rule"), example="'-P FORWARD ACCEPT'", maximum=RULE_MAX)
    try:
        words = shlex.split(rule)
    except ValueError as exc:
        raise BadArgument(_("the rule {rule!r} cannot be read: {exc} (a quote is opened but not closed); "
                            "close the quote or leave quotes out")
                          .format(rule=rule, exc=exc), value=rule) from None
    if words and words[0] in ("iptables", "sudo"):
        raise BadArgument(_("give the rule without the word {words!r} in front: lab.iptables({items!r})")
                          .format(words=words[0], items=shlex.join(words[1 if words[0] == 'iptables' else 2:])),
                          value=rule)
    shell = next((w for w in words if SHELL_WORD.search(w) or w in ("|", "&", "<", ">", ">>")), None)
    if shell is not None:
        raise BadArgument(_("the rule {rule!r} holds {shell!r}, which is shell syntax: lab.iptables() runs "
                            "one iptables command, without a shell; call it once per rule")
                          .format(rule=rule, shell=shell), value=rule)
    return words


SHELL_WORD = re.compile(r";|&&|\|\||`|\$\(")
"""What only a shell reads: a second command, a pipe, a substitution."""

SYSCTL_KEY = re.compile(r"[a-z0-9_]+(?:[./][a-z0-9_-]+)+")


def sysctl_key(value) -> str:
    if not isinstance(value, str) or not SYSCTL_KEY.fullmatch(value):
        raise BadArgument(_("{value!r} is not a sysctl name; write it as `sysctl -a` lists it, e.g. "
                            "'net.bridge.bridge-nf-call-iptables'").format(value=value), value=repr(value)[:200])
    return value


def sysctl_value(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadArgument(_("{value!r} is not a sysctl value; give a number or a short word, e.g. 0 or 1")
                          .format(value=value),
                          value=repr(value)[:200])
    shown = str(value)
    if not re.fullmatch(r"[A-Za-z0-9 ._:/-]{1,200}", shown):
        raise BadArgument(_("{value!r} is not a sysctl value; give a number or a short word, e.g. 0 or 1")
                          .format(value=value),
                          value=repr(value)[:200])
    return shown
