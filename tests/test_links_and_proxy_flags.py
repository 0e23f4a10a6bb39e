"""Two small mechanisms of the lab's host, each also held to the kernel:

- the wait for link states (netkit.links): which links it waits for, read from a sysfs tree, and in a real
  lab that `ip` right after Lab() prints the bridge UP, as the article shows;
- the lab's docker-proxy reads Docker's own command line without argparse, and hands anything else to
  argparse (its help and its errors).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import uuid
from pathlib import Path

import pytest

from helpers import REPO
from netkit import links


def _link(root: Path, name: str, flags: int, operstate: str) -> None:
    (root / name).mkdir()
    (root / name / "flags").write_text(f"{flags:#x}\n")
    (root / name / "operstate").write_text(operstate + "\n")


@pytest.mark.pure
def test_the_wait_is_for_links_that_are_up_and_do_not_say_so_yet(tmp_path):
    _link(tmp_path, "lo", 0x9, "unknown")                # lo never reports up: never waited for
    _link(tmp_path, "hwchiu0", 0x1003, "unknown")        # up, its carrier not reported yet
    _link(tmp_path, "veth0", 0x1003, "up")
    _link(tmp_path, "eth1", 0x1002, "down")              # administratively down: nothing to wait for
    assert links.waiting(str(tmp_path)) == ["hwchiu0"]
    (tmp_path / "hwchiu0" / "operstate").write_text("up\n")
    assert links.waiting(str(tmp_path)) == []


@pytest.mark.lab
def test_ip_right_after_lab_shows_the_bridge_up():
    from netkit import Lab
    with Lab(name=f"links-{uuid.uuid4().hex[:6]}") as lab:
        shown = lab.run("host", "ip -br link show hwchiu0").stdout.split()
    assert shown[:2] == ["hwchiu0", "UP"], shown


def _proxy():
    loader = importlib.machinery.SourceFileLoader("lab_docker_proxy", str(REPO / "netkit" / "bin" / "docker-proxy"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


DOCKER_ARGV = ["-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "10.55.66.2",
               "-container-port", "8000"]


@pytest.mark.pure
def test_dockers_command_line_is_read_without_argparse():
    proxy = _proxy()
    args = proxy.parse_quick(DOCKER_ARGV)
    assert (args.proto, args.host_ip, args.host_port, args.container_ip, args.container_port) == \
        ("tcp", "0.0.0.0", 8080, "10.55.66.2", 8000)
    assert proxy.parse(DOCKER_ARGV).__dict__ == args.__dict__


@pytest.mark.pure
@pytest.mark.parametrize("argv", [
    ["-host-ip=0.0.0.0", *DOCKER_ARGV[4:]],                          # Go's -flag=value: argparse reads it
    DOCKER_ARGV[:-2],                                                # a flag missing
    [*DOCKER_ARGV[:-1], "70000"],                                    # a port out of range
    ["-proto", "udp", *DOCKER_ARGV[2:]],                             # udp: not in the lab
    [*DOCKER_ARGV[:3], "not-an-address", *DOCKER_ARGV[4:]],
    ["-h"],
])
def test_anything_else_goes_to_argparse(argv):
    proxy = _proxy()
    assert proxy.parse_quick(argv) is None


@pytest.mark.pure
def test_argparse_still_reads_go_style_flags_and_refuses_bad_ones(capsys):
    proxy = _proxy()
    args = proxy.parse(["-host-ip=0.0.0.0", *DOCKER_ARGV[4:]])
    assert args.host_ip == "0.0.0.0" and args.host_port == 8080
    with pytest.raises(SystemExit) as refused:
        proxy.parse([*DOCKER_ARGV[:-1], "70000"])
    assert refused.value.code == 2 and "70000" in capsys.readouterr().err
