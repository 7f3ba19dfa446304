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
        names = config.names
        account = account_id
        partition = config.partition
        region = config.region
        root = f"arn:{partition}:iam::{account}:root"
        log_groups = [
            names.runner_log_group,
            names.report_log_group,
            names.merge_log_group,
            names.state_machine_log_group,
        ]
        if config.fargate.enabled:
            log_groups.append(names.task_log_group)
        self.log_group_arns = [
            f"arn:{partition}:logs:{region}:{account}:log-group:{group}" for group in log_groups
        ]
        self.policy = {
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
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    "Action": LOGS_ACTIONS,
                    "Resource": "*",
                    "Condition": {
                        "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": self.log_group_arns}
                    },
                },
                {
                    "Sid": "CloudWatchAlarmsPublishToTheEncryptedTopic",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": DATA_KEY_ACTIONS,
                    "Resource": "*",
                    "Condition": from_this_stack(
                        account,
                        f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{names.prefix}-*",
                    ),
                },
                {
                    "Sid": "EventBridgeRulesQueueUndeliveredEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": DATA_KEY_ACTIONS,
                    "Resource": "*",
                    "Condition": from_this_stack(
                        account, f"arn:{partition}:events:{region}:{account}:rule/{names.prefix}-*"
                    ),
                },
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
            ],
        }
        self.key = KmsKey(
            self,
            "key",
            description=f"Lambda Test Runner {config.project}/{config.environment}: logs, "
            "function environment, topics, failure queues, results bucket",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=json.dumps(self.policy),
        )
        KmsAlias(self, "alias", name=names.kms_alias, target_key_id=self.key.key_id)
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
