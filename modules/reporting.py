"""The report processor: a zip Lambda triggered by JUnit XML landing under `runs/`.

It reads the run's objects, writes summaries under `reports/` and the run history under
`history/` (never under the prefix that triggers it, so it cannot trigger itself), emits metrics
as Embedded Metric Format log lines, so it needs no CloudWatch API permission, and publishes one
message per changed run to the run notification topic.
"""

from __future__ import annotations

from pathlib import Path

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function import LambdaFunction
from cdktf_cdktf_provider_aws.lambda_function_event_invoke_config import (
    LambdaFunctionEventInvokeConfig,
)
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.s3_bucket_notification import (
    S3BucketNotification,
    S3BucketNotificationLambdaFunction,
)
from constructs import Construct
from runner.layout import HISTORY_PREFIX, JUNIT, REPORTS_PREFIX, RUNS_PREFIX

from modules.config import StackConfig
from modules.contract import (
    REPORT_PROCESSOR_HANDLER,
    REPORT_PROCESSOR_RUNTIME,
    report_processor_environment,
)
from modules.encryption import StackKey
from modules.iam import XRAY_STATEMENT, Statement, log_stream_statement, service_role
from modules.notifications import RunNotifications
from modules.operations import failure_queue, log_group, send_failures_statement
from modules.results import ResultsStorage

# Only `runs/<date>/<run_id>/<slug>/junit.xml` (and shard files named `*junit.xml`) drive
# reports: any other `.xml` under runs/ (generated docs, a sitemap) must not.
JUNIT_SUFFIX = JUNIT


class ReportProcessor(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        config: StackConfig,
        *,
        results: ResultsStorage,
        notifications: RunNotifications,
        bundle_dir: Path,
        account_id: str,
        key: StackKey | None = None,
    ) -> None:
        super().__init__(scope, id_)
        names = config.names
        self.bundle = TerraformAsset(self, "bundle", path=str(bundle_dir), type=AssetType.ARCHIVE)
        self.log_group = log_group(self, names.report_log_group, config, key)
        self.dead_letter_queue = failure_queue(self, names.report_dlq, key)
        self.role, role_policy = service_role(
            self,
            "role",
            name=names.report_role,
            service="lambda.amazonaws.com",
            description="Lambda Test Runner: summarize JUnit results",
            statements=self._role_statements(results, notifications, key),
        )
        self.function = self._function(config, notifications, role_policy, key)
        LambdaFunctionEventInvokeConfig(
            self,
            "async",
            function_name=self.function.function_name,
            maximum_retry_attempts=2,
            destination_config={"on_failure": {"destination": self.dead_letter_queue.arn}},
            depends_on=[role_policy],
        )
        self.permission, self.notification = self._trigger_on_junit(results, account_id)
        self.function_name = self.function.function_name

    def _role_statements(
        self,
        results: ResultsStorage,
        notifications: RunNotifications,
        key: StackKey | None,
    ) -> list[Statement]:
        return [
            log_stream_statement("WriteOwnLogs", self.log_group.arn),
            Statement(
                sid="ReadRunResults",
                actions=["s3:GetObject"],
                resources=[results.objects_arn(RUNS_PREFIX)],
            ),
            Statement(
                sid="WriteAndReadReports",
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[results.objects_arn(REPORTS_PREFIX)],
            ),
            # The run history (report_processor/history/): rows, digests and run records
            # (multipart above 8 MiB, hence AbortMultipartUpload), the index and the
            # quarantine list (conditional writes are PutObject too).
            Statement(
                sid="ReadAndWriteHistory",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[results.objects_arn(HISTORY_PREFIX)],
            ),
            # Unconditioned on purpose: a missing manifest.json or history index must read
            # as 404, and S3 answers 404 instead of 403 only to a caller allowed to list the
            # bucket without a prefix condition (a GetObject carries no s3:prefix). The
            # history index is rebuilt by listing history/…/runs/.
            results.list_statement(),
            notifications.publish_statement(),
            send_failures_statement(self.dead_letter_queue),
            *(
                [
                    key.use_statement("EncryptResultsAndReports", ("s3",)),
                    key.use_statement("PublishEncryptedNotifications", ("sns",)),
                    key.use_statement("DecryptEnvironmentAndQueueFailures", ("lambda", "sqs")),
                ]
                if key
                else []
            ),
            XRAY_STATEMENT,
        ]

    def _function(
        self,
        config: StackConfig,
        notifications: RunNotifications,
        role_policy: IamRolePolicy,
        key: StackKey | None,
    ) -> LambdaFunction:
        settings = config.report_processor
        return LambdaFunction(
            self,
            "function",
            function_name=config.names.report_function,
            description="Summarizes JUnit XML from test runs into markdown, JSON and metrics",
            role=self.role.arn,
            runtime=REPORT_PROCESSOR_RUNTIME,
            handler=REPORT_PROCESSOR_HANDLER,
            filename=self.bundle.path,
            source_code_hash=self.bundle.asset_hash,
            memory_size=settings.memory_mb,
            timeout=settings.timeout_seconds,
            reserved_concurrent_executions=settings.reserved_concurrency,
            environment={
                "variables": report_processor_environment(config, notifications.topic_arn)
            },
            kms_key_arn=key.arn if key else None,
            tracing_config={"mode": "Active"},
            depends_on=[self.log_group, role_policy],
        )

    def _trigger_on_junit(
        self, results: ResultsStorage, account_id: str
    ) -> tuple[LambdaPermission, S3BucketNotification]:
        """The results bucket invokes the function for each JUnit file under runs/."""
        permission = LambdaPermission(
            self,
            "allow_bucket",
            statement_id="AllowResultsBucketNotifications",
            action="lambda:InvokeFunction",
            function_name=self.function.function_name,
            principal="s3.amazonaws.com",
            source_arn=results.bucket_arn,
            # Bucket ARNs carry no account: a bucket of the same name in another account, after
            # this one is deleted, must not invoke the function.
            source_account=account_id,
        )
        notification = S3BucketNotification(
            self,
            "notification",
            bucket=results.bucket.id,
            lambda_function=[
                S3BucketNotificationLambdaFunction(
                    id="junit-to-report-processor",
                    lambda_function_arn=self.function.arn,
                    events=["s3:ObjectCreated:*"],
                    filter_prefix=RUNS_PREFIX,
                    filter_suffix=JUNIT_SUFFIX,
                )
            ],
            # S3 test-invokes the target when the notification is saved: permission first.
            depends_on=[permission],
        )
        return permission, notification
