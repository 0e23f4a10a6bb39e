"""What a student and an instructor see in a real browser: JupyterLab and Voila in headless Chromium.

1. JupyterLab runs on 127.0.0.1 (a free port, a token, a throwaway config and
   runtime directory) over a temporary copy of notebooks/. Chromium (Debian's
   /usr/bin/chromium, driven by Playwright) opens notebook 01 and runs it with
   JupyterLab's own menu, the way a student does, up to the instructor panel.
   It then clicks the panel's `bridge-nf-call-iptables` toggle: with FORWARD
   DROP, the probe c1 -> c2 shown on the page must go from "NOT delivered" (1)
   to "delivered" (0) and back, and the lab's kernel must say what was clicked.
2. Voila serves notebooks/dashboard.ipynb alone; the same toggle on the
   dashboard must change its outcome the same way, and a change made from a
   terminal (`netkit exec`) must show after "read the lab again".

Each step leaves a screenshot in artifacts/browser/. The browser may reach
127.0.0.1 only: every other request is refused (and listed in
artifacts/browser/blocked-requests.txt). JupyterLab, Voila, their kernels and
Chromium are ended in `finally` blocks, and the labs the kernels made must
be gone once their kernels are.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from helpers import REPO, running_lab
from netkit import state
from netkit.scenarios import SWITCHES
from netkit.waiting import wait_until

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts" / "browser"
VENV_BIN = Path(sys.executable).parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
TOGGLE = "bridge-nf-call-iptables"
AFTER_PANEL = "Exercise: only ICMP between c1 and c2"   # notebook 01's heading after the panel
PROMPTS_ABOVE = """heading => {
    const prompts = [];
    for (const cell of document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')) {
        if (cell.classList.contains('jp-MarkdownCell') && cell.textContent.includes(heading)) break;
        if (cell.classList.contains('jp-CodeCell')) prompts.push(cell.querySelector('.jp-InputPrompt').textContent);
    }
    return prompts;
}"""
ERROR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"  # tracebacks too

pytestmark = [
    pytest.mark.browser, pytest.mark.lab,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="no /usr/bin/chromium: install Debian's package (apt-get install chromium, "
                              "as ./quickstart does) to run the browser test"),
]

BLOCKED: list[str] = []


# -- servers: started in their own session, ended by pid ----------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (kernels, lab hosts), read from /proc."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def started(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), or None once it is gone or a zombie.

    A pid plus its start time names one process for good, so a pid reused by
    another process is never mistaken for one the test started.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


class Server:
    """A JupyterLab or Voila process, its log in the artifacts; stop() ends it and everything below it."""

    def __init__(self, argv: list[str], port: int, log: Path, env: dict) -> None:
        self.port, self.log = port, log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, stdin=subprocess.DEVNULL)
        self.family: dict[int, int] = {}    # pid -> start time, of every process seen below the server

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait for the port to listen (a request to Voila would start a kernel, so none is sent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.log.stem} ended (exit {self.proc.returncode}):\n"
                                     + self.log.read_text()[-3000:])
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{self.log.stem} did not listen on port {self.port} in {timeout} s:\n"
                             + self.log.read_text()[-3000:])

    def remember_children(self) -> None:
        for pid in descendants(self.proc.pid):
            when = started(pid)
            if when is not None:
                self.family.setdefault(pid, when)

    def _left(self) -> list[int]:
        return [pid for pid, when in self.family.items() if started(pid) == when]

    def stop(self) -> list[int]:
        """SIGTERM (the server shuts its kernels down); SIGKILL, by pid, whatever of it is left.

        Returns the pids that had to be killed (none when the server ended its kernels).
        """
        self.remember_children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        wait_until(lambda: not self._left(), timeout=5, interval=0.1)
        killed = self._left()
        for pid in killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return killed


def jupyter_env(place: Path) -> dict:
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                     ("JUPYTER_DATA_DIR", "data"), ("IPYTHONDIR", "ipython")):
        (place / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(place / sub)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    # No toasts, no news, no update checks: nothing that asks the network or covers the page.
    notification = place / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"checkForUpdates": False, "doNotDisturbMode": True,
                                        "fetchNews": "false"}))
    return env


def jupyterlab(books: Path, tmp_path: Path, log: str = "jupyterlab") -> tuple[Server, int, str]:
    """A JupyterLab over `books` on a free loopback port with a token (not yet waited for)."""
    port, token = free_port(), secrets.token_hex(16)
    env = jupyter_env(tmp_path / "jupyter")
    config = Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json"
    config.write_text(json.dumps({
        "ServerApp": {"ip": "127.0.0.1", "port": port, "port_retries": 0, "open_browser": False,
                      "token": token, "root_dir": str(books), "allow_root": os.geteuid() == 0},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                   "extension_manager": "readonly"},
    }))
    argv = [str(VENV_BIN / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--notebook-dir={books}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    return Server(argv, port, ARTIFACTS / f"{log}.log", env), port, token


def copy_notebook(source: Path, folder: Path, lab_name: str) -> Path:
    """A copy of `source` in `folder` whose parameters cell names the lab `lab_name`."""
    book = nbformat.read(str(source), as_version=4)
    cell = next(c for c in book.cells if "parameters" in c.metadata.get("tags", []))
    lines = cell.source.splitlines()
    names = [i for i, line in enumerate(lines) if line.startswith("lab_name = ")]
    assert len(names) == 1, cell.source
    lines[names[0]] = f"lab_name = {lab_name!r}"
    cell.source = "\n".join(lines)
    target = folder / source.name
    nbformat.write(book, str(target))
    return target


def lab_says(name: str, command: str) -> str:
    """What `command` prints in the host of lab `name`, through the `netkit` command (a terminal)."""
    done = subprocess.run([sys.executable, "-m", "netkit", "exec", "--lab", name, "host", "--",
                           "sh", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_lab_gone(name: str, timeout: float = 5) -> None:
    assert wait_until(lambda: running_lab(name) is None, timeout, interval=0.1), \
        f"the lab {name!r} outlived the kernel that made it"
    with state.StateDir() as where:
        assert name not in [f.name for f in state.every_lab(where)]


# -- the browser ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    BLOCKED.clear()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            (ARTIFACTS / "blocked-requests.txt").write_text("".join(f"{url}\n" for url in BLOCKED))


def local_only(route) -> None:
    url = route.request.url
    if url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")):
        route.continue_()
    else:
        BLOCKED.append(url)
        route.abort()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.route("**/*", local_only)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def shot(page_or_locator, name: str) -> None:
    """A screenshot in artifacts/browser/, of the page or of one element."""
    page_or_locator.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def toggle(container, description: str):
    """The ToggleButtons widget whose description is `description`, inside `container`."""
    return container.locator(".widget-toggle-buttons").filter(
        has=container.page.locator(".widget-label", has_text=description)).first


def outcome(container):
    """The panel's outcome HTML: the line that says delivered or NOT delivered."""
    return container.locator(".widget-html-content").filter(has_text="→").filter(has_text="delivered").first


def click_value(control, value: str) -> None:
    control.get_by_role("button", name=value, exact=True).click()


def expect_selected(control, value: str) -> None:
    """Wait until the toggle shows `value` pressed (ipywidgets marks it mod-active)."""
    from playwright.sync_api import expect
    expect(control.get_by_role("button", name=value, exact=True)).to_have_class(
        re.compile(r"\bmod-active\b"), timeout=20_000)


def picture(container):
    """The panel's picture (an ipywidgets Image)."""
    return container.locator("img.widget-image").first


RED_PIXELS = """img => {
    if (!img.complete || !img.naturalWidth) return -1;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let red = 0;
    for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i] - 0xD6) < 10 && Math.abs(data[i + 1] - 0x27) < 10 && Math.abs(data[i + 2] - 0x28) < 10) red++;
    }
    return red;
}"""


CLICK_TO_PICTURE = """([img, button]) => new Promise(resolve => {
    const started = performance.now();
    const before = img.src;
    const watch = new MutationObserver(() => {
        if (img.src === before) return;
        watch.disconnect();
        const drawn = () => resolve(performance.now() - started);
        if (img.complete) drawn(); else img.addEventListener('load', drawn, {once: true});
    });
    watch.observe(img, {attributes: true, attributeFilter: ['src']});
    button.click();
    setTimeout(() => { watch.disconnect(); resolve(-1); }, 20000);
})"""


def expect_picture(container, delivered: bool, timeout: float = 30) -> None:
    """Wait until the picture on the page shows the probe `delivered` or not.

    The plots draw what died, and only that, in red (#D62728): the X where the probe
    stopped and "NOT delivered"; a c1 -> c2 probe that got through has no red at all.
    So the pixels of the picture the browser shows, not the widget's state, say which
    journey a student is looking at.
    """
    deadline = time.monotonic() + timeout
    red = -1
    while time.monotonic() < deadline:
        red = picture(container).evaluate(RED_PIXELS)
        if red >= 0 and ((red < 10) if delivered else (red > 300)):
            return
        time.sleep(0.2)
    raise AssertionError(f"the picture on the page does not show the probe "
                         f"{'delivered' if delivered else 'NOT delivered'} ({red} red pixels)")


# -- 1. JupyterLab: notebook 01, run by its menu, and the instructor panel ------------------------------
def open_notebook(page, port: int, token: str, path: str):
    """Open `path` (relative to the server's folder) in JupyterLab; its cells, once the kernel is idle."""
    from playwright.sync_api import expect
    page.goto(f"http://127.0.0.1:{port}/lab/tree/{path}?token={token}")
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
    expect(cells.first).to_be_visible(timeout=60_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1, timeout=60_000)
    return cells


def test_jupyterlab_panel_toggle_changes_what_students_see(page, name, tmp_path):
    from playwright.sync_api import expect
    books = tmp_path / "notebooks"
    books.mkdir()
    notebook = copy_notebook(REPO / "notebooks" / "01-container-to-container.ipynb", books, name)
    server, port, token = jupyterlab(books, tmp_path)
    try:
        server.wait_ready()
        cells = open_notebook(page, port, token, notebook.name)
        shot(page, "01-jupyterlab-opened")

        # Run the notebook as a student does, up to the instructor panel: select the cell after the
        # panel, then Run > Run All Above Selected Cell (JupyterLab's own menu).
        after_panel = cells.filter(has_text=AFTER_PANEL).first
        after_panel.click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Above Selected Cell").click()
        panel = page.locator(".widget-vbox").filter(has=page.locator(".widget-label", has_text=TOGGLE)).last
        expect(outcome(panel)).to_contain_text("c1 → 10.55.66.3: NOT delivered", timeout=90_000)
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
            1, timeout=30_000)
        server.remember_children()
        errors = page.locator(ERROR_OUTPUT).filter(has_text="Traceback")
        assert errors.count() == 0, errors.first.inner_text()
        prompts = page.evaluate(PROMPTS_ABOVE, AFTER_PANEL)
        assert prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts), prompts
        panel.scroll_into_view_if_needed()
        shot(page, "02-jupyterlab-ran-to-the-panel")
        assert lab_says(name, "cat /proc/sys/net/bridge/bridge-nf-call-iptables") == "1"
        assert lab_says(name, "iptables -S FORWARD | head -1") == "-P FORWARD DROP"
        switch = toggle(panel, TOGGLE)
        expect_selected(switch, "1")
        expect_picture(panel, delivered=False)
        shot(panel, "03-jupyterlab-panel-before")

        click_value(switch, "0")
        expect(outcome(panel)).to_contain_text("c1 → 10.55.66.3: delivered", timeout=30_000)
        expect(outcome(panel)).not_to_contain_text("NOT delivered")
        expect_selected(switch, "0")
        expect_picture(panel, delivered=True)
        assert lab_says(name, "cat /proc/sys/net/bridge/bridge-nf-call-iptables") == "0"
        expect(panel).to_contain_text("sysctl -w net.bridge.bridge-nf-call-iptables=0")
        shot(panel, "04-jupyterlab-panel-after-0")

        click_value(switch, "1")
        expect(outcome(panel)).to_contain_text("c1 → 10.55.66.3: NOT delivered", timeout=30_000)
        expect(outcome(panel)).to_contain_text("dropped by filter FORWARD policy DROP in host")
        expect_picture(panel, delivered=False)
        assert lab_says(name, "cat /proc/sys/net/bridge/bridge-nf-call-iptables") == "1"
        shot(panel, "05-jupyterlab-panel-back-to-1")

        # How long a student waits, in the page itself: from the click to the new picture drawn.
        timings = []
        for value in ("0", "1") * 4:
            button = switch.get_by_role("button", name=value, exact=True).element_handle()
            took = page.evaluate(CLICK_TO_PICTURE, [picture(panel).element_handle(), button])
            assert took > 0, f"the picture did not change after clicking {value}"
            timings.append(round(took))
            expect_picture(panel, delivered=value == "0")
        (ARTIFACTS / "toggle-timings.json").write_text(json.dumps({"ms": timings}))
        print(f"\ntoggle -> new picture in the browser: median {statistics.median(timings)} ms, "
              f"max {max(timings)} ms, {timings}")
    finally:
        killed = server.stop()
    assert not killed, f"processes of the server outlived it and were killed: {killed}"
    wait_lab_gone(name)


# -- 2. Voila: the instructor dashboard ------------------------------------------------------------------
def test_voila_dashboard_toggle_and_terminal_change(page, name, tmp_path):
    from playwright.sync_api import expect
    books = tmp_path / "notebooks"
    books.mkdir()
    notebook = copy_notebook(REPO / "notebooks" / "dashboard.ipynb", books, name)
    port, token = free_port(), secrets.token_hex(16)
    env = jupyter_env(tmp_path / "jupyter")
    argv = [str(VENV_BIN / "voila"), str(notebook), "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", f"--token={token}", "--show_tracebacks=True"]
    server = Server(argv, port, ARTIFACTS / "voila.log", env)
    try:
        server.wait_ready()
        page.set_viewport_size({"width": 1400, "height": 1800})   # Voila scrolls inside; show it all
        page.goto(f"http://127.0.0.1:{port}/?token={token}")
        dash = page.locator(".netkit-dashboard")
        expect(outcome(dash)).to_contain_text("c1 → 10.55.66.3: NOT delivered", timeout=90_000)
        server.remember_children()
        switch = toggle(dash, TOGGLE)
        expect_selected(switch, "1")
        expect_picture(dash, delivered=False)
        for every in SWITCHES.values():                      # every switch, under its scenario
            expect(toggle(dash, every.title)).to_have_count(1)
        shot(page, "06-voila-dashboard-opened")

        click_value(switch, "0")
        expect(outcome(dash)).to_contain_text("c1 → 10.55.66.3: delivered", timeout=30_000)
        expect(outcome(dash)).not_to_contain_text("NOT delivered")
        expect_picture(dash, delivered=True)
        assert lab_says(name, "cat /proc/sys/net/bridge/bridge-nf-call-iptables") == "0"
        expect(dash).to_contain_text("sysctl -w net.bridge.bridge-nf-call-iptables=0")
        shot(page, "07-voila-dashboard-after-0")

        click_value(switch, "1")
        expect(outcome(dash)).to_contain_text("c1 → 10.55.66.3: NOT delivered", timeout=30_000)
        expect_picture(dash, delivered=False)
        policy = toggle(dash, "FORWARD policy")
        expect_selected(policy, "DROP")
        lab_says(name, "iptables -P FORWARD ACCEPT")         # a terminal, not the page
        expect(outcome(dash)).to_contain_text("NOT delivered")
        dash.get_by_role("button", name="read the lab again").click()
        expect_selected(policy, "ACCEPT")
        expect(outcome(dash)).to_contain_text("c1 → 10.55.66.3: delivered", timeout=30_000)
        expect(outcome(dash)).not_to_contain_text("NOT delivered")
        expect_picture(dash, delivered=True)
        shot(page, "08-voila-dashboard-after-terminal-change")

        # The sequence that froze the page: the outside machine's probes at part3-start, then a switch
        # that stage cannot take, then a switch again.
        buttons = dash.locator("button.widget-button").filter(has_text="outside →")
        expect(buttons).to_have_count(2)
        for i in range(2):
            expect(buttons.nth(i)).to_be_disabled()
            full = buttons.nth(i).evaluate("b => b.scrollWidth <= b.clientWidth + 1")
            assert full, f"the label of {buttons.nth(i).inner_text()!r} is cut off"
        assert len({buttons.nth(i).inner_text() for i in range(2)}) == 2     # 2345 and 8080 tell apart
        click_value(toggle(dash, "DOCKER-CT (replies)"), "on")
        expect(dash.locator(".widget-html-content").filter(has_text="the lab refused it at stage part3-start")
               ).to_be_visible(timeout=30_000)
        expect_selected(toggle(dash, "DOCKER-CT (replies)"), "off")
        click_value(policy, "DROP")
        expect(outcome(dash)).to_contain_text("c1 → 10.55.66.3: NOT delivered", timeout=30_000)
        expect_picture(dash, delivered=False)
        shot(page, "09-voila-dashboard-refusals")
    finally:
        killed = server.stop()
    assert not killed, f"processes of the server outlived it and were killed: {killed}"
    wait_lab_gone(name)


# -- 3. 繁體中文: a Traditional Chinese notebook, its text and its pictures without tofu ---------------------
TOFU = """([selector, characters]) => {
    // Draw each character with the font the page gives that text, and an unassigned code point (U+0378),
    // which every font draws as its missing-glyph box. A character drawn exactly like it is tofu.
    const element = document.querySelector(selector);
    const style = getComputedStyle(element);
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 64;
    const context = canvas.getContext('2d');
    context.font = `${style.fontWeight} 40px ${style.fontFamily}`;
    const draw = text => {
        context.clearRect(0, 0, 64, 64);
        context.fillText(text, 4, 48);
        return Array.from(context.getImageData(0, 0, 64, 64).data).join(',');
    };
    const tofu = draw('\u0378');
    return {family: style.fontFamily, tofu: Array.from(characters).filter(c => draw(c) === tofu)};
}"""
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_a_traditional_chinese_notebook_reads_in_chinese(page, name, tmp_path):
    from playwright.sync_api import expect
    books = tmp_path / "notebooks" / "zh-TW"        # the folder tells the kernel which language to speak
    books.mkdir(parents=True)
    (tmp_path / "notebooks" / "glossary.ipynb").write_bytes((REPO / "notebooks" / "glossary.ipynb").read_bytes())
    notebook = copy_notebook(REPO / "notebooks" / "zh-TW" / "01-container-to-container.ipynb", books, name)
    server, port, token = jupyterlab(tmp_path / "notebooks", tmp_path, log="jupyterlab-zh-TW")
    try:
        server.wait_ready()
        cells = open_notebook(page, port, token, f"zh-TW/{notebook.name}")
        title = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownOutput h1").first
        expect(title).to_be_visible()
        assert HAN.search(title.inner_text()), title.inner_text()

        # Run it as a student does, up to the first probe's cell (the one that tells why c1's ping failed).
        probe = cells.filter(has_text='dropped = lab.probe("c1", "10.55.66.3"').first
        after = probe.locator("xpath=following-sibling::div[contains(@class, 'jp-Cell')][1]")
        after.click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Above Selected Cell").click()
        result = probe.locator(".jp-OutputArea-output").first
        expect(result).to_be_visible(timeout=90_000)
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
            1, timeout=60_000)
        errors = page.locator(ERROR_OUTPUT).filter(has_text="Traceback")
        assert errors.count() == 0, errors.first.inner_text()
        said = result.inner_text()
        assert HAN.search(said) and "FORWARD" in said, said       # netkit's own words, in Chinese
        probe.scroll_into_view_if_needed()
        shot(page, "06-zh-TW-notebook-01")

        # No character of the page's Chinese is drawn as an empty box, in the text or in the probe's output.
        for selector in (".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownOutput h1",
                         ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-MarkdownOutput p"):
            element = page.locator(selector).first
            element.scroll_into_view_if_needed()   # JupyterLab skips laying out cells out of view: no innerText
            text = element.text_content()
            characters = "".join(sorted(set(HAN.findall(text))))[:40]
            assert characters, f"no Chinese in {selector}"
            seen = page.evaluate(TOFU, [selector, characters])
            assert not seen["tofu"], f"drawn as empty boxes with {seen['family']}: {seen['tofu']}"
        pictures = probe.locator("img")
        assert pictures.count() == 0 or pictures.first.evaluate("img => img.naturalWidth") > 0
    finally:
        killed = server.stop()
    assert not killed, f"processes of the server outlived it and were killed: {killed}"
    wait_lab_gone(name)
