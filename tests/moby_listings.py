"""Docker 29's own rule listings, read from moby's generated docs and put in the lab's names.

moby's integration test ``TestBridgeIptablesDoc`` (and ``TestBridgeNftablesDoc``)
starts a real daemon, creates a network and a container with ``-p 8080:80``,
captures ``iptables -S -t TABLE`` (or ``nft list ruleset``) and writes the
result into markdown under ``integration/network/bridge/*tablesdoc/generated/``.
The copies in ``tests/data/moby-v29.0.0/`` are those files at the tag
``docker-v29.0.0`` (moby tags Engine 29 as ``docker-vX.Y.Z``; there is no
``v29.0.0`` tag), each with one header line naming its source.

- ``moby_rules(case)``: the iptables rules of one case ("portmap", "noproxy",
  "noicc"), per table, with the listing's names and addresses replaced by the
  lab's (`LAB_NAMES`, `LAB_PORTS`) and the idle default bridge left out (`IDLE`).
- ``moby_nft(case)``: the same for the nftables backend ("portmap"): the
  ``ip docker-bridges`` table, its maps and chains, and ``script()`` to load it.
- ``lab_rules(stage)``: the iptables rules a lab stage writes, from the same
  `iptables-restore` input the lab's host runs (`netkit.build.restore_input`).

Each table is a `Table`; ``render()`` prints it in ``iptables -S`` order, so two
tables are equal exactly when their renderings are.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "moby-v29.0.0"

REPOSITORY = "https://github.com/moby/moby"
TAG = "docker-v29.0.0"
COMMIT = "d105562beff448ae44d6e3a2f7738b235fd197b5"

# case -> (file under DATA, moby's path at TAG, the git blob id of moby's file at TAG)
CASES = {
    "portmap": ("iptablesdoc/usernet-portmap.md",
                "integration/network/bridge/iptablesdoc/generated/usernet-portmap.md",
                "6f4ba7d0be94976946f728b66c94897977519a8d"),
    "noproxy": ("iptablesdoc/usernet-portmap-noproxy.md",
                "integration/network/bridge/iptablesdoc/generated/usernet-portmap-noproxy.md",
                "c426f21f8bbb05e520f9d13ebecd0ac389c2a7ff"),
    "noicc": ("iptablesdoc/usernet-portmap-noicc.md",
              "integration/network/bridge/iptablesdoc/generated/usernet-portmap-noicc.md",
              "731e6824c8ce5df6181d9cfc885283555562a2ff"),
}
NFT_CASES = {
    "portmap": ("nftablesdoc/usernet-portmap.md",
                "integration/network/bridge/nftablesdoc/generated/usernet-portmap.md",
                "d88ff341cd981ddc7f4ce6c08e4d6390c4e38bdb"),
}

# The listing's names and addresses -> the lab's. moby's listing puts the container on a
# user-defined network, bridge1 192.0.2.0/24, next to the daemon's default bridge docker0;
# the lab has one bridge, hwchiu0, which plays the bridge the container is on.
LAB_NAMES = {
    "bridge1": "hwchiu0",             # the container's bridge
    "192.0.2.0/24": "10.55.66.0/24",  # its subnet
    "192.0.2.1": "10.55.66.1",        # its gateway (the bridge's address)
    "192.0.2.2": "10.55.66.2",        # the container (c1)
    "192.0.2.2/32": "10.55.66.2/32",
}
# Ports, mapped only where a rule names a port (after --dport / dport, or in ADDRESS:PORT).
LAB_PORTS = {
    "80": "8000",     # the container's port: c1's web server listens on 8000
    "8080": "8080",   # the published host port, as `docker run -p 8080:80`
}
# The daemon's default bridge in moby's listing has no container; its per-network rules
# (the same shape as bridge1's) are left out, since the lab's single bridge is bridge1's.
IDLE = {"docker0", "172.17.0.0/16"}

BUILTIN = {  # the kernel's built-in chains of each table, in the order iptables -S prints them
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
}


@dataclass
class Table:
    """One iptables table: policies of built-in chains, user chains (-N), rules (-A, in order)."""

    name: str
    policies: dict[str, str] = field(default_factory=dict)
    chains: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)      # "-A CHAIN ..."

    def chain(self, name: str) -> list[str]:
        """The rules of chain `name`, in order."""
        return [rule for rule in self.rules if rule.split()[1] == name]

    def chain_order(self) -> list[str]:
        """Built-in chains in the kernel's order, then user chains by name, as iptables -S lists them."""
        builtin = [c for c in BUILTIN.get(self.name, ()) if c in self.policies or self.chain(c)]
        named = sorted(set(self.chains) | {r.split()[1] for r in self.rules} - set(BUILTIN.get(self.name, ())))
        return builtin + named

    def render(self, policies: bool = True) -> list[str]:
        """The table as ``iptables -S -t NAME`` prints it (without policies if `policies` is false)."""
        order = BUILTIN[self.name]
        lines = [f"-P {c} {self.policies[c]}" for c in order if c in self.policies] if policies else []
        lines += [f"-N {c}" for c in sorted(self.chains)]
        for chain in self.chain_order():
            lines += self.chain(chain)
        return lines


# -- reading moby's markdown --------------------------------------------------------------------

def header(kind: str, case: str) -> str:
    """The first line of a kept listing: where it came from."""
    return (DATA / (CASES if kind == "iptables" else NFT_CASES)[case][0]).read_text().splitlines()[0]


def moby_text(kind: str, case: str) -> str:
    """The listing exactly as moby has it: the kept file without its header line."""
    text = (DATA / (CASES if kind == "iptables" else NFT_CASES)[case][0]).read_text()
    return text.split("\n", 1)[1]


def git_blob_id(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


_COMMAND = re.compile(r"^    (-[PNA] \S.*?)\s*$")


def read_listing(text: str) -> dict[str, Table]:
    """Every ``iptables -S`` block of a moby listing, by table, in the listing's own names.

    A block is a run of lines indented by four spaces that start with -P, -N or -A (the
    markdown shows each `iptables -S -t TABLE` output so). The table is told by the built-in
    chains its -P lines name, which differ from table to table.
    """
    blocks: list[list[str]] = []
    inside = False
    for line in text.splitlines():
        match = _COMMAND.match(line)
        if match:
            if not inside:
                blocks.append([])
            blocks[-1].append(match.group(1))
            inside = True
        elif line.strip():
            inside = False
        # a blank (or whitespace-only) line inside a block neither ends nor adds to it
    tables: dict[str, Table] = {}
    for block in blocks:
        builtins = tuple(line.split()[1] for line in block if line.startswith("-P "))
        names = [name for name, chains in BUILTIN.items() if chains == builtins]
        if len(names) != 1:
            raise ValueError(f"cannot tell the table of a block whose policies name {builtins}: {block[:3]}")
        table = Table(names[0])
        for line in block:
            verb, rest = line.split(" ", 1)
            if verb == "-P":
                chain, policy = rest.split()
                table.policies[chain] = policy
            elif verb == "-N":
                table.chains.append(rest)
            else:
                table.rules.append(line)
        if table.name in tables:
            raise ValueError(f"two {table.name} blocks in one listing")
        tables[table.name] = table
    return tables


# -- the lab's names ----------------------------------------------------------------------------

def _lab_word(word: str, previous: str) -> str:
    core = word.rstrip(",")
    tail = word[len(core):]
    quote = '"' if len(core) >= 2 and core[0] == core[-1] == '"' else ""
    if quote:
        core = core[1:-1]
    if previous in ("--dport", "dport"):
        core = LAB_PORTS[core]
    elif core in LAB_NAMES:
        core = LAB_NAMES[core]
    elif ":" in core and core.rsplit(":", 1)[0] in LAB_NAMES:      # DNAT's ADDRESS:PORT
        address, port = core.rsplit(":", 1)
        core = f"{LAB_NAMES[address]}:{LAB_PORTS[port]}"
    elif "__" in core and core.rsplit("__", 1)[1] in LAB_NAMES:    # nftables' per-bridge chains
        prefix, bridge = core.rsplit("__", 1)
        core = f"{prefix}__{LAB_NAMES[bridge]}"
    return f"{quote}{core}{quote}{tail}"


def lab_line(line: str) -> str:
    """One rule with the listing's names, addresses and ports replaced by the lab's."""
    words = line.split(" ")
    out = [_lab_word(word, words[i - 1] if i else "") for i, word in enumerate(words)]
    result = " ".join(out)
    left = [name for name in ("192.0.2.", "bridge1", "docker0", "172.17.") if name in result]
    if left:
        raise ValueError(f"{line!r} still names {left} in the lab's names: {result!r}")
    return result


def idle(line: str) -> bool:
    """Whether a rule belongs to the listing's idle default bridge (docker0)."""
    for word in line.split():
        core = word.rstrip(",").strip('"')
        if core in IDLE or core.endswith("__docker0"):
            return True
    return False


def lab_names(tables: dict[str, Table]) -> dict[str, Table]:
    """A listing's tables in the lab's names, without the idle default bridge's rules."""
    return {name: Table(name, dict(t.policies), list(t.chains),
                        [lab_line(rule) for rule in t.rules if not idle(rule)])
            for name, t in tables.items()}


@functools.cache
def _moby_rules(case: str) -> dict[str, Table]:
    return lab_names(read_listing(moby_text("iptables", case)))


def moby_rules(case: str) -> dict[str, Table]:
    """Docker 29's iptables rules for `case` ("portmap", "noproxy", "noicc"), in the lab's names.

    Only the tables moby's listing shows: "noproxy" and "noicc" show filter and nat
    (their templates do not capture raw), "portmap" also raw.
    """
    if case not in CASES:
        raise KeyError(f"no moby listing {case!r}; there are {', '.join(CASES)}")
    return {name: Table(name, dict(t.policies), list(t.chains), list(t.rules))
            for name, t in _moby_rules(case).items()}


# -- the lab's own rules ------------------------------------------------------------------------

def read_restore(text: str, into: dict[str, Table] | None = None) -> dict[str, Table]:
    """Tables from iptables-restore input (``*table``, ``:CHAIN POLICY [0:0]``, rules, ``COMMIT``).

    A rule inserted (``-I CHAIN [N] ...``) is kept as ``-A CHAIN ...`` at the place it ends up,
    so the rules of each chain are in the order the kernel then holds them.
    """
    tables = {} if into is None else into
    current: Table | None = None
    for line in text.splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:], Table(line[1:]))
        elif line == "COMMIT":
            current = None
        elif line.startswith(":"):
            chain, policy = line[1:].split()[:2]
            if policy == "-":
                current.chains.append(chain)
            else:
                current.policies[chain] = policy
        elif line.startswith("-A "):
            current.rules.append(line)
        elif line.startswith("-I "):
            _insert(current, line)
        elif line.strip():
            raise ValueError(f"iptables-restore line not understood here: {line!r}")
    return tables


_INSERT = re.compile(r"^-I (\S+)(?: (\d+))? (.*)$")


def _insert(table: Table, line: str) -> None:
    """``-I CHAIN [N] SPEC``: the rule, as ``-A CHAIN SPEC``, at place N (1 if not given) of its chain."""
    chain, number, spec = _INSERT.match(line).groups()
    places = [i for i, rule in enumerate(table.rules) if rule.split()[1] == chain]
    place = int(number or 1)
    at = places[place - 1] if place <= len(places) else (places[-1] + 1 if places else len(table.rules))
    table.rules.insert(at, f"-A {chain} {spec}")


def lab_rules(stage: str = "docker-29") -> dict[str, Table]:
    """Every iptables rule, chain and policy the lab's host has at `stage`, built from nothing.

    The same input the lab runs: each batch of iptables steps becomes one
    `iptables-restore --noflush` transaction (`netkit.build.restore_input`).
    """
    from netkit import build, topology
    tables: dict[str, Table] = {}
    for batch in build.batches(topology.steps_to(stage)):
        if batch.node == "host" and batch.tool == "iptables":
            text, _ = build.restore_input([step.command for step in batch.steps])
            read_restore(text, tables)
    return tables


# -- nftables -----------------------------------------------------------------------------------

@dataclass
class NftTable:
    """An nftables table: maps (name -> type line, elements) and chains (name -> lines), in order."""

    family: str
    name: str
    maps: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)

    def script(self) -> str:
        """The table as ``nft -f`` takes it."""
        out = [f"table {self.family} {self.name} {{"]
        for name, (kind, elements) in self.maps.items():
            out += [f"\tmap {name} {{", f"\t\t{kind}"]
            if elements:
                out.append("\t\telements = { " + ",\n\t\t\t     ".join(elements) + " }")
            out += ["\t}", ""]
        for name, lines in self.chains.items():
            out += [f"\tchain {name} {{"] + [f"\t\t{line}" for line in lines] + ["\t}", ""]
        if out[-1] == "":
            out.pop()
        return "\n".join(out + ["}"]) + "\n"


def read_nft(text: str) -> NftTable:
    """The first ``table FAMILY NAME { ... }`` shown (indented by four spaces) in an nftables listing."""
    body: list[str] = []
    for line in text.splitlines():
        if not body and line.startswith("    table "):
            body.append(line[4:])
        elif body:
            if not line.startswith("    "):
                raise ValueError("the table's listing ends before its closing brace")
            body.append(line[4:])
            if line[4:] == "}":
                break
    return parse_nft(body)


def parse_nft(lines: list[str]) -> NftTable:
    _, family, name, brace = lines[0].split()
    assert brace == "{", lines[0]
    table = NftTable(family, name)
    block: tuple[str, str] | None = None
    pending = ""                          # a map's elements, continued over several lines
    for raw in lines[1:-1]:
        line = raw.strip()
        if pending:
            pending += " " + line
            if line.endswith("}"):
                table.maps[block[1]][1].extend(_elements(pending))
                pending = ""
        elif not line:
            continue
        elif block is None:
            kind, named, brace = line.split()
            assert brace == "{" and kind in ("map", "chain"), line
            block = (kind, named)
            if kind == "map":
                table.maps[named] = ("", [])
            else:
                table.chains[named] = []
        elif line == "}":
            block = None
        elif block[0] == "map" and line.startswith("elements = {"):
            pending = line
            if line.endswith("}"):
                table.maps[block[1]][1].extend(_elements(pending))
                pending = ""
        elif block[0] == "map":
            table.maps[block[1]] = (line, table.maps[block[1]][1])
        else:
            table.chains[block[1]].append(line)
    return table


def _elements(text: str) -> list[str]:
    inner = text[text.index("{") + 1:text.rindex("}")]
    return [" ".join(item.split()) for item in inner.split(",") if item.strip()]


def nft_lab_names(table: NftTable) -> NftTable:
    """An nftables table in the lab's names, without the idle default bridge's chains and map elements."""
    out = NftTable(table.family, table.name)
    for name, (kind, elements) in table.maps.items():
        out.maps[name] = (kind, [lab_line(e) for e in elements if not idle(e)])
    for name, lines in table.chains.items():
        if idle(name):
            continue
        out.chains[lab_line(name)] = [lab_line(line) for line in lines if not idle(line)]
    return out


@functools.cache
def _moby_nft(case: str) -> NftTable:
    return nft_lab_names(read_nft(moby_text("nftables", case)))


def moby_nft(case: str = "portmap") -> NftTable:
    """Docker 29's ``ip docker-bridges`` table (``--firewall-backend=nftables``) for `case`, in the lab's names."""
    if case not in NFT_CASES:
        raise KeyError(f"no moby nftables listing {case!r}; there are {', '.join(NFT_CASES)}")
    table = _moby_nft(case)
    return NftTable(table.family, table.name,
                    {k: (kind, list(e)) for k, (kind, e) in table.maps.items()},
                    {k: list(v) for k, v in table.chains.items()})
