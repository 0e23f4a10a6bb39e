"""Fixtures every lab test shares, the two guards the lab tests run under, and the tests' kinds.

Kinds: a test is marked with what it needs (``lab``, ``rootless``, ``notebook``, ``browser``,
``container``, ``docker``, ``hub``: see pyproject.toml), or it is ``pure``: pure code on recorded data,
no lab, no root, no network. A test marked with none of them is pure (the marker is added here), and a
pure test that asks for a lab's fixture, or is marked with a kind too, stops the collection: say what it
needs. ``./quickstart test --fast`` (``pytest -m pure``) runs the pure tests alone.

Guards:
- `machine_untouched` (session): reads the machine's own network before the
  first test that is not pure and after the last test; any difference fails the run loudly, as
  does a lab, or a netkit keeper, that the tests started and left running. Every test that is not pure
  runs under it (`_machine_guard`); a run of pure tests alone never reads the machine.
- `no_lab_outlives_its_test` (each test): no lab host process of a lab the
  test named may still run when the test ends.

Tests marked ``lab`` are skipped, with the doctor's reason, on a machine that
cannot create the lab's namespaces at all; tests marked ``rootless`` need root
(to create the unprivileged user they run as).
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from netkit.waiting import wait_until

from helpers import (NAMES, REPO, agents_running, engine_footprint, keepers_running, lab_name, machine_snapshot,
                     snapshot_diff)


@functools.lru_cache(maxsize=None)
def _namespaces_check():
    from netkit import doctor
    return doctor.check_privileges()


def pytest_configure(config):
    # The suite tests live labs; the replay tests switch replay mode on where they mean to (netkit.replay).
    for setting in ("NETKIT_REPLAY", "NETKIT_RECORD", "NETKIT_RECORDINGS"):
        os.environ.pop(setting, None)


KINDS = ("lab", "rootless", "notebook", "browser", "container", "docker", "hub")
"""The markers of tests that need more than pure code (pyproject.toml describes each)."""
LAB_FIXTURES = {"lab", "name", "table_lab", "netkit_test_user", "netkit_copy", "world_tmp", "shared_dir"}
"""Fixtures that make labs, users or shared directories: a pure test asks for none of them."""


def pytest_collection_modifyitems(config, items):
    wrong = []
    for item in items:
        kinds = [kind for kind in KINDS if item.get_closest_marker(kind)]
        if not kinds and item.get_closest_marker("pure") is None:
            item.add_marker(pytest.mark.pure)          # it says it needs nothing more: pure
        if item.get_closest_marker("pure") is not None:
            if kinds:
                wrong.append(f"{item.nodeid}: marked pure and {', '.join(kinds)}")
            params = set(item.callspec.params) if hasattr(item, "callspec") else set()   # parametrize's own
            used = sorted(LAB_FIXTURES & (set(getattr(item, "fixturenames", ())) - params))
            if used:
                wrong.append(f"{item.nodeid}: pure, but asks for {', '.join(used)}: mark it with what it needs")
    if wrong:
        raise pytest.UsageError("tests of the wrong kind:\n" + "\n".join(wrong))


def pytest_runtest_setup(item):
    if item.get_closest_marker("rootless") and os.geteuid() != 0:
        pytest.skip("needs root to create the unprivileged user `netkit-test` it runs the lab as")
    if item.get_closest_marker("lab") or item.get_closest_marker("rootless"):
        check = _namespaces_check()
        if not check.ok:
            pytest.skip(f"this machine cannot run labs: {check.found}; fix: {check.fix}")


@pytest.fixture(autouse=True)
def _machine_guard(request):
    """Every test that is not pure runs under `machine_untouched` (a pure test needs no guard: it never
    reaches the kernel; so `pytest -m pure` starts at once)."""
    if request.node.get_closest_marker("pure") is None:
        request.getfixturevalue("machine_untouched")


@pytest.fixture(scope="session")
def machine_untouched():
    """The machine's own network reads the same after the whole suite as before it."""
    before = machine_snapshot()
    engine = engine_footprint()
    keepers = keepers_running()
    yield before
    after = machine_snapshot()
    problems = []
    changed = {key: (engine[key], now) for key, now in engine_footprint().items() if now != engine[key]}
    if changed:
        problems.append("the tests left a Docker Engine's programs or group on the machine (before -> after):\n"
                        + "\n".join(f"  {key}: {was} -> {now}" for key, (was, now) in changed.items()))
    left_keepers = keepers_running() - keepers
    if left_keepers:
        problems.append(f"netkit keepers started by the tests outlived them: pids {sorted(left_keepers)}")
    diff = snapshot_diff(before, after)
    if diff:
        problems.append("THE MACHINE'S OWN NETWORK NAMESPACE CHANGED DURING THE TESTS:\n" + diff)
    left = agents_running(NAMES)
    if left:
        problems.append("lab host processes outlived the test suite: " + ", ".join(left))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def no_lab_outlives_its_test():
    known = set(NAMES)
    yield
    named_here = NAMES - known
    if not named_here:
        return
    wait_until(lambda: not agents_running(named_here), timeout=1.0)
    left = agents_running(named_here)
    assert not left, f"labs of this test still run after it ended: {left}"


@pytest.fixture
def shared_dir():
    """A directory a container's user (uid 1000 in the kit's image) may write, for what comes out of it."""
    path = tempfile.mkdtemp(prefix="netkit-container-")
    os.chmod(path, 0o777)
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def name() -> str:
    """A fresh lab name for this test."""
    return lab_name()


@pytest.fixture
def lab(name):
    """A lab at part3-start, closed whatever the test does."""
    from netkit import Lab
    lab = Lab(name=name)
    try:
        yield lab
    finally:
        lab.close()


# -- an unprivileged user, for the rootless tests --------------------------------------------
TEST_USER = "netkit-test"


@pytest.fixture(scope="session")
def netkit_test_user() -> tuple[int, int, str]:
    """(uid, gid, home) of the unprivileged system user `netkit-test`, created if missing."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the unprivileged user `netkit-test`")
    try:
        entry = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--create-home", "--shell", "/bin/bash", TEST_USER],
                       check=True, capture_output=True, text=True)
        entry = pwd.getpwnam(TEST_USER)
    assert entry.pw_uid != 0
    return entry.pw_uid, entry.pw_gid, entry.pw_dir


@pytest.fixture
def world_tmp():
    """A temporary directory every user can read (tmp_path lives under root's private dir)."""
    path = tempfile.mkdtemp(prefix="netkit-tests-")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def netkit_copy():
    """A world-readable copy of the netkit package (and tests/helpers.py), for another user.

    The repository and its venv may sit under a directory only root can enter; the lab's own
    code needs nothing but the standard library, so Debian's /usr/bin/python3 runs this copy.
    """
    path = tempfile.mkdtemp(prefix="netkit-copy-")
    try:
        shutil.copytree(REPO / "netkit", os.path.join(path, "netkit"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "tests" / "helpers.py", path)
        for root, dirs, files in os.walk(path):
            os.chmod(root, 0o755)
            for file in files:
                os.chmod(os.path.join(root, file), 0o644)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
