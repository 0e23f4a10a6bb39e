"""Where br_netfilter is missing, the doctor names the platform and the command that loads it there.

Recorded kernel releases (``uname -r``) of each platform, as a container or a shell there reports them:
Docker Desktop on macOS runs a LinuxKit kernel, WSL2 (and Docker Desktop on Windows) a Microsoft kernel,
`podman machine` Fedora CoreOS; Colima and Lima run an Ubuntu VM, which is an ordinary Linux kernel.
None of these platforms exists on this project's machines: the releases stand in for them.
"""

from __future__ import annotations

import pytest

from netkit import doctor, use_language

pytestmark = pytest.mark.pure

RELEASES = [
    ("6.10.14-linuxkit", "docker", "docker-desktop"),
    ("6.12.5-linuxkit", "", "docker-desktop"),
    ("5.15.167.4-microsoft-standard-WSL2", "", "wsl2"),
    ("6.6.36.3-microsoft-standard-WSL2", "docker", "wsl2"),
    ("6.12.7-200.fc41.x86_64", "podman", "podman-machine"),
    ("6.12.7-200.fc41.x86_64", "", "linux"),               # Fedora itself, no container: a Linux machine
    ("6.8.0-49-generic", "docker", "linux"),               # Colima's or Lima's Ubuntu VM, or any Ubuntu host
    ("6.1.0-28-amd64", "", "linux"),
    ("6.18.44-fc-v1300", "", "linux"),                     # this project's own kernel: not Fedora's
]


@pytest.mark.parametrize("release, runtime, expected", RELEASES)
def test_the_platform_is_told_from_the_kernel_release(release, runtime, expected):
    assert doctor.platform_of(release, runtime) == expected


def test_each_platform_gets_its_own_command_and_a_way_to_keep_it():
    use_language("en")
    try:
        fixes = {where: doctor.br_netfilter_fix(where, runtime)
                 for where, runtime in (("docker-desktop", "docker"), ("wsl2", ""), ("podman-machine", "podman"),
                                        ("linux", ""))}
        assert "enable_icc=false" in fixes["docker-desktop"] and "restart" in fixes["docker-desktop"]
        assert "sudo modprobe br_netfilter" in fixes["wsl2"] and "/etc/wsl.conf" in fixes["wsl2"]
        assert fixes["podman-machine"].startswith("podman machine ssh sudo modprobe br_netfilter")
        assert "/etc/modules-load.d/" in fixes["podman-machine"]
        assert fixes["linux"].startswith("sudo modprobe br_netfilter") and "/etc/modules-load.d/" in fixes["linux"]
        assert len(set(fixes.values())) == 4
        in_a_container = doctor.br_netfilter_fix("linux", "docker")
        assert "colima ssh --" in in_a_container and "limactl shell" in in_a_container
        assert "on the node" in doctor.br_netfilter_fix("linux", "kubernetes")
    finally:
        use_language(None)


def test_every_platform_has_a_name_in_both_languages():
    from netkit.i18n import catalogue
    for name in doctor.PLATFORMS.values():
        assert catalogue("zh-TW").get(name), name
