"""ClassSpawner: JupyterHub's LocalProcessSpawner, with the limits a shared server needs.

Each student's server runs as that student (LocalProcessSpawner's setuid),
rootless, from the shared environment. On top of it:

- ``mem_limit`` is enforced: the server starts inside a cgroup of its own
  (`netkit.classroom.limits`), so the server, its kernels and their labs
  share that limit, and a runaway kernel is ended by the kernel's OOM
  killer without touching anyone else. A process count limit goes with it.
- ``stop()`` ends whatever is left in that cgroup, by pid: a kernel or lab
  orphaned by a server that was killed does not outlive it, and nothing
  relies on the machine's PID 1 to reap it.
- the same CPU share for every student (and ``cpu_limit`` cores at most,
  when set), in that cgroup too;
- the server gets its own /tmp, /var/tmp, /dev/shm, /run/lock (tmpfs, each at most
  ``mem_limit``), its own IPC namespace, and a /proc that shows only the
  student's own processes (`netkit.classroom.privacy`);
- its kernels talk over ipc (Unix sockets beside the connection file in
  ``~/.run/jupyter``, inside the 0700 home), not loopback TCP, so no other
  account can subscribe to a kernel's output;
- ``NETKIT_RUNTIME_DIR`` is ``~/.run/netkit``: the student's labs keep their
  state in the home, where nobody else can make the directory first;
- ``NETKIT_PROGRESS`` is set, so exercise checks are recorded in the
  student's home for the progress board (`netkit.progress`).

Where the machine offers no cgroup memory controller (or the hub is not
root) the server still starts, and the hub's log says memory is not limited.
"""

from __future__ import annotations

import os

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Float, Integer, Unicode

from ..state import CLASS_DIR
from . import limits, privacy

RUN = ".run"
"""In each home: the kernels' connection files and sockets (jupyter/) and the labs' state (netkit/)."""
KERNEL_ARGS = ["--KernelManager.transport=ipc"]
DEFAULT_TMP_SIZE = 1 << 30
TERMINAL_SHELL = "/bin/bash"
"""What JupyterLab's terminals run (jupyter_server_terminals starts $SHELL)."""


class ClassSpawner(LocalProcessSpawner):
    class_name = Unicode("netkit-class", config=True, help="The cgroup folder that holds this class's servers.")
    pids_limit = Integer(1024, config=True, help="At most this many processes per student's server (0: none).")
    cpu_cap = Float(0.0, config=True, help="At most this many cores per student's server (0: no cap, a fair share).")

    def _group(self) -> limits.Group | None:
        why = limits.available()
        if why:
            self.log.warning("memory of %s's server is NOT limited: %s", self.user.name, why)
            return None
        return limits.Group.create(self.user.name, self.class_name, memory=self.mem_limit or None,
                                   pids=self.pids_limit or None, cpu=self.cpu_cap or None)

    def make_preexec_fn(self, name):
        setuid = super().make_preexec_fn(name)
        group = self._group()
        private = os.geteuid() == 0
        size = self.mem_limit or DEFAULT_TMP_SIZE

        def preexec():
            if group is not None:
                group.join()   # still root here: enter the cgroup, then become the student
            if private:
                privacy.enter(size)
            setuid()
        return preexec

    def get_args(self):
        args = super().get_args()
        return args + [a for a in KERNEL_ARGS if a not in args]

    def get_env(self):
        env = super().get_env()
        home = env["HOME"]
        env.setdefault("NETKIT_PROGRESS", f"{home}/.netkit/progress.jsonl")
        env["NETKIT_RUNTIME_DIR"] = f"{home}/{CLASS_DIR}"
        env["JUPYTER_RUNTIME_DIR"] = f"{home}/{RUN}/jupyter"
        env["SHELL"] = TERMINAL_SHELL   # the account's own shell is nologin (accounts.LOGIN_SHELL)
        return env

    async def stop(self, now=False):
        await super().stop(now=now)
        if limits.available() is None:
            group = limits.Group.create(self.user.name, self.class_name, memory=None)
            left = group.pids()
            if left:
                self.log.info("ending %d process(es) left in %s's server: %s", len(left), self.user.name, left)
            group.end()
