"""Journey, Hop, Sighting, Verdict: what one probe saw, as plain serialisable data.

A *probe* is one packet sent on purpose; its *journey* says, for every point
of the lab in path order, whether the request and the reply were seen there
and with which addresses; which netfilter verdicts the packet met in the
host; the conntrack entry NAT left; and whether it was delivered, and if
not, why, in plain words.

This module is pure: no kernel, no root. Journeys round-trip through JSON so
that plots and tests work from recorded journeys (``tests/data/*.json``).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from . import provenance
from .errors import UnknownPoint
from .i18n import N_, _, translated
from .netfilter import DEST_NAT, HOOKS, SOURCE_NAT
from .outcome import Outcome, Result
from .topology import owner


@dataclass(frozen=True)
class Sighting:
    """One packet of the probe, seen at one point."""

    point: str
    kind: str                  # "request" or "reply"
    src: str
    dst: str
    time: float                # seconds after the probe was sent
    summary: str = ""          # e.g. "10.55.66.2 > 8.8.8.8: ICMP echo-request id 7 seq 1"
    sport: int | None = None   # TCP ports, or None for ICMP
    dport: int | None = None
    frame: str = ""            # the captured Ethernet frame, hex
    flags: int | None = None   # TCP flags, as a number (0x04 is a reset)
    ttl: int | None = None     # the IP header's time to live where it was seen (routing takes one off)

    @property
    def reset(self) -> bool:
        """A TCP reset: the connection was refused."""
        return bool(self.flags is not None and self.flags & 0x04)

    @property
    def addresses(self) -> str:
        """``"src > dst"`` (with ports for TCP), as tcpdump writes it."""
        if self.sport is not None:
            return f"{self.src}:{self.sport} > {self.dst}:{self.dport}"
        return f"{self.src} > {self.dst}"


@dataclass(frozen=True)
class Hop:
    """A point of the lab and what the probe's request and reply looked like there."""

    point: str
    on_path: bool = True       # False: a point off the packet's way, shown for completeness
    request: Sighting | None = None
    reply: Sighting | None = None


@dataclass(frozen=True)
class Verdict:
    """One netfilter decision the packet met: table, chain, rule or policy, verdict."""

    table: str                 # filter, nat, raw, mangle
    chain: str                 # FORWARD, POSTROUTING, ...
    rule: str                  # the iptables rule (as `iptables -S` prints it) or "policy"
    verdict: str               # ACCEPT, DROP, MASQUERADE, DNAT, CONTINUE, ...
    kind: str = "request"      # which packet: "request" or "reply"
    iif: str = ""
    oif: str = ""
    node: str = "host"

    @property
    def dropped(self) -> bool:
        return self.verdict in ("DROP", "REJECT")

    @property
    def command(self) -> str:
        """The iptables command that made the rule (or sets the policy) a student would type."""
        if self.rule == "policy":
            return f"iptables -t {self.table} -P {self.chain} {self.verdict}"
        if self.rule.startswith("-A "):
            return f"iptables -t {self.table} {self.rule}"
        return self.rule  # a rule iptables cannot spell (written with nft): its nft text

    def __str__(self) -> str:
        """The verdict in words (in the language in use): ``filter FORWARD policy DROP in host``."""
        if self.rule == "policy":
            return _("{table} {chain} policy {verdict} in {node}").format(
                table=self.table, chain=self.chain, verdict=self.verdict, node=self.node)
        return _("{table} {chain} rule `{command}` ({verdict}) in {node}").format(
            table=self.table, chain=self.chain, command=self.command, verdict=self.verdict, node=self.node)


FINAL = ("ACCEPT", "DROP", "REJECT", "RETURN", "CONTINUE", "QUEUE") + SOURCE_NAT + DEST_NAT
"""Verdicts that end a chain's say (any other verdict of a rule is the name of the chain it jumped to)."""


@dataclass(frozen=True)
class ConntrackEntry:
    """A connection the host's conntrack remembers: the tuple sent and the tuple expected back."""

    proto: str
    original: tuple[str, str]  # (src, dst) of the packet as it left its sender
    reply: tuple[str, str]     # (src, dst) the reply is expected to carry
    text: str = ""             # the line `conntrack -L` prints
    original_ports: tuple[int, int] | None = None   # (sport, dport) for TCP
    reply_ports: tuple[int, int] | None = None

    @property
    def nat(self) -> bool:
        """True when the reply is not the mirror of the original: NAT rewrote it."""
        mirrored = self.reply == (self.original[1], self.original[0])
        if self.original_ports and self.reply_ports:
            mirrored = mirrored and self.reply_ports == (self.original_ports[1], self.original_ports[0])
        return not mirrored

    @property
    def dnat(self) -> bool:
        """True when the destination was rewritten (the reply comes from someone else)."""
        moved = self.reply[0] != self.original[1]
        if self.original_ports and self.reply_ports:
            moved = moved or self.reply_ports[0] != self.original_ports[1]
        return moved

    def where(self, side: str, end: int) -> str:
        """``address`` or ``address:port`` of one end (0 src, 1 dst) of the original or reply tuple."""
        address = getattr(self, side)[end]
        ports = getattr(self, f"{side}_ports")
        return f"{address}:{ports[end]}" if ports else address


@dataclass(frozen=True)
class Mark:
    """Where a probe's "died here" mark goes: one place, read from its outcome, for every view.

    The table and the grid put it on the row of `point`; the ladder on the
    column of `point`; the map beside `point`'s interface, inside `node`.
    `point` is the outcome's ``at``, or ``host:lo`` for the host's probe to
    one of its own addresses, which no watched point saw. When `then` is
    set the packet died on its way from `point` to `then` (a netfilter drop
    in the host, at `hook`): the pictures draw the mark between the two.
    """

    packet: str                # "request" or "reply": the packet that stopped
    point: str | None          # the row / column / interface the mark belongs to
    node: str | None           # the node it stopped in
    then: str | None = None    # the point it never reached, when it died on the way there
    hook: str | None = None    # the netfilter hook that dropped it
    words: str = ""            # what happened, in a few words, for a tag beside the mark


_MARK_WORDS = {   # English, marked for the catalogue; `Journey.mark` says them in the language in use
    Result.NO_ROUTE: N_("no route: never sent"), Result.SEND_ERROR: N_("never sent"),
    Result.NEVER_LEFT: N_("the request never left"), Result.NO_ROUTE_BACK: N_("no route back: no reply sent"),
    Result.REFUSED: N_("refused: nothing listens"), Result.WRONG_SOURCE: N_("reply from an address never called"),
    Result.REPLY_LOST: N_("the reply was lost"), Result.NO_REPLY: N_("no reply came back"),
}
KINDS = {"request": N_("request"), "reply": N_("reply")}
"""The two packets of a probe, as a person reads them (show with `kind_word`)."""


def kind_word(kind: str) -> str:
    """ "request" or "reply" in the language in use (anything else as it is)."""
    return translated(KINDS[kind]) if kind in KINDS else kind


def pad(text: str, width: int) -> str:
    """`text` left-aligned in `width` columns of a terminal, where a Chinese character takes two."""
    wide = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - wide, 0)


@dataclass(frozen=True)
class Relay:
    """A program on the host that accepted the probe's connection and opened one of its own onward.

    docker-proxy does this for a published port: the probe's connection ends in the host (its INPUT
    chain, then the proxy's socket), and `journey` is the proxy's second connection, from the host to the
    container, followed like a probe of its own."""

    program: str                 # "docker-proxy", as `ss -ltnp` names the process
    pid: int | None
    listen: str                  # the address and port it listens on: "0.0.0.0:8080"
    journey: "Journey | None"    # the second connection (None if it never left the host)

    def to_dict(self) -> dict:
        return {"program": self.program, "pid": self.pid, "listen": self.listen,
                "journey": self.journey.to_dict() if self.journey is not None else None}

    @classmethod
    def from_dict(cls, data: dict) -> "Relay":
        return cls(data["program"], data.get("pid"), data["listen"],
                   Journey.from_dict(data["journey"]) if data.get("journey") else None)


@dataclass(frozen=True)
class Journey:
    """What one probe saw. `delivered` and `reason` answer "did it work, and why not"."""

    src: str                   # the node that sent the probe
    dst: str                   # the address it was sent to
    proto: str = "icmp"
    src_address: str = ""      # the source address the kernel chose
    hops: tuple[Hop, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    hooks: tuple[tuple[str, str, str, str], ...] = ()  # (kind, HOOK, iif, oif) the packet passed in the host
    conntrack: tuple[ConntrackEntry, ...] = ()
    outcome: Outcome | None = None   # what happened, decided once (netkit.outcome)
    seconds: float = 0.0
    label: str = ""            # the condition it was taken under, for before/after grids
    dport: int | None = None
    started: float = 0.0       # when the probe was sent (seconds since the epoch)
    timeout: float = 0.0       # how long the sender waited for an answer at most
    recorded: str = ""         # replayed from a recording: the kernel and date it was recorded on (netkit.provenance)
    relay: "Relay | None" = None   # a program on the host accepted it and opened a second connection (docker-proxy)

    # -- what happened (all read from the outcome) ---------------------------
    def decided(self, outcome: Outcome) -> "Journey":
        """This journey with its outcome (see `netkit.outcome.decide`)."""
        return replace(self, outcome=outcome)

    @property
    def delivered(self) -> bool:
        return self.outcome is not None and self.outcome.delivered

    @property
    def reason(self) -> str:
        """What happened, in plain words, written from the outcome."""
        from .explain import sentence
        text = sentence(self)
        return provenance.Recorded(text, self.recorded) if self.recorded else text

    @property
    def died_at(self) -> str | None:
        """The point where the probe's "died here" mark goes (None when delivered)."""
        return None if self.outcome is None or self.delivered else self.outcome.at

    @property
    def mark(self) -> Mark | None:
        """Where the "died here" mark goes in every picture and table (None when delivered, or nowhere to put it)."""
        o = self.outcome
        if o is None or o.delivered:
            return None
        point, node = o.at, o.node
        if point is None and self.local:
            point, node = "host:lo", "host"   # the host's probe to itself: it went over lo, which no point watches
        if point is None:
            return None
        words = translated(_MARK_WORDS[o.result]) if o.result in _MARK_WORDS else str(o.result)
        if o.result is Result.DROPPED:
            words = (_("reply dropped in {hook}") if o.packet == "reply" else
                     _("request dropped in {hook}")).format(hook=o.hook or o.verdict.chain)
        elif o.result is Result.REFUSED and self.dport:
            words = _("refused: nothing listens on {port}").format(port=self.dport)
        elif o.result is Result.NO_ROUTE_BACK and o.next and self.seen(o.next, "request"):
            words = _("no route back to {address}").format(address=self.hop(o.next).request.src)
        then = o.next if o.last is not None and o.next is not None else None
        return Mark(o.packet or "request", point, node, then, o.hook, words)

    @property
    def local(self) -> bool:
        """True when the host sent the probe to one of its own addresses (the kernel routes it over lo)."""
        return self.src == "host" and owner(self.dst) == "host"

    # -- questions a notebook asks ------------------------------------------
    def hop(self, point: str) -> Hop:
        for hop in self.hops:
            if hop.point == point:
                return hop
        raise UnknownPoint(_("{point!r} is not a point of this journey; points: {points}").format(
            point=point, points=", ".join(self.points)), point=point)

    @property
    def points(self) -> tuple[str, ...]:
        return tuple(hop.point for hop in self.hops)

    def seen(self, point: str, kind: str = "request") -> bool:
        """Was the request (or the reply) seen at `point`?"""
        return getattr(self.hop(point), kind) is not None

    def addresses(self, point: str, kind: str = "request") -> str | None:
        """``"src > dst"`` as seen at `point`, or None where the packet was not seen."""
        sighting = getattr(self.hop(point), kind)
        return sighting.addresses if sighting else None

    def rewritten(self, point: str, kind: str = "request") -> bool:
        """True if the addresses at `point` differ from those the packet set off with.

        The request sets off from the sender; the reply from the far end, so
        after conntrack has undone a MASQUERADE the reply counts as rewritten
        from hwchiu0 back to c1 (8.8.8.8 > 10.0.2.15 became 8.8.8.8 > 10.55.66.2).
        """
        sighting = getattr(self.hop(point), kind)
        first = self.first(kind)
        return bool(sighting and first and (sighting.src, sighting.dst) != (first.src, first.dst))

    def rewrites_at(self, point: str, kind: str = "request") -> tuple:
        """The outcome's rewrites (`netkit.outcome.Rewrite`) `kind` carries at `point`: those made at or
        before it on that packet's way, the latest for each field. Empty where nothing was rewritten."""
        if self.outcome is None or getattr(self.hop(point), kind) is None:
            return ()
        way = [hop.point for hop in self.hops if hop.on_path]
        way = way if kind == "request" else way[::-1]
        if point not in way:
            return ()
        reached = set(way[:way.index(point) + 1])
        held = {r.field: r for r in self.outcome.rewrites if r.packet == kind and r.point in reached}
        return tuple(held[f] for f in ("src", "dst") if f in held)

    def first(self, kind: str = "request") -> Sighting | None:
        """The sighting the request (or the reply) set off with: the first point it was seen at."""
        hops = self.hops if kind == "request" else tuple(reversed(self.hops))
        return next((getattr(h, kind) for h in hops if getattr(h, kind) is not None), None)

    @property
    def dropped_by(self) -> Verdict | None:
        """The netfilter verdict that dropped the packet, if one did."""
        if self.outcome is not None and self.outcome.result is Result.DROPPED:
            return self.outcome.verdict
        return None

    def passed(self, hook: str, kind: str = "request") -> bool:
        """Did the request (or reply) pass netfilter's `hook` (PREROUTING, INPUT, FORWARD, ...) in the host?"""
        return any(h[0] == kind and h[1] == hook.upper() for h in self.hooks)

    def path(self, kind: str = "request") -> list[str]:
        """The chains the request (or reply) went through in the host, a line per table and hook, each
        ending with what decided there: ``filter FORWARD → DOCKER-USER → DOCKER-FORWARD → ACCEPT``."""
        segments: list[list] = []           # [table, chains, the last verdict]
        for v in self.verdicts:
            if v.kind != kind:
                continue
            entering = v.chain in HOOKS and (not segments or (segments[-1][0], segments[-1][1][0]) != (v.table, v.chain))
            if entering or not segments:
                segments.append([v.table, [v.chain], v])
            segment = segments[-1]
            if v.chain not in segment[1]:
                segment[1].append(v.chain)
            if v.verdict not in FINAL and v.verdict not in segment[1]:
                segment[1].append(v.verdict)             # a jump: the chain it entered
            segment[2] = v
        lines = []
        for table, chains, last in segments:
            end = _("policy {verdict}").format(verdict=last.verdict) if last.rule == "policy" else last.verdict
            line = f"{table} {' → '.join(chains)} → {end}"
            lines.append(_("{way} (in {chain})").format(way=line, chain=last.chain) if last.chain != chains[-1]
                         else line)
        return lines

    @property
    def replied(self) -> bool:
        return any(hop.reply is not None for hop in self.hops)

    # -- evidence -------------------------------------------------------------
    def to_dict(self) -> dict:
        data = asdict(self)
        data["outcome"] = self.outcome.to_dict() if self.outcome is not None else None
        data["relay"] = self.relay.to_dict() if self.relay is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Journey":
        data = dict(data)

        def sighting(d):
            return Sighting(**d) if d else None

        data["hops"] = tuple(Hop(point=h["point"], on_path=h.get("on_path", True),
                                 request=sighting(h.get("request")), reply=sighting(h.get("reply")))
                             for h in data.get("hops", ()))
        data["verdicts"] = tuple(Verdict(**v) for v in data.get("verdicts", ()))
        data["hooks"] = tuple(tuple(h) for h in data.get("hooks", ()))
        data["outcome"] = Outcome.from_dict(data["outcome"]) if data.get("outcome") else None
        data["relay"] = Relay.from_dict(data["relay"]) if data.get("relay") else None
        data["conntrack"] = tuple(ConntrackEntry(
            proto=c["proto"], original=tuple(c["original"]), reply=tuple(c["reply"]), text=c.get("text", ""),
            original_ports=tuple(c["original_ports"]) if c.get("original_ports") else None,
            reply_ports=tuple(c["reply_ports"]) if c.get("reply_ports") else None)
            for c in data.get("conntrack", ()))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self, path: str | Path | None = None, indent: int = 1) -> str:
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "Journey":
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))

    def sightings(self) -> list[Sighting]:
        """Every sighting, in the order the packets were seen."""
        order = {hop.point: index for index, hop in enumerate(self.hops)}
        found = [s for hop in self.hops for s in (hop.request, hop.reply) if s is not None]
        # Frames a veth pair passes on are stamped in the same microsecond: break ties by path order.
        return sorted(found, key=lambda s: (s.time, order[s.point] if s.kind == "request" else -order[s.point]))

    def to_pcap(self, path: str | Path) -> Path:
        """Write the captured frames as pcapng, each on an interface named after its point.

        Wireshark and tshark show the point as the interface name and the
        journey's verdicts as packet comments.
        """
        from scapy.layers.l2 import Ether
        from scapy.utils import PcapNgWriter

        path = Path(path)
        with PcapNgWriter(str(path)) as writer:
            for s in self.sightings():
                if not s.frame:
                    continue
                packet = Ether(bytes.fromhex(s.frame))
                packet.time = self.started + s.time
                packet.sniffed_on = s.point
                packet.comments = [f"{s.kind} at {s.point}: {s.addresses}".encode()]
                writer.write(packet)
        return path

    # -- display --------------------------------------------------------------
    def table(self) -> str:
        """A plain-text table: one row per point, request and reply addresses, and the "died here" mark."""
        rows = [f"{pad(_('point'), 15)} {pad(kind_word('request'), 28)} {pad(kind_word('reply'), 28)}"]
        mark = self.mark
        for point, req, rep in self._rows():
            died = f" {self._mark_text()}" if mark is not None and mark.point == point else ""
            rows.append(f"{point:<15} {req or '-':<28} {rep or '-':<28}{died}".rstrip())
        return "\n".join(rows)

    def _rows(self) -> list[tuple[str, str | None, str | None]]:
        """The table's rows: (point, request, reply) for each point on the path or seen, and host:lo when the
        mark is there."""
        rows = [(hop.point, hop.request and hop.request.addresses, hop.reply and hop.reply.addresses)
                for hop in self.hops if hop.on_path or hop.request is not None or hop.reply is not None]
        mark = self.mark
        if mark is not None and mark.point not in [r[0] for r in rows]:
            rows.append((mark.point, None, None))
        return rows

    def _mark_text(self) -> str:
        """What the table writes beside the mark: ``✘ request dropped in FORWARD, on its way to host:veth1``."""
        mark = self.mark
        if mark.then:
            return _("✘ {words}, on its way to {point}").format(words=mark.words, point=mark.then)
        if mark.node and not mark.point.startswith(f"{mark.node}:"):
            return _("✘ {words} (in {node})").format(words=mark.words, node=mark.node)
        return f"✘ {mark.words}"

    def __str__(self) -> str:
        head = (_("{src} -> {dst} ({proto}): delivered") if self.delivered else
                _("{src} -> {dst} ({proto}): NOT delivered")).format(src=self.src, dst=self.dst, proto=self.proto)
        lines = [head, f"  {self.reason}", self.table()]
        if self.recorded:
            lines.insert(0, _("({label})").format(label=provenance.label(self.recorded)))
        for kind in ("request", "reply"):
            passed = [h[1] for h in self.hooks if h[0] == kind]
            if passed:
                said = (_("request passed the host's hooks: {hooks}") if kind == "request" else
                        _("reply passed the host's hooks: {hooks}"))
                lines.append(said.format(hooks=" > ".join(passed)))
        if self.verdicts:
            lines.append(_("netfilter:"))
            lines += [f"  {pad(kind_word(v.kind), 7)} {v}" + (f"  [{v.iif} -> {v.oif}]" if v.iif or v.oif else "")
                      for v in self.verdicts]
        for entry in self.conntrack:
            lines.append(f"conntrack: {entry.text}")
        if self.relay is not None and self.relay.journey is not None:
            lines.append(self._relay_heading())
            lines += ["  " + line for line in str(self.relay.journey).splitlines()]
        return "\n".join(lines)

    def _relay_heading(self) -> str:
        return _("the second connection, which {program} (pid {pid}) opened:").format(
            program=self.relay.program, pid=self.relay.pid)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        """The journey as a notebook shows it: outcome, one row per point, verdicts, conntrack."""
        import html as h
        good, bad, grey = "#009E73", "#D62728", "#8C8C8C"
        rewrite, rewrite_face = "#E69F00", "#FCEBC2"   # as netkit.plots draws an address NAT rewrote
        color = good if self.delivered else bad
        head = (_("{src} → {dst} ({proto}): delivered") if self.delivered else
                _("{src} → {dst} ({proto}): NOT delivered")).format(src=self.src, dst=self.dst, proto=self.proto)
        parts = [provenance.html_label(self.recorded)] if self.recorded else []
        parts += [f'<div style="font-size:14px"><b style="color:{color}">{h.escape(head)}</b><br>'
                  f'{h.escape(self.reason)}</div>',
                  f'<table style="font-family:monospace;font-size:13px"><tr><th>{h.escape(_("point"))}</th>'
                  f'<th style="text-align:left">{h.escape(_("request seen"))}</th>'
                  f'<th style="text-align:left">{h.escape(_("reply seen"))}</th></tr>']
        mark = self.mark
        for point, req, rep in self._rows():
            cells = []
            for kind, addresses in (("request", req), ("reply", rep)):
                if addresses is None:
                    cells.append(f'<td style="text-align:left;color:{grey}">–</td>')
                elif point in self.points and self.rewrites_at(point, kind):
                    cells.append(f'<td style="text-align:left;background:{rewrite_face};'
                                 f'box-shadow:inset 0 0 0 2px {rewrite}">{h.escape(addresses)} ◆</td>')
                else:
                    cells.append(f'<td style="text-align:left">{h.escape(addresses)}</td>')
            died = (f'<td style="color:{bad};font-weight:bold">{h.escape(self._mark_text())}</td>'
                    if mark is not None and mark.point == point else "<td></td>")
            parts.append(f"<tr><td>{h.escape(point)}</td>{''.join(cells)}{died}</tr>")
        parts.append("</table>")
        if self.verdicts:
            ways = {"request": _("the request's way through netfilter: {chains}"),
                    "reply": _("the reply's way through netfilter: {chains}")}
            paths = "".join(
                "<div style='font-size:13px'>" + h.escape(ways[kind], quote=False).format(
                    chains="; ".join(f"<code>{h.escape(line)}</code>" for line in self.path(kind))) + "</div>"
                for kind in ("request", "reply") if self.path(kind))
            said = h.escape(_("{kind}: {verdict}"), quote=False)
            rows = "".join(
                f'<li style="color:{bad if v.dropped else "inherit"}">'
                + said.format(kind=h.escape(kind_word(v.kind)), verdict=h.escape(str(v)))
                + (f" <span style='color:{grey}'>[{h.escape(v.iif)} → {h.escape(v.oif)}]</span>" if v.iif or v.oif else "")
                + "</li>" for v in self.verdicts)
            decisions = _("every netfilter decision ({count})").format(count=len(self.verdicts))
            parts.append(paths + f"<details style='font-size:13px'><summary>{h.escape(decisions)}"
                                 f"</summary><ul>{rows}</ul></details>")
        for kind in ("request", "reply"):
            passed = [hook[1] for hook in self.hooks if hook[0] == kind]
            if passed:
                said = (_("the request passed the host's hooks: {hooks}") if kind == "request" else
                        _("the reply passed the host's hooks: {hooks}"))
                said = h.escape(said.format(hooks=" → ".join(passed)), quote=False)
                parts.append(f"<div style='font-size:13px'>{said}</div>")
        for entry in self.conntrack:
            parts.append(f"<div style='font-size:13px'>conntrack: <code>{h.escape(entry.text)}</code></div>")
        if self.relay is not None and self.relay.journey is not None:
            parts.append(f"<div style='margin:8px 0 0 16px;padding-left:8px;border-left:3px solid {grey}'>"
                         f"<div style='font-size:13px'><b>{h.escape(self._relay_heading())}</b></div>"
                         f"{self.relay.journey._repr_html_()}</div>")
        return "".join(parts)


