"""The stack's optional customer-managed KMS key (`encryption.customer_managed_key`).

One symmetric key, rotated yearly, for the data this stack stores: the three log groups, both
functions' environment, the alerts and run notification topics, the failure queues and the
results bucket. The ECR
repository keeps the AWS-managed key: a repository's encryption cannot change after creation, so
switching the flag on later would replace the repository and its images.

The key policy lets exactly these use the key:
- the account root, for administration only (no encrypt/decrypt);
- CloudWatch Logs, for this stack's log groups (encryption-context condition);
- CloudWatch alarms of this stack, publishing to the encrypted alerts topic, and EventBridge rules
  of this stack, sending undeliverable scheduled events to the encrypted schedule-failures queue
  (both bound to this account and to this stack's alarm/rule names: aws:SourceAccount and
  aws:SourceArn close the confused-deputy gap);
- principals of this account *through* Lambda, S3, SQS and SNS only (kms:ViaService), which still
  need an IAM permission on the key: the roles of this stack get one, scoped to the key and
  service (SNS: the report processor publishing to the encrypted run notification topic).
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from modules.config import StackConfig
from modules.iam import Statement

DELETION_WINDOW_DAYS = 30

# Key administration by the account (through IAM policies); deliberately no crypto operations.
ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]
LOGS_ACTIONS = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
]
DATA_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
# Services this stack's principals may use the key through (Lambda encrypts the environment
# with the deployer's credentials and creates a grant; S3, SQS and SNS use data keys).
VIA_SERVICES = ("lambda", "s3", "sqs", "sns")
VIA_SERVICE_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]


def via_service(config: StackConfig, service: str) -> str:
    return f"{service}.{config.region}.amazonaws.com"


def from_this_stack(account: str, source_arn: str) -> dict[str, dict[str, str]]:
    """A service principal acts for this account and this stack's resources only."""
    return {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": source_arn},
    }


class StackKey(Construct):
    def __init__(self, scope: Construct, id_: str, config: StackConfig, *, account_id: str) -> None:
        super().__init__(scope, id_)
        self.config = config
        self.log_group_arns = _log_group_arns(config, account_id)
        self.policy = _key_policy(config, account_id, self.log_group_arns)
        self.key = KmsKey(
            self,
            "key",
            description=f"Lambda Test Runner {config.project}/{config.environment}: logs, "
            "function environment, topics, failure queues, results bucket",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=json.dumps(self.policy),
        )
        KmsAlias(self, "alias", name=config.names.kms_alias, target_key_id=self.key.key_id)
        self.arn = self.key.arn

    def use_statement(self, sid: str, services: tuple[str, ...]) -> Statement:
        """IAM permission for a role of this stack: data keys on this key, only through
        `services` (e.g. ("s3",) for results, ("lambda", "sqs") for env and failures)."""
        return Statement(
            sid=sid,
            actions=list(DATA_KEY_ACTIONS),
            resources=[self.arn],
            conditions=[
                (
                    "StringEquals",
                    "kms:ViaService",
                    [via_service(self.config, service) for service in services],
                )
            ],
        )


def _log_group_arns(config: StackConfig, account: str) -> list[str]:
    names = config.names
    log_groups = [
        names.runner_log_group,
        names.report_log_group,
        names.merge_log_group,
        names.state_machine_log_group,
    ]
    if config.fargate.enabled:
        log_groups.append(names.task_log_group)
    return [
        f"arn:{config.partition}:logs:{config.region}:{account}:log-group:{group}"
        for group in log_groups
    ]


def _key_policy(config: StackConfig, account: str, log_group_arns: list[str]) -> dict:
    root = f"arn:{config.partition}:iam::{account}:root"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": ADMIN_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsForThisStacksLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{config.region}.amazonaws.com"},
                "Action": LOGS_ACTIONS,
                "Resource": "*",
                "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arns}},
            },
            *_stack_resource_statements(config, account),
            *_account_principal_statements(config, account, root),
        ],
    }


def _stack_resource_statements(config: StackConfig, account: str) -> list[dict]:
    """Alarms and rules of this stack, publishing and queueing to its encrypted topic and queue."""
    partition, region, prefix = config.partition, config.region, config.names.prefix
    return [
        {
            "Sid": "CloudWatchAlarmsPublishToTheEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": DATA_KEY_ACTIONS,
            "Resource": "*",
            "Condition": from_this_stack(
                account, f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{prefix}-*"
            ),
        },
        {
            "Sid": "EventBridgeRulesQueueUndeliveredEvents",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": DATA_KEY_ACTIONS,
            "Resource": "*",
            "Condition": from_this_stack(
                account, f"arn:{partition}:events:{region}:{account}:rule/{prefix}-*"
            ),
        },
    ]


def _account_principal_statements(config: StackConfig, account: str, root: str) -> list[dict]:
    """Principals of this account, through the stack's services only."""
    return [
        {
            "Sid": "AccountPrincipalsThroughLambdaS3SqsSns",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": VIA_SERVICE_ACTIONS,
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": account,
                    "kms:ViaService": [via_service(config, s) for s in VIA_SERVICES],
                }
            },
        },
        {
            "Sid": "LambdaGrantsForFunctionEnvironment",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": ["kms:CreateGrant"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": account,
                    "kms:ViaService": via_service(config, "lambda"),
                },
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        },
    ]
