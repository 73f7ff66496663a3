# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a job template of awx/controller.yml the way AWX runs it.

AWX validates a launch's survey answers against the template's survey spec, merges them over the
template's extra vars, writes a private data dir (``env/extravars``, ``env/envvars`` from the
credentials, ``inventory/``, ``project/``) and hands it to ansible-runner. ``launch`` does the same
with the real ansible-runner, so a test sees what a job would: its status, rc, stdout and events.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONTROLLER_FILE = ROOT / "awx" / "controller.yml"
TEXT_TYPES = ("text", "textarea", "password", "multiplechoice", "multiselect")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that reads Ansible's ``!unsafe`` tag as a plain string."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def controller(path: Path = CONTROLLER_FILE) -> dict[str, Any]:
    """The AWX objects of awx/controller.yml."""
    return yaml.load(path.read_text(), Loader=_Loader)


def template(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job template called ``name``."""
    found = [t for t in (data or controller())["compleat_awx_job_templates"] if t["name"] == name]
    assert len(found) == 1, f"{len(found)} job templates are called {name!r}"
    return found[0]


class SurveyError(ValueError):
    """AWX would refuse the launch (HTTP 400): the message says why, as AWX does."""


def _typed(question: dict[str, Any], value: Any) -> Any:
    kind, var = question["type"], question["variable"]
    if kind in ("integer", "float"):
        try:
            number = int(value) if kind == "integer" else float(value)
        except (TypeError, ValueError):
            raise SurveyError(f"Value {value!r} for '{var}' expected to be {kind}.") from None
        low, high = question.get("min"), question.get("max")
        if (low is not None and number < low) or (high is not None and number > high):
            raise SurveyError(f"'{var}' value {number} is out of range {low}-{high}.")
        return number
    if not isinstance(value, str):
        raise SurveyError(f"Value {value!r} for '{var}' expected to be a string.")
    if kind == "multiplechoice" and value not in question["choices"]:
        raise SurveyError(f"Value {value} for '{var}' expected to be one of {question['choices']}.")
    if kind in ("text", "textarea", "password"):
        low, high = question.get("min"), question.get("max")
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            raise SurveyError(f"'{var}' value {value!r} is not {low}-{high} characters long.")
    return value


def survey_vars(tpl: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """The extra vars AWX makes of a launch's survey answers (defaults filled in, types enforced)."""
    if not tpl.get("survey_enabled"):
        if answers:
            raise SurveyError(f"job template {tpl['name']!r} has no survey")
        return {}
    spec = tpl["survey_spec"]["spec"]
    known = {q["variable"] for q in spec}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise SurveyError(f"variables not in the survey of {tpl['name']!r}: {unknown}")
    out: dict[str, Any] = {}
    for question in spec:
        var = question["variable"]
        if var in answers:
            out[var] = _typed(question, answers[var])
        elif "default" in question and question["default"] not in (None, ""):
            out[var] = _typed(question, question["default"])
        elif question.get("required"):
            raise SurveyError(f"'{var}' value missing")
    return out


def extra_vars(tpl: dict[str, Any], answers: dict[str, Any], launch_vars: dict[str, Any]) -> dict[str, Any]:
    """Template extra vars, then launch-time extra vars, then survey answers (AWX's precedence)."""
    return {**tpl.get("extra_vars", {}), **launch_vars, **survey_vars(tpl, answers)}


@dataclass
class Job:
    """A finished job: ansible-runner's status and rc, its stdout and events."""

    status: str
    rc: int
    stdout: str
    events: list[dict[str, Any]]
    artifacts: Path

    def task_events(self, task: str) -> list[str]:
        """The runner events of the task called ``task``, in order (runner_on_start, _ok, ...)."""
        return [e["event"] for e in self.events if e.get("event_data", {}).get("task") == task]

    def results(self, task: str) -> list[dict[str, Any]]:
        """Module results of the task called ``task`` (one per host)."""
        return [
            e["event_data"]["res"]
            for e in self.events
            if e["event"] in ("runner_on_ok", "runner_on_failed")
            and e.get("event_data", {}).get("task") == task
        ]

    def stats(self) -> dict[str, dict[str, int]]:
        """The play recap: counter name -> {host: count}."""
        (recap,) = [e["event_data"] for e in self.events if e["event"] == "playbook_on_stats"]
        return {k: v for k, v in recap.items() if isinstance(v, dict)}


def launch(
    name: str,
    answers: dict[str, Any] | None = None,
    *,
    private_data_dir: Path,
    project_dir: Path = ROOT,
    inventory: str | Path | None = None,
    envvars: dict[str, str] | None = None,
    launch_vars: dict[str, Any] | None = None,
    cmdline: str = "",
) -> Job:
    """Run job template ``name`` with survey ``answers`` as AWX would, and return the finished job.

    ``inventory`` is a path relative to the project or an absolute path (AWX: the inventory
    source's file); ``envvars`` stand for what the credentials inject; ``cmdline`` for the
    launch's job type and diff mode (``--check``, ``--diff``) or any other ansible-playbook option.
    """
    tpl = template(name)
    if launch_vars and not tpl.get("ask_variables_on_launch"):
        raise SurveyError(f"job template {name!r} does not prompt for variables on launch")
    if private_data_dir.exists():
        shutil.rmtree(private_data_dir)
    (private_data_dir / "env").mkdir(parents=True)
    (private_data_dir / "project").symlink_to(project_dir.resolve(), target_is_directory=True)
    variables = extra_vars(tpl, answers or {}, launch_vars or {})
    (private_data_dir / "env" / "extravars").write_text(json.dumps(variables, indent=2))
    env = {"PATH": venv_path(), **(envvars or {})}
    (private_data_dir / "env" / "envvars").write_text(json.dumps(env))
    if cmdline:
        (private_data_dir / "env" / "cmdline").write_text(cmdline)
    inv = inventory if inventory is None or os.path.isabs(inventory) else project_dir / inventory
    runner = ansible_runner.run(
        private_data_dir=str(private_data_dir),
        playbook=tpl["playbook"],
        inventory=str(inv) if inv is not None else None,
        quiet=True,
    )
    artifacts = Path(runner.config.artifact_dir)
    return Job(
        status=runner.status,
        rc=runner.rc,
        stdout=(artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else "",
        events=list(runner.events),
        artifacts=artifacts,
    )


def venv_path() -> str:
    """PATH with the venv's Ansible first, as the execution environment's is the one on its PATH."""
    return f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"


def inventory_update(source: Path, envvars: dict[str, str]) -> dict[str, Any]:
    """What an AWX inventory update reads from an inventory source file: ``ansible-inventory
    --list`` through ansible-runner, with ``envvars`` standing for the source's credential."""
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = venv_path()  # ansible-runner looks ansible-inventory up in its own PATH
    try:
        out, err = ansible_runner.get_inventory(
            action="list",
            inventories=[str(source)],
            response_format="json",
            envvars={"PATH": venv_path(), **envvars},
            quiet=True,
        )
    finally:
        os.environ["PATH"] = saved
    assert isinstance(out, dict), f"inventory update of {source} failed: {err}"
    return out


def assert_successful(job: Job) -> None:
    """The job succeeded (its stdout is shown when it did not)."""
    assert (job.status, job.rc) == ("successful", 0), f"job {job.status} rc={job.rc}:\n{job.stdout[-4000:]}"
