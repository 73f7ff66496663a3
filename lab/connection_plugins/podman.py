# The podman connection of the lab and of the molecule container scenarios: the one of
# containers.podman with pipelining. Not part of the collection (nothing under plugins/ uses it).
# Figures: docs/dev/testing.md ("Fewer round trips").
"""containers.podman.podman with pipelining and a lazy mount (lab and test harness only)."""

from __future__ import annotations

import shlex
from typing import Any

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect

from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
name: podman
short_description: Run tasks in a podman container, a module sent on podman exec's stdin
description:
  - The connection of C(containers.podman.podman) with two changes. With pipelining on, a
    module is sent on the standard input of C(podman exec --interactive) instead of being
    copied into the container and run by three more podman commands; the podman connection
    turns pipelining off because it runs C(podman exec) without C(--interactive).
  - The container's filesystem is mounted on the first file transfer instead of on every task.
  - Enabled by C(ANSIBLE_CONNECTION_PLUGINS) pointing at this directory, for the short name
    C(podman) that molecule's podman driver writes into its inventory (scripts/lib.sh).
author: compleat.cloud
extends_documentation_fragment:
  - connection_pipelining
options:
  remote_addr:
    description: The name or ID of the container.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description: User (name or UID) that runs commands in the container.
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments for every podman command.
    default: ''
    ini:
      - section: defaults
        key: podman_extra_args
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
"""


class Connection(PodmanConnection):
    """A podman connection that pipelines modules and mounts the container only when needed."""

    transport = "podman"
    has_pipelining = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mounted = False

    def _connect(self) -> Connection:
        # The podman connection mounts the container here, for every task; only put_file and
        # fetch_file use the mount.
        ConnectionBase._connect(self)
        self._connected = True
        return self

    def _mount(self) -> None:
        if not self._mounted:
            PodmanConnection._connect(self)
            self._mounted = True

    @ensure_connect
    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = False
    ) -> tuple[int, bytes, bytes]:
        if in_data is None:
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec", "--interactive"]
        if self.user:
            args += ["--user", self.user]
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)

    def put_file(self, in_path: str, out_path: str) -> None:
        self._mount()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> None:
        self._mount()
        super().fetch_file(in_path, out_path)
