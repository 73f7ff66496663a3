"""Processes of the labs: read a command line, tell whether a PID is alive, stop PIDs for sure.

:func:`kill_pids` is the one process killer of the namespace labs (:mod:`lab.netns`) and the VM
manager (:mod:`lab.vm`): SIGTERM, a bounded wait, SIGKILL for what is left, a second bounded
wait, and :class:`TimeoutError` naming whatever survived even that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

POLL_INTERVAL = 0.1


def cmdline(pid: int) -> list[str]:
    """The command line of process ``pid`` (empty when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split(") ", 1)[1].startswith("Z")
    return False


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs. A zombie is gone: a child of ours is reaped here, another
    process's zombie waits for its own parent."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _zombie(pid)
    return waited == 0


def survivors(pids: list[int], timeout: float) -> list[int]:
    """Poll until every PID is gone or ``timeout`` expires; return the ones still alive."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL_INTERVAL)


def _signal(pids: Iterable[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def kill_pids(pids: Iterable[int], *, timeout: float = 5.0) -> None:
    """SIGTERM ``pids`` together, SIGKILL the ones still alive after ``timeout`` seconds and wait
    as long again for them; :class:`TimeoutError` names any that outlived SIGKILL."""
    targets = list(pids)
    _signal(targets, signal.SIGTERM)
    left = survivors(targets, timeout)
    if not left:
        return
    _signal(left, signal.SIGKILL)
    left = survivors(left, timeout)
    if left:
        raise TimeoutError(f"processes {left} still alive {timeout:.1f}s after SIGKILL")
