"""The Fargate path for runs longer than Lambda's 15 minutes: same image, same network.

The task runs the runner's command-line entry (`/var/lang/bin/python3.12 -m runner run
COMMAND ARGS...`) instead of the Lambda runtime interface client that the image's default
entrypoint starts. No init process: the runner is PID 1, reaps its children itself and handles
ECS's SIGTERM, and no other process in the container can read PID 1's environment.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.ecs_cluster import EcsCluster
from cdktf_cdktf_provider_aws.ecs_task_definition import EcsTaskDefinition
from cdktf_cdktf_provider_aws.iam_role import IamRole
from constructs import Construct

from modules.config import StackConfig
from modules.contract import FARGATE_ENTRY_POINT, runner_environment
from modules.encryption import StackKey
from modules.iam import Statement, log_stream_statement, service_role
from modules.operations import log_group
from modules.results import ResultsStorage
from modules.runner import runner_data_statements

DEFAULT_COMMAND = ["run", "test"]
SCRATCH_VOLUME = "scratch"


class FargateRunner(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        config: StackConfig,
        *,
        image_uri: str,
        repository_arn: str,
        results: ResultsStorage,
        key: StackKey | None = None,
    ) -> None:
        super().__init__(scope, id_)
        names = config.names
        self.log_group = log_group(self, names.task_log_group, config, key)
        self.execution_role = self._execution_role(config, repository_arn)
        self.task_role, _ = service_role(
            self,
            "task_role",
            name=names.task_role,
            service="ecs-tasks.amazonaws.com",
            description="Lambda Test Runner: long runs on Fargate",
            statements=runner_data_statements(config, results, key),
        )
        self.cluster = EcsCluster(
            self,
            "cluster",
            name=names.cluster,
            setting=[{"name": "containerInsights", "value": "enabled"}],
        )
        self.task_definition = self._task_definition(config, image_uri, results)
        self.events_role = self._events_role(config)

    def _execution_role(self, config: StackConfig, repository_arn: str) -> IamRole:
        role, _ = service_role(
            self,
            "execution_role",
            name=config.names.task_execution_role,
            service="ecs-tasks.amazonaws.com",
            description="Lambda Test Runner: pull the runner image and ship task logs",
            statements=[
                Statement(
                    sid="GetRegistryToken",
                    # The registry login token is account-wide: AWS requires "*".
                    actions=["ecr:GetAuthorizationToken"],
                    resources=["*"],
                ),
                Statement(
                    sid="PullRunnerImage",
                    actions=[
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                    ],
                    resources=[repository_arn],
                ),
                log_stream_statement("WriteTaskLogs", self.log_group.arn),
            ],
        )
        return role

    def _task_definition(
        self, config: StackConfig, image_uri: str, results: ResultsStorage
    ) -> EcsTaskDefinition:
        settings = config.fargate
        container = _container(config, image_uri, results.bucket_name, self.log_group.name)
        return EcsTaskDefinition(
            self,
            "task",
            family=config.names.task_family,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(settings.cpu),
            memory=str(settings.memory_mb),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            volume=[{"name": SCRATCH_VOLUME}],
            container_definitions=json.dumps([container]),
        )

    def _events_role(self, config: StackConfig) -> IamRole:
        role, _ = service_role(
            self,
            "events_role",
            name=config.names.events_role,
            service="events.amazonaws.com",
            description="Lambda Test Runner: scheduled long runs on Fargate",
            statements=[
                Statement(
                    sid="RunRunnerTask",
                    actions=["ecs:RunTask"],
                    resources=[
                        self.task_definition.arn_without_revision,
                        f"{self.task_definition.arn_without_revision}:*",
                    ],
                    conditions=[("ArnEquals", "ecs:cluster", [self.cluster.arn])],
                ),
                Statement(
                    sid="PassTaskRoles",
                    actions=["iam:PassRole"],
                    resources=[self.execution_role.arn, self.task_role.arn],
                    conditions=[
                        ("StringEquals", "iam:PassedToService", ["ecs-tasks.amazonaws.com"])
                    ],
                ),
            ],
        )
        return role


def _container(config: StackConfig, image_uri: str, bucket_name: str, log_group_name: str) -> dict:
    """The runner container: the runner's command-line entry, logs to the task's log group."""
    names = config.names
    environment = runner_environment(config, bucket_name)
    return {
        "name": names.container,
        "image": image_uri,
        "essential": True,
        "entryPoint": list(FARGATE_ENTRY_POINT),
        "command": DEFAULT_COMMAND,
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        # As on Lambda, only /tmp is writable.
        "readonlyRootFilesystem": True,
        "mountPoints": [
            {"sourceVolume": SCRATCH_VOLUME, "containerPath": "/tmp", "readOnly": False}  # noqa: S108
        ],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group_name,
                "awslogs-region": config.region,
                "awslogs-stream-prefix": names.container,
            },
        },
    }
