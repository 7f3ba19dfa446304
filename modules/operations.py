"""What every compute part of the stack has alike: a log group with the configured retention and a
queue for failed asynchronous invocations, both under the stack's key when there is one."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct

from modules.config import StackConfig
from modules.encryption import StackKey
from modules.iam import Statement

# SQS's maximum: a failed nightly run stays inspectable for two weeks.
FOURTEEN_DAYS = 14 * 24 * 3600


def log_group(
    scope: Construct, name: str, config: StackConfig, key: StackKey | None
) -> CloudwatchLogGroup:
    return CloudwatchLogGroup(
        scope,
        "log_group",
        name=name,
        retention_in_days=config.retention.log_days,
        kms_key_id=key.arn if key else None,
    )


def failure_queue(scope: Construct, name: str, key: StackKey | None) -> SqsQueue:
    """The on-failure destination of a function's asynchronous invocations."""
    return SqsQueue(
        scope,
        "failures",
        name=name,
        message_retention_seconds=FOURTEEN_DAYS,
        # The stack's key when there is one, else SQS-managed server-side encryption.
        kms_master_key_id=key.arn if key else None,
        sqs_managed_sse_enabled=None if key else True,
    )


def send_failures_statement(queue: SqsQueue) -> Statement:
    """Lets a function's asynchronous-invocation failures reach its failure queue."""
    return Statement(
        sid="ReportFailedInvocations", actions=["sqs:SendMessage"], resources=[queue.arn]
    )
