"""The class's JupyterHub: its settings as data, and the configuration they make.

`Settings` is everything the instructor chose (written to
``<state dir>/settings.json``); the hub's ``jupyterhub_config.py`` in the
state directory is two lines that hand the config object to `configure()`.

- PAM login with the students' real Unix accounts (``allowed_users`` is the
  roster, ``admin_users`` the ``--admin`` names);
- `ClassSpawner` (LocalProcessSpawner, as the student, in a cgroup with
  ``mem_limit``, ``pids_limit`` and a CPU share, private tmp dirs and /proc,
  kernels over ipc), the server opening in ~/notebooks;
- the progress board (`netkit.classroom.board`) and jupyterhub-idle-culler
  as hub-managed services, each with only the scopes it needs;
- every port the hub uses internally is on 127.0.0.1 and chosen free at start.
"""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..i18n import language

BOARD = "netkit-progress"
CULLER = "idle-culler"


@dataclass
class Settings:
    students: list[str]
    admins: list[str]
    ip: str = "127.0.0.1"
    port: int = 8000
    state_dir: str = "/var/lib/netkit-class"
    prefix: str = "/opt/netkit"
    mem_limit: int = 1 << 30
    pids_limit: int = 1024
    cpu_limit: float = 0.0
    idle_timeout: int = 3600
    class_name: str = "netkit-class"
    internal_ports: dict = field(default_factory=dict)
    ssl_cert: str = ""
    ssl_key: str = ""

    def save(self) -> Path:
        path = Path(self.state_dir) / "settings.json"
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Settings":
        return cls(**json.loads(Path(path).read_text()))

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_cert else "http"
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{scheme}://{host}:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIG = """# Written by netkit.classroom: the settings are in settings.json beside this file.
import os
from netkit.classroom.hub import Settings, configure
c = get_config()
configure(c, Settings.load({settings!r}))
# The instructor's own additions (SystemdSpawner, a different authenticator...), run last:
extra = {extra!r}
if os.path.exists(extra):
    exec(compile(open(extra).read(), extra, "exec"), {{"c": c, "get_config": get_config}})
"""
EXTRA = "extra_config.py"
"""In the state directory: JupyterHub config lines of the instructor's, run after netkit's (`c` is the config)."""


def write_config(settings: Settings) -> Path:
    """Choose the internal ports, save the settings and the hub's config file; returns the config's path."""
    state = Path(settings.state_dir)
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.internal_ports = {"hub": free_port(), "proxy_api": free_port(), "board": free_port()}
    path = settings.save()
    config = state / "jupyterhub_config.py"
    config.write_text(CONFIG.format(settings=str(path), extra=str(state / EXTRA)))
    return config


def configure(c, settings: Settings) -> None:
    """Fill JupyterHub's config object `c` from `settings`."""
    from . import install
    prefix = Path(settings.prefix)
    python = str(install.python(prefix))
    state = Path(settings.state_dir)
    ports = settings.internal_ports

    c.JupyterHub.bind_url = settings.url
    if settings.ssl_cert:
        c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key = settings.ssl_cert, settings.ssl_key
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = ports["hub"]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{ports['proxy_api']}"
    c.ConfigurableHTTPProxy.command = [str(install.proxy(prefix))]
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
    c.JupyterHub.cleanup_servers = True          # Ctrl-C on the hub stops every student's server
    c.JupyterHub.cleanup_proxy = True

    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.open_sessions = False     # no logind session per server (no systemd here)
    c.Authenticator.allowed_users = set(settings.students) | set(settings.admins)
    c.Authenticator.admin_users = set(settings.admins)

    c.JupyterHub.spawner_class = "netkit.classroom.spawner.ClassSpawner"
    c.Spawner.cmd = [str(install.venv(prefix) / "bin" / "jupyterhub-singleuser")]
    c.Spawner.notebook_dir = "~/notebooks"
    c.Spawner.default_url = "/lab"
    # No news toast and no update check: a workshop's servers ask nothing of the internet.
    c.Spawner.args = ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    c.Spawner.mem_limit = settings.mem_limit
    c.ClassSpawner.pids_limit = settings.pids_limit
    c.ClassSpawner.cpu_cap = settings.cpu_limit
    c.ClassSpawner.class_name = settings.class_name
    c.Spawner.environment = {"PATH": f"{install.venv(prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                             "LANG": "C.UTF-8", "JUPYTER_PLATFORM_DIRS": "1"}
    c.Spawner.start_timeout = 180                # a class logging in at once on a small machine
    c.Spawner.http_timeout = 180

    c.JupyterHub.services = [
        {"name": BOARD, "url": f"http://127.0.0.1:{ports['board']}", "oauth_no_confirm": True,
         "command": [python, "-m", "netkit.classroom.board"],
         "environment": {"NETKIT_CLASS_STUDENTS": ",".join(s for s in settings.students
                                                           if s not in settings.admins),
                         # the board speaks the instructor's language: NETKIT_LANG of `./quickstart class`
                         "NETKIT_LANG": language()}},
        {"name": CULLER,
         "command": [python, "-m", "jupyterhub_idle_culler", f"--timeout={settings.idle_timeout}",
                     f"--cull-every={max(10, min(300, settings.idle_timeout // 4))}"]},
    ]
    c.JupyterHub.load_roles = [
        # Admins reach services already (the admin role has access:services); students do not.
        {"name": "netkit-idle-culler", "services": [CULLER],
         "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
    ]


def jupyterhub_argv(settings: Settings, config: Path) -> list[str]:
    from . import install
    return [str(install.venv(Path(settings.prefix)) / "bin" / "jupyterhub"), "-f", str(config)]


if __name__ == "__main__":
    sys.exit("run the class with ./quickstart class (or python -m netkit.classroom)")
