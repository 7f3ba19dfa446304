"""Fixtures for the runner's tests: the image's import path, a results bucket in the moto
server, a database secret for the real PostgreSQL, and a Lambda context."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNER_IMAGE = REPO_ROOT / "runner_image"
FIXTURE_APP = REPO_ROOT / "tests" / "laravel_app"

# As in the image: the runner package sits on the import path at the Lambda task root.
if str(RUNNER_IMAGE) not in sys.path:
    sys.path.insert(0, str(RUNNER_IMAGE))


@dataclass
class LambdaContext:
    """What the Python runtime passes as `context`, as far as the runner uses it."""

    timeout_seconds: float = 900.0
    function_name: str = "ltr-test-runner"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def __post_init__(self):
        self._started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000)


@dataclass
class RunnerSetup:
    bucket: str
    s3: object
    secrets: object

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def everything(self) -> dict[str, bytes]:
        return {key: self.read(key) for key in self.keys()}


@pytest.fixture
def runner_env(moto_server, monkeypatch, tmp_path):
    """A fresh bucket and the runner's environment pointing at the moto server."""
    from runner import aws

    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    bucket = f"ltr-results-{uuid.uuid4().hex[:12]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("RESULTS_BUCKET", bucket)
    monkeypatch.setenv("RUNNER_APP_DIR", str(FIXTURE_APP))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("PROJECT", "ltr")
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("IMAGE_VERSION", "test-image")
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    monkeypatch.delenv("RUNNER_COMMANDS", raising=False)
    aws.reset_clients()
    yield RunnerSetup(bucket, s3, moto_server.client("secretsmanager"))
    aws.reset_clients()


@pytest.fixture
def database(postgres, runner_env, monkeypatch):
    """A database of its own in the real PostgreSQL, its RDS-shaped secret in the emulator,
    and DB_SECRET_ARN pointing at it."""
    credentials = postgres.create_database(f"runner_{uuid.uuid4().hex[:10]}")
    arn = runner_env.secrets.create_secret(
        Name=f"ltr/db/{uuid.uuid4().hex[:8]}", SecretString=credentials.as_secret_json()
    )["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    return credentials
