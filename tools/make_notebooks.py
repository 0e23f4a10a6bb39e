"""Write the notebooks in notebooks/ (run from the repository root)."""

from pathlib import Path

from nb import code, md, save

from netkit.exercises import DOCKER_USER, FORWARD_RULES, LOCAL_ACCESS, MASQUERADE, PUBLISH

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


def exercise_cells(exercise: str, hint: str, solution: str) -> list:
    """An exercise's cells: set the lab up, the student's cell, the check, the solution, the CI run."""
    return [
        code(f"{exercise}.prepare(lab)"),
        code(f"{hint}\n"),
        code(f"{exercise}.check(lab)"),
        md(solution),
        code(f"""
        # The automatic test of this notebook types the solution and checks it (students: skip this).
        if run_solutions:
            {exercise}.solve(lab)
            assert {exercise}.check(lab).ok
        """),
    ]


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
        *exercise_cells("BRIDGED_ACCEPT", '# Your rule, for example:  lab.iptables("-I FORWARD ...")', """
        <details><summary>Show a solution</summary>

        ```python
        lab.iptables("-I FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT")
        ```
        The probe's verdict told us how bridged frames look to FORWARD: in and out through `hwchiu0`.
        Docker's own rule for its bridge reads the same way: `-A DOCKER-FORWARD -i docker0 -j ACCEPT`.
        </details>
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
        *exercise_cells("MASQUERADE", '# Your rule:  lab.iptables("-t nat ...")', """
        <details><summary>Show a solution</summary>

        ```python
        lab.iptables("-t nat -I POSTROUTING -s 10.55.66.2/32 -o eth0 -j MASQUERADE")
        ```
        `-s 10.55.66.0/24` (the whole subnet) works too; that is what Docker writes for its bridge:
        `-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`.
        </details>
        """),
        md(f"""
        ## Exercise 2: the FORWARD rules

        {FORWARD_RULES.task}
        """),
        *exercise_cells("FORWARD_RULES", '# Your rules:  lab.iptables("-I FORWARD ...")', """
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


def nb03():
    cells = [
        md("""
        # 3 · The outside reaches a container: `docker run -p`, DNAT and conntrack

        {CREDIT}

        Parts 1 and 2 had containers start the conversation. Now the conversation starts *outside*:
        a machine on another network wants the web page that c1 serves. This is what
        `docker run -p 2345:8000` arranges, and the article's part 4 does it by hand with one DNAT
        rule. Here we do it step by step and follow a TCP connection through every point.

        **Where the client sits.** In the article the client is a second machine on a host-only network
        (the host's `eth1`, 172.17.9.103/24). The lab does the same: stage `part4-start` adds a node
        called **outside** (172.17.9.10) linked to a new host interface **eth1**. We could have used the
        "internet" node, but a separate network keeps the two directions apart: `eth0` stays the way
        *out* (MASQUERADE, parts 1-2), `eth1` is the way *in* (DNAT).

        {SAFETY}
        """, CREDIT=CREDIT, SAFETY=SAFETY),
        code("""
        # Parameters (papermill sets these when the notebook runs as a test).
        lab_name = "nb03"
        run_solutions = False
        """, "parameters"),
        md("""
        The lab starts at the end of part 3 (gateway, default route, MASQUERADE, the FORWARD rules for
        eth0), plus eth1, the outside machine, and a web server in c1 on port 8000
        (`python3 -m http.server 8000`, as in the article).
        """),
        code("""
        from netkit import Lab, plots
        from netkit.widgets import Panel
        from netkit.exercises import PUBLISH, LOCAL_ACCESS

        lab = Lab(name=lab_name, stage="part4-start", replace=True)
        plots.lab_map(bridge_address="10.55.66.1/24", outside=True)
        """),
        code("""
        lab.run("c1", "curl -s 127.0.0.1:8000/ | grep title")
        """),
        md("""
        ## 1. Who is the packet sent to?

        The outside machine knows one network, its own:
        """),
        code("""
        lab.run("outside", "route -n")
        """),
        code("""
        direct = lab.probe("outside", "10.55.66.2", port=8000)
        assert direct.reason.startswith("outside has no route to 10.55.66.2")
        direct.reason
        """),
        md("""
        So c1's address is useless outside the host: the outside machine can only talk to the host,
        at 172.17.9.103. The host has to take the connection and pass it on to c1. That is
        **destination NAT**: rewrite the destination of what arrives for `172.17.9.103:2345` into
        `10.55.66.2:8000`, and let conntrack rewrite the answers back.

        **Predict.** Before any rule, what does `curl 172.17.9.103:2345` from the outside machine get?
        """),
        code("""
        lab.run("outside", "curl -sS -m2 172.17.9.103:2345")
        """),
        code("""
        refused = lab.probe("outside", "172.17.9.103", port=2345, label="no DNAT")
        assert not refused.delivered and "(the host itself)" in refused.reason
        assert refused.passed("INPUT") and not refused.passed("FORWARD")
        refused
        """),
        md("""
        The SYN arrived on `eth1`, was for the host's own address, so it went up to **INPUT**; no program
        listens on port 2345 there, and the host answered with a reset: *connection refused*.

        ## 2. Who handles it? DNAT in PREROUTING

        The nat table's **PREROUTING** chain sees a connection's first packet as soon as it arrives,
        *before* the routing decision. A DNAT there changes the destination, and routing then sends the
        packet towards c1 instead of INPUT. This is the article's rule:
        """),
        code("""
        lab.iptables("-t nat -A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000")
        """),
        md("""
        **Predict.** Does the page come through now? (Remember that FORWARD's policy is DROP, and the
        rules from part 3 only accept traffic between `hwchiu0` and `eth0`.)
        """),
        code("""
        blocked = lab.probe("outside", "172.17.9.103", port=2345, label="DNAT, FORWARD DROP")
        blocked
        """),
        code("""
        verdict = blocked.dropped_by
        assert (verdict.chain, verdict.rule, verdict.iif, verdict.oif) == ("FORWARD", "policy", "eth1", "hwchiu0")
        assert blocked.passed("FORWARD") and not blocked.seen("c1:eth0")
        """),
        md("""
        The DNAT worked (the packet went to **FORWARD**, not INPUT, heading for `hwchiu0`), and then
        Docker's whitelist dropped it. The article adds the FORWARD rules between `hwchiu0` and `eth1`:
        """),
        code("""
        lab.iptables("-t filter -I FORWARD -i eth1 -o hwchiu0 -j ACCEPT")
        lab.iptables("-t filter -I FORWARD -i hwchiu0 -o eth1 -j ACCEPT")
        page = lab.run("outside", "curl -s -m2 172.17.9.103:2345/ | grep title")
        page
        """),
        code("""
        published = lab.probe("outside", "172.17.9.103", port=2345, label="DNAT + FORWARD")
        assert "Directory listing" in page.stdout and published.delivered
        sport = published.first("request").sport
        assert published.addresses("host:eth1") == f"172.17.9.10:{sport} > 172.17.9.103:2345"
        assert published.addresses("c1:eth0") == f"172.17.9.10:{sport} > 10.55.66.2:8000"
        assert published.addresses("outside:eth0", "reply") == f"172.17.9.103:2345 > 172.17.9.10:{sport}"
        published
        """),
        code("""
        plots.ladder(published)
        """),
        md("""
        Read the red labels: on `eth1` the connection is `172.17.9.10 → 172.17.9.103:2345`; from
        `hwchiu0` inwards it is `172.17.9.10 → 10.55.66.2:8000`. c1 sees the real client address (DNAT
        only touched the destination), and its answer, `10.55.66.2:8000 → 172.17.9.10`, leaves `eth1` as
        `172.17.9.103:2345 → 172.17.9.10`, which is what the client expects. conntrack keeps both
        sides of that bargain:
        """),
        code("""
        lab.run("host", "conntrack -L -p tcp --dport 2345")
        """),
        code("""
        plots.lab_map(published, bridge_address="10.55.66.1/24")
        """),
        md("""
        ## 3. The host itself is refused: nat OUTPUT

        **Predict.** Port 2345 is published. What does `curl 172.17.9.103:2345` get when it runs *on the
        host*?
        """),
        code("""
        lab.run("host", "curl -sS -m2 172.17.9.103:2345")
        """),
        code("""
        local = lab.probe("host", "172.17.9.103", port=2345, label="from the host")
        assert not local.delivered and "(the host itself)" in local.reason
        assert local.passed("OUTPUT") and not [v for v in local.verdicts if v.chain == "PREROUTING"]
        local
        """),
        md("""
        Refused, like before the DNAT. A connection the host opens itself starts in **OUTPUT**; it does
        pass PREROUTING later (through `lo`), but NAT is decided **once per connection, at the first nat
        chain it meets**, and for a local connection that is nat OUTPUT. The DNAT rule in PREROUTING is
        never asked. Docker covers this case twice: with a rule in nat OUTPUT, and with `docker-proxy`,
        a program that listens on the published port itself. The rule:
        """),
        code("""
        lab.iptables("-t nat -A OUTPUT -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000")
        via_output = lab.probe("host", "172.17.9.103", port=2345, label="nat OUTPUT rule")
        assert via_output.delivered
        assert [v.verdict for v in via_output.verdicts if (v.table, v.chain) == ("nat", "OUTPUT")] == ["DNAT"]
        lab.run("host", "curl -s -m2 172.17.9.103:2345/ | grep title")
        """),
        code("""
        plots.grid([refused, blocked, published, local, via_output])
        """),
        md("""
        ## 4. Hairpin: a container reaching another through the published port

        c2 also wants c1's page, and it only knows the published address `172.17.9.103:2345`. c2 needs a
        default route (the article gave one only to c1), and the DNAT'd packet goes *in and out* of
        `hwchiu0`, which FORWARD must accept too:
        """),
        code("""
        lab.change("c2", "ip route replace default via 10.55.66.1")
        lab.iptables("-I FORWARD -i hwchiu0 -o hwchiu0 -j ACCEPT")
        hairpin = lab.probe("c2", "172.17.9.103", port=2345, label="bridge-nf-call-iptables=1")
        assert hairpin.delivered
        hairpin
        """),
        md("""
        It works, and it is worth seeing *why*. c1's answer goes to c2's own address, 10.55.66.3, on the
        same bridge, so the bridge delivers it directly from `veth0` to `veth1`; the host never routes it.
        It still gets its source turned back into `172.17.9.103:2345`, because `bridge-nf-call-iptables`
        is 1: the bridged frame passes the host's netfilter hooks, and conntrack undoes the DNAT there.

        **Predict.** On a Docker 28+ host without br_netfilter, bridged frames skip netfilter. What does c2
        get then?
        """),
        code("""
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
        broken = lab.probe("c2", "172.17.9.103", port=2345, label="bridge-nf-call-iptables=0")
        assert not broken.delivered and "hairpin NAT is missing" in broken.reason
        broken
        """),
        md("""
        c2 called `172.17.9.103:2345` and got an answer from `10.55.66.2:8000`: that matches none of its
        connections, so it resets it. The fix is to make c1 answer *the host* rather than c2, so the
        answer has to come back through conntrack: a **hairpin MASQUERADE** for traffic from the bridge's
        subnet to the published container.
        """),
        code("""
        lab.set("hairpin-masquerade", True)
        fixed = lab.probe("c2", "172.17.9.103", port=2345, label="hairpin MASQUERADE")
        assert fixed.delivered and "(MASQUERADE)" in fixed.reason
        plots.grid([hairpin, broken, fixed])
        """),
        code("""
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 1)
        lab.run("host", "iptables -t nat -S")
        """),
        md("""
        ## For the instructor: every switch of part 4

        The probe is a TCP connection from the outside machine to the published port.
        """),
        code("""
        Panel(lab, ["dnat", "eth1-forward-rules", "forward-policy", "output-dnat", "hairpin-masquerade",
                    "bridge-nf-call-iptables"], probe=("outside", "172.17.9.103", 2345))
        """),
        md("""
        ## Exercise 1: publish the port yourself

        {PUBLISH_TASK}

        The next cell puts the lab back at the start of part 4 (no DNAT, no eth1 rules). Write your rules
        with `lab.iptables("...")`, then run the check.
        """, PUBLISH_TASK=PUBLISH.task),
        *exercise_cells("PUBLISH", '# Your rules:  lab.iptables("-t nat -A PREROUTING ...")', """
        <details><summary>Show a solution</summary>

        ```python
        lab.iptables("-t nat -A PREROUTING -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000")
        lab.iptables("-t filter -I FORWARD -i eth1 -o hwchiu0 -j ACCEPT")
        lab.iptables("-t filter -I FORWARD -i hwchiu0 -o eth1 -j ACCEPT")
        ```
        Docker writes the DNAT in a chain of its own (`DOCKER`, jumped to from PREROUTING for traffic to a
        local address) and accepts only that one container port in FORWARD; notebook 04 shows its rules.
        </details>
        """),
        md("""
        ## Exercise 2: curl on the host

        {LOCAL_TASK}
        """, LOCAL_TASK=LOCAL_ACCESS.task),
        *exercise_cells("LOCAL_ACCESS", '# Your rule:  lab.iptables("-t nat ...")', """
        <details><summary>Show a solution</summary>

        ```python
        lab.iptables("-t nat -A OUTPUT -p tcp -m tcp --dport 2345 -j DNAT --to-destination 10.55.66.2:8000")
        ```
        </details>
        """),
        md("""
        ## What we saw

        - **Sent to:** the outside machine can only reach the host's address; DNAT in nat PREROUTING
          rewrites `172.17.9.103:2345` into `10.55.66.2:8000` before routing, so the kernel forwards it to c1.
        - **Handled by:** conntrack remembers the rewrite and undoes it on every answer, so the client only
          ever sees the address it called. NAT is decided once per connection, at the first nat chain:
          PREROUTING for what arrives, OUTPUT for what the host itself opens.
        - **Filtered by:** FORWARD, which must accept the DNAT'd traffic between `eth1` and `hwchiu0`
          (and between `hwchiu0` and itself for hairpin traffic).

        Next: [04-what-docker-writes.ipynb](04-what-docker-writes.ipynb), Docker's own rules for the same
        job. The last cell ends the lab.
        """),
        code("""
        lab.close()
        assert lab.closed
        """),
    ]
    save(HERE / "03-outside-to-container.ipynb", cells, "The outside reaches a container")


def nb04():
    cells = [
        md("""
        # 4 · What Docker itself writes

        {CREDIT}

        The article builds Docker's network by hand. Here we load the rules **Docker 29** really writes
        for a container started with `docker run -p 8080:80`, and take them apart one rule at a time: for
        each chain, remove (or add) one rule and watch which journey changes. We finish with the layout of
        **Docker 19.03**, the version on the article's host, and with what changed in Docker 28.

        **Translation.** Docker's bridge `docker0` is played by `hwchiu0`; its subnet 172.17.0.0/16 by
        10.55.66.0/24; the container 172.17.0.2 serving port 80 by c1 (10.55.66.2) serving port 8000. The
        host publishes port **8080**, as in `-p 8080:80`. The rules are the ones moby documents for its
        iptables backend (Docker 29, default bridge, `--userland-proxy` on), with those names swapped. Both
        containers get a default route and the bridge its address, as Docker does; the outside machine of
        notebook 03 is there to play a client on another network.

        {SAFETY}
        """, CREDIT=CREDIT, SAFETY=SAFETY),
        code("""
        # Parameters (papermill sets these when the notebook runs as a test).
        lab_name = "nb04"
        run_solutions = False
        """, "parameters"),
        code("""
        from netkit import Lab, plots
        from netkit.widgets import Panel
        from netkit.exercises import DOCKER_USER

        lab = Lab(name=lab_name, stage="docker-29", replace=True)
        lab.run("host", "iptables -S")
        """),
        code("""
        lab.run("host", "iptables -t nat -S; iptables -t raw -S")
        """),
        md("""
        Read the filter table from the top. FORWARD jumps to **DOCKER-USER** (yours: Docker never writes
        in it) and then to **DOCKER-FORWARD**, which hands the packet on in order:

        1. **DOCKER-CT**: accept what goes *towards* the bridge if conntrack says it is a reply
           (`RELATED,ESTABLISHED`);
        2. **DOCKER-INTERNAL**: empty here (it isolates `--internal` networks);
        3. **DOCKER-BRIDGE** → **DOCKER**: for what goes towards the bridge, accept the published port of
           the container, and drop everything else that comes from outside the bridge;
        4. `-i hwchiu0 -j ACCEPT`: whatever the containers send, out or to each other, is accepted.

        In nat, PREROUTING (and OUTPUT, for the host's own connections) jump to nat **DOCKER** for
        traffic to a local address, where the DNAT of the published port lives; POSTROUTING masquerades the
        subnet when it leaves by any other interface. In raw, a guard drops anything addressed *straight*
        to the container unless it comes from its bridge.

        Three probes tell us whether the whole thing works: c1 to the internet, c1 to c2, and the outside
        machine to the published port.
        """),
        code("""
        def three_probes(label):
            return (lab.probe("c1", "8.8.8.8", label=label),
                    lab.probe("c1", "10.55.66.3", label=label),
                    lab.probe("outside", "172.17.9.103", port=8080, label=label))

        outgoing, between, published = three_probes("Docker 29")
        assert outgoing.delivered and between.delivered and published.delivered
        published
        """),
        code("""
        plots.ladder(published)
        """),
        md("""
        ## DOCKER-CT: replies only

        **Predict.** Remove the DOCKER-CT rule. c1 pings 8.8.8.8: which packet dies, the request or the
        reply, and which rule drops it?
        """),
        code("""
        lab.set("docker-ct", False)
        no_ct = lab.probe("c1", "8.8.8.8", label="without DOCKER-CT")
        assert not no_ct.delivered and no_ct.dropped_by.kind == "reply"
        assert no_ct.dropped_by.rule == "-A DOCKER ! -i hwchiu0 -o hwchiu0 -j DROP"
        no_ct
        """),
        code("""
        plots.grid([outgoing, no_ct])
        """),
        md("""
        The request went out (DOCKER-FORWARD's `-i hwchiu0 -j ACCEPT`), but the reply comes *in* from
        `eth0` towards the bridge, and without DOCKER-CT nothing tells it apart from a stranger: DOCKER's
        DROP takes it. That is the point of the chain: the outside may answer the containers, not call them.
        """),
        code("""
        lab.set("docker-ct", True)
        lab.set("docker-outbound", False)
        no_out = lab.probe("c1", "8.8.8.8", label="without -i hwchiu0 ACCEPT")
        assert str(no_out.dropped_by) == "filter FORWARD policy DROP in host" and no_out.dropped_by.kind == "request"
        assert not lab.probe("c1", "10.55.66.3").delivered
        lab.set("docker-outbound", True)
        no_out.reason
        """),
        md("""
        Without the last rule of DOCKER-FORWARD nothing accepts what the containers send, neither to the
        internet nor to each other: the packets fall through to FORWARD's policy, DROP.

        ## DOCKER: the published port, and nothing else

        **Predict.** Remove the ACCEPT of the published port. What happens to the outside machine's
        connection to 172.17.9.103:8080: refused by the host, or dropped, and where?
        """),
        code("""
        lab.set("docker-published", False)
        unpublished = lab.probe("outside", "172.17.9.103", port=8080, label="without the port's ACCEPT")
        assert unpublished.dropped_by.chain == "DOCKER" and unpublished.passed("FORWARD")
        lab.set("docker-published", True)
        unpublished
        """),
        md("""
        The DNAT still happened (nat DOCKER), so the packet was forwarded towards c1; in filter DOCKER
        nothing accepted port 8000 any more and the DROP for "from outside the bridge" took it.

        ## The raw guard: no direct connections

        Anyone on the outside network can add a route to 10.55.66.0/24 via the host and try to talk to
        the container *directly*, without the published port:
        """),
        code("""
        lab.change("outside", "ip route replace 10.55.66.0/24 via 172.17.9.103")
        guarded = lab.probe("outside", "10.55.66.2", port=8000, label="raw guard")
        assert guarded.dropped_by.table == "raw"
        guarded.reason
        """),
        md("""
        **Predict.** Without the raw guard, does filter's DOCKER chain stop the direct connection? Look at
        its first rule before you answer.
        """),
        code("""
        lab.set("docker-raw-guard", False)
        exposed = lab.probe("outside", "10.55.66.2", port=8000, label="no raw guard, port 8000")
        other = lab.probe("outside", "10.55.66.2", port=9999, label="no raw guard, port 9999")
        assert exposed.delivered and other.dropped_by.chain == "DOCKER"
        lab.set("docker-raw-guard", True)
        plots.grid([guarded, exposed, other])
        """),
        md("""
        DOCKER's ACCEPT for the published port matches *any* packet for 10.55.66.2:8000 coming from
        outside the bridge, whether it was DNAT'd or not. Docker 29 closes that hole with this one raw
        rule (and dropped the old DOCKER-ISOLATION chains in its favour). The article's Docker 19.03 had
        no such guard, as we will see at the end of this notebook.

        ## The article's rules, compared

        Part 3 of the article accepted `-i eth0 -o hwchiu0` (and part 4 `-i eth1 -o hwchiu0`) in FORWARD.
        That accepts the replies, and also any *new* connection from outside straight to a container:
        """),
        code("""
        article = Lab(name=lab_name + "-article", stage="part4-published")
        article.change("outside", "ip route replace 10.55.66.0/24 via 172.17.9.103")
        straight_in = article.probe("outside", "10.55.66.2", port=8000, label="article's FORWARD rules")
        article.close()
        assert straight_in.delivered
        accepted = [v.rule for v in straight_in.verdicts if v.chain == "FORWARD" and v.verdict == "ACCEPT"]
        assert "-A FORWARD -i eth1 -o hwchiu0 -j ACCEPT" in accepted
        straight_in.reason
        """),
        md("""
        DOCKER-CT would have accepted only the replies; the article's interface rule does not ask.

        ## DOCKER-USER is yours, and sees packets after DNAT

        Rules you add in DOCKER-USER run before all of Docker's, and Docker leaves the chain alone when it
        restarts. One trap: by the time a packet reaches FORWARD, nat PREROUTING has already rewritten it.
        """),
        code("""
        lab.iptables("-I DOCKER-USER -s 172.17.9.10 -p tcp --dport 8080 -j DROP")
        still_open = lab.probe("outside", "172.17.9.103", port=8080)
        assert still_open.delivered      # the port is 8000 by now: the rule never matches
        lab.run("host", "iptables -S DOCKER-USER -v")
        """),
        code("""
        lab.run("host", "iptables -F DOCKER-USER", check=True)
        assert lab.run("host", "iptables -S DOCKER-USER").stdout.strip() == "-N DOCKER-USER"
        """),
        md("""
        ## `--icc=false`, and why Docker 28 still loads br_netfilter for it

        `--icc=false` forbids containers on the bridge to talk to each other. Docker adds one DROP for
        traffic in *and* out of the bridge, ahead of the `-i hwchiu0 -j ACCEPT`:
        """),
        code("""
        lab.set("icc-false", True)
        isolated = lab.probe("c1", "10.55.66.3", label="--icc=false")
        assert isolated.dropped_by.rule == "-A DOCKER-FORWARD -i hwchiu0 -o hwchiu0 -j DROP"
        isolated.reason
        """),
        md("""
        **Predict.** Docker 28 and later no longer load `br_netfilter` unless they need it. Without it (here:
        `bridge-nf-call-iptables` at 0), is c1 still kept away from c2?
        """),
        code("""
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 0)
        bypassed = lab.probe("c1", "10.55.66.3", label="--icc=false, no br_netfilter")
        assert bypassed.delivered and bypassed.hooks == ()
        plots.grid([between, isolated, bypassed])
        """),
        md("""
        The frames never reach iptables, so the DROP has nothing to drop. This is why Docker 28+ still
        loads br_netfilter when `--icc=false` (or `--userland-proxy=false`) is set, and why, on a modern
        Docker host with neither, the first ping of notebook 01 simply works.
        """),
        code("""
        lab.sysctl("net.bridge.bridge-nf-call-iptables", 1)
        lab.set("icc-false", False)
        """),
        md("""
        ## For the instructor: Docker 29's rules one by one
        """),
        code("""
        Panel(lab, ["docker-ct", "docker-outbound", "docker-published", "docker-raw-guard", "icc-false",
                    "bridge-nf-call-iptables"], probe=("outside", "172.17.9.103", 8080))
        """),
        md("""
        ## Exercise: a rule of your own in DOCKER-USER

        {DOCKER_USER_TASK}
        """, DOCKER_USER_TASK=DOCKER_USER.task),
        *exercise_cells("DOCKER_USER", '# Your rule:  lab.iptables("-I DOCKER-USER ...")', """
        <details><summary>Show a solution</summary>

        ```python
        lab.iptables("-I DOCKER-USER -s 172.17.9.10/32 -p tcp -m conntrack --ctorigdstport 8080 -j DROP")
        ```
        `-p tcp --dport 8000` (the container's port, after DNAT) works too.
        </details>
        """),
        md("""
        ## The article's host: Docker 19.03

        Up to Docker 27 the rules sat in FORWARD itself, with two DOCKER-ISOLATION chains that keep
        separate bridge networks apart (with one bridge they only RETURN), and a hairpin MASQUERADE for a
        container reaching its own published port:
        """),
        code("""
        lab.reset("docker-19")
        lab.run("host", "iptables -S FORWARD; iptables -t nat -S POSTROUTING")
        """),
        code("""
        old_out, old_between, old_published = three_probes("Docker 19.03")
        assert old_out.delivered and old_between.delivered and old_published.delivered
        plots.grid([outgoing, old_out])
        """),
        md("""
        **Predict.** 19.03 has no raw guard. Can the outside machine, with its own route to the bridge's
        subnet, reach the container's port directly?
        """),
        code("""
        lab.change("outside", "ip route replace 10.55.66.0/24 via 172.17.9.103")
        old_direct = lab.probe("outside", "10.55.66.2", port=8000, label="19.03, direct to 8000")
        old_other = lab.probe("outside", "10.55.66.2", port=9999, label="19.03, direct to 9999")
        assert old_direct.delivered and not old_other.delivered
        plots.grid([guarded, old_direct, old_other])
        """),
        md("""
        Same outcomes, other chains: 19.03's `-o hwchiu0 -m conntrack --ctstate RELATED,ESTABLISHED` in
        FORWARD is 29's DOCKER-CT, and its `-i hwchiu0 ! -o hwchiu0` and `-i hwchiu0 -o hwchiu0` ACCEPTs
        are 29's `-i hwchiu0 -j ACCEPT`.

        ## What we saw

        - Docker's whitelist is FORWARD DROP plus: everything *from* the bridge; replies *to* it
          (DOCKER-CT); and, for each published port, that one port of that one container (DOCKER), reached
          through the DNAT in nat DOCKER.
        - The raw guard keeps the published container from being reached directly; DOCKER-USER is where
          your own rules go, and it sees packets after the DNAT.
        - `--icc=false` is a FORWARD rule, so it needs br_netfilter to see bridged frames at all.

        The last cell ends the lab.
        """),
        code("""
        lab.close()
        assert lab.closed
        """),
    ]
    save(HERE / "04-what-docker-writes.ipynb", cells, "What Docker itself writes")


if __name__ == "__main__":
    nb00()
    nb01()
    nb02()
    nb03()
    nb04()
    print("notebooks written to", HERE)
