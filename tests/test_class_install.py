"""The class's shared environment gets netkit built from a copy of the source, never in the checkout."""

from __future__ import annotations

import subprocess

import pytest

from helpers import REPO
from netkit.classroom import install

pytestmark = pytest.mark.pure     # a build into a temporary folder: no lab, no account, no network


def _checkout() -> set[str]:
    return {path.name for path in REPO.iterdir()} | {path.name for path in (REPO / "netkit").iterdir()}


def test_netkit_builds_from_the_copy_with_its_data_and_leaves_the_checkout_as_it_was(tmp_path):
    before = _checkout()
    with install._source(REPO) as source:
        # Debian's python3 brings setuptools and wheel, so nothing is downloaded (the shared env is built from it too)
        done = subprocess.run(["/usr/bin/python3", "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                               "--target", str(tmp_path / "site"), str(source)], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert (source / "pyproject.toml").exists()
    assert not source.exists()                                   # the copy goes too
    built = tmp_path / "site" / "netkit"
    assert (built / "bin" / "docker-proxy").exists()             # the package data came along
    assert (built / "locale" / "zh_TW" / "LC_MESSAGES" / "netkit.po").exists()
    assert (built / "recordings").is_dir() and list((built / "recordings").glob("*.json"))
    assert _checkout() == before                                 # no build/, no new egg-info in the checkout
