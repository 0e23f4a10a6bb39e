"""Write tests/data/synthetic-*.json: journeys built by hand for the article's outcomes.

They have the shape the agent records from the real kernel (compare
``recorded-*.json``): every point of the lab, the packet's path first and in
order, then the points off its way with ``on_path`` False. A frame bridged
from veth0 to veth1 never shows on hwchiu0 itself, so in scenario 1 the
bridge device is off the path. The plots can be tested, and shown, without
a lab. Run it again after
changing a journey here::

    .venv/bin/python tests/data/make_synthetic.py

``tests/test_plots.py`` checks that the files on disk match these objects.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from netkit.journey import ConntrackEntry, Hop, Journey, Sighting, Verdict  # noqa: E402
from netkit.outcome import Facts, decide  # noqa: E402
from netkit.topology import owner  # noqa: E402
from netkit.topology import BASE_POINTS as POINTS  # noqa: E402  (part 3 has seven points)

HERE = Path(__file__).resolve().parent

C1, C2, BRIDGE_IP, HOST, GATEWAY, GOOGLE = (
    "10.55.66.2", "10.55.66.3", "10.55.66.1", "10.0.2.15", "10.0.2.2", "8.8.8.8")
TO_C2 = ("c1:eth0", "host:veth0", "host:veth1", "c2:eth0")   # bridged: not via hwchiu0 itself
TO_INTERNET = ("c1:eth0", "host:veth0", "host:hwchiu0", "host:eth0", "internet:eth0")
MASQUERADE_RULE = f"-A POSTROUTING -s {C1}/32 -o eth0 -j MASQUERADE"


def _sighting(point, kind, src, dst, time):
    what = "echo request" if kind == "request" else "echo reply"
    return Sighting(point=point, kind=kind, src=src, dst=dst, time=round(time, 6),
                    summary=f"{src} > {dst}: ICMP {what}, id 7, seq 1, length 64")


def _journey(dst, path, request, reply, facts=Facts(), **fields):
    """`request` / `reply`: {point: (src, dst)}; time runs along the path, then back."""
    hops, t = [], 0.0
    times = {}
    for point in path:
        if point in request:
            t += 0.000011
            times[point, "request"] = t
    t += 0.000250  # the far end answers
    for point in reversed(path):
        if point in reply:
            t += 0.000011
            times[point, "reply"] = t
    for point in path + tuple(p for p in POINTS if p not in path):
        req = request.get(point)
        rep = reply.get(point)
        hops.append(Hop(
            point=point,
            on_path=point in path,
            request=_sighting(point, "request", *req, times[point, "request"]) if req else None,
            reply=_sighting(point, "reply", *rep, times[point, "reply"]) if rep else None,
        ))
    journey = Journey(src="c1", dst=dst, proto="icmp", src_address=C1, hops=tuple(hops), **fields)
    return journey.decided(decide(journey, facts, owner(dst)))


def _routed(kind):
    """The host's hooks a packet routed between hwchiu0 and eth0 passes."""
    iif, oif = ("hwchiu0", "eth0") if kind == "request" else ("eth0", "hwchiu0")
    return ((kind, "PREROUTING", iif, ""), (kind, "FORWARD", iif, oif), (kind, "POSTROUTING", iif, oif))


def journeys() -> dict[str, Journey]:
    """The article's outcomes, by case name."""
    forward_drop_bridged = Verdict(table="filter", chain="FORWARD", rule="policy", verdict="DROP",
                                   iif="hwchiu0", oif="hwchiu0")
    c1_to_c2 = {p: (C1, C2) for p in TO_C2}
    c2_to_c1 = {p: (C2, C1) for p in TO_C2}
    out = {p: (C1, GOOGLE) for p in TO_INTERNET}
    bridge_side = ("c1:eth0", "host:veth0", "host:hwchiu0")
    masqueraded_out = {p: (C1, GOOGLE) for p in bridge_side}
    masqueraded_out.update({p: (HOST, GOOGLE) for p in ("host:eth0", "internet:eth0")})
    masqueraded_back = {p: (GOOGLE, C1) for p in bridge_side}
    masqueraded_back.update({p: (GOOGLE, HOST) for p in ("host:eth0", "internet:eth0")})

    return {
        # Part 3, scenario 1, step 1: Docker's FORWARD whitelist sees the bridged frame.
        "bridge-nf-on": _journey(
            C2, TO_C2,
            request={p: (C1, C2) for p in ("c1:eth0", "host:veth0")},
            reply={},
            verdicts=(forward_drop_bridged,),
            hooks=(("request", "PREROUTING", "hwchiu0", ""), ("request", "FORWARD", "hwchiu0", "hwchiu0")),
            facts=Facts(),
            seconds=1.0,
            label="bridge-nf-call-iptables=1",
        ),
        # Scenario 1, step 2: bridged frames skip iptables; the bridge forwards by MAC.
        "bridge-nf-off": _journey(
            C2, TO_C2, request=c1_to_c2, reply=c2_to_c1,
            facts=Facts(replied=True),
            seconds=0.00041,
            label="bridge-nf-call-iptables=0",
        ),
        # Scenario 2, step 1: c1 only knows 10.55.66.0/24; the kernel refuses to send.
        "no-route": _journey(
            GOOGLE, TO_INTERNET, request={}, reply={},
            facts=Facts(send_errno=errno.ENETUNREACH, send_error="Network is unreachable"),
            label="no default route",
        ),
        # Scenario 2, step 3: out it goes with a private source; 8.8.8.8 cannot answer it.
        "no-masquerade": _journey(
            GOOGLE, TO_INTERNET, request=out, reply={},
            verdicts=(
                Verdict(table="filter", chain="FORWARD", rule="policy", verdict="ACCEPT",
                        iif="hwchiu0", oif="eth0"),
            ),
            hooks=_routed("request"),
            facts=Facts(no_route_back=True),
            seconds=1.0,
            label="no MASQUERADE",
        ),
        # Scenario 2, step 4: MASQUERADE gives the request the host's address; conntrack undoes it.
        "masquerade": _journey(
            GOOGLE, TO_INTERNET, request=masqueraded_out, reply=masqueraded_back,
            verdicts=(
                Verdict(table="filter", chain="FORWARD", rule="policy", verdict="ACCEPT",
                        iif="hwchiu0", oif="eth0"),
                Verdict(table="nat", chain="POSTROUTING", rule=MASQUERADE_RULE,
                        verdict="MASQUERADE", iif="hwchiu0", oif="eth0"),
                Verdict(table="filter", chain="FORWARD", rule="policy", verdict="ACCEPT",
                        kind="reply", iif="eth0", oif="hwchiu0"),
            ),
            hooks=_routed("request") + _routed("reply"),
            conntrack=(
                ConntrackEntry(
                    proto="icmp", original=(C1, GOOGLE), reply=(GOOGLE, HOST),
                    text=f"icmp     1 29 src={C1} dst={GOOGLE} type=8 code=0 id=7 "
                         f"src={GOOGLE} dst={HOST} type=0 code=0 id=7 mark=0 use=1"),
            ),
            facts=Facts(replied=True),
            seconds=0.00062,
            label="MASQUERADE",
        ),
        # Scenario 2, step 6 half done: FORWARD accepts hwchiu0 -> eth0 only; the reply meets the DROP policy.
        "forward-one-way": _journey(
            GOOGLE, TO_INTERNET, request=masqueraded_out,
            reply={p: (GOOGLE, HOST) for p in ("internet:eth0", "host:eth0")},
            verdicts=(
                Verdict(table="filter", chain="FORWARD", rule="-A FORWARD -i hwchiu0 -o eth0 -j ACCEPT",
                        verdict="ACCEPT", iif="hwchiu0", oif="eth0"),
                Verdict(table="nat", chain="POSTROUTING", rule=MASQUERADE_RULE,
                        verdict="MASQUERADE", iif="hwchiu0", oif="eth0"),
                Verdict(table="filter", chain="FORWARD", rule="policy", verdict="DROP",
                        kind="reply", iif="eth0", oif="hwchiu0"),
            ),
            hooks=_routed("request") + _routed("reply")[:2],
            facts=Facts(),
            seconds=1.0,
            label="FORWARD one way only",
        ),
        # Scenario 2, step 5: routing hwchiu0 -> eth0 is FORWARD, and its policy is DROP.
        "masquerade-forward-drop": _journey(
            GOOGLE, TO_INTERNET, request={p: (C1, GOOGLE) for p in bridge_side}, reply={},
            verdicts=(
                Verdict(table="filter", chain="FORWARD", rule="policy", verdict="DROP",
                        iif="hwchiu0", oif="eth0"),
            ),
            hooks=_routed("request")[:2],
            facts=Facts(),
            seconds=1.0,
            label="MASQUERADE + FORWARD DROP",
        ),
    }


def main() -> None:
    for case, journey in journeys().items():
        path = HERE / f"synthetic-{case}.json"
        journey.to_json(path)
        print(path)


if __name__ == "__main__":
    main()
