# Copyright (c) 2026 compleat.cloud developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWX as code (awx/controller.yml, playbooks/awx_configure.yml) and the execution environment
(awx/execution-environment.yml), checked without an AWX: every object key is an option of its
awx.awx module, every reference resolves, every survey matches its playbook, the job templates
that need no lab run through ansible-runner from the installed collection as AWX runs them, and
``ansible-builder create`` makes a build context whose introspection finds the collection's
Python and system requirements. The cloud templates run in tests/integration_libvirt
(test_awx_templates.py), fabric validation in the namespace lab (tests/lab/test_fabric_lab.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import awxjob
import pytest
import yaml
from bindep.depends import Depends
from packaging.requirements import Requirement
from pkglib import BIN, ROOT, run

# controller.yml section -> the awx.awx module its objects are options of (nested keys apart)
SECTIONS = {
    "compleat_awx_execution_environment": "execution_environment",
    "compleat_awx_project": "project",
    "compleat_awx_credential_types": "credential_type",
    "compleat_awx_credentials": "credential",
    "compleat_awx_inventories": "inventory",
    "compleat_awx_job_templates": "job_template",
    "compleat_awx_schedules": "schedule",
}
NESTED = {"sources": "inventory_source", "hosts": "host"}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
QUESTION_KEYS = {"question_name", "question_description", "variable", "type", "required", "default"}
QUESTION_KEYS |= {"choices", "min", "max", "new_question"}


@pytest.fixture(scope="module")
def data():
    return awxjob.controller()


@pytest.fixture(scope="module")
def awx_options():
    """awx.awx module name -> its option names, from ansible-doc of the venv's awx.awx."""
    names = sorted({*SECTIONS.values(), *NESTED.values()})
    out = json.loads(run([str(BIN / "ansible-doc"), "-j", *(f"awx.awx.{n}" for n in names)], ROOT, None))
    return {k.split(".")[-1]: set(v["doc"]["options"]) for k, v in out.items()}


def objects(data):
    """(module, object) for every object of controller.yml, nested inventory sources and hosts too."""
    for section, module in SECTIONS.items():
        items = data[section] if isinstance(data[section], list) else [data[section]]
        for item in items:
            yield module, {k: v for k, v in item.items() if k not in NESTED}
            for key, nested in NESTED.items():
                for sub in item.get(key, []):
                    yield nested, sub


def test_every_key_is_an_option_of_its_awx_module(data, awx_options):
    for module, obj in objects(data):
        assert set(obj) <= awx_options[module], (module, obj["name"], set(obj) - awx_options[module])
    book = yaml.safe_load((ROOT / "playbooks" / "awx_configure.yml").read_text())
    used = set()
    for task in book[0]["tasks"]:
        module = next(k for k in task if "." in k)
        if module.startswith("awx.awx."):
            short = module.split(".")[-1]
            used.add(short)
            assert set(task[module]) <= awx_options[short], (
                task["name"],
                set(task[module]) - awx_options[short],
            )
    assert used == {*SECTIONS.values(), *NESTED.values()}


def test_every_reference_resolves(data):
    creds = {c["name"] for c in data["compleat_awx_credentials"]}
    assert {c["credential_type"] for c in data["compleat_awx_credentials"]} <= {
        t["name"] for t in data["compleat_awx_credential_types"]
    }
    inventories = {i["name"] for i in data["compleat_awx_inventories"]}
    for inv in data["compleat_awx_inventories"]:
        for source in inv.get("sources", []):
            assert (ROOT / source["source_path"]).is_file(), source
            assert source.get("credential", next(iter(creds))) in creds, source
    templates = {t["name"]: t for t in data["compleat_awx_job_templates"]}
    assert len(templates) == len(data["compleat_awx_job_templates"]), "job template names repeat"
    for tpl in templates.values():
        assert (ROOT / tpl["playbook"]).is_file(), tpl["name"]
        assert tpl["inventory"] in inventories, tpl["name"]
        assert set(tpl.get("credentials", [])) <= creds, tpl["name"]
    for schedule in data["compleat_awx_schedules"]:
        tpl = templates[schedule["unified_job_template"]]
        awxjob.survey_vars(tpl, schedule.get("extra_data", {}))  # AWX checks a schedule's answers too
    wanted = {"site", "fabric render", "fabric validate", "instance create", "instance delete", "evacuate"}
    assert {n.removeprefix("compleat.cloud ") for n in templates} >= wanted | {"health check"}


def test_surveys_are_valid_and_match_their_playbooks(data):
    for tpl in data["compleat_awx_job_templates"]:
        if not tpl.get("survey_enabled"):
            assert "survey_spec" not in tpl, tpl["name"]
            continue
        text = (ROOT / tpl["playbook"]).read_text()
        for q in tpl["survey_spec"]["spec"]:
            assert set(q) <= QUESTION_KEYS and q["type"] in SURVEY_TYPES, (tpl["name"], q)
            assert re.fullmatch(r"[a-z_][a-z0-9_]*", q["variable"]), q
            # the playbook reads the variable (a survey answer nothing reads would be silently lost)
            assert re.search(rf"\b{q['variable']}\b", text), (tpl["name"], q["variable"])
            if q["type"] == "multiplechoice":
                assert q["default"] in q["choices"], q
        for var in tpl.get("extra_vars", {}):
            assert re.search(rf"\b{var}\b", text), (tpl["name"], var)


def test_survey_answers_are_typed_and_checked_as_awx_does(data):
    tpl = awxjob.template("compleat.cloud instance delete", data)
    assert awxjob.extra_vars(tpl, {"cloud_instance_name": "web1"}, {}) == {
        "cloud_instance_state": "absent",
        "cloud_instance_name": "web1",
        "cloud_instance_stop_timeout": 60,
    }
    assert awxjob.survey_vars(tpl, {"cloud_instance_name": "a", "cloud_instance_stop_timeout": "5"}) == {
        "cloud_instance_name": "a",
        "cloud_instance_stop_timeout": 5,
    }
    evacuate = awxjob.template("compleat.cloud evacuate", data)
    for answers, message in (
        ({}, "'cloud_instance_name' value missing"),
        ({"cloud_instance_name": "a", "cloud_instance_stop_timeout": "soon"}, "expected to be integer"),
        ({"cloud_instance_name": "a", "cloud_instance_stop_timeout": 7200}, "out of range"),
        ({"cloud_instance_name": "x" * 64}, "characters long"),
        ({"cloud_instance_name": "a", "other": "1"}, "not in the survey"),
    ):
        with pytest.raises(awxjob.SurveyError, match=re.escape(message)):
            awxjob.survey_vars(tpl, answers)
    with pytest.raises(awxjob.SurveyError, match="expected to be one of"):
        awxjob.survey_vars(evacuate, {"cloud_evacuate_host": "hv1", "cloud_evacuate_fence_method": "ipmi"})


@pytest.fixture
def project(tmp_path):
    """A copy of the AWX project (this repository's playbooks, inventories and awx/), no roles or
    plugins: those must come from the installed collection."""
    proj = tmp_path / "project"
    for sub in ("playbooks", "inventories", "awx"):
        shutil.copytree(ROOT / sub, proj / sub)
    return proj


def installed_env(installed) -> dict[str, str]:
    _tarball, work, env = installed
    return {k: env[k] for k in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_NOCOLOR")} | {
        "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
    }


def test_fabric_render_template_runs_from_the_installed_collection(installed, project, tmp_path):
    out = tmp_path / "fabric"
    answers = {"fabric_file": "inventories/lab/fabric.yml", "fabric_out": str(out)}
    env = installed_env(installed)

    def render(answers: dict[str, str], job_dir: str, **options: str) -> awxjob.Job:
        """Launch the fabric render template with ``answers`` in ``tmp_path / job_dir``."""
        return awxjob.launch(
            "compleat.cloud fabric render",
            answers,
            private_data_dir=tmp_path / job_dir,
            project_dir=project,
            envvars=env,
            **options,
        )

    job = render(answers, "job-check", cmdline="--check --diff")
    awxjob.assert_successful(job)
    assert not out.exists(), "check mode wrote the outputs"
    job = render(answers, "job")
    awxjob.assert_successful(job)
    (result,) = job.results(f"Fabric is rendered into {out}")
    assert result["changed"] and "topology.json" in result["created"]
    assert json.loads((out / "topology.json").read_text())["fabric"]["name"]
    assert job.stats()["failures"] == {} and job.stats()["ok"] == {"localhost": 3}
    assert (job.artifacts / "rc").read_text() == "0" and (
        job.artifacts / "status"
    ).read_text() == "successful"

    # a broken fabric file fails the job with the key path and nothing written
    bad = project / "inventories" / "broken.yml"
    fabric = yaml.safe_load((ROOT / "inventories" / "lab" / "fabric.yml").read_text())
    fabric["spines"] = "two"
    bad.write_text(yaml.safe_dump(fabric))
    answers = {"fabric_file": "inventories/broken.yml", "fabric_out": str(tmp_path / "never")}
    job = render(answers, "job-bad")
    assert (job.status, job.rc) == ("failed", 2), job.stdout[-2000:]
    task = f"Fabric is rendered into {tmp_path / 'never'}"
    assert job.task_events(task) == ["playbook_on_task_start", "runner_on_start", "runner_on_failed"]
    (failed,) = job.results(task)
    assert "spines" in failed["msg"], failed["msg"]
    assert not (tmp_path / "never").exists()


def site_roles() -> set[str]:
    """Every role site.yml and the playbooks it imports apply."""
    book = (ROOT / "playbooks" / "site.yml").read_text()
    texts = [
        book,
        *((ROOT / "playbooks" / m).read_text() for m in re.findall(r"import_playbook: (\S+)", book)),
    ]
    return {r for t in texts for r in re.findall(r"role: (compleat\.cloud\.\w+)", t)}


def test_site_template_resolves_every_role_from_the_installed_collection(installed, project, tmp_path):
    # The site job needs the racks themselves (molecule and `make lab` run its roles for real);
    # here ansible-runner lists its tasks, which loads every play, role and argument spec.
    job = awxjob.launch(
        "compleat.cloud site",
        private_data_dir=tmp_path / "job",
        project_dir=project,
        inventory="inventories/lab/hosts.yml",
        envvars=installed_env(installed),
        cmdline="--list-tasks",
    )
    awxjob.assert_successful(job)
    roles = site_roles()
    assert len(roles) >= 10, roles
    for role in roles:
        assert f"{role} : " in job.stdout, role


def test_execution_environment_build_context_and_introspection(installed, tmp_path):
    _tarball, work, _env = installed
    definition = ROOT / "awx" / "execution-environment.yml"
    context = tmp_path / "context"
    run([str(BIN / "ansible-builder"), "create", "-f", str(definition), "-c", str(context)], ROOT, None)
    spec = yaml.safe_load(definition.read_text())
    assert spec["version"] == 3
    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{spec["images"]["base_image"]["name"]}"' in containerfile
    assert (
        "ansible-galaxy collection install" in containerfile and "introspect.py introspect" in containerfile
    )
    wanted = yaml.safe_load((ROOT / "awx" / "requirements.yml").read_text())
    assert yaml.safe_load((context / "_build" / "requirements.yml").read_text()) == wanted
    assert "compleat.cloud" in {c["name"] for c in wanted["collections"]}

    # What the image build's introspection step finds in the installed collection
    introspect = context / "_build" / "scripts" / "introspect.py"
    out = subprocess.run(
        [str(BIN / "python"), str(introspect), "introspect", str(work / "collections")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = yaml.safe_load(out)
    python = {Requirement(line.split("#")[0]).name for line in found["python"] if "compleat.cloud" in line}
    assert {"psycopg", "libvirt-python", "jinja2"} <= python, python
    system = "\n".join(line.split("#")[0].strip() for line in found["system"] if "compleat.cloud" in line)
    rules = Depends(system)
    el9 = ["platform:rpm", "platform:redhat", "platform:centos"]
    assert {"frr", "qemu-img", "openssh-clients", "libvirt-libs"} <= {r[0] for r in rules.active_rules(el9)}
    build_only = {r[0] for r in rules.active_rules([*el9, "compile"])} - {
        r[0] for r in rules.active_rules(el9)
    }
    assert {"gcc", "libvirt-devel", "python3-devel", "pkgconf-pkg-config"} <= build_only
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            Requirement(line)  # every line is a valid requirement
