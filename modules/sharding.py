"""Sharded runs (issue 13): the state machine that plans, fans out over runner invocations and
merges, plus the merge function it calls.

The definition comes from modules/shard_flow.py (pure, shared with the emulator tests and the
demo). IAM is least privilege: the state machine may invoke exactly the runner and the merge
function; the merge function reads runs/ and writes only a run's manifest.json and junit.xml;
the runner gets no Step Functions permission at all (it cannot start executions). Schedules
with `shards` start executions through their own role (modules/schedule.py).
"""

from __future__ import annotations

import json

from cdktf import TerraformAsset
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction
from cdktf_cdktf_provider_aws.sfn_state_machine import SfnStateMachine
from constructs import Construct
from runner.layout import JUNIT, MANIFEST, RUNS_PREFIX

from modules.config import StackConfig
from modules.contract import (
    REPORT_PROCESSOR_RUNTIME,
    SHARD_MERGE_HANDLER,
    shard_merge_environment,
)
from modules.encryption import StackKey
from modules.iam import XRAY_STATEMENT, Statement, log_stream_statement, service_role
from modules.operations import log_group
from modules.results import ResultsStorage
from modules.shard_flow import state_machine_definition

# Merging reads every shard and writes one report: more than a summary needs, far below 15 min.
MERGE_TIMEOUT_SECONDS = 300
MERGE_MEMORY_MB = 512
# Step Functions delivers its logs through CloudWatch Logs' vended-log deliveries, whose API
# has no resource-level permissions (AWS requires "*" for these actions).
LOG_DELIVERY_ACTIONS = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
]
XRAY_SAMPLING_ACTIONS = ["xray:GetSamplingRules", "xray:GetSamplingTargets"]


class ShardedRuns(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        config: StackConfig,
        *,
        runner_function_arn: str,
        results: ResultsStorage,
        bundle: TerraformAsset,
        key: StackKey | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.merge_function = self._merge_function(config, results, bundle, key)
        self.state_machine = self._state_machine(config, runner_function_arn, results, key)
        self.state_machine_arn = self.state_machine.arn
        self.merge_function_name = self.merge_function.function_name

    def _merge_function(
        self,
        config: StackConfig,
        results: ResultsStorage,
        bundle: TerraformAsset,
        key: StackKey | None,
    ) -> LambdaFunction:
        names = config.names
        merge_logs = log_group(Construct(self, "merge_logs"), names.merge_log_group, config, key)
        self.merge_role, merge_policy = service_role(
            self,
            "merge_role",
            name=names.merge_role,
            service="lambda.amazonaws.com",
            description="Lambda Test Runner: merge the shards of a sharded run",
            statements=_merge_statements(merge_logs.arn, results, key),
        )
        return LambdaFunction(
            self,
            "merge",
            function_name=names.merge_function,
            description="Merges the shards of a sharded test run into the run's report",
            role=self.merge_role.arn,
            runtime=REPORT_PROCESSOR_RUNTIME,
            handler=SHARD_MERGE_HANDLER,
            filename=bundle.path,
            source_code_hash=bundle.asset_hash,
            memory_size=MERGE_MEMORY_MB,
            timeout=MERGE_TIMEOUT_SECONDS,
            environment={"variables": shard_merge_environment(config)},
            kms_key_arn=key.arn if key else None,
            tracing_config={"mode": "Active"},
            depends_on=[merge_logs, merge_policy],
        )

    def _state_machine(
        self,
        config: StackConfig,
        runner_function_arn: str,
        results: ResultsStorage,
        key: StackKey | None,
    ) -> SfnStateMachine:
        names = config.names
        machine_logs = log_group(
            Construct(self, "machine_logs"), names.state_machine_log_group, config, key
        )
        self.role, role_policy = service_role(
            self,
            "role",
            name=names.state_machine_role,
            service="states.amazonaws.com",
            description="Lambda Test Runner: run a sharded test run",
            statements=_state_machine_statements(runner_function_arn, self.merge_function.arn),
        )
        definition = state_machine_definition(
            runner_function_arn=runner_function_arn,
            merge_function_arn=self.merge_function.arn,
            bucket=results.bucket_name,
            max_concurrency=config.runner.shard_concurrency,
        )
        return SfnStateMachine(
            self,
            "state_machine",
            name=names.state_machine,
            role_arn=self.role.arn,
            definition=json.dumps(definition),
            type="STANDARD",
            logging_configuration={
                "log_destination": f"{machine_logs.arn}:*",
                "include_execution_data": True,
                "level": "ALL",
            },
            tracing_configuration={"enabled": True},
            depends_on=[role_policy],
        )


def _merge_statements(
    log_group_arn: str, results: ResultsStorage, key: StackKey | None
) -> list[Statement]:
    return [
        log_stream_statement("WriteOwnLogs", log_group_arn),
        Statement(
            sid="ReadPlansAndShards",
            actions=["s3:GetObject"],
            resources=[results.objects_arn(RUNS_PREFIX)],
        ),
        Statement(
            # Only a run's own manifest.json and junit.xml: never docs, never reports.
            sid="WriteRunManifestAndReport",
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[
                f"{results.bucket_arn}/{RUNS_PREFIX}*/{MANIFEST}",
                f"{results.bucket_arn}/{RUNS_PREFIX}*/{JUNIT}",
            ],
        ),
        results.list_statement(),  # a shard that left no file must read as 404
        *(
            [
                key.use_statement("EncryptResults", ("s3",)),
                key.use_statement("DecryptEnvironment", ("lambda",)),
            ]
            if key
            else []
        ),
        XRAY_STATEMENT,
    ]


def _state_machine_statements(runner_function_arn: str, merge_function_arn: str) -> list[Statement]:
    return [
        Statement(
            sid="InvokeRunnerAndMergeOnly",
            actions=["lambda:InvokeFunction"],
            resources=[runner_function_arn, merge_function_arn],
        ),
        Statement(sid="DeliverExecutionLogs", actions=LOG_DELIVERY_ACTIONS, resources=["*"]),
        Statement(
            sid="XRayTracing",
            # X-Ray has no resource-level permissions: AWS requires "*".
            actions=[*XRAY_STATEMENT.actions, *XRAY_SAMPLING_ACTIONS],
            resources=["*"],
        ),
    ]
