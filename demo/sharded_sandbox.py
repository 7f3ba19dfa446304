"""A sharded-run sandbox in the emulator without Terraform: the resources the sharded run needs,
created with boto3 under the names and environments the stack gives them (modules.config,
modules.contract, modules.shard_flow), and an unsharded run of the fixture suite recorded as
the oracle. Used by tests/sharding and bench/sharded_overhead.py; `make demo` and tests/e2e use
the Terraform-applied stack instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.lambda_runtime import DeployedFunction, LocalRunnerSettings, invoke_runner
from demo.pipeline import store_database_secret
from demo.services import MotoServer, PostgresServer
from demo.step_functions import (
    FunctionError,
    Invoker,
    LambdaStandIn,
    execution_mode,
    merge_invoker,
    runner_invoker,
)
from modules.config import ShardDatabasesConfig, StackConfig
from modules.contract import (
    REPORT_PROCESSOR_HANDLER,
    RESULTS_BUCKET,
    RUNNER_IMAGE_HANDLER,
    SHARD_MERGE_HANDLER,
    report_processor_environment,
    runner_environment,
    shard_merge_environment,
)
from modules.shard_flow import state_machine_definition

ACCOUNT = "123456789012"  # moto's default account
ROLE_NAME = "sharded-run"


@dataclass
class ShardedRunner:
    """The runner function as the stand-in invokes it: the real handler (`real`), except for
    the shards in `kill`. `shard` is the hook tests replace to hold or fail one shard."""

    real: Invoker
    kill: frozenset[int] = frozenset()

    def __call__(self, event: dict) -> Any:
        if isinstance(event.get("shard"), dict):
            return self.shard(event)
        return self.real(event)

    def shard(self, event: dict) -> Any:
        if event["shard"].get("index") in self.kill:
            raise FunctionError("Sandbox.Timedout", "Task timed out (the shard was killed)")
        return self.real(event)


@dataclass
class Sandbox:
    config: StackConfig
    emulator: MotoServer
    stand_in: LambdaStandIn
    runner: DeployedFunction
    state_machine_arn: str
    unsharded_junit: Path
    printed: list[str]  # what the merge function printed (its EMF lines)
    database_password: str  # must never appear in a report
    database_user: str  # the secret's role (owner of the secret's database)

    @property
    def bucket(self) -> str:
        return self.config.names.results_bucket

    def play(
        self,
        kill: frozenset[int] = frozenset(),
        shard_databases: ShardDatabasesConfig | None = None,
    ) -> ShardedRunner:
        """Register the real runner handler as the runner function, for every event (plan and
        shards). `kill`: shards whose invocation ends as Lambda's hard timeout reports it
        (a function error `Sandbox.Timedout`, nothing run or uploaded): played, since a killed
        Lambda cannot be had in-process. `shard_databases`: the configuration's
        database.shard_databases, turned into the runner's environment as the stack does."""
        function = self.runner
        if shard_databases is not None:
            database = dataclasses.replace(self.config.database, shard_databases=shard_databases)
            config = dataclasses.replace(self.config, database=database)
            function = dataclasses.replace(
                function, environment=runner_environment(config, self.bucket)
            )
        runner = ShardedRunner(runner_invoker(self.emulator, function), kill)
        self.stand_in.register(self.config.names.runner_function, runner)
        return runner

    def text(self, key: str) -> str:
        s3 = self.emulator.client("s3")
        return s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()


def _arn(config: StackConfig, name: str) -> str:
    return f"arn:aws:lambda:{config.region}:{ACCOUNT}:function:{name}"


def _zip_function(
    lambda_client, config: StackConfig, name: str, handler: str, environment: dict[str, str]
) -> DeployedFunction:
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
        Handler=handler,
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},  # never run by moto
        Timeout=300,
        Environment={"Variables": environment},
    )
    return DeployedFunction(name, _arn(config, name), environment, 300, 512, "Zip", handler)


@contextlib.contextmanager
def sharded_sandbox(
    config: StackConfig, postgres: PostgresServer, database: str
) -> Iterator[Sandbox]:
    names = config.names
    bucket = names.results_bucket
    stand_in = LambdaStandIn()
    with (
        MotoServer.start(region=config.region, service_port=stand_in.port) as emulator,
        stand_in.serving(emulator),
    ):
        execution_mode(emulator)
        emulator.client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument="{}")
        emulator.client("s3").create_bucket(Bucket=bucket)
        credentials = postgres.create_database(database)
        store_database_secret(emulator, config.database.secret_arn, credentials.as_secret_json())
        merge, runner = _create_functions(emulator, config)
        unsharded_junit = _unsharded_run(emulator, runner)
        printed: list[str] = []
        stand_in.register(names.merge_function, merge_invoker(emulator, merge, printed))
        machine = _create_state_machine(emulator, config, runner, merge)
        yield Sandbox(
            config,
            emulator,
            stand_in,
            runner,
            machine,
            unsharded_junit,
            printed,
            credentials.password,
            credentials.username,
        )


def _create_functions(
    emulator: MotoServer, config: StackConfig
) -> tuple[DeployedFunction, DeployedFunction]:
    """The merge and report functions and the bucket's notification, as the stack deploys
    them; the runner function as ltr finds it. Returns (merge, runner)."""
    names = config.names
    bucket = names.results_bucket
    lambda_client = emulator.client("lambda")
    merge = _zip_function(
        lambda_client,
        config,
        names.merge_function,
        SHARD_MERGE_HANDLER,
        shard_merge_environment(config),
    )
    report = _zip_function(
        lambda_client,
        config,
        names.report_function,
        REPORT_PROCESSOR_HANDLER,
        report_processor_environment(config),
    )
    _notify_report_function(emulator, bucket, report.arn)
    # The runner as ltr finds it (get_function_configuration); moto never runs it.
    _zip_function(lambda_client, config, names.runner_function, RUNNER_IMAGE_HANDLER, {})
    runner = DeployedFunction(
        names.runner_function,
        _arn(config, names.runner_function),
        runner_environment(config, bucket),
        config.runner.timeout_seconds,
        config.runner.memory_mb,
        "Image",
        RUNNER_IMAGE_HANDLER,
    )
    return merge, runner


def _notify_report_function(emulator: MotoServer, bucket: str, report_arn: str) -> None:
    # The bucket's notification as modules/reporting.py deploys it.
    rules = [{"Name": "prefix", "Value": "runs/"}, {"Name": "suffix", "Value": "junit.xml"}]
    emulator.client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "Id": "junit-to-report-processor",
                    "LambdaFunctionArn": report_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": rules}},
                }
            ]
        },
    )


def _unsharded_run(emulator: MotoServer, runner: DeployedFunction) -> Path:
    """The unsharded run of the same suite: the oracle the merged run is compared with. The
    real runner without a bucket keeps its files locally."""
    unbucketed = dataclasses.replace(
        runner, environment={k: v for k, v in runner.environment.items() if k != RESULTS_BUCKET}
    )
    response = invoke_runner(
        emulator, unbucketed, {"command": "test", "args": []}, LocalRunnerSettings()
    )
    unsharded_junit = Path(response["local_results"]) / "junit.xml"
    if not unsharded_junit.is_file():
        raise RuntimeError(f"the unsharded run left no junit.xml: {response}")
    return unsharded_junit


def _create_state_machine(
    emulator: MotoServer, config: StackConfig, runner: DeployedFunction, merge: DeployedFunction
) -> str:
    definition = state_machine_definition(
        runner_function_arn=runner.arn,
        merge_function_arn=merge.arn,
        bucket=config.names.results_bucket,
        max_concurrency=config.runner.shard_concurrency,
    )
    return emulator.client("stepfunctions").create_state_machine(
        name=config.names.state_machine,
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
    )["stateMachineArn"]
