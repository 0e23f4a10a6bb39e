"""What /proc says about processes and sockets, read in one place.

- `fd_targets`: where a process's open files point (the lab's state finds the
  processes still holding a deleted state file with it);
- `listeners`, `listening_programs`: the TCP sockets listening in the reader's
  network namespace, and the processes holding them (the lab's host waits for
  its docker-proxy with them, and a probe finds the proxy that would take a
  connection).

Standard library only (the lab's host imports it at start). A process that
ends, or one this user may not look into, simply has nothing here.
"""

from __future__ import annotations

import ipaddress
import os
import sys


def _read(path: str) -> bytes:
    """A /proc file's bytes (plain open: pathlib is not imported in the lab's host at start-up)."""
    with open(path, "rb") as file:
        return file.read()


def fd_targets(pid: int | str) -> list[str]:
    """Where each open file descriptor of `pid` points (``socket:[123]``, a path, ...), as /proc/PID/fd says."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    targets = []
    for fd in fds:
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return targets


def listeners() -> list[tuple[str, int, int]]:
    """(address, port, socket inode) of every listening TCP socket in the reader's network namespace, from
    /proc/net/tcp and tcp6 (state 0A is LISTEN)."""
    found = []
    for name in ("tcp", "tcp6"):
        try:
            lines = _read(f"/proc/net/{name}").decode().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":
                continue
            hex_ip, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_ip)
            # the kernel prints each 32-bit word of the address in the machine's byte order
            words = b"".join(raw[i:i + 4][::-1] if sys.byteorder == "little" else raw[i:i + 4]
                             for i in range(0, len(raw), 4))
            found.append((str(ipaddress.ip_address(words)), int(hex_port, 16), int(fields[9])))
    return found


def listening_programs(port: int | None = None) -> list[dict]:
    """Who listens on TCP `port` (every port when None) in the reader's network namespace: address, port, and the
    process holding the socket (pid, its name as `ss -p` shows it, its argv), read from /proc."""
    wanted = {inode: (address, listen_port) for address, listen_port, inode in listeners()
              if port is None or listen_port == port}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not wanted:
            continue
        for target in fd_targets(entry):
            if not target.startswith("socket:["):
                continue
            inode = int(target[8:-1])
            if inode in wanted:
                try:
                    program = _read(f"/proc/{entry}/comm").decode().strip()
                    argv = [a.decode(errors="replace") for a in
                            _read(f"/proc/{entry}/cmdline").split(b"\0") if a]
                except OSError:
                    continue
                address, listen_port = wanted.pop(inode)
                found.append({"address": address, "port": listen_port, "pid": int(entry),
                              "program": program, "argv": argv})
    found += [{"address": address, "port": listen_port, "pid": None, "program": "", "argv": []}
              for address, listen_port in wanted.values()]
    return sorted(found, key=lambda f: (f["port"], ":" in f["address"], f["address"]))
