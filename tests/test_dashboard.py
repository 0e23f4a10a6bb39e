"""The instructor dashboard, driven as clicks drive it (widget values, buttons), on a real lab."""

import subprocess
import sys

import nbformat
import pytest

from helpers import REPO
from helpers import running_lab
from netkit import Lab
from netkit.waiting import wait_until
from netkit import scenarios
from netkit import widgets
from netkit.dashboard import Dashboard
from netkit.scenarios import SWITCHES
from netkit.widgets import Panel

pytestmark = pytest.mark.lab


@pytest.fixture
def lab(name):
    with Lab(name=name) as lab:
        yield lab


def sysctl_in_lab(lab) -> str:
    return lab.run("host", "cat /proc/sys/net/bridge/bridge-nf-call-iptables").stdout.strip()


def test_every_switch_is_shown_under_its_scenario(lab):
    dash = Dashboard(lab)
    assert sorted(dash.controls) == sorted(SWITCHES)
    shown = [name for names in dash.groups.values() for name in names]
    assert sorted(shown) == sorted(SWITCHES)                      # each switch once
    for title, names in scenarios.groups().items():
        assert dash.groups[title] == names
    assert dash.groups["1 · container to container"] == ["bridge-nf-call-iptables", "forward-policy"]
    # each toggle shows what the kernel says at part3-start
    assert {name: c.value for name, c in dash.controls.items()} == lab.state() == dash.state
    assert set(dash.probe_buttons) == {p.key for p in scenarios.probes()}
    assert "NOT delivered" in dash.outcome.value and "FORWARD policy DROP" in dash.outcome.value
    assert b"<svg" in bytes(dash.picture.value)[:400]


def test_flipping_a_switch_changes_the_kernel_and_the_outcome(lab):
    dash = Dashboard(lab)
    before = dash.picture.value
    dash.controls["bridge-nf-call-iptables"].value = 0          # what a click does
    assert sysctl_in_lab(lab) == "0"
    assert dash.journey.delivered and "c1 → 10.55.66.3: delivered" in dash.outcome.value
    assert "sysctl -w net.bridge.bridge-nf-call-iptables=0" in dash.typed.value
    assert dash.picture.value != before
    # the picture sits in a frame of fixed height: what is below it (the commands typed) does not jump
    assert dash.picture in dash.frame.children and dash.frame.layout.height == widgets.PICTURE_HEIGHT
    dash.controls["bridge-nf-call-iptables"].value = 1
    assert sysctl_in_lab(lab) == "1" and "NOT delivered" in dash.outcome.value

    dash.probe_buttons[("c1", "8.8.8.8")].click()
    assert "c1 has no route to 8.8.8.8" in dash.outcome.value
    assert dash.probe_buttons[("c1", "8.8.8.8")].button_style == "primary"
    for name in ("bridge-address", "default-route", "masquerade"):
        dash.controls[name].value = True
    dash.controls["forward-policy"].value = "ACCEPT"
    assert lab.run("host", "iptables -S FORWARD").stdout.startswith("-P FORWARD ACCEPT")
    assert "10.55.66.1/24" in lab.run("host", "ip -4 addr show dev hwchiu0").stdout
    assert "MASQUERADE" in lab.run("host", "iptables -t nat -S POSTROUTING").stdout
    assert dash.journey.delivered and "c1 → 8.8.8.8: delivered" in dash.outcome.value
    dash.controls["masquerade"].value = False
    assert "MASQUERADE" not in lab.run("host", "iptables -t nat -S POSTROUTING").stdout
    assert "NOT delivered" in dash.outcome.value and "no route to 10.55.66.2" in dash.outcome.value


def test_reset_to_a_stage_rebuilds_the_lab(lab):
    dash = Dashboard(lab)
    dash.probe_buttons[("c1", "8.8.8.8")].click()
    dash.stage.value = "part3-end"
    dash.reset_button.click()
    assert lab.stage == "part3-end" and not dash.message.value
    assert lab.run("host", "iptables -C FORWARD -i hwchiu0 -o eth0 -j ACCEPT").ok
    assert all(dash.controls[n].value is True for n in ("bridge-address", "default-route", "masquerade",
                                                         "forward-rules"))
    assert "c1 → 8.8.8.8: delivered" in dash.outcome.value and "part3-end" in dash.title.value
    dash.stage.value = "part3-start"
    dash.reset_button.click()
    assert not lab.run("c1", "ip route show default").stdout.strip()
    assert dash.controls["default-route"].value is False
    assert "c1 has no route to 8.8.8.8" in dash.outcome.value


def test_a_change_made_from_a_terminal_shows_after_refresh(lab):
    dash = Dashboard(lab)
    lab.run("host", "iptables -P FORWARD ACCEPT")     # not through the dashboard: a terminal
    assert dash.controls["forward-policy"].value == "DROP"
    assert "NOT delivered" in dash.outcome.value     # nothing it shows changes by itself...
    dash.refresh_button.click()
    assert dash.controls["forward-policy"].value == "ACCEPT"   # ...until it reads the lab again
    assert "c1 → 10.55.66.3: delivered" in dash.outcome.value


def test_the_netkit_command_reaches_the_dashboard_lab(lab):
    dash = Dashboard(lab)
    done = subprocess.run([sys.executable, "-m", "netkit", "exec", "--lab", lab.name, "host", "--",
                           "sysctl", "-w", "net.bridge.bridge-nf-call-iptables=0"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    dash.refresh_button.click()
    assert dash.controls["bridge-nf-call-iptables"].value == 0
    assert "delivered" in dash.outcome.value and "NOT" not in dash.outcome.value


def test_a_refusal_is_shown_on_the_page(lab):
    dash = Dashboard(lab)
    panel = Panel(lab, ["bridge-nf-call-iptables"], auto_probe=False)
    lab.close()          # e.g. notebook 01's last cell, after Run All
    dash.refresh_button.click()
    assert "has ended" in dash.message.value
    panel.controls["bridge-nf-call-iptables"].value = 0
    assert "has ended" in panel.outcome.value    # the panel says so, instead of a silent log line


@pytest.mark.notebook
def test_the_dashboard_notebook_runs_and_its_lab_ends_with_its_kernel(name, tmp_path):
    notebook = REPO / "notebooks" / "dashboard.ipynb"
    output = tmp_path / "dashboard.ipynb"
    done = subprocess.run([sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3",
                           str(notebook), str(output), "-p", "lab_name", name],
                          capture_output=True, text=True, timeout=120, cwd=notebook.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    book = nbformat.read(str(output), as_version=4)
    shown = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in shown)
    assert wait_until(lambda: running_lab(name) is None, timeout=2, interval=0.05)   # the kernel ended, and the lab with it


def test_a_probe_or_switch_the_stage_cannot_take_is_refused_in_plain_words_and_freezes_nothing(lab):
    """The sequence that froze the page: probe the outside machine at part3-start, then flip switches."""
    dash = Dashboard(lab)
    outside = next(p for p in scenarios.probes() if p.src == "outside")
    button = dash.probe_buttons[outside.key]
    assert button.disabled and "this stage does not have" in button.tooltip
    assert button.description == f"outside → 172.17.9.103:{outside.port}"      # the whole target, no ellipsis
    button.click()                                          # a click that reaches it anyway
    assert "is not in the lab at stage part3-start" in dash.message.value and "reset to stage" in dash.message.value
    assert "lab.reset(" not in dash.message.value and "Traceback" not in dash.message.value
    assert (dash.journey.src, dash.journey.dst) == ("c1", "10.55.66.3")      # the last probe it could send
    before = dash.picture.value
    dash.controls["forward-policy"].value = "ACCEPT"        # the picture follows again
    assert dash.journey.delivered and dash.picture.value != before
    dash.controls["docker-ct"].value = True                 # Docker's chains do not exist at part3-start
    assert "DOCKER-CT (replies)" in dash.refusal.value and "refused" in dash.refusal.value
    assert dash.controls["docker-ct"].value is False and lab.get("docker-ct") is False
    keys = [b.description for b in dash.probe_buttons.values()]
    assert len(set(keys)) == len(keys)                      # 2345 and 8080 tell apart
