"""Where created VMs live (``.cache/vms/<name>/``): their ``vm.json``, the lock serialising
changes, and the QEMU processes that belong to them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .proc import cmdline
from .vm_spec import NAME_RE, VmError, validate_name

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("COMPLEAT_CACHE_DIR", str(ROOT / ".cache")))
VMS_DIR = Path(os.environ.get("COMPLEAT_VMS_DIR", str(CACHE / "vms")))


def run(cmd: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (no shell) capturing text; :class:`VmError` on a timeout or, with ``check``,
    a non-zero exit (the message carries the command and its output)."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VmError(f"timeout after {timeout:.0f}s: {shlex.join(cmd)}") from exc
    if check and proc.returncode != 0:
        raise VmError(f"rc={proc.returncode}: {shlex.join(cmd)}\n{(proc.stderr or proc.stdout).strip()}")
    return proc


@contextlib.contextmanager
def locked(timeout: float = 120.0) -> Iterator[None]:
    """Serialise create/start/destroy (ports, bridges) across processes with flock."""
    VMS_DIR.mkdir(parents=True, exist_ok=True)
    with open(VMS_DIR / ".lock", "w", encoding="utf-8") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise VmError(f"timed out waiting for {VMS_DIR / '.lock'}") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def vm_dir(name: str) -> Path:
    """``.cache/vms/<name>/``, the state directory of VM ``name``."""
    return VMS_DIR / validate_name(name)


def vm_names(prefix: str = "") -> list[str]:
    """The names of the state directories starting with ``prefix``, sorted."""
    return [p.name for p in sorted(VMS_DIR.glob(f"{prefix}*")) if p.is_dir() and NAME_RE.match(p.name)]


def state_path(name: str) -> Path:
    """``.cache/vms/<name>/vm.json``."""
    return vm_dir(name) / "vm.json"


def load_state(name: str) -> dict[str, Any]:
    """The ``vm.json`` of VM ``name``; :class:`VmError` if there is no such VM."""
    path = state_path(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VmError(f"no VM named {name!r} (no {path})") from None


def save_state(state: Mapping[str, Any]) -> None:
    """Write ``vm.json`` atomically."""
    path = Path(state["state_dir"]) / "vm.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def all_states() -> list[dict[str, Any]]:
    """Every VM with a readable ``vm.json``, sorted by name."""
    states = []
    for path in sorted(VMS_DIR.glob("*/vm.json")):
        with contextlib.suppress(OSError, ValueError):
            states.append(json.loads(path.read_text(encoding="utf-8")))
    return states


def qemu_pid(state: Mapping[str, Any]) -> int | None:
    """The PID of the VM's running QEMU, or None. The pidfile is trusted only if that process's
    command line names this VM's pidfile (so a recycled PID is never signalled)."""
    try:
        pid = int(Path(state["pidfile"]).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if state["pidfile"] in cmdline(pid) else None


def stray_qemu_pids(vms_dir: Path = VMS_DIR) -> list[int]:
    """QEMU processes whose command line points into ``vms_dir`` (lost or leftover VMs)."""
    marker = f"{vms_dir}/"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = cmdline(int(entry.name))
        if argv and "qemu-system" in Path(argv[0]).name and any(marker in a for a in argv):
            pids.append(int(entry.name))
    return sorted(pids)


def serial_tail(state: Mapping[str, Any], lines: int = 30) -> str:
    """The last lines of the VM's serial console log (for error messages)."""
    try:
        text = Path(state["serial_log"]).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no serial log)"
    return "\n".join(text.splitlines()[-lines:])
