# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plumbing every cloud module shares: store options, check mode, diff, actionable failures."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from .errors import CloudError, Conflict, InvalidInput
from .overlay import Runner
from .store import DEFAULT_STORE_PATH, HAS_PSYCOPG, PSYCOPG_IMPORT_ERROR, Store
from .virt import HAS_LIBVIRT, LIBVIRT_IMPORT_ERROR

# The environment names the store when a task does not: an AWX credential injects the DSN as an
# environment variable (never an extra var, which job output would show); the inventory plugin
# reads the same variables.
STORE_ENV = "COMPLEAT_CLOUD_STORE"
STORE_DSN_ENV = "COMPLEAT_CLOUD_STORE_DSN"
STORE_OPTIONS: dict[str, dict[str, Any]] = {
    "store": {"type": "path", "default": DEFAULT_STORE_PATH, "fallback": (env_fallback, [STORE_ENV])},
    "store_dsn": {"type": "str", "no_log": True, "fallback": (env_fallback, [STORE_DSN_ENV])},
}
VOLATILE = frozenset({"created_at", "updated_at", "id"})
# Ranges of the numeric options, by option name, whichever cloud module has them: checked before
# the store or libvirt sees a value (2**70 MiB of RAM must be refused with the key, not by SQLite).
PiB_IN_GB = 1024**2
LIMITS: dict[str, tuple[float, float]] = {
    "vcpus": (0, 65536),
    "reserved_vcpus": (0, 65536),
    "ram_mb": (0, 1024**3 * 64),
    "reserved_ram_mb": (0, 1024**3 * 64),
    "disk_gb": (0, PiB_IN_GB),
    "size_gb": (0, PiB_IN_GB),
    "cpu_ratio": (0.01, 1000),
    "ram_ratio": (0.01, 1000),
    "iscsi_lun": (0, 16383),
    "stop_timeout": (0, 86400),
    "health_timeout": (1, 86400),
    "verify_timeout": (1, 86400),
    "building_ttl": (0, 365 * 86400),
    "max_moves": (0, 1_000_000),
    "nic_queues": (0, 256),
}


def name_state_spec(*states: str, name: str = "name") -> dict[str, dict[str, Any]]:
    """The required ``name`` option and the ``state`` option of a module that converges one object.

    ``states`` are the choices of ``state`` (``present`` and ``absent`` when none are given), the
    first one its default; ``name`` is the name of the first option (``host`` for evacuate).
    """
    choices = list(states or ("present", "absent"))
    return {
        name: {"type": "str", "required": True},
        "state": {"type": "str", "choices": choices, "default": choices[0]},
    }


def new_module(argument_spec: dict[str, Any], **kwargs: Any) -> AnsibleModule:
    """An AnsibleModule with the store options added; check mode is supported by every module."""
    spec = dict(argument_spec)
    spec.update(STORE_OPTIONS)
    kwargs.setdefault("supports_check_mode", True)
    return AnsibleModule(argument_spec=spec, **kwargs)


def require(module: AnsibleModule, libvirt: bool = False) -> None:
    """Fail early, with the install hint, when a needed Python library is missing."""
    if libvirt and not HAS_LIBVIRT:
        module.fail_json(
            msg=missing_required_lib("libvirt-python (Debian: python3-libvirt)"),
            exception=str(LIBVIRT_IMPORT_ERROR),
        )
    if module.params.get("store_dsn") and not HAS_PSYCOPG:
        module.fail_json(
            msg=missing_required_lib("psycopg (3.x) for store_dsn"), exception=str(PSYCOPG_IMPORT_ERROR)
        )


def open_store(module: AnsibleModule, write: bool = True) -> Store:
    """Open the store the module's options name.

    Writers create and migrate it, except in check mode: a missing SQLite store is then replaced
    by an empty in-memory one, so check mode predicts the first run without creating a file.
    """
    dsn = module.params.get("store_dsn")
    path = module.params.get("store") or DEFAULT_STORE_PATH
    if not dsn and module.check_mode and write and not os.path.exists(path):
        return Store.open(":memory:")
    writable = write and not module.check_mode
    return Store.open(path=path, dsn=dsn, create=writable, migrate=writable)


def runner(module: AnsibleModule) -> Runner:
    """``module.run_command`` as a Runner."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        rc, out, err = module.run_command(argv)
        return rc, out, err

    return run


def public(row: dict[str, Any] | None, drop: frozenset[str] = VOLATILE) -> dict[str, Any]:
    """A row without volatile columns (ids, timestamps): stable output for diff and results."""
    if not row:
        return {}
    return {k: row[k] for k in sorted(row) if k not in drop}


def make_diff(before: Any, after: Any, header: str = "") -> dict[str, Any]:
    """An Ansible ``diff`` entry."""
    out: dict[str, Any] = {"before": before, "after": after}
    if header:
        out["before_header"] = header
        out["after_header"] = header
    return out


def ensure_row(
    store: Store,
    table: str,
    key: dict[str, Any],
    desired: dict[str, Any],
    check_mode: bool,
    *,
    nullable: frozenset[str] = frozenset(),
) -> tuple[bool, dict[str, Any], dict[str, Any]]:
    """Insert or update the row of ``table`` identified by ``key``; returns (changed, before, after).

    Only the columns in ``desired`` are compared and written; None means "keep", except for the
    columns in ``nullable``, where None is written.
    """
    wanted = {k: v for k, v in desired.items() if v is not None or k in nullable}
    with store.transaction(write=not check_mode):
        current = store.get(table, **key)
        if current is None:
            after = {**key, **wanted}
            if not check_mode:
                after = store.insert(table, after)
            return True, {}, after
        changes = {k: v for k, v in wanted.items() if current.get(k) != v}
        if not changes:
            return False, current, current
        if not check_mode:
            store.update(table, current["id"], changes)
        return True, current, {**current, **changes}


def delete_row(
    store: Store,
    table: str,
    key: dict[str, Any],
    check_mode: bool,
    guard: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Delete the row identified by ``key`` (``guard`` may raise Conflict); returns (changed, before)."""
    with store.transaction(write=not check_mode):
        current = store.get(table, **key)
        if current is None:
            return False, {}
        if guard:
            guard(current)
        if not check_mode:
            store.delete(table, id=current["id"])
        return True, current


def instances_guard(store: Store, column: str, problem: str, fix: str) -> Callable[[dict[str, Any]], None]:
    """A ``delete_row`` guard that refuses while instances refer to the row through their ``column``.

    The Conflict says ``problem``, with ``{name}`` (the row's name) and ``{users}`` (the instances)
    filled in, and ``fix``.
    """

    def guard(row: dict[str, Any]) -> None:
        users = store.select("instances", order_by="name", **{column: row["id"]})
        if users:
            raise Conflict(problem.format(name=row["name"], users=", ".join(u["name"] for u in users)), fix)

    return guard


def range_problems(params: dict[str, Any], limits: dict[str, tuple[float, float]] | None = None) -> list[str]:
    """Every numeric option outside its range (``LIMITS`` by default), as ``key=value (min..max)``."""
    limits = LIMITS if limits is None else limits
    out = []
    for key in sorted(limits.keys() & params.keys()):
        value = params[key]
        low, high = limits[key]
        if isinstance(value, int | float) and not isinstance(value, bool) and not low <= value <= high:
            out.append(f"{key}={value} (allowed {low:g}..{high:g})")
    return out


def check_ranges(params: dict[str, Any]) -> None:
    """Raise InvalidInput naming every out-of-range numeric option."""
    problems = range_problems(params)
    if problems:
        raise InvalidInput(
            f"Out of range: {'; '.join(problems)}.", "Give values inside the allowed ranges shown."
        )


Handler = Callable[[AnsibleModule, Store], dict[str, Any]]


def run_module(
    argument_spec: dict[str, Any],
    handler: Handler,
    *,
    libvirt: bool = False,
    write: bool = True,
    precheck: Callable[[dict[str, Any]], object] | None = None,
    **module_kwargs: Any,
) -> None:
    """The whole run of a cloud module, from its argument spec to its exit.

    Builds the AnsibleModule (store options added, check mode supported, ``module_kwargs`` such
    as ``required_if`` passed on), fails early when a library is missing, checks the numeric
    ranges and ``precheck`` (parameter checks that must refuse before the store is created), opens
    the store (``write``: created and migrated, see open_store), runs ``handler`` and exits with its
    dict. A CloudError becomes an actionable failure; anything else fails with the traceback.
    """
    module = new_module(argument_spec, **module_kwargs)
    require(module, libvirt=libvirt)
    try:
        check_ranges(module.params)
        if precheck is not None:
            precheck(module.params)
        with open_store(module, write=write) as store:
            result = handler(module, store)
    except CloudError as exc:
        module.fail_json(**exc.as_result())
    except Exception as exc:  # a bug or an unexpected environment: keep the traceback for -vvv
        module.fail_json(msg=f"Unexpected error: {exc}", exception=traceback.format_exc())
    module.exit_json(**result)
