"""Turn what a probe recorded into a Journey: frames, trace lines, conntrack lines.

Pure code, tested from recorded data. The agent (`netkit.probe`) records; this
module reads the records and answers the article's questions: where was the
packet seen and with which addresses, who filtered it, and why it did or did
not arrive.

The records are plain dicts (JSON-able):

- ``frames``: ``{"point", "time", "frame"}`` (frame as hex, Ethernet);
- ``trace``: the lines ``nft monitor trace`` printed in the host;
- ``rules``: ``{"<table> <chain>": [[handle, "-A ..."], ...]}`` to name rules;
- ``conntrack``: the lines ``conntrack -L`` printed;
- ``send_error``, ``replied``, ``route_back``: what the sender and the
  receiver's routing table said.
"""

from __future__ import annotations

import re
import socket
import struct

from . import topology
from .journey import ConntrackEntry, Hop, Journey, Sighting, Verdict

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
        icmp_type, code, _, ident, seq = struct.unpack_from("!BBHHH", l4)
        packet.update(icmp_type=icmp_type, icmp_code=code, id=ident, seq=seq)
    elif packet["proto"] == socket.IPPROTO_TCP and len(l4) >= 14:
        sport, dport, _, _, _, flags = struct.unpack_from("!HHIIBB", l4)
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


# -- nft monitor trace ---------------------------------------------------------
TRACE_RE = re.compile(r"^trace id (?P<id>\w+) (?P<family>\w+) (?P<table>\S+) (?P<chain>\S+) (?P<rest>.*)$")


def parse_trace(lines: list[str]) -> list[dict]:
    """Group `nft monitor trace` lines into one dict per (trace id, chain) visit.

    Each visit has the packet's fields (``iif``, ``oif``, ``saddr``, ``daddr``,
    ``icmp_type``, ``icmp_id``, ``sport``, ``dport``) and the decisions made
    in that chain: ``("rule", text, handle, verdict)`` or ``("policy", verdict)``.
    """
    visits: list[dict] = []
    current: dict[tuple[str, str, str], dict] = {}
    last: dict[tuple[str, str], dict] = {}   # (trace id, table) -> the chain visit the packet entered last
    for line in lines:
        match = TRACE_RE.match(line.strip())
        if not match:
            continue
        key = (match["id"], match["table"], match["chain"])
        rest = match["rest"]
        if rest.startswith("packet:"):
            visit = {"trace": match["id"], "family": match["family"], "table": match["table"],
                     "chain": match["chain"], "decisions": [], **_packet_fields(rest)}
            visits.append(visit)
            current[key] = last[(match["id"], match["table"])] = visit
            continue
        visit = current.get(key)
        if visit is None:
            # A user chain (DOCKER-USER, ...) reached by a jump: nft prints no packet line for it,
            # the packet is the one of the chain that jumped.
            entered = last.get((match["id"], match["table"]))
            if entered is None:
                continue
            visit = {**entered, "chain": match["chain"], "decisions": []}
            visits.append(visit)
            current[key] = visit
        if rest.startswith("policy "):
            visit["decisions"].append(("policy", rest.split()[1].upper()))
        elif rest.startswith("rule ") or rest.startswith("unknown rule"):
            verdict = re.search(r"\(verdict (\w+)(?: ([\w-]+))?\)", rest)
            handle = re.search(r"handle (\d+)", rest)
            text = re.sub(r"\s*\(verdict [^)]*\)\s*$", "", rest)
            text = re.sub(r"^rule ", "", text)
            visit["decisions"].append((
                "rule", text, int(handle[1]) if handle else None,
                (verdict[1].upper() + (" " + verdict[2] if verdict[2] else "")) if verdict else "CONTINUE"))
    return visits


def _packet_fields(text: str) -> dict:
    fields = {}
    for name, pattern in (("iif", r'iif "([^"]+)"'), ("oif", r'oif "([^"]+)"'),
                          ("saddr", r"ip saddr (\S+)"), ("daddr", r"ip daddr (\S+)"),
                          ("icmp_type", r"icmp type (\S+)"), ("icmp_id", r"icmp id (\d+)"),
                          ("sport", r"tcp sport (\d+)"), ("dport", r"tcp dport (\d+)")):
        found = re.search(pattern, text)
        if found:
            value = found[1]
            fields[name] = int(value) if name in ("icmp_id", "sport", "dport") else value
    flags = re.search(r"tcp flags == ((?:\w+)(?: \| \w+)*)", text)
    if flags:
        fields["tcp_flags"] = _tcp_flags(flags[1])
    return fields


TCP_FLAG_BITS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20}


def _tcp_flags(text: str) -> int:
    """nft's spelling of TCP flags ("syn", "0x12", "syn | ack") as a number."""
    value = 0
    for part in text.split("|"):
        part = part.strip()
        value |= int(part, 16) if part.startswith("0x") else TCP_FLAG_BITS.get(part, 0)
    return value


def plain_rule(nft_text: str) -> str:
    """An nft rule's text without its counters, to compare a traced rule with a listed one."""
    return " ".join(re.sub(r"counter packets \d+ bytes \d+", "counter", nft_text).split())


def _rule_text(rules: dict, table: str, chain: str, handle: int | None, nft_text: str) -> str:
    """The iptables spelling of a traced rule, found by its nft handle or its text."""
    for rule_handle, listed, iptables in rules.get(f"{table} {chain}", []):
        if rule_handle == handle or (handle is None and listed == plain_rule(nft_text)):
            return iptables
    return nft_text


def _target(rule: str, verdict: str) -> str:
    jump = re.search(r"-j (\S+)", rule)
    if jump and jump[1] not in ("ACCEPT", "DROP", "RETURN"):
        return jump[1]  # MASQUERADE, DNAT, SNAT, a user chain
    if " masquerade" in rule:
        return "MASQUERADE"
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
                              sport=packet.get("sport"), dport=packet.get("dport"), frame=record["frame"])
    watched = raw.get("points") or topology.BASE_POINTS
    order = list(path) + [p for p in watched if p not in path]
    hops = tuple(Hop(point=p, on_path=p in path, request=sightings.get(p, {}).get("request"),
                     reply=sightings.get(p, {}).get("reply")) for p in order)
    visits = _probe_visits(raw, reply_ids)
    verdicts = tuple(_verdicts(visits, raw.get("rules", {})))
    conntrack = tuple(entries)
    journey = Journey(src=src, dst=dst, proto=proto, src_address=raw.get("src_address", ""),
                      hops=hops, verdicts=verdicts, hooks=tuple(_hooks(visits)), conntrack=conntrack,
                      delivered=bool(raw.get("replied")), seconds=round(raw.get("seconds", 0.0), 4),
                      label=raw.get("label", ""), dport=dport, started=raw.get("started", 0.0))
    reason, died_at = _reason(journey, raw, dst_node)
    return Journey(**{**journey.__dict__, "reason": reason, "died_at": died_at})


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
    """The trace's chain visits that belong to the probe, each with its "kind".

    A trace id follows one packet through every chain, so a visit whose packet
    line nft printed without ICMP fields still belongs to the probe when
    another visit of the same trace id names it.
    """
    visits = parse_trace(raw.get("trace", []))
    kinds: dict[str, str] = {}
    for visit in visits:
        if raw.get("proto", "icmp") == "icmp":
            if visit.get("icmp_id") in ids:
                kinds.setdefault(visit["trace"], "reply" if visit.get("icmp_type") == "echo-reply" else "request")
        else:
            # The connection's first packet each way: the SYN, and the SYN-ACK or reset answering it.
            sport, flags = raw.get("sport"), visit.get("tcp_flags", 0)
            if visit.get("sport") == sport and flags & 0x02 and not flags & 0x10:
                kinds.setdefault(visit["trace"], "request")
            elif visit.get("dport") == sport and flags & (0x02 | 0x04):
                kinds.setdefault(visit["trace"], "reply")
    return [{**visit, "kind": kinds[visit["trace"]]} for visit in visits if visit["trace"] in kinds]


def _verdicts(visits: list[dict], rules: dict) -> list[Verdict]:
    verdicts = []
    for visit in visits:
        if visit["table"].startswith("netkit"):
            continue  # the lab's own trace switch, not part of the lesson
        for decision in visit["decisions"]:
            if decision[0] == "policy":
                rule, verdict = "policy", decision[1]
            else:
                _, nft_text, handle, verdict = decision
                rule = _rule_text(rules, visit["table"], visit["chain"], handle, nft_text)
                verdict = _target(rule, verdict)
            verdicts.append(Verdict(table=visit["table"], chain=visit["chain"], rule=rule, verdict=verdict,
                                    kind=visit["kind"], iif=visit.get("iif", ""), oif=visit.get("oif", "")))
    return verdicts


def _hooks(visits: list[dict]) -> list[tuple[str, str, str, str]]:
    """(kind, HOOK, iif, oif) for each netfilter hook the packet passed, from the lab's trace table."""
    return [(v["kind"], v["chain"].upper(), v.get("iif", ""), v.get("oif", ""))
            for v in visits if v["table"].startswith("netkit")]


def _reason(journey: Journey, raw: dict, dst_node: str | None) -> tuple[str, str | None]:
    """Why the probe did or did not come back, in plain words; and where it died."""
    src, dst = journey.src, journey.dst
    last_request = next((h.point for h in reversed(journey.hops) if h.request), None)
    if raw.get("send_error"):
        if raw["send_error"] in ("Network is unreachable", "No route to host"):
            return f"{src} has no route to {dst} ({raw['send_error']})", None
        return f"{src} could not reach {dst}: {raw['send_error']}", None
    if journey.proto == "tcp":
        tcp = _tcp_reason(journey, raw)
        if tcp is not None:
            return tcp
    nat = [e for e in journey.conntrack if e.nat]
    if journey.delivered:
        text = f"{dst} answered and the reply came back to {src}"
        if nat:
            entry = nat[0]
            text += (f"; conntrack rewrote {entry.original[0]} to {entry.reply[1]} on the way out "
                     f"and back on the way in")
        return text, None
    dropped = journey.dropped_by
    if dropped is not None:
        where = last_request if dropped.kind == "request" else \
            next((h.point for h in journey.hops if h.reply), last_request)
        return f"dropped by {dropped}", where
    if raw.get("route_back"):
        seen = journey.hop(_dst_point(journey, dst_node)).request if dst_node else None
        back_to = seen.src if seen else journey.src_address
        return (f"{dst} got the request but its reply never came back: it has no route to {back_to}",
                _dst_point(journey, dst_node))
    if journey.replied:
        last_reply = next((h.point for h in journey.hops if h.reply), None)
        return f"the reply was lost after {last_reply}", last_reply
    if last_request is None:
        return f"the request never left {src}", None
    waited = raw.get("timeout", 0)
    return f"no reply within {waited:g} s; the request was last seen at {last_request}", last_request


def _tcp_reason(journey: Journey, raw: dict) -> tuple[str, str | None] | None:
    """The TCP cases: accepted (maybe through DNAT), refused, answered by the wrong address."""
    target = f"{journey.dst}:{journey.dport}"
    moved = next((e for e in journey.conntrack if e.dnat), None)
    if journey.delivered:
        text = f"{target} accepted the connection (the SYN got a SYN-ACK back to {journey.src})"
        if moved is not None:
            text += (f"; conntrack rewrote the destination {moved.where('original', 1)} to "
                     f"{moved.where('reply', 0)} (DNAT)")
            if moved.reply[1] != moved.original[0]:
                text += (f" and the source {moved.original[0]} to {moved.reply[1]} (MASQUERADE), so the "
                         f"answer comes back through the host")
            text += ", and undid both on the reply" if moved.reply[1] != moved.original[0] else \
                ", and the reply's source back"
        return text, None
    on_path = [h for h in journey.hops if h.on_path]
    arrived = on_path[0].reply if on_path else None   # the answer as the sender got it
    answer = arrived or journey.first("reply")
    if raw.get("mismatch") and answer is not None:
        sender = f"{answer.src}:{answer.sport}"
        return (f"the answer came from {sender}, not from {target} which {journey.src} called, so "
                f"{journey.src} could not match it to its connection: the reply went straight back "
                f"without passing the host's conntrack, which would have undone the DNAT (hairpin NAT "
                f"is missing)"), answer.point
    if raw.get("refused"):
        who = answer.src if answer is not None else journey.dst
        here = " (the host itself)" if topology.owner(who) == "host" else ""
        return (f"connection refused: {who}{here} answered the SYN with a reset, since nothing listens "
                f"on port {journey.dport} there"), None
    return None


def _dst_point(journey: Journey, dst_node: str | None) -> str | None:
    """The last point of the path: where the receiving node gets the request."""
    on_path = [h.point for h in journey.hops if h.on_path]
    return on_path[-1] if dst_node and on_path else None
