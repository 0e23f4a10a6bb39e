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
- ``NETKIT_PROGRESS`` is set, so exercise checks are recorded in the
  student's home for the progress board (`netkit.progress`).

Where the machine offers no cgroup memory controller (or the hub is not
root) the server still starts, and the hub's log says memory is not limited.
"""

from __future__ import annotations

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Integer, Unicode

from . import limits


class ClassSpawner(LocalProcessSpawner):
    class_name = Unicode("netkit-class", config=True, help="The cgroup folder that holds this class's servers.")
    pids_limit = Integer(1024, config=True, help="At most this many processes per student's server (0: none).")

    def _group(self) -> limits.Group | None:
        why = limits.available()
        if why:
            self.log.warning("memory of %s's server is NOT limited: %s", self.user.name, why)
            return None
        return limits.Group.create(self.user.name, self.class_name, memory=self.mem_limit or None,
                                   pids=self.pids_limit or None)

    def make_preexec_fn(self, name):
        setuid = super().make_preexec_fn(name)
        group = self._group()

        def preexec():
            if group is not None:
                group.join()   # still root here: enter the cgroup, then become the student
            setuid()
        return preexec

    def get_env(self):
        env = super().get_env()
        env.setdefault("NETKIT_PROGRESS", f"{env['HOME']}/.netkit/progress.jsonl")
        return env

    async def stop(self, now=False):
        await super().stop(now=now)
        if limits.available() is None:
            group = limits.Group.create(self.user.name, self.class_name, memory=None)
            left = group.pids()
            if left:
                self.log.info("ending %d process(es) left in %s's server: %s", len(left), self.user.name, left)
            group.end()
