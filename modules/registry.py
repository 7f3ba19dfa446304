"""ECR repository for the runner image: immutable tags, scan on push, KMS, Lambda pull policy.

Lifecycle: untagged images (superseded pushes) expire after `retention.untagged_image_days`;
images tagged with one of `retention.ci_tag_prefixes` expire beyond the newest
`retention.keep_images`; every other tag is a release and is never expired, so a frequent CI
cannot expire the image a function still runs.
"""

from __future__ import annotations

import json
from typing import Any

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
)
from cdktf_cdktf_provider_aws.ecr_repository_policy import EcrRepositoryPolicy
from constructs import Construct

from modules.config import RetentionConfig, StackConfig

# What Lambda needs to pull an image-package function's image (AWS Lambda developer guide).
LAMBDA_PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def lifecycle_rules(retention: RetentionConfig) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    if retention.ci_tag_prefixes:
        rules.append(
            {
                "description": f"keep the newest {retention.keep_images} CI-tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": list(retention.ci_tag_prefixes),
                    "countType": "imageCountMoreThan",
                    "countNumber": retention.keep_images,
                },
            }
        )
    rules.append(
        {
            "description": f"expire untagged images after {retention.untagged_image_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": retention.untagged_image_days,
            },
        }
    )
    return [
        {"rulePriority": priority, **rule, "action": {"type": "expire"}}
        for priority, rule in enumerate(rules, start=1)
    ]


def lambda_pull_policy(config: StackConfig, account_id: str) -> dict[str, Any]:
    """Lambda may pull for this stack's image functions only (aws:sourceArn), so the deployer
    needs no ecr:SetRepositoryPolicy for Lambda to add this itself."""
    function = (
        f"arn:{config.partition}:lambda:{config.region}:{account_id}:function:"
        f"{config.names.runner_function}"
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LambdaPullsForThisStacksFunctions",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": LAMBDA_PULL_ACTIONS,
                "Condition": {"StringLike": {"aws:sourceArn": [function, f"{function}:*"]}},
            }
        ],
    }


class RunnerRepository(Construct):
    def __init__(self, scope: Construct, id_: str, config: StackConfig, *, account_id: str) -> None:
        super().__init__(scope, id_)
        self.repository = EcrRepository(
            self,
            "repository",
            name=config.names.repository,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            # KMS with the AWS-managed key: encrypted at rest at no key cost.
            encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS")],
            force_delete=False,
        )
        EcrLifecyclePolicy(
            self,
            "lifecycle",
            repository=self.repository.name,
            policy=json.dumps({"rules": lifecycle_rules(config.retention)}),
        )
        self.lambda_pull = EcrRepositoryPolicy(
            self,
            "lambda_pull",
            repository=self.repository.name,
            policy=json.dumps(lambda_pull_policy(config, account_id)),
        )
        self.repository_url = self.repository.repository_url
        self.repository_arn = self.repository.arn
        self.image_uri = f"{self.repository.repository_url}{config.image.reference}"
