"""Turn what a probe recorded into a Journey, and a journey's outcome into a sentence.

Pure code, tested from recorded data. The agent (`netkit.probe`) records;
this module reads the records and answers the article's questions: where was
the packet seen and with which addresses, who filtered it, what conntrack
remembers. What *happened* is decided once, by `netkit.outcome.decide`; the
sentence a student reads (`sentence`) is written from that decision.

The records are plain dicts (JSON-able):

- ``frames``: ``{"point", "time", "frame"}`` (frame as hex, Ethernet);
- ``trace``: netfilter's trace messages as events (see `netkit.trace`):
  ``{"id", "table", "chain", "type", "handle", "verdict", "target", "iif",
  "oif", "network", "transport"}``;
- ``rules``: ``{"<table> <chain>": [[handle, "-A ..."], ...]}`` to name rules;
- ``conntrack``: the lines ``conntrack -L`` printed;
- ``send_errno`` (with ``send_errname`` and the ``send_error`` text, shown only), ``replied``,
  ``refused``, ``route_back``, ``mismatch``: what the sender and the receiver's routing table said
  (`outcome.Facts`, which decides from the errno).
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import replace

from . import topology
from .i18n import _
from .journey import ConntrackEntry, Hop, Journey, Relay, Sighting, Verdict
from .outcome import Facts, Outcome, Result, decide

ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
TCP_FLAGS = ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "."))


def parse_frame(frame: bytes) -> dict | None:
    """The IPv4 fields of an Ethernet frame, or None if it is not IPv4."""
    if len(frame) < 14:
        return None
    offset = 12
    ethertype = struct.unpack_from("!H", frame, offset)[0]
    if ethertype == ETH_P_8021Q:
        offset += 4
        ethertype = struct.unpack_from("!H", frame, offset)[0]
    ip = frame[offset + 2:]
    if ethertype != ETH_P_IP or len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 0x0F) * 4
    packet = {
        "proto": ip[9], "ttl": ip[8], "length": struct.unpack_from("!H", ip, 2)[0] - ihl,
        "src": socket.inet_ntoa(ip[12:16]), "dst": socket.inet_ntoa(ip[16:20]),
    }
    l4 = ip[ihl:]
    if packet["proto"] == socket.IPPROTO_ICMP and len(l4) >= 8:
        icmp_type, code, ident, seq = struct.unpack_from("!BBxxHH", l4)
        packet.update(icmp_type=icmp_type, icmp_code=code, id=ident, seq=seq)
    elif packet["proto"] == socket.IPPROTO_TCP and len(l4) >= 14:
        sport, dport, flags = struct.unpack_from("!HH8xxB", l4)
        packet.update(sport=sport, dport=dport, flags=flags)
    return packet


def describe(packet: dict) -> str:
    """A tcpdump-like one-line description of a parsed packet."""
    if "icmp_type" in packet:
        kind = {8: "echo request", 0: "echo reply", 3: "destination unreachable"}.get(
            packet["icmp_type"], f"type {packet['icmp_type']}")
        return (f"{packet['src']} > {packet['dst']}: ICMP {kind}, id {packet['id']}, seq {packet['seq']}, "
                f"length {packet['length']}")
    if "sport" in packet:
        flags = "".join(name for bit, name in TCP_FLAGS if packet["flags"] & bit) or "none"
        return (f"{packet['src']}.{packet['sport']} > {packet['dst']}.{packet['dport']}: "
                f"Flags [{flags}]")
    return f"{packet['src']} > {packet['dst']}: proto {packet['proto']}"


# -- netfilter's trace ---------------------------------------------------------------
def _header_fields(event: dict) -> dict:
    """The packet fields of a trace event that carries the packet's headers (the first of each chain)."""
    data = bytes.fromhex(event["network"])
    fields = {"iif": event.get("iif", ""), "oif": event.get("oif", "")}
    if len(data) >= 20 and data[0] >> 4 == 4:
        proto = data[9]
        fields.update(saddr=socket.inet_ntoa(data[12:16]), daddr=socket.inet_ntoa(data[16:20]))
        l4 = bytes.fromhex(event.get("transport", ""))
        if proto == socket.IPPROTO_ICMP and len(l4) >= 8:
            kind, ident = struct.unpack_from("!BxxxH", l4)
            fields.update(icmp_type={8: "echo-request", 0: "echo-reply"}.get(kind, str(kind)), icmp_id=ident)
        elif proto == socket.IPPROTO_TCP and len(l4) >= 14:
            sport, dport, flags = struct.unpack_from("!HH8xxB", l4)
            fields.update(sport=sport, dport=dport, tcp_flags=flags)
    return fields


def visits(events: list[dict]) -> list[dict]:
    """Trace events grouped into chain visits, in order: one per (trace id, table, chain).

    Each visit has the packet's fields (``iif``, ``oif``, ``saddr``, ``daddr``,
    ``icmp_type``, ``icmp_id``, ``sport``, ``dport``, ``tcp_flags``) and the
    decisions made in that chain: ``("rule", handle, verdict)`` or
    ``("policy", verdict)``, verdicts in capitals (``JUMP DOCKER-USER``). The
    kernel sends the packet's headers with the first event of each base chain;
    a user chain reached by a jump shows the packet of the chain that jumped.
    Visits keep the order the packet made them: coming back from a jump into
    a chain starts a new visit of it, so decisions read in the order they were
    taken.
    """
    found: list[dict] = []
    current: dict[str, tuple[tuple[str, str, str], dict]] = {}   # trace id -> the chain it is in now, its visit
    last: dict[tuple[str, str], dict] = {}     # (trace id, table) -> the packet's fields seen last
    for event in events:
        key = (event["id"], event["table"], event["chain"])
        if event.get("network"):
            last[key[:2]] = _header_fields(event)
            visit = None                           # headers: a new traversal of this chain
        else:
            now = current.get(event["id"])
            visit = now[1] if now and now[0] == key else None   # back from a jump: a new visit, in order
        if visit is None:
            visit = {"trace": event["id"], "table": event["table"], "chain": event["chain"], "decisions": [],
                     "headers": bool(event.get("network")), **last.get(key[:2], {})}
            found.append(visit)
        current[event["id"]] = (key, visit)
        verdict = (event.get("verdict") or "").upper()
        if event["type"] == "policy":
            visit["decisions"].append(("policy", verdict))
        elif event["type"] == "rule" and event.get("handle") is not None:
            # (the kernel also reports a chain's end as a "rule" with no handle; nft does not print it)
            if event.get("target"):
                verdict = f"{verdict} {event['target']}"
            visit["decisions"].append(("rule", event.get("handle"), verdict or "CONTINUE"))
    return found


def _rule_text(rules: dict, table: str, chain: str, handle: int | None) -> str:
    """The iptables spelling of a traced rule, found by its nft handle."""
    for rule_handle, iptables in rules.get(f"{table} {chain}", []):
        if rule_handle == handle:
            return iptables
    return f"nft rule (handle {handle}) in {table} {chain}"   # data, not prose: the same in every language


def _target(rule: str, verdict: str) -> str:
    jump = re.search(r"-j (\S+)", rule)
    if jump and jump[1] not in ("ACCEPT", "DROP", "RETURN"):
        return jump[1]  # MASQUERADE, DNAT, SNAT, a user chain
    if verdict.startswith(("JUMP", "GOTO")):
        words = verdict.split()
        return words[1] if len(words) > 1 else words[0]   # the chain it jumped to (a vmap's jump names it too)
    return verdict


# -- conntrack -------------------------------------------------------------------
def parse_conntrack(lines: list[str]) -> list[ConntrackEntry]:
    """`conntrack -L` lines as entries: the first src/dst pair, then the reply pair."""
    entries = []
    for line in lines:
        tuples = re.findall(r"src=(\S+) dst=(\S+)(?: sport=(\d+) dport=(\d+))?", line)
        if len(tuples) >= 2:
            (osrc, odst, osport, odport), (rsrc, rdst, rsport, rdport) = tuples[:2]
            entries.append(ConntrackEntry(
                proto=line.split()[0], original=(osrc, odst), reply=(rsrc, rdst), text=" ".join(line.split()),
                original_ports=(int(osport), int(odport)) if osport else None,
                reply_ports=(int(rsport), int(rdport)) if rsport else None))
    return entries


# -- the journey ------------------------------------------------------------------
def build(raw: dict) -> Journey:
    """The Journey of one probe, from the agent's records (see the module docstring)."""
    src, dst, proto = raw["src"], raw["dst"], raw.get("proto", "icmp")
    ident, dport = raw.get("id"), raw.get("dport")
    entries = parse_conntrack(raw.get("conntrack", []))
    dst_node = topology.owner(dst)
    path = topology.path(src, dst_node)
    moved = next((e for e in entries if e.dnat), None)
    if moved is not None and topology.owner(moved.reply[0]) not in (None, dst_node):
        # DNAT sent it on: from the node that owns dst to the node that owns the new destination.
        dst_node = topology.owner(moved.reply[0])
        onward = topology.path(topology.owner(dst), dst_node)
        if path and onward and path[-1] == onward[0]:
            onward = onward[1:]
        path = tuple(path) + tuple(p for p in onward if p not in path)
    sightings: dict[str, dict[str, Sighting]] = {}
    reply_ids = {ident}
    for entry in entries:
        found = re.search(r"id=(\d+).*id=(\d+)", entry.text)
        if found:
            reply_ids.add(int(found[2]))
    for record in raw.get("frames", []):
        frame = bytes.fromhex(record["frame"])
        packet = parse_frame(frame)
        kind = _kind(packet, proto, reply_ids, raw.get("sport"), dport)
        if kind is None:
            continue
        seen = sightings.setdefault(record["point"], {})
        if kind in seen:
            continue
        seen[kind] = Sighting(point=record["point"], kind=kind, src=packet["src"], dst=packet["dst"],
                              time=round(record["time"], 6), summary=describe(packet),
                              sport=packet.get("sport"), dport=packet.get("dport"), frame=record["frame"],
                              flags=packet.get("flags"), ttl=packet.get("ttl"))
    watched = raw.get("points") or topology.BASE_POINTS
    order = list(path) + [p for p in watched if p not in path]
    hops = tuple(Hop(point=p, on_path=p in path, request=sightings.get(p, {}).get("request"),
                     reply=sightings.get(p, {}).get("reply")) for p in order)
    mine = _probe_visits(raw, reply_ids)
    journey = Journey(src=src, dst=dst, proto=proto, src_address=raw.get("src_address", ""),
                      hops=hops, verdicts=tuple(_verdicts(mine, raw.get("rules", {}))),
                      hooks=tuple(_hooks(mine)), conntrack=tuple(entries),
                      seconds=round(raw.get("seconds", 0.0), 4), label=raw.get("label", ""), dport=dport,
                      started=raw.get("started", 0.0), timeout=float(raw.get("timeout") or 0.0))
    journey = journey.decided(decide(journey, Facts.from_raw(raw), dst_node))
    if raw.get("relay"):
        found = raw["relay"]
        onward = build({**found["raw"], "label": raw.get("label", "")}) if found.get("raw") else None
        journey = replace(journey, relay=Relay(found["program"], found.get("pid"), found["listen"], onward))
    return journey


def _kind(packet: dict | None, proto: str, ids: set, sport, dport) -> str | None:
    if packet is None:
        return None
    if proto == "icmp" and packet.get("id") in ids:
        return {ICMP_ECHO_REQUEST: "request", ICMP_ECHO_REPLY: "reply"}.get(packet.get("icmp_type"))
    if proto == "tcp" and "sport" in packet:
        if packet["sport"] == sport:
            return "request"
        if packet["dport"] == sport:
            return "reply"
    return None


def _probe_visits(raw: dict, ids: set) -> list[dict]:
    """The trace's chain visits that belong to the probe, each with its "kind" (request or reply).

    A trace id follows one packet through every chain, so a visit whose
    packet fields do not name the probe still belongs to it when another
    visit of the same trace id does.
    """
    found = visits(raw.get("trace", []))
    icmp, sport = raw.get("proto", "icmp") == "icmp", raw.get("sport")

    def own(visit: dict) -> str | None:
        """The kind the visit's own packet fields name, if they name the probe's packet."""
        if icmp:
            if visit.get("icmp_id") in ids:
                return "reply" if visit.get("icmp_type") == "echo-reply" else "request"
            return None
        # The connection's first packet each way: the SYN, and the SYN-ACK or reset answering it.
        flags = visit.get("tcp_flags", 0)
        if visit.get("sport") == sport and flags & 0x02 and not flags & 0x10:
            return "request"
        if visit.get("dport") == sport and flags & (0x02 | 0x04):
            return "reply"
        return None

    # The kernel's trace id comes from the packet buffer's address, so one id can follow the request and
    # then its reply (or a later packet). So the packet a trace id follows is decided again at every visit
    # that carries headers: by its own fields, or, when NAT has rewritten them, as the same packet as the
    # id's visit before (same ICMP type or TCP flags). A chain reached by a jump has no headers: it belongs
    # to the packet of the chain that jumped.
    following: dict[str, tuple[str | None, tuple]] = {}      # trace id -> (kind, packet signature)
    mine = []
    for visit in found:
        signature = (visit.get("icmp_type"), visit.get("tcp_flags"))
        if visit.get("headers"):
            kind = own(visit)
            before = following.get(visit["trace"])
            if kind is None and before and before[1] == signature:
                kind = before[0]
            following[visit["trace"]] = (kind, signature)
        else:
            kind = following.get(visit["trace"], (None, ()))[0]
        if kind:
            mine.append({**visit, "kind": kind})
    return mine


def dropped(raw: dict, ids: set) -> bool:
    """Has a netfilter rule or policy (not the lab's own trace table) dropped one of the probe's packets?"""
    return any(not v["table"].startswith("netkit") and any(d[-1] in ("DROP", "REJECT") for d in v["decisions"])
               for v in _probe_visits(raw, ids))


def _verdicts(found: list[dict], rules: dict) -> list[Verdict]:
    verdicts = []
    for visit in found:
        if visit["table"].startswith("netkit"):
            continue  # the lab's own trace switch, not part of the lesson
        for decision in visit["decisions"]:
            if decision[0] == "policy":
                rule, verdict = "policy", decision[1]
            else:
                handle, verdict = decision[1:]
                rule = _rule_text(rules, visit["table"], visit["chain"], handle)
                verdict = _target(rule, verdict)
            verdicts.append(Verdict(table=visit["table"], chain=visit["chain"], rule=rule, verdict=verdict,
                                    kind=visit["kind"], iif=visit.get("iif", ""), oif=visit.get("oif", "")))
    return verdicts


def _hooks(found: list[dict]) -> list[tuple[str, str, str, str]]:
    """(kind, HOOK, iif, oif) for each netfilter hook the packet passed, from the lab's trace table."""
    return [(v["kind"], v["chain"].upper(), v.get("iif", ""), v.get("oif", ""))
            for v in found if v["table"].startswith("netkit")]


# -- the sentence -----------------------------------------------------------------------
def sentence(journey: Journey) -> str:
    """What happened to the probe, in plain words, written from its outcome (in the language in use)."""
    o: Outcome = journey.outcome
    src, dst = journey.src, journey.dst
    target = f"{dst}:{journey.dport}" if journey.proto == "tcp" else dst
    if o is None:
        return ""
    if o.result is Result.DELIVERED:
        return _delivered(journey, target)
    if o.result is Result.NO_ROUTE:
        return _("{src} has no route to {dst} ({error})").format(src=src, dst=dst, error=o.error)
    if o.result is Result.SEND_ERROR:
        return _("{src} could not reach {dst}: {error}").format(src=src, dst=dst, error=o.error)
    if o.result is Result.DROPPED:
        return _("dropped by {verdict}").format(verdict=o.verdict)
    if o.result is Result.WRONG_SOURCE:
        answer = journey.hop(o.last).reply
        sender = f"{answer.src}:{answer.sport}" if answer is not None else o.answered_by
        return _("the answer came from {sender}, not from {target} which {src} called, so {src} could not "
                 "match it to its connection: the reply went straight back without passing the host's "
                 "conntrack, which would have undone the DNAT (hairpin NAT is missing)"
                 ).format(sender=sender, target=target, src=src)
    if o.result is Result.REFUSED:
        if o.node == "host":
            return _("connection refused: {address} (the host itself) answered the SYN with a reset, since "
                     "nothing listens on port {port} there").format(address=o.answered_by, port=journey.dport)
        return _("connection refused: {address} answered the SYN with a reset, since nothing listens on port "
                 "{port} there").format(address=o.answered_by, port=journey.dport)
    if o.result is Result.NO_ROUTE_BACK:
        seen = journey.hop(o.next).request if o.next else None
        back_to = seen.src if seen else journey.src_address
        return _("{dst} got the request but its reply never came back: it has no route to {back_to}"
                 ).format(dst=dst, back_to=back_to)
    if o.result is Result.REPLY_LOST:
        return _("the reply was lost after {point}").format(point=o.last)
    if o.result is Result.NEVER_LEFT:
        return _("the request never left {src}").format(src=src)
    return _("no reply within {seconds:g} s; the request was last seen at {point}").format(
        seconds=journey.timeout, point=o.last)


def _delivered(journey: Journey, target: str) -> str:
    o = journey.outcome
    if journey.relay is not None:
        return _relayed(journey, target)
    if journey.proto == "tcp":
        moved = next((e for e in journey.conntrack if e.dnat), None)
        text = _("{target} accepted the connection (the SYN got a SYN-ACK back to {src})").format(
            target=target, src=journey.src)
        if moved is not None:
            text += _("; conntrack rewrote the destination {before} to {after} (DNAT)").format(
                before=moved.where("original", 1), after=moved.where("reply", 0))
            if moved.reply[1] != moved.original[0]:
                text += _(" and the source {before} to {after} (MASQUERADE), so the answer comes back through "
                          "the host, and undid both on the reply").format(before=moved.original[0], after=moved.reply[1])
            else:
                text += _(", and the reply's source back")
        return text
    text = _("{dst} answered and the reply came back to {src}").format(dst=journey.dst, src=journey.src)
    source = next((r for r in o.rewrites if r.packet == "request" and r.field == "src"), None)
    if source is not None:
        text += _("; conntrack rewrote {before} to {after} on the way out and back on the way in").format(
            before=source.before, after=source.after)
    return text


def _relayed(journey: Journey, target: str) -> str:
    """A connection a program on the host (docker-proxy) accepted and carried on with a connection of its own."""
    relay = journey.relay
    text = _("{program} (pid {pid}), listening on {listen}, accepted the connection to {target} in the host: no "
             "DNAT took it on, so it went up the host's INPUT chain to the proxy's socket").format(
        program=relay.program, pid=relay.pid, listen=relay.listen, target=target)
    onward = relay.journey
    if onward is None or onward.src_address == "":
        return text + _("; the proxy's own connection to the container was not seen")
    text += _("; then it opened a second connection, {src} → {dst}:{port}: {reason}").format(
        src=onward.src_address, dst=onward.dst, port=onward.dport, reason=sentence(onward))
    return text
