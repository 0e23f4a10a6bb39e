"""A student at a keyboard, over HTTP: log in through the hub's form, start the server, run code.

    student = HubUser("http://127.0.0.1:8000", "ana", "her-password")
    student.login()                        # GET /hub/login for _xsrf, POST the form (PAM checks it)
    student.start_server()                 # the server runs as ana, wait until it answers
    kernel = student.kernel()              # a kernel in ana's server, through the hub's proxy
    kernel.run("import os; print(os.getuid())")   -> what it printed (raises KernelError on an error)
    kernel.run_notebook(path, parameters={"lab_name": "nb01"})

Used by the tests and by bench/bench_class.py; it speaks only HTTP and
WebSocket to the hub's public address, as a browser would. `requests` and
`tornado` come with JupyterLab.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import requests

from ..errors import NetkitError


class HubError(NetkitError):
    """The hub refused or did not answer in time."""


class KernelError(NetkitError):
    """Code run in a kernel raised; the message is the kernel's traceback."""


XSRF_RE = re.compile(r'name="_xsrf"\s+value="([^"]+)"')


class HubUser:
    def __init__(self, url: str, name: str, password: str) -> None:
        self.url, self.name, self.password = url.rstrip("/"), name, password
        self.session = requests.Session()
        self.token: str | None = None

    # -- the hub ---------------------------------------------------------------------------------
    def login(self) -> requests.Response:
        """Log in through the form; HubError if the hub refuses."""
        form = self.session.get(f"{self.url}/hub/login", timeout=30)
        match = XSRF_RE.search(form.text)
        if not match:
            raise HubError(f"no _xsrf field on {self.url}/hub/login (HTTP {form.status_code})")
        answer = self.session.post(f"{self.url}/hub/login?next=", timeout=60, allow_redirects=False,
                                   data={"username": self.name, "password": self.password, "_xsrf": match[1]})
        if answer.status_code != 302:
            raise HubError(f"the hub refused {self.name}'s login (HTTP {answer.status_code})")
        return answer

    def xsrf(self) -> str:
        return self.session.cookies.get("_xsrf", path="/hub/") or self.session.cookies.get("_xsrf") or ""

    def make_token(self) -> str:
        """An API token for this user, asked for with the login cookie (as the hub's token page does)."""
        answer = self.session.post(f"{self.url}/hub/api/users/{self.name}/tokens", timeout=30,
                                   headers={"X-XSRFToken": self.xsrf()},
                                   json={"note": "netkit client", "expires_in": 3600})
        if answer.status_code != 201:
            raise HubError(f"no token for {self.name}: HTTP {answer.status_code} {answer.text[:200]}")
        self.token = answer.json()["token"]
        return self.token

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        if self.token is None:
            self.make_token()
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=kwargs.pop("timeout", 60),
                                **kwargs)

    def model(self) -> dict:
        answer = self.api("GET", f"/hub/api/users/{self.name}")
        answer.raise_for_status()
        return answer.json()

    def start_server(self, timeout: float = 300) -> dict:
        """Ask the hub to start this user's server and wait until it is ready; returns its model."""
        answer = self.api("POST", f"/hub/api/users/{self.name}/server")
        if answer.status_code not in (201, 202, 400):   # 400: it is running already
            raise HubError(f"the hub did not start {self.name}'s server: HTTP {answer.status_code} {answer.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.model().get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            if server is None and time.monotonic() > deadline - timeout + 5:
                raise HubError(f"{self.name}'s server stopped while starting: see the hub's log")
            time.sleep(0.5)
        raise HubError(f"{self.name}'s server was not ready in {timeout} s")

    def stop_server(self) -> None:
        answer = self.api("DELETE", f"/hub/api/users/{self.name}/server")
        if answer.status_code not in (202, 204):
            raise HubError(f"could not stop {self.name}'s server: HTTP {answer.status_code}")
        deadline = time.monotonic() + 60
        while self.model().get("servers", {}).get("") and time.monotonic() < deadline:
            time.sleep(0.5)

    # -- the user's server -----------------------------------------------------------------------
    def server_api(self, method: str, path: str, *, user: str | None = None, **kwargs) -> requests.Response:
        """A request to the server of `user` (default: this user), through the hub's proxy, with this token."""
        return self.api(method, f"/user/{user or self.name}/api/{path.lstrip('/')}", **kwargs)

    def kernel(self, name: str = "python3") -> "Kernel":
        answer = self.server_api("POST", "kernels", json={"name": name})
        if answer.status_code != 201:
            raise HubError(f"no kernel in {self.name}'s server: HTTP {answer.status_code} {answer.text[:300]}")
        return Kernel(self, answer.json()["id"])


class Kernel:
    """One kernel of a user's server, driven over its WebSocket channels."""

    def __init__(self, user: HubUser, kernel_id: str) -> None:
        self.user, self.id = user, kernel_id
        self.session = uuid.uuid4().hex
        self.loop = asyncio.new_event_loop()
        self.socket = self._wait(self._connect())

    def _wait(self, coroutine):
        asyncio.set_event_loop(self.loop)   # tornado's futures ask for the thread's current loop
        return self.loop.run_until_complete(coroutine)

    async def _connect(self):
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect
        url = self.user.url.replace("http", "ws", 1) + f"/user/{self.user.name}/api/kernels/{self.id}/channels"
        request = HTTPRequest(url, headers={"Authorization": f"token {self.user.token}"}, request_timeout=60)
        return await websocket_connect(request, max_message_size=64 << 20)

    async def _execute(self, code: str, timeout: float) -> dict:
        msg_id = uuid.uuid4().hex
        await self.socket.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.user.name,
                       "session": self.session, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out = {"stdout": "", "stderr": "", "error": None, "results": [], "status": None}
        idle = False
        deadline = time.monotonic() + timeout
        while not (idle and out["status"]):
            left = deadline - time.monotonic()
            if left <= 0:
                raise KernelError(f"no answer from the kernel in {timeout} s to:\n{code[:300]}")
            raw = await asyncio.wait_for(self.socket.read_message(), left)
            if raw is None:
                raise KernelError("the kernel's connection closed")
            if not isinstance(raw, str):
                continue   # a binary message (widget buffers): not ours to read
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "error":
                out["error"] = "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", line) for line in content["traceback"])
            elif kind in ("execute_result", "display_data"):
                out["results"].append(content.get("data", {}))
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                out["status"] = content["status"]
        return out

    def execute(self, code: str, timeout: float = 120) -> dict:
        return self._wait(self._execute(code, timeout))

    def run(self, code: str, timeout: float = 120) -> str:
        """Run `code`; return what it printed; KernelError with the traceback if it raised."""
        out = self.execute(code, timeout)
        if out["status"] != "ok":
            raise KernelError(out["error"] or out["stderr"] or f"status {out['status']}")
        return out["stdout"]

    def run_notebook(self, book: dict, parameters: dict | None = None, timeout: float = 120) -> int:
        """Run every code cell of notebook `book` (a dict, as nbformat writes it) in order.

        `parameters` are set right after the cell tagged ``parameters``, as
        papermill does. Returns the number of cells run; KernelError names
        the cell that failed.
        """
        count = 0
        for index, cell in enumerate(book["cells"]):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            out = self.execute(source, timeout)
            count += 1
            if out["status"] != "ok":
                raise KernelError(f"cell {index} failed:\n{source[:500]}\n{out['error'] or out['stderr']}")
            if parameters and "parameters" in cell.get("metadata", {}).get("tags", []):
                self.run("\n".join(f"{key} = {value!r}" for key, value in parameters.items()))
        return count

    def shutdown(self) -> None:
        try:
            asyncio.set_event_loop(self.loop)   # another kernel's loop may be this thread's current one
            self.socket.close()
            self.user.server_api("DELETE", f"kernels/{self.id}")
        finally:
            self.loop.close()
