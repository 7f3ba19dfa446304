"""Fixtures for the image's tests: a clean virtualenv holding only what the image installs for the
runner, and the AWS side (a bucket and a database secret in the moto server) as plain environment
variables, the only way a Fargate task receives them."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.image.lock import REQUIREMENTS

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "runner_image" / "Dockerfile"
# /var/task in the image: the runner package sits here and it is the working directory.
TASK_ROOT = REPO_ROOT / "runner_image"
FIXTURE_APP = REPO_ROOT / "tests" / "laravel_app"
IMAGE_PYTHON_VERSION = (3, 12)  # public.ecr.aws/lambda/python:3.12
# What pip prints when it cannot reach the package index at all (as opposed to a wrong pin or
# hash, which must fail the test).
_UNREACHABLE = re.compile(
    r"NewConnectionError|ConnectTimeout|Temporary failure in name resolution|Network is "
    r"unreachable|ProxyError|Max retries exceeded|No route to host|Name or service not known"
)


def dockerfile_text() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def dockerfile_pip_install() -> list[str]:
    """The arguments after `pip install` in the Dockerfile's install of the runner's pins."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile_text())
    match = re.search(r"-m pip install (.+?) -r /tmp/runner-requirements\.txt", joined)
    if match is None:
        raise AssertionError("the Dockerfile no longer pip-installs /tmp/runner-requirements.txt")
    return match.group(1).split()


def image_python() -> str:
    """A CPython of the image's minor version: $LTR_IMAGE_PYTHON, python3.12 on PATH, or pyenv's.

    Falls back to this interpreter (3.11, which the runner also supports) so the test still runs
    on a machine without 3.12; the interpreter used is part of the test's output.
    """
    wanted = "python{}.{}".format(*IMAGE_PYTHON_VERSION)
    candidates = [os.environ.get("LTR_IMAGE_PYTHON"), shutil.which(wanted)]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.12*/bin/{wanted}"), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == str(IMAGE_PYTHON_VERSION):
            return candidate
    return sys.executable


@dataclass(frozen=True)
class Venv:
    path: Path
    base_python: str

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def make_venv(path: Path, base_python: str, *, with_pip: bool) -> Venv:
    command = [base_python, "-m", "venv", str(path)]
    if not with_pip:
        command.append("--without-pip")
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return Venv(path, base_python)


@pytest.fixture(scope="session")
def runner_venv(tmp_path_factory) -> Venv:
    """A fresh venv with nothing but the runner's pins, installed with the Dockerfile's flags."""
    venv = make_venv(tmp_path_factory.mktemp("runner-venv") / "venv", image_python(), with_pip=True)
    result = subprocess.run(
        [
            str(venv.python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            *dockerfile_pip_install(),
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if _UNREACHABLE.search(output):
            pytest.skip(f"PyPI is unreachable, so the runner's pins cannot be installed:\n{output}")
        raise AssertionError(f"pip could not install {REQUIREMENTS}:\n{output}")
    return venv


@dataclass(frozen=True)
class TaskEnvironment:
    """What the Fargate task definition gives the container, pointed at the local services."""

    env: dict[str, str]
    bucket: str
    s3: object

    def keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket)  # type: ignore[attr-defined]
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]


@pytest.fixture
def task_environment(moto_server, postgres, tmp_path) -> TaskEnvironment:
    """A results bucket, a database of its own with its RDS-shaped secret, and the environment
    the runner reads, built from scratch (nothing inherited but PATH, for php)."""
    s3 = moto_server.client("s3")
    bucket = f"ltr-image-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    credentials = postgres.create_database(f"image_{uuid.uuid4().hex[:10]}")
    secret_arn = moto_server.client("secretsmanager").create_secret(
        Name=f"ltr/db/{uuid.uuid4().hex[:8]}", SecretString=credentials.as_secret_json()
    )["ARN"]
    work = tmp_path / "tmp"
    work.mkdir()
    env = {
        **moto_server.env,
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(work),
        "RESULTS_BUCKET": bucket,
        "DB_SECRET_ARN": secret_arn,
        "RUNNER_APP_DIR": str(FIXTURE_APP),
        "PROJECT": "ltr",
        "ENVIRONMENT": "test",
        "IMAGE_VERSION": "test-image",
    }
    return TaskEnvironment(env, bucket, s3)
