"""Write the notebooks in notebooks/ (run from the repository root)."""

from pathlib import Path

from nb import code, md, save

from netkit.exercises import FORWARD_RULES, MASQUERADE

HERE = Path(__file__).resolve().parent.parent / "notebooks"

CREDIT = """\
This notebook replays part of **"Docker 網路入門篇(三) – 網路存取分析"** (*Docker networking for
beginners, part 3: analysing network access*) by **HungWei Chiu (hwchiu)**, published on his blog
[hwchiu.com](https://www.hwchiu.com/); his lab scripts are in
[technologynoteniu/bloglab](https://github.com/technologynoteniu/bloglab). The experiment and the
facts are his; the words and the code here are netkit's."""
CREDIT = " ".join(CREDIT.split())  # one line, so it sits inside an indented cell text

SAFETY = """\
Everything happens in a **lab**: network namespaces that netkit builds when you run the setup cell
and removes when the notebook closes it (or when the kernel stops, whatever the reason). The lab's
"host" is a namespace too, so your own machine's network is never touched. If the setup cell fails,
open [00-check-your-machine.ipynb](00-check-your-machine.ipynb): it says what this machine lacks and
how to fix it."""
SAFETY = " ".join(SAFETY.split())


def nb00():
    cells = [
        md("""
        # 0 · Check your machine

        Run this notebook first, or whenever a lab will not start. It only *reads* what this machine
        allows (it starts throwaway namespaces at most) and says, for each thing the kit needs, whether it
        is there and how to fix it if not. The same checks run in a terminal as `netkit doctor`.
        """),
        code("""
        from netkit import doctor

        checks = doctor.run_checks()
        doctor.table(checks)
        """),
        md("""
        **What the rows mean**

        - **namespaces**: the lab needs network, mount and pid namespaces. Root always has them; any other
          user needs *user namespaces*, which some distributions (and most container platforms, Binder
          among them) switch off.
        - **br_netfilter**: the kernel module that lets iptables see frames a bridge forwards. Scenario 1
          is about exactly that. Docker up to 27 always loaded it; Docker 28 and later load it only with
          `--icc=false` or `--userland-proxy=false`, so on such a host the first ping of scenario 1 may
          simply work.
        - **kernel**: from Linux 5.3, `bridge-nf-call-iptables` belongs to each network namespace, so the
          lab can flip it without changing your machine. On an older kernel it is one value for the whole
          machine.
        - **iptables**: the lab reads netfilter's verdicts with `nft monitor trace`, so it wants the
          nf_tables flavour of iptables (the default on Debian 11+, Ubuntu 20.10+).
        - **lab tools / node tools**: the programs the lab runs; the nodes share this machine's programs.
        """),
        code("""
        if doctor.can_run(checks):
            print("This machine can run the lab: go on to 01-container-to-container.ipynb")
        else:
            print("This machine cannot run the lab yet. Fix the rows marked MISSING above, then run this again.")
        """),
    ]
    save(HERE / "00-check-your-machine.ipynb", cells, "Check your machine")


def nb01():
    cells = [
        md(f"""
        # 1 · Container to container: who is it sent to, who handles it, who filters it?

        {CREDIT}

        Two "containers", **c1** (10.55.66.2) and **c2** (10.55.66.3), hang off the Linux bridge
        **hwchiu0** on the same host, just as the article wires them by hand. c1 pings c2, and on a host
        where Docker is installed **the ping fails**. By the end of this notebook you will know why,
        from three angles the article uses for every case:

        1. **Who is the packet sent to?** The routing table, and the bridge's forwarding table.
        2. **Who handles it?** The kernel, the bridge, netfilter.
        3. **Who filters it?** iptables.

        {SAFETY}

        Run the cells in order (Shift-Enter). Before each experiment there is a question: decide what you
        expect *before* you run it. The `assert` lines after an experiment state what the article
        claims; if the kernel ever disagreed, that cell would fail.
        """),
        code("""
        # Parameters (papermill sets these when the notebook runs as a test).
        lab_name = "nb01"
        run_solutions = False
        """, "parameters"),
        md("""
        ## The lab

        The next cell builds the lab. netkit types the same commands a person would, and prints each one:
        namespaces for c1, c2 and the outside world, the bridge, a veth pair per container, the
        addresses. The last three lines are what installing Docker did to the article's host:
        `ip_forward` on, `bridge-nf-call-iptables` at 1, and the FORWARD policy at DROP.
        """),
        code("""
        from netkit import Lab, plots
        from netkit.widgets import Panel
        from netkit.exercises import BRIDGED_ACCEPT

        lab = Lab(name=lab_name, stage="part3-start", replace=True, trace=print)
        lab
        """),
        code("""
        plots.lab_map()
        """),
        md("""
        A **veth pair** is a virtual cable: a frame that goes into one end comes out of the other. c1's
        `eth0` is one end; the other end is `veth0`, in the host, plugged into the bridge. c2 is wired
        the same way through `veth1`. The bridge has **no IP address**: at this stage it only switches
        frames between its ports, like a hardware switch.

        ## 1. Who is the packet sent to?

        When c1 got its address (`ip addr add 10.55.66.2/24 dev eth0`), the kernel added a *connected
        route*: "anything for 10.55.66.0/24 leaves through eth0". That is c1's whole routing table:
        """),
        code("""
        lab.run("c1", "route -n")
        """),
        code("""
        lab.run("c2", "route -n")
        """),
        code("""
        assert lab.run("c1", "ip -4 route").stdout.split() == \\
            "10.55.66.0/24 dev eth0 proto kernel scope link src 10.55.66.2".split()
        assert lab.run("c2", "ip -4 route").stdout.split()[:3] == ["10.55.66.0/24", "dev", "eth0"]
        """),
        md("""
        So a packet from c1 to 10.55.66.3 matches that one line, leaves through c1's `eth0`, and comes
        out of `veth0` in the host. There the bridge takes over.

        ## 2. Who handles it?

        The bridge forwards by **MAC address**. It learns which MAC lives behind which port from the
        frames it sees, and keeps that in its **forwarding table** (`bridge fdb`). Here are its ports:
        """),
        code("""
        lab.run("host", "brctl show hwchiu0")
        """),
        md("""
        ## 3. Who filters it?

        **Predict.** c1 and c2 are on the same bridge, c1 knows the way (its connected route), and the
        bridge knows how to switch frames. c1 now sends one ping to c2, as in the article:
        `ping 10.55.66.3 -c1 -W1`. Will c2 answer? Decide, then run the cell.
        """),
        code("""
        ping = lab.run("c1", "ping 10.55.66.3 -c1 -W1")
        ping
        """),
        code("""
        assert ping.returncode == 1 and "100% packet loss" in ping.stdout
        """),
        md("""
        No answer. A `ping` only says *that* it failed. A netkit **probe** sends the same kind of
        packet (an ICMP echo request) and follows it: it captures at every point of the lab at once,
        asks netfilter for every verdict the packet met in the host, and says where it died and why.
        """),
        code("""
        dropped = lab.probe("c1", "10.55.66.3", label="bridge-nf-call-iptables=1")
        dropped
        """),
        code("""
        assert not dropped.delivered
        assert dropped.seen("host:veth0") and not dropped.seen("host:veth1")
        assert str(dropped.dropped_by) == "filter FORWARD policy DROP in host"
        assert (dropped.dropped_by.iif, dropped.dropped_by.oif) == ("hwchiu0", "hwchiu0")
        """),
        code("""
        plots.ladder(dropped)
        """),
        md("""
        The request reached the host's `veth0`, so the bridge got it; it never left through `veth1`.
        What stopped it was not the bridge but **iptables**: the *filter* table's **FORWARD** chain, whose
        policy is DROP. Notice the interfaces the verdict names: a frame the bridge forwards shows up in
        FORWARD with `hwchiu0` as both the way in and the way out.

        Meanwhile the bridge did its own job. The ping's ARP exchange (not IP, so iptables left it
        alone) taught it both MAC addresses; compare with c1's and c2's `eth0`:
        """),
        code("""
        fdb = lab.run("host", "bridge fdb show br hwchiu0 dynamic")
        fdb
        """),
        code("""
        c1_mac = lab.run("c1", "cat /sys/class/net/eth0/address").stdout.strip()
        c2_mac = lab.run("c2", "cat /sys/class/net/eth0/address").stdout.strip()
        print("c1:", c1_mac, "  c2:", c2_mac)
        assert f"{c1_mac} dev veth0" in fdb.stdout and f"{c2_mac} dev veth1" in fdb.stdout
        """),
        md("""
        Why would iptables, which works on IP packets, judge a frame a bridge forwards at all? Because
        of this switch, which Docker turns on (it loads the `br_netfilter` module and sets it to 1):
        """),
        code("""
        lab.run("host", "cat /proc/sys/net/bridge/bridge-nf-call-iptables")
        """),
        code("""
        lab.run("host", "iptables -S FORWARD")
        """),
        md("""
        `-P FORWARD DROP` is Docker's **whitelist**: anything forwarded is dropped unless a rule accepts
        it. Docker adds such rules for its own bridge (`docker0`); nobody wrote one for `hwchiu0`.

        ### Experiment A: let the bridge decide alone

        **Predict.** We set `bridge-nf-call-iptables` to 0 and probe again. What happens to the ping,
        and which of the host's netfilter hooks will the packet pass?
        """),
        code("""
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
        bridged = lab.probe("c1", "10.55.66.3", label="bridge-nf-call-iptables=0")
        bridged
        """),
        code("""
        assert bridged.delivered
        assert bridged.addresses("c2:eth0") == "10.55.66.2 > 10.55.66.3"
        assert bridged.hooks == ()   # no PREROUTING, no FORWARD: iptables never saw the frames
        assert lab.run("c1", "ping 10.55.66.3 -c1 -W1").returncode == 0
        """),
        md("""
        With the switch off, iptables is not asked: the bridge switches the frame by its forwarding
        table and c2 answers. The grid puts the two probes side by side, one column per condition:
        """),
        code("""
        plots.grid([dropped, bridged])
        """),
        md("""
        Put the switch back, as the article does, and the ping fails again:
        """),
        code("""
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 1)
        assert not lab.probe("c1", "10.55.66.3").delivered
        """),
        md("""
        ### Experiment B: change the FORWARD policy

        The other way out is to turn the whitelist into a blacklist: accept whatever no rule drops.

        **Predict.** With `bridge-nf-call-iptables` back at 1, we set `iptables -P FORWARD ACCEPT`.
        Does the frame still go through iptables? Does it get through?
        """),
        code("""
        lab.iptables("-P FORWARD ACCEPT")
        accepted = lab.probe("c1", "10.55.66.3", label="FORWARD ACCEPT")
        accepted
        """),
        code("""
        assert accepted.delivered
        assert accepted.passed("FORWARD")          # iptables still sees the frame...
        policy = [v for v in accepted.verdicts if v.chain == "FORWARD"][0]
        assert (policy.rule, policy.verdict) == ("policy", "ACCEPT")   # ...and now lets it through
        """),
        code("""
        plots.grid([dropped, accepted])
        """),
        md("""
        The article then puts the policy back to DROP, the way Docker left it:
        """),
        code("""
        lab.iptables("-P FORWARD DROP")
        assert lab.get("forward-policy") == "DROP"
        """),
        md("""
        ## For the instructor: flip the switches

        Each button types the command shown under it into the lab, reads the lab's real state back,
        sends the probe again and redraws. Changes made from a terminal
        (`netkit exec --lab nb01 host -- iptables -P FORWARD ACCEPT`) show up after *read the lab again*.
        """),
        code("""
        Panel(lab, ["bridge-nf-call-iptables", "forward-policy"], probe=("c1", "10.55.66.3"))
        """),
        md(f"""
        ## Exercise: one rule instead of a policy

        {BRIDGED_TASK}

        The next cell puts the lab back at the start of part 3 (policy DROP, switch at 1). Then write
        your rule in the cell after it, with `lab.iptables("...")` (everything after the word
        `iptables`), and run the check. Any rule that does the job passes: the check sends a probe, it
        does not compare text.
        """),
        code("""
        BRIDGED_ACCEPT.prepare(lab)
        """),
        code("""
        # Your rule, for example:  lab.iptables("-I FORWARD ...")

        """),
        code("""
        BRIDGED_ACCEPT.check(lab)
        """),
        md("""
        <details><summary>Show a solution</summary>

        ```python
        lab.iptables("-I FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT")
        ```
        The probe's verdict told us how bridged frames look to FORWARD: in and out through `hwchiu0`.
        Docker's own rule for its bridge reads the same way: `-A DOCKER-FORWARD -i docker0 -j ACCEPT`.
        </details>
        """),
        code("""
        # The automatic test of this notebook types the solution and checks it (students: skip this).
        if run_solutions:
            BRIDGED_ACCEPT.solve(lab)
            assert BRIDGED_ACCEPT.check(lab).ok
        """),
        md("""
        ## What we saw

        - **Sent to:** c1's connected route sends 10.55.66.3 out of `eth0`; the veth pair delivers it
          to the bridge, which forwards by MAC address using its forwarding table.
        - **Handled by:** the bridge alone when `bridge-nf-call-iptables` is 0; the bridge *and*
          netfilter's hooks (PREROUTING, FORWARD) when it is 1.
        - **Filtered by:** iptables' FORWARD chain. Docker's policy there is DROP, a whitelist, so
          bridged traffic passes only when a rule accepts it (or the policy is changed).

        Next: [02-container-to-internet.ipynb](02-container-to-internet.ipynb), where c1 tries to reach
        8.8.8.8. The last cell ends the lab; nothing of it is left on the machine.
        """),
        code("""
        lab.close()
        assert lab.closed
        """),
    ]
    save(HERE / "01-container-to-container.ipynb", cells, "Container to container")


BRIDGED_TASK = ("Keep the FORWARD policy at DROP and `bridge-nf-call-iptables` at 1, and let c1 ping c2 "
                "by adding **one iptables rule**. Hint: look at the interfaces in the verdict that "
                "dropped the probe.")


def nb02():
    cells = [
        md(f"""
        # 2 · Container to the internet: routes, MASQUERADE and FORWARD

        {CREDIT}

        Now c1 wants to reach **8.8.8.8**. In this lab, "the internet" is a namespace netkit owns: it has
        8.8.8.8 and 1.1.1.1, sits behind the host's `eth0` (10.0.2.15) like the article's VirtualBox
        NAT, and, like any real network, knows the way back only to 10.0.2.0/24. No packet leaves
        your machine.

        We ask the article's three questions again, this time for routed traffic, and make c1 reach
        8.8.8.8 in five steps: a gateway address on the bridge, a default route in c1, FORWARD,
        MASQUERADE, and the two FORWARD rules Docker would write instead of changing the policy.

        {SAFETY}
        """),
        code("""
        # Parameters (papermill sets these when the notebook runs as a test).
        lab_name = "nb02"
        run_solutions = False
        """, "parameters"),
        code("""
        from netkit import Lab, plots
        from netkit.widgets import Panel
        from netkit.exercises import MASQUERADE, FORWARD_RULES

        lab = Lab(name=lab_name, stage="part3-start", replace=True)
        plots.lab_map()
        """),
        md("""
        ## 1. Who is the packet sent to?

        **Predict.** c1's routing table has one line, for 10.55.66.0/24. What does `ping 8.8.8.8` do?
        """),
        code("""
        lab.run("c1", "route -n")
        """),
        code("""
        unreachable = lab.run("c1", "ping 8.8.8.8 -c1 -W1")
        unreachable
        """),
        code("""
        assert "Network is unreachable" in unreachable.output
        no_route = lab.probe("c1", "8.8.8.8", label="no default route")
        assert no_route.reason == "c1 has no route to 8.8.8.8 (Network is unreachable)"
        assert not any(no_route.seen(point) for point in no_route.points)
        no_route
        """),
        md("""
        The packet never left c1: no route matches 8.8.8.8, so the kernel refuses at once. We could add
        a route for 8.8.8.8 alone, but then 1.1.1.1 would need another, and so on. Instead we give c1 a
        **default route**: whatever no other line matches goes to a *gateway*, and the gateway will be
        the host itself, reached through the bridge. For that the bridge needs an address on c1's
        subnet. These are the article's two commands:
        """),
        code("""
        lab.change("host", "ifconfig hwchiu0 10.55.66.1 netmask 255.255.255.0")
        lab.set("default-route", True)     # types: ip route add default via 10.55.66.1 (in c1)
        lab.run("c1", "ip route show")
        """),
        code("""
        assert lab.get("bridge-address") and lab.get("default-route")
        assert "default via 10.55.66.1 dev eth0" in lab.run("c1", "ip route show").stdout
        """),
        md("""
        ## 2. Who handles it?

        The article first opens the FORWARD policy so that iptables stays out of the way, then watches
        the host's `eth0` with tcpdump in a second window while c1 pings. `lab.tcpdump` does both windows
        at once: tcpdump listens on the point, the command runs, tcpdump stops.

        **Predict.** c1 now has a route, and FORWARD accepts everything. Does 8.8.8.8 answer? What
        source address does the request carry on the host's `eth0`?
        """),
        code("""
        lab.iptables("-P FORWARD ACCEPT")
        lab.tcpdump("host:eth0", "c1", "ping 8.8.8.8 -c2 -W1")
        """),
        code("""
        no_nat = lab.probe("c1", "8.8.8.8", label="no MASQUERADE")
        no_nat
        """),
        code("""
        assert no_nat.addresses("host:eth0") == "10.55.66.2 > 8.8.8.8"
        assert no_nat.seen("internet:eth0") and not no_nat.replied
        assert no_nat.reason.endswith("it has no route to 10.55.66.2")
        """),
        code("""
        plots.lab_map(no_nat, bridge_address="10.55.66.1/24")
        """),
        md("""
        The request gets all the way to 8.8.8.8 (c1 → veth0 → hwchiu0, then the host *routes* it out of
        eth0), but its source is still c1's private address. 8.8.8.8 has no idea where 10.55.66.2 is:
        """),
        code("""
        lab.run("internet", "ip route get 10.55.66.2")
        """),
        md("""
        The fix is **source NAT**: as the packet leaves `eth0`, the host replaces its source with its own
        address, 10.0.2.15, which 8.8.8.8 can answer. `MASQUERADE` is source NAT that picks "the address
        of the interface the packet leaves by". It lives in the *nat* table's POSTROUTING chain, the
        last stop before the wire. conntrack remembers the rewrite and undoes it on the reply.

        **Predict.** With the rule below, which address will tcpdump show on `eth0`? And on `hwchiu0`?
        """),
        code("""
        lab.iptables("-t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE")
        lab.tcpdump("host:eth0", "c1", "ping 8.8.8.8 -c1 -W1")
        """),
        code("""
        lab.tcpdump("host:hwchiu0", "c1", "ping 8.8.8.8 -c1 -W1")
        """),
        code("""
        nat = lab.probe("c1", "8.8.8.8", label="MASQUERADE")
        nat
        """),
        code("""
        assert nat.delivered
        assert nat.addresses("host:eth0") == "10.0.2.15 > 8.8.8.8"
        assert nat.addresses("host:eth0", "reply") == "8.8.8.8 > 10.0.2.15"
        assert nat.addresses("host:hwchiu0") == "10.55.66.2 > 8.8.8.8"
        assert nat.addresses("host:hwchiu0", "reply") == "8.8.8.8 > 10.55.66.2"
        (entry,) = nat.conntrack
        assert entry.original == ("10.55.66.2", "8.8.8.8") and entry.reply == ("8.8.8.8", "10.0.2.15")
        """),
        code("""
        plots.ladder(nat)
        """),
        md("""
        Red addresses are the rewritten ones. Seen from `hwchiu0`, the conversation is between
        10.55.66.2 and 8.8.8.8; seen from `eth0`, between 10.0.2.15 and 8.8.8.8. The link between the two
        views is the conntrack entry: the tuple the packet left with, and the tuple its reply will carry.
        """),
        code("""
        lab.run("host", "conntrack -L -p icmp")
        """),
        code("""
        plots.grid([no_nat, nat])
        """),
        md("""
        ## 3. Who filters it?

        So far FORWARD accepted everything. Docker leaves it at DROP. iptables looks at this traffic in
        two places, and they are not the same:

        - c1's packet *arrives at* `hwchiu0`, the gateway: for the host that is **INPUT** traffic if it
          is for the host itself, like a ping to 10.55.66.1.
        - the host then *routes* the packet from `hwchiu0` to `eth0`: that is **FORWARD**.

        **Predict.** With the policy back at DROP, does c1 still reach 10.55.66.1? And 8.8.8.8? On which
        interfaces will tcpdump see the request?
        """),
        code("""
        lab.iptables("-P FORWARD DROP")
        gateway = lab.probe("c1", "10.55.66.1")
        forward_drop = lab.probe("c1", "8.8.8.8", label="FORWARD DROP")
        forward_drop
        """),
        code("""
        assert gateway.delivered and gateway.passed("INPUT") and not gateway.passed("FORWARD")
        assert not forward_drop.delivered
        assert forward_drop.seen("host:hwchiu0") and not forward_drop.seen("host:eth0")
        verdict = forward_drop.dropped_by
        assert (verdict.chain, verdict.rule, verdict.iif, verdict.oif) == ("FORWARD", "policy", "hwchiu0", "eth0")
        """),
        code("""
        lab.tcpdump("host:eth0", "c1", "ping 8.8.8.8 -c1 -W1")
        """),
        code("""
        lab.tcpdump("host:hwchiu0", "c1", "ping 8.8.8.8 -c1 -W1")
        """),
        md("""
        Exactly the article's observation: requests on `hwchiu0`, nothing on `eth0`. The verdict names
        the way the packet was going, `hwchiu0 -> eth0`, and the reply would go `eth0 -> hwchiu0`.
        Docker accepts by interface, not by address, so that its rule count does not grow with the
        number of containers. These are the article's two rules:
        """),
        code("""
        lab.iptables("-t filter -I FORWARD -i hwchiu0 -o eth0 -j ACCEPT")
        lab.iptables("-t filter -I FORWARD -i eth0 -o hwchiu0 -j ACCEPT")
        rules = lab.probe("c1", "8.8.8.8", label="FORWARD accepts")
        rules
        """),
        code("""
        assert rules.delivered and lab.get("forward-policy") == "DROP"
        accepted = {(v.kind, v.rule) for v in rules.verdicts if v.chain == "FORWARD" and v.verdict == "ACCEPT"}
        assert accepted == {("request", "-A FORWARD -i hwchiu0 -o eth0 -j ACCEPT"),
                            ("reply", "-A FORWARD -i eth0 -o hwchiu0 -j ACCEPT")}
        """),
        code("""
        plots.grid([no_route, no_nat, forward_drop, rules])
        """),
        code("""
        lab.run("host", "iptables -S; iptables -t nat -S POSTROUTING")
        """),
        md("""
        ## For the instructor: every switch of scenario 2

        Turn any step off or on; the probe runs again after each change and the picture follows. The
        *picture* row switches between the ladder and the lab map.
        """),
        code("""
        Panel(lab, ["bridge-address", "default-route", "forward-policy", "masquerade", "forward-rules"],
              probe=("c1", "8.8.8.8"), view="map")
        """),
        md(f"""
        ## Exercise 1: write the MASQUERADE rule

        {MASQUERADE.task}

        The next cell sets the lab up (bridge address and default route, FORWARD ACCEPT, no NAT). Write
        your rule with `lab.iptables("...")`, then run the check.
        """),
        code("""
        MASQUERADE.prepare(lab)
        """),
        code("""
        # Your rule:  lab.iptables("-t nat ...")

        """),
        code("""
        MASQUERADE.check(lab)
        """),
        md("""
        <details><summary>Show a solution</summary>

        ```python
        lab.iptables("-t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE")
        ```
        `-s 10.55.66.0/24` (the whole subnet) works too; that is what Docker writes for its bridge:
        `-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`.
        </details>
        """),
        code("""
        # The automatic test of this notebook types the solution and checks it (students: skip this).
        if run_solutions:
            MASQUERADE.solve(lab)
            assert MASQUERADE.check(lab).ok
        """),
        md(f"""
        ## Exercise 2: the FORWARD rules

        {FORWARD_RULES.task}
        """),
        code("""
        FORWARD_RULES.prepare(lab)
        """),
        code("""
        # Your rules:  lab.iptables("-I FORWARD ...")

        """),
        code("""
        FORWARD_RULES.check(lab)
        """),
        md("""
        <details><summary>Show a solution</summary>

        ```python
        lab.iptables("-t filter -I FORWARD -i hwchiu0 -o eth0 -j ACCEPT")
        lab.iptables("-t filter -I FORWARD -i eth0 -o hwchiu0 -j ACCEPT")
        ```
        The second rule also lets the outside open *new* connections towards the containers. Docker's
        own rule for that direction accepts only replies (`-m conntrack --ctstate RELATED,ESTABLISHED`);
        notebook 04 shows the difference with probes.
        </details>
        """),
        code("""
        # The automatic test of this notebook types the solution and checks it (students: skip this).
        if run_solutions:
            FORWARD_RULES.solve(lab)
            assert FORWARD_RULES.check(lab).ok
        """),
        md("""
        ## What we saw

        For a container to reach the outside on a bridge network, all five must hold:

        1. the bridge has an address on the containers' subnet, so it can be their gateway;
        2. each container has a veth pair into the bridge, and an address;
        3. each container has a default route via the bridge's address;
        4. FORWARD lets the traffic through in both directions (policy, or rules by interface);
        5. source NAT (MASQUERADE) on the way out, so the replies can find their way back, and
           conntrack to turn them back into replies for the container.

        The last cell ends the lab.
        """),
        code("""
        lab.close()
        assert lab.closed
        """),
    ]
    save(HERE / "02-container-to-internet.ipynb", cells, "Container to the internet")


if __name__ == "__main__":
    nb00()
    nb01()
    nb02()
    print("notebooks written to", HERE)
