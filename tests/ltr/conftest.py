"""A moto server of ltr's own, holding the stack's runner function and results bucket.

Its own server because asynchronous invocations need moto's Docker-free Lambda backend, which has
to be chosen before any function exists and would hide the shared server's functions from other
tests. The resources are created with boto3 under the names and environment the stack gives them
(modules.config derives the names, modules.contract the environments; the full Terraform path
is tested in tests/e2e).
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.services import MotoServer
from modules.config import load_config
from modules.contract import (
    REPORT_PROCESSOR_HANDLER,
    REPORT_PROCESSOR_RUNTIME,
    report_processor_environment,
    runner_environment,
)
from tests.ltr.helpers import EXAMPLE_CONFIG, REPO_ROOT


@dataclass
class LtrStack:
    emulator: MotoServer
    config_path: Path
    bucket: str
    runner_function: str
    report_function: str

    def env(self) -> dict[str, str]:
        return self.emulator.env


def _use_docker_free_lambda(endpoint: str) -> None:
    request = urllib.request.Request(  # noqa: S310 (the loopback emulator)
        f"{endpoint}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        response.read()


def _zip_of(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in sorted(path.rglob("*.py")):
            archive.write(file, file.relative_to(path.parent))
    return buffer.getvalue()


def create_stack_resources(emulator: MotoServer, config_path: Path) -> LtrStack:
    stack = load_config(config_path)
    names = stack.names
    iam = emulator.client("iam")
    role_arn = iam.create_role(
        RoleName=names.runner_role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=names.results_bucket)
    s3.put_bucket_versioning(
        Bucket=names.results_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    lambda_client = emulator.client("lambda")
    lambda_client.create_function(
        FunctionName=names.runner_function,
        Role=role_arn,
        PackageType="Image",
        Code={"ImageUri": f"123456789012.dkr.ecr.{stack.region}.amazonaws.com/x:v1"},
        Timeout=stack.runner.timeout_seconds,
        MemorySize=stack.runner.memory_mb,
        Environment={"Variables": runner_environment(stack, names.results_bucket)},
    )
    report_arn = lambda_client.create_function(
        FunctionName=names.report_function,
        Role=role_arn,
        Runtime=REPORT_PROCESSOR_RUNTIME,
        Handler=REPORT_PROCESSOR_HANDLER,
        Code={"ZipFile": _zip_of(REPO_ROOT / "report_processor")},
        Timeout=300,
        Environment={"Variables": report_processor_environment(stack)},
    )["FunctionArn"]
    s3.put_bucket_notification_configuration(
        Bucket=names.results_bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "Id": "junit-to-report",
                    "LambdaFunctionArn": report_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "runs/"},
                                {"Name": "suffix", "Value": "junit.xml"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    return LtrStack(
        emulator, config_path, names.results_bucket, names.runner_function, names.report_function
    )


@pytest.fixture(scope="session")
def ltr_moto():
    with MotoServer.start() as server:
        _use_docker_free_lambda(server.endpoint_url)
        yield server


@pytest.fixture(scope="session")
def ltr_stack(ltr_moto) -> LtrStack:
    region = load_config(EXAMPLE_CONFIG).region
    return create_stack_resources(ltr_moto.in_region(region), EXAMPLE_CONFIG)


@pytest.fixture
def aws_env(monkeypatch, ltr_stack):
    """The user's shell pointed at the emulator."""
    for name in ("AWS_PROFILE", "LTR_ENV", "LTR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ltr_stack.env().items():
        monkeypatch.setenv(name, value)
    return ltr_stack.env()
