"""Wait for a state, don't sleep (STYLE.md, habit 4): one `wait_until` for every deadline loop.

Standard library only: the lab's host (`netkit.trace`) uses it as well as the tests. A library such as
tenacity retries a call that raises; what is waited for here is a state read again and again (a lab
gone, the trace socket drained), so a dozen lines of our own do it.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(ready: Callable[[], T], timeout: float, interval: float = 0.01) -> T:
    """Call `ready` until its answer is true, for at most `timeout` seconds, `interval` apart.

    It is called at least once, and once more when the time is up; its last answer is returned, true or
    not, so a caller asserts on it (``assert wait_until(lambda: not running(name), 1.0)``).
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = ready()
        if answer or time.monotonic() >= deadline:
            return answer
        time.sleep(interval)
