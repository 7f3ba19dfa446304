"""The results bucket: private, encrypted, versioned, TLS-only, expiring old runs.

Layout (runner_image/runner/layout.py): the runner writes `runs/` and `docs/latest/`, the report
processor writes `reports/` and `history/` (`ltr quarantine` writes the quarantine lists under
`history/`). The ObjectCreated notification lives in reporting.py next to its function.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA
from constructs import Construct
from runner.layout import DOCS_PREFIX, HISTORY_PREFIX, REPORTS_PREFIX, RUNS_PREFIX, command_slug

from modules.config import StackConfig
from modules.encryption import StackKey
from modules.iam import Statement
from report_processor.history.keys import HistoryScope


class ResultsStorage(Construct):
    """The results bucket as deployed, with its policies and lifecycle (ltr reads it through
    ltr.aws.ResultsReader, the report processor through its own client)."""

    def __init__(
        self, scope: Construct, id_: str, config: StackConfig, *, key: StackKey | None = None
    ) -> None:
        super().__init__(scope, id_)
        self.bucket = S3Bucket(self, "bucket", bucket=config.names.results_bucket)
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn

        self.public_access_block = self._block_public_access()
        self._encrypt(key)
        S3BucketVersioningA(
            self,
            "versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
        )
        self._deny_plain_http()
        S3BucketLifecycleConfiguration(
            self, "lifecycle", bucket=self.bucket.id, rule=_lifecycle_rules(config)
        )

    def _block_public_access(self) -> S3BucketPublicAccessBlock:
        public_access_block = S3BucketPublicAccessBlock(
            self,
            "public_access_block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
        )
        return public_access_block

    def _encrypt(self, key: StackKey | None) -> None:
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    # The stack's customer-managed key when configured, else the AWS-managed key
                    # (no key policy to maintain). Bucket keys cut KMS calls either way.
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="aws:kms",
                            kms_master_key_id=key.arn if key else None,
                        )
                    ),
                    bucket_key_enabled=True,
                )
            ],
        )

    def _deny_plain_http(self) -> None:
        S3BucketPolicy(
            self,
            "tls_only",
            bucket=self.bucket.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                self.bucket.arn,
                                f"{self.bucket.arn}/*",
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            ),
            # S3 rejects a bucket policy while the public access block is being applied.
            depends_on=[self.public_access_block],
        )

    def objects_arn(self, prefix: str) -> str:
        return f"{self.bucket.arn}/{prefix}*"

    def list_statement(self) -> Statement:
        """For readers that probe keys: without s3:ListBucket a missing object reads as 403
        AccessDenied instead of 404."""
        return Statement(
            sid="ListResultsBucket", actions=["s3:ListBucket"], resources=[self.bucket_arn]
        )


def history_slugs(config: StackConfig) -> list[str]:
    """The command folders the report processor writes history under: the runner's slug of
    each allowlisted command (the only commands the runner runs)."""
    return sorted({command_slug(command) for command in config.runner.commands})


def history_prefix(config: StackConfig, slug: str) -> str:
    """history/<project>/<environment>/<slug>/, built by the history library's own key rule."""
    return HistoryScope(config.project, config.environment, slug).prefix


def _lifecycle_rules(config: StackConfig) -> list[S3BucketLifecycleConfigurationRule]:
    retention = config.retention
    noncurrent = [
        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
            noncurrent_days=retention.noncurrent_version_days
        )
    ]
    return [
        *_expiry_rules(config, noncurrent),
        *_replaced_version_rules(noncurrent),
        _abort_incomplete_uploads_rule(),
    ]


def _expiry_rules(
    config: StackConfig,
    noncurrent: list[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration],
) -> list[S3BucketLifecycleConfigurationRule]:
    # The run history of each command follows the same retention: a run's history objects
    # expire with its results (the history skips index entries whose objects are gone;
    # index.json is rewritten by every run). One rule per command prefix, not one for
    # history/: the environment's quarantine list (history/<project>/<environment>/
    # quarantine.json) is what people decided, not a result, and must outlive a short
    # retention while its entries (up to 30 days) are active.
    dated_prefixes = {"runs": RUNS_PREFIX, "reports": REPORTS_PREFIX} | {
        f"history-{slug}": history_prefix(config, slug) for slug in history_slugs(config)
    }
    return [
        S3BucketLifecycleConfigurationRule(
            id=f"expire-old-{name}",
            status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=prefix)],
            expiration=[
                S3BucketLifecycleConfigurationRuleExpiration(days=config.retention.results_days)
            ],
            noncurrent_version_expiration=noncurrent,
        )
        for name, prefix in dated_prefixes.items()
    ]


def _replaced_version_rules(
    noncurrent: list[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration],
) -> list[S3BucketLifecycleConfigurationRule]:
    # Replaced versions only: the latest docs and the quarantine list stay.
    return [
        S3BucketLifecycleConfigurationRule(
            id=f"expire-replaced-{name}",
            status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=prefix)],
            noncurrent_version_expiration=noncurrent,
        )
        for name, prefix in (("docs", DOCS_PREFIX), ("history", HISTORY_PREFIX))
    ]


def _abort_incomplete_uploads_rule() -> S3BucketLifecycleConfigurationRule:
    return S3BucketLifecycleConfigurationRule(
        id="abort-incomplete-uploads",
        status="Enabled",
        # An empty prefix applies the rule to the whole bucket.
        filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
        abort_incomplete_multipart_upload=[
            S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                days_after_initiation=1
            )
        ],
    )
