"""VM lifecycle: create, start, wait for SSH, stop, destroy, and the QMP monitor.

Create, start and destroy hold the lock of the VM state directory (:func:`lab.vm_store.locked`);
waiting for SSH does not.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import vm_image as image
from . import vm_net as net
from . import vm_store as store
from .proc import kill_pids, survivors
from .vm_build import qemu_argv, spec_summary, ssh_argv, state_dict
from .vm_spec import VmError, VmSpec

DEFAULT_BOOT_TIMEOUT = 600.0


def create(spec: VmSpec, *, wait: bool = True, timeout: float = DEFAULT_BOOT_TIMEOUT) -> dict[str, Any]:
    """Create and start VM ``spec.name`` and return its state plus ``action`` (``created``,
    ``started`` or ``existing``). Idempotent: an existing VM with the same spec is started if
    stopped; one with a different spec is an error."""
    with store.locked():
        existing = None
        action = "existing"
        with contextlib.suppress(VmError):
            existing = store.load_state(spec.name)
        if existing is None:
            action = "created"
            state_dir = store.vm_dir(spec.name)
            if state_dir.exists():
                shutil.rmtree(state_dir)
            disk_image = image.read_image(image.IMAGE_DIR) if spec.boot == "kernel" else {}
            if not image.SSH_KEY.is_file():
                raise VmError(f"no lab SSH key {image.SSH_KEY}: run {image.BUILD_SCRIPT}")
            taken = {int(st.get("ssh_port", 0)) for st in store.all_states()}
            state = state_dict(
                spec,
                state_dir=state_dir,
                image=disk_image,
                ssh_port=net.free_port(taken),
                ssh_key=image.SSH_KEY,
            )
            state_dir.mkdir(parents=True)
            try:
                image.create_disks(state)
                store.save_state(state)
                _start_locked(state)
            except BaseException:
                _destroy_locked(spec.name)
                raise
        else:
            wanted = spec_summary(
                state_dict(
                    spec, state_dir=store.vm_dir(spec.name), image={}, ssh_port=0, ssh_key=image.SSH_KEY
                )
            )
            if spec_summary(existing) != wanted:
                raise VmError(f"VM {spec.name} exists with a different spec: destroy it first")
            state = existing
            if store.qemu_pid(state) is None:
                action = "started"
                _start_locked(state)
    if wait and state.get("boot", "kernel") != "network":
        wait_ssh(state, timeout=timeout)
    return {**state, "action": action}


def _start_locked(state: dict[str, Any]) -> None:
    net.check_nic_targets(state)
    Path(state["pidfile"]).unlink(missing_ok=True)
    argv = qemu_argv(state)
    state["qemu_argv"] = argv
    state["started_at"] = time.time()
    store.save_state(state)
    proc = store.run(argv, check=False, timeout=60)
    if proc.returncode != 0:
        raise VmError(f"{state['name']}: QEMU failed to start (rc={proc.returncode}): {proc.stderr.strip()}")
    pid = store.qemu_pid(state)
    if pid is None:
        raise VmError(f"{state['name']}: QEMU exited right after starting\n{store.serial_tail(state)}")
    try:
        net.attach_taps(state)
    except VmError:
        kill_pids([pid])
        raise
    state["pid"] = pid
    store.save_state(state)


def start(name: str, *, wait: bool = True, timeout: float = DEFAULT_BOOT_TIMEOUT) -> dict[str, Any]:
    """Boot an existing, stopped VM again (its overlay keeps what the guest wrote)."""
    with store.locked():
        state = store.load_state(name)
        if store.qemu_pid(state) is None:
            _start_locked(state)
    if wait and state.get("boot", "kernel") != "network":
        wait_ssh(state, timeout=timeout)
    return state


def ssh_banner(port: int, timeout: float = 2.0) -> bool:
    """True if something on 127.0.0.1:``port`` greets like an SSH server. (QEMU's user-mode
    forward accepts TCP connections before the guest listens, so a connect proves nothing.)"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(state: Mapping[str, Any], *, timeout: float = DEFAULT_BOOT_TIMEOUT) -> float:
    """Wait until root can run a command over SSH; return the seconds waited. Fails early with
    the serial log tail if QEMU dies, and after ``timeout`` seconds otherwise."""
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.5
    while True:
        if store.qemu_pid(state) is None:
            raise VmError(f"{state['name']}: QEMU is not running\n{store.serial_tail(state)}")
        if ssh_banner(int(state["ssh_port"])):
            proc = store.run(ssh_argv(state, ["true"], connect_timeout=10), check=False, timeout=30)
            if proc.returncode == 0:
                return time.monotonic() - started
        if time.monotonic() > deadline:
            raise VmError(
                f"{state['name']}: no SSH on 127.0.0.1:{state['ssh_port']} after {timeout:.0f}s "
                f"(serial log {state['serial_log']}):\n{store.serial_tail(state)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 3.0)


def stop(name: str, *, timeout: float = 30.0) -> None:
    """Power the guest off over SSH; kill QEMU if it has not exited after ``timeout`` seconds."""
    state = store.load_state(name)
    pid = store.qemu_pid(state)
    if pid is None:
        return
    # The connection may drop while the guest goes down: the exit code says nothing.
    poweroff = ssh_argv(state, ["systemctl", "poweroff", "--no-block"], connect_timeout=5)
    store.run(poweroff, check=False, timeout=20)
    if survivors([pid], timeout):
        kill_pids([pid])
    state.pop("pid", None)
    store.save_state(state)


def _destroy_locked(name: str) -> bool:
    state_dir = store.vm_dir(name)
    if not state_dir.exists():
        return False
    # A damaged vm.json must not stop the cleanup: stray QEMUs are found by path below.
    with contextlib.suppress(VmError, ValueError, KeyError, OSError):
        pid = store.qemu_pid(store.load_state(name))
        if pid is not None:
            kill_pids([pid])
    kill_pids(store.stray_qemu_pids(state_dir))
    shutil.rmtree(state_dir, ignore_errors=True)
    net.prune_segments()
    return True


def destroy(name: str) -> bool:
    """Kill the VM (no graceful shutdown: its overlay is thrown away) and remove its state
    directory. Idempotent; returns whether there was anything to destroy."""
    with store.locked():
        return _destroy_locked(name)


def destroy_all(prefix: str = "") -> list[str]:
    """Destroy every VM whose name starts with ``prefix`` (all of them by default), kill QEMU
    processes of lost state directories, and remove the segment namespace once no VM is left.
    The safety net after crashed test runs; with a prefix it spares other runs' VMs."""
    with store.locked():
        names = store.vm_names(prefix)
        for name in names:
            _destroy_locked(name)
        strays = store.stray_qemu_pids(store.VMS_DIR) if not prefix else []
        for name in names:
            strays += store.stray_qemu_pids(store.VMS_DIR / name)
        kill_pids(sorted(set(strays)))
        net.prune_segments()
        if not prefix:
            net.delete_vmnet()
    return names


def qmp(state: Mapping[str, Any], command: str, arguments: Mapping[str, Any] | None = None) -> Any:
    """Run one QMP command on the VM's monitor socket (e.g. ``set_link`` to cut a NIC) and
    return its ``return`` value."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(state["qmp_socket"])
        reader = sock.makefile("r", encoding="utf-8")

        def call(cmd: str, args: Mapping[str, Any] | None = None) -> Any:
            message: dict[str, Any] = {"execute": cmd}
            if args:
                message["arguments"] = dict(args)
            sock.sendall(json.dumps(message).encode() + b"\n")
            while True:
                reply = json.loads(reader.readline())
                if "return" in reply:
                    return reply["return"]
                if "error" in reply:
                    raise VmError(f"{state['name']}: QMP {cmd}: {reply['error'].get('desc')}")

        json.loads(reader.readline())  # greeting
        call("qmp_capabilities")
        return call(command, arguments)


def status(state: Mapping[str, Any]) -> str:
    """``running`` or ``stopped``."""
    return "running" if store.qemu_pid(state) is not None else "stopped"
