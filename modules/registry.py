"""ECR repository for the runner image: immutable tags, scan on push, KMS, bounded history."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
)
from constructs import Construct

from modules.config import StackConfig


class RunnerRepository(Construct):
    def __init__(self, scope: Construct, id_: str, config: StackConfig) -> None:
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
        keep = config.retention.keep_images
        EcrLifecyclePolicy(
            self,
            "lifecycle",
            repository=self.repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {keep} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": keep,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
        )
        self.repository_url = self.repository.repository_url
        self.repository_arn = self.repository.arn
        self.image_uri = f"{self.repository.repository_url}{config.image.reference}"
