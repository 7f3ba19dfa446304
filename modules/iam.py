"""Small helpers that keep IAM in the constructs readable: policy statements as plain data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import DataAwsIamPolicyDocument
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: list[str]
    resources: list[str]
    # (test, variable, values), e.g. ("StringEquals", "cloudwatch:namespace", ["X"])
    conditions: list[tuple[str, str, list[str]]] = field(default_factory=list)


def policy_document(scope: Construct, id_: str, statements: list[Statement]) -> str:
    """Render statements through aws_iam_policy_document (so scanners see them); returns JSON."""
    document = DataAwsIamPolicyDocument(
        scope,
        id_,
        statement=[
            {
                "sid": statement.sid,
                "effect": "Allow",
                "actions": statement.actions,
                "resources": statement.resources,
                "condition": [
                    {"test": test, "variable": variable, "values": values}
                    for test, variable, values in statement.conditions
                ],
            }
            for statement in statements
        ],
    )
    return document.json


def service_role(
    scope: Construct,
    id_: str,
    *,
    name: str,
    service: str,
    description: str,
    statements: list[Statement],
) -> tuple[IamRole, IamRolePolicy]:
    """A role assumable only by one AWS service, with one inline least-privilege policy.

    The policy is returned too: resources that AWS validates against the role's permissions at
    creation time (async destinations, for one) must depend on it.
    """
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = IamRole(
        scope,
        id_,
        name=name,
        description=description,
        assume_role_policy=json.dumps(trust),
    )
    policy = IamRolePolicy(
        scope,
        f"{id_}_policy",
        name=f"{name}-least-privilege",
        role=role.id,
        policy=policy_document(scope, f"{id_}_policy_document", statements),
    )
    return role, policy


def log_stream_statement(sid: str, log_group_arn: str) -> Statement:
    """Write to one log group only (the group itself is created by the stack, not the function)."""
    return Statement(
        sid=sid,
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[f"{log_group_arn}:*"],
    )


XRAY_STATEMENT = Statement(
    sid="XRayTracing",
    # X-Ray has no resource-level permissions: AWS requires "*".
    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    resources=["*"],
)
