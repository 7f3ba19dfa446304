"""The Fargate task's entry point, run the way the image runs it: an interpreter that has only
the runner's pinned dependencies (no Lambda bootstrap, so nothing from /var/runtime), the working
directory /var/task holding the runner package, `-m runner run ...`, configuration from the
environment only; against the fixture app, PostgreSQL and the moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.image.conftest import TASK_ROOT, dockerfile_text, make_venv
from tests.image.lock import REQUIREMENTS, parse_requirements

PROBE = """
import json, sys
import boto3, botocore, runner.shell
print(json.dumps({
    "prefix": sys.prefix,
    "path": sys.path,
    "boto3": [boto3.__version__, boto3.__file__],
    "botocore": [botocore.__version__, botocore.__file__],
    "runner": runner.shell.__file__,
}))
"""


def entry_point(python: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # cwd is the task root, as the image's WORKDIR /var/task: `-m` puts it first on sys.path.
    return subprocess.run(
        [str(python), "-m", "runner", *args],
        cwd=TASK_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_venv_holds_only_the_pins_and_the_runner_comes_from_the_task_root(
    runner_venv, task_environment
):
    probe = subprocess.run(
        [str(runner_venv.python), "-c", PROBE],
        cwd=TASK_ROOT,
        env=task_environment.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(probe.stdout)
    venv = str(runner_venv.path)
    pins = parse_requirements(REQUIREMENTS.read_text())
    assert seen["prefix"] == venv
    assert seen["boto3"] == [pins["boto3"].version, seen["boto3"][1]]
    assert seen["botocore"][0] == pins["botocore"].version
    assert seen["boto3"][1].startswith(venv) and seen["botocore"][1].startswith(venv)
    assert Path(seen["runner"]).is_relative_to(TASK_ROOT)
    # Nothing of the project's own venv (which also has boto3) is reachable.
    dev_prefix = str(Path(sys.prefix).resolve())
    assert not [entry for entry in seen["path"] if entry.startswith(dev_prefix)], seen["path"]
    installed = subprocess.run(
        [str(runner_venv.python), "-m", "pip", "list", "--format=json"],
        # Neither the repository root as cwd (`-m` puts it on sys.path) nor a PYTHONPATH naming
        # it: pip would list the project's own egg-info (from an editable install) as installed.
        cwd=runner_venv.path,
        env={name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    )
    names = {item["name"].lower() for item in json.loads(installed.stdout)}
    assert names - {"pip", "setuptools"} == set(pins), "the venv must hold exactly the pins"
    # Installed with --no-deps, so the pins alone must satisfy every declared dependency.
    check = subprocess.run(
        [str(runner_venv.python), "-m", "pip", "check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_run_test_passes_and_publishes_from_the_clean_venv(runner_venv, task_environment):
    result = entry_point(
        runner_venv.python,
        "run",
        "--run-id",
        "image-venv",
        "--json",
        "test",
        "--group",
        "database",
        env=task_environment.env,
    )

    assert result.returncode == 0, result.stderr + result.stdout
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["status"] == "passed" and response["run_id"] == "image-venv"
    keys = task_environment.keys()
    assert [key.rsplit("/", 1)[1] for key in keys] == ["junit.xml", "manifest.json", "output.log"]
    assert all("/image-venv/test/" in key for key in keys)
    manifest = json.loads(task_environment.read(next(k for k in keys if k.endswith(".json"))))
    assert manifest["status"] == "passed" and manifest["image_version"] == "test-image"
    junit = task_environment.read(next(k for k in keys if k.endswith(".xml")))
    cases = list(ET.fromstring(junit).iter("testcase"))  # noqa: S314 (PHPUnit's own output)
    assert len(cases) == 3
    assert not [c for c in cases if c.find("failure") is not None or c.find("error") is not None]


def test_the_builds_entry_point_check_passes_with_an_empty_environment(runner_venv):
    # The Dockerfile's last RUN: `-m runner --help` in /var/task, before any runtime variable.
    assert 'RUN "${RUNNER_PYTHON}" -m runner --help' in dockerfile_text()

    result = entry_point(runner_venv.python, "--help", env={})

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m runner")


def test_without_the_pins_the_entry_point_cannot_start(tmp_path, runner_venv, task_environment):
    """The failure the pins prevent: the base interpreter alone has no boto3 for `-m runner`."""
    bare = make_venv(tmp_path / "bare", runner_venv.base_python, with_pip=False)

    result = entry_point(bare.python, "run", "test", env=task_environment.env)

    assert result.returncode == 1
    assert "No module named 'boto3'" in result.stderr
    assert task_environment.keys() == []
    # ... and the image build would have stopped at its entry-point check.
    assert entry_point(bare.python, "--help", env={}).returncode == 1
