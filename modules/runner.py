"""The runner Lambda: the container image in the private subnets, invoked asynchronously.

Asynchronous invocations are not retried (a test run is not idempotent and is expensive), and a
failed invocation lands in an SQS queue so nothing is lost silently.
"""

from __future__ import annotations

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction
from cdktf_cdktf_provider_aws.lambda_function_event_invoke_config import (
    LambdaFunctionEventInvokeConfig,
)
from constructs import Construct
from runner.layout import DOCS_PREFIX, RUNS_PREFIX

from modules.config import StackConfig
from modules.contract import runner_environment
from modules.encryption import StackKey
from modules.iam import XRAY_STATEMENT, Statement, log_stream_statement, service_role
from modules.operations import failure_queue, log_group, send_failures_statement
from modules.results import ResultsStorage


def runner_data_statements(
    config: StackConfig, results: ResultsStorage, key: StackKey | None = None
) -> list[Statement]:
    """What a run needs, whether on Lambda or Fargate: write results, read the DB secret (and,
    with the stack's key, data keys for the results bucket through S3 only)."""
    statements = [
        Statement(
            sid="WriteRunResultsAndDocs",
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[results.objects_arn(RUNS_PREFIX), results.objects_arn(DOCS_PREFIX)],
        ),
        Statement(
            # The runner refuses a caller-given run id that already has a manifest (HeadObject),
            # rather than overwrite that run's results.
            sid="CheckRunIdNotUsed",
            actions=["s3:GetObject"],
            resources=[results.objects_arn(RUNS_PREFIX)],
        ),
        results.list_statement(),
        Statement(
            sid="ReadDatabaseSecret",
            actions=["secretsmanager:GetSecretValue"],
            resources=[config.database.secret_arn],
        ),
    ]
    if config.database.secret_kms_key_arn:
        statements.append(secret_key_statement(config))
    if key is not None:
        statements.append(key.use_statement("EncryptRunResults", ("s3",)))
    return statements


def secret_key_statement(config: StackConfig) -> Statement:
    """The database secret's customer-managed key, for decrypting that secret through Secrets
    Manager only: the role cannot use the key directly or through any other service."""
    assert config.database.secret_kms_key_arn
    return Statement(
        sid="DecryptDatabaseSecretThroughSecretsManager",
        actions=["kms:Decrypt"],
        resources=[config.database.secret_kms_key_arn],
        conditions=[
            (
                "StringEquals",
                "kms:ViaService",
                [f"secretsmanager.{config.region}.amazonaws.com"],
            )
        ],
    )


def network_interface_statements(config: StackConfig, account_id: str) -> list[Statement]:
    """What Lambda needs, with the function's role, to attach the function to the VPC, scoped to
    the configured VPC (ec2:Vpc) and, where the resource is named, its private subnets.

    The security group is not named by id on purpose: the runner's group must be destroyed
    before this policy (see RunnerNetwork.outlive), so the policy cannot refer to it.
    """
    ec2 = f"arn:{config.partition}:ec2:{config.region}:{account_id}"
    in_vpc = ("ArnEquals", "ec2:Vpc", [f"{ec2}:vpc/{config.vpc.vpc_id}"])
    return [
        Statement(
            sid="DescribeNetworkInterfaces",
            # These Describe calls accept only "*" (AWS Lambda developer guide).
            actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            resources=["*"],
        ),
        Statement(
            sid="CreateNetworkInterfacesInPrivateSubnets",
            actions=["ec2:CreateNetworkInterface"],
            resources=[
                f"{ec2}:network-interface/*",
                f"{ec2}:security-group/*",
                *(f"{ec2}:subnet/{subnet}" for subnet in config.vpc.private_subnet_ids),
            ],
            conditions=[in_vpc],
        ),
        Statement(
            sid="ManageOwnNetworkInterfaces",
            actions=[
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            resources=[f"{ec2}:network-interface/*"],
            conditions=[in_vpc],
        ),
    ]


class RunnerFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        config: StackConfig,
        *,
        image_uri: str,
        image_pull_permission: ITerraformDependable,
        account_id: str,
        security_group_id: str,
        results: ResultsStorage,
        key: StackKey | None = None,
    ) -> None:
        super().__init__(scope, id_)
        names = config.names
        self.log_group = log_group(self, names.runner_log_group, config, key)
        self.dead_letter_queue = failure_queue(self, names.runner_dlq, key)
        self.role, role_policy = service_role(
            self,
            "role",
            name=names.runner_role,
            service="lambda.amazonaws.com",
            description="Lambda Test Runner: run allowlisted artisan commands",
            statements=self._role_statements(config, account_id, results, key),
        )
        self.function = self._function(
            config,
            image_uri=image_uri,
            image_pull_permission=image_pull_permission,
            role_policy=role_policy,
            security_group_id=security_group_id,
            results=results,
            key=key,
        )
        LambdaFunctionEventInvokeConfig(
            self,
            "async",
            function_name=self.function.function_name,
            maximum_retry_attempts=0,
            destination_config={"on_failure": {"destination": self.dead_letter_queue.arn}},
            depends_on=[role_policy],
        )
        self.role_policy = role_policy
        self.function_name = self.function.function_name
        self.function_arn = self.function.arn

    def _role_statements(
        self,
        config: StackConfig,
        account_id: str,
        results: ResultsStorage,
        key: StackKey | None,
    ) -> list[Statement]:
        return [
            log_stream_statement("WriteOwnLogs", self.log_group.arn),
            *runner_data_statements(config, results, key),
            *(
                [key.use_statement("DecryptEnvironmentAndQueueFailures", ("lambda", "sqs"))]
                if key
                else []
            ),
            send_failures_statement(self.dead_letter_queue),
            *network_interface_statements(config, account_id),
            XRAY_STATEMENT,
        ]

    def _function(
        self,
        config: StackConfig,
        *,
        image_uri: str,
        image_pull_permission: ITerraformDependable,
        role_policy: IamRolePolicy,
        security_group_id: str,
        results: ResultsStorage,
        key: StackKey | None,
    ) -> LambdaFunction:
        runner = config.runner
        return LambdaFunction(
            self,
            "function",
            function_name=config.names.runner_function,
            description="Runs allowlisted artisan commands (tests, docs) and stores results in S3",
            role=self.role.arn,
            package_type="Image",
            image_uri=image_uri,
            memory_size=runner.memory_mb,
            timeout=runner.timeout_seconds,
            ephemeral_storage={"size": runner.ephemeral_storage_mb},
            reserved_concurrent_executions=runner.reserved_concurrency,
            environment={"variables": runner_environment(config, results.bucket_name)},
            kms_key_arn=key.arn if key else None,
            vpc_config={
                "subnet_ids": list(config.vpc.private_subnet_ids),
                "security_group_ids": [security_group_id],
            },
            tracing_config={"mode": "Active"},
            # The log group must exist first (or Lambda creates one that never expires), and the
            # policy too: creating a VPC function checks the role may create network interfaces.
            # So must the repository policy letting Lambda pull the image (a least-privilege
            # deployer cannot let Lambda add it).
            depends_on=[self.log_group, role_policy, image_pull_permission],
        )
