"""Unit tests of lab/proc.py, the one process killer of the namespace labs and the VM manager.

The tests start their own short-lived children (``sleep``, ``sh``) and signal only those.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab import netns, proc, vm, vm_ops  # noqa: E402


def _spawn(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_kill_pids_stops_a_plain_child_and_one_that_ignores_sigterm() -> None:
    plain = _spawn("sleep", "60")
    # SIG_IGN survives exec: the sleep ignores SIGTERM; "ready" says the trap is in place
    stubborn = _spawn("sh", "-c", "trap '' TERM; echo ready; exec sleep 60")
    assert stubborn.stdout is not None and stubborn.stdout.readline().strip() == "ready"
    try:
        started = time.monotonic()
        proc.kill_pids([plain.pid, stubborn.pid], timeout=1.0)
        elapsed = time.monotonic() - started
        assert _gone(plain.pid) and _gone(stubborn.pid)  # both reaped, not left as zombies
        assert not proc.alive(plain.pid) and not proc.alive(stubborn.pid)
        assert elapsed >= 1.0  # the stubborn one needed the SIGKILL after the SIGTERM wait
    finally:
        for child in (plain, stubborn):
            if not _gone(child.pid):
                child.kill()
            child.wait()


def test_kill_pids_returns_at_once_when_sigterm_is_enough() -> None:
    child = _spawn("sleep", "60")
    started = time.monotonic()
    proc.kill_pids([child.pid], timeout=5.0)
    assert time.monotonic() - started < 4.0 and _gone(child.pid)
    child.wait()


def test_kill_pids_with_nothing_to_kill() -> None:
    proc.kill_pids([], timeout=0.1)
    child = _spawn("true")
    child.wait()  # reaped: the PID is gone before the killer sees it
    proc.kill_pids([child.pid], timeout=0.1)


def test_kill_pids_escalates_then_names_the_survivors(monkeypatch: pytest.MonkeyPatch) -> None:
    # A process that outlives SIGKILL (e.g. stuck in the kernel) is simulated: nothing is signalled.
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(proc.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(proc, "alive", lambda pid: pid == 4242)
    with pytest.raises(TimeoutError, match=r"\[4242\] still alive"):
        proc.kill_pids([4242, 4243], timeout=0.2)
    assert sent == [(4242, signal.SIGTERM), (4243, signal.SIGTERM), (4242, signal.SIGKILL)]


def test_alive_counts_another_process_zombie_as_gone() -> None:
    # sh starts a short child and then becomes a sleep that never reaps it: a zombie of a
    # grandchild, which waitpid cannot reap from here.
    parent = _spawn("sh", "-c", "sleep 0 & echo $!; exec sleep 30")
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while proc.alive(zombie) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not proc.alive(zombie)
        assert Path(f"/proc/{zombie}").exists()  # still there, as a zombie
        assert proc.alive(parent.pid)
    finally:
        proc.kill_pids([parent.pid], timeout=2.0)
        parent.wait()


def test_cmdline_of_a_child_and_of_no_process() -> None:
    child = _spawn("sh", "-c", "echo ready; exec sleep 60")
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10  # until the exec has happened
        while proc.cmdline(child.pid) != ["sleep", "60"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.cmdline(child.pid) == ["sleep", "60"]
    finally:
        proc.kill_pids([child.pid])
        child.wait()
    assert proc.cmdline(child.pid) == []


def test_netns_and_vm_share_the_killer() -> None:
    assert netns.kill_pids is proc.kill_pids
    assert vm.kill_pids is proc.kill_pids and vm_ops.kill_pids is proc.kill_pids
    assert proc.alive(os.getpid())
