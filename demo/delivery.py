"""Delivery, the part of AWS moto does not play: EventBridge firing the deployed schedules,
S3 sending ObjectCreated notifications to the deployed function, CloudWatch extracting metrics
from Embedded Metric Format log lines.

Every event built here comes from what the emulator says was deployed (rule targets and their
inputs, the bucket's notification configuration), never from the stack's source.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote_plus

from demo.lambda_runtime import ACCOUNT_ID, describe_function, invoke_report_processor
from demo.services import MotoServer

# --------------------------------------------------------------------------- EventBridge


@dataclass(frozen=True)
class ScheduledJob:
    rule: str
    schedule: str
    target_id: str
    target_arn: str
    event: dict

    @property
    def command(self) -> str:
        return str(self.event.get("command", "?"))


def scheduled_jobs(events_client) -> tuple[list[ScheduledJob], list[ScheduledJob]]:
    """(Lambda jobs, other targets) of every enabled scheduled rule, as deployed."""
    lambda_jobs: list[ScheduledJob] = []
    other: list[ScheduledJob] = []
    paginator = events_client.get_paginator("list_rules")
    for page in paginator.paginate():
        for rule in page.get("Rules", []):
            if not rule.get("ScheduleExpression") or rule.get("State") != "ENABLED":
                continue
            targets = events_client.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            for target in sorted(targets, key=lambda t: t["Id"]):
                job = ScheduledJob(
                    rule=rule["Name"],
                    schedule=rule["ScheduleExpression"],
                    target_id=target["Id"],
                    target_arn=target["Arn"],
                    event=_target_event(target, rule),
                )
                is_lambda = ":lambda:" in target["Arn"] and ":function:" in target["Arn"]
                (lambda_jobs if is_lambda else other).append(job)
    return lambda_jobs, other


def _target_event(target: Mapping[str, Any], rule: Mapping[str, Any]) -> dict:
    if "Input" in target:
        return json.loads(target["Input"])
    # Without a constant input EventBridge sends the "Scheduled Event" itself.
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "resources": [rule["Arn"]],
        "detail": {},
    }


def function_name_from_arn(arn: str) -> str:
    # arn:aws:lambda:region:account:function:name[:qualifier]
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


# --------------------------------------------------------------------------- S3 notifications


@dataclass(frozen=True)
class StoredObject:
    key: str
    version_id: str | None
    etag: str
    size: int
    last_modified: datetime


def object_versions(s3, bucket: str) -> dict[tuple[str, str | None], StoredObject]:
    """Every object version in the bucket, so an overwrite counts as a new object."""
    found: dict[tuple[str, str | None], StoredObject] = {}
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Versions", []):
            version = item.get("VersionId")
            version = None if version in (None, "null") else version
            found[(item["Key"], version)] = StoredObject(
                item["Key"], version, item["ETag"], int(item["Size"]), item["LastModified"]
            )
    return found


@dataclass(frozen=True)
class NotificationRule:
    id: str
    function_arn: str
    events: tuple[str, ...]
    prefix: str
    suffix: str

    def matches(self, event_name: str, key: str) -> bool:
        wanted = any(
            pattern == f"s3:{event_name}"
            or (pattern.endswith(":*") and f"s3:{event_name}".startswith(pattern[:-1]))
            for pattern in self.events
        )
        return wanted and key.startswith(self.prefix) and key.endswith(self.suffix)


def notification_rules(s3, bucket: str) -> list[NotificationRule]:
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    rules = []
    for item in config.get("LambdaFunctionConfigurations", []):
        filters = {
            rule["Name"].lower(): rule["Value"]
            for rule in item.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        }
        rules.append(
            NotificationRule(
                id=item.get("Id", ""),
                function_arn=item["LambdaFunctionArn"],
                events=tuple(item.get("Events", [])),
                prefix=filters.get("prefix", ""),
                suffix=filters.get("suffix", ""),
            )
        )
    return rules


def s3_event(rule: NotificationRule, bucket: str, obj: StoredObject, region: str) -> dict:
    """One ObjectCreated:Put notification shaped as S3 sends it (key URL-encoded, '+' for space)."""
    event_time = obj.last_modified.astimezone(UTC)
    object_part: dict[str, Any] = {
        "key": quote_plus(obj.key, safe="/"),
        "size": obj.size,
        "eTag": obj.etag.strip('"'),
        "sequencer": f"{int(event_time.timestamp() * 1_000_000):016X}",
    }
    if obj.version_id:
        object_part["versionId"] = obj.version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": event_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": f"AWS:{ACCOUNT_ID}"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": uuid.uuid4().hex,
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": rule.id,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": ACCOUNT_ID},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": object_part,
                },
            }
        ]
    }


# --------------------------------------------------------------------------- EMF metrics


@dataclass(frozen=True)
class MetricValue:
    namespace: str
    name: str
    unit: str
    value: float
    dimensions: dict[str, str]


def metrics_from_emf(lines: str) -> list[MetricValue]:
    """Metric values from Embedded Metric Format records, as CloudWatch would extract them."""
    found = []
    for line in lines.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            record = json.loads(line)
            directives = record["_aws"]["CloudWatchMetrics"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        for directive in directives:
            for dimension_set in directive.get("Dimensions", []):
                dimensions = {name: str(record[name]) for name in dimension_set}
                for metric in directive.get("Metrics", []):
                    values = record.get(metric["Name"])
                    for value in values if isinstance(values, list) else [values]:
                        found.append(
                            MetricValue(
                                directive["Namespace"],
                                metric["Name"],
                                metric.get("Unit", "None"),
                                float(value),
                                dimensions,
                            )
                        )
    return found


@dataclass
class Delivery:
    key: str
    function: str
    response: Any
    metrics: list[MetricValue]
    error: str | None = None


class NotificationDelivery:
    """Delivers ObjectCreated notifications for objects that appeared since the last call, to
    the functions the bucket's notification configuration names, until none is left (objects
    the handlers write count too: a processor writing under its own trigger would show here)."""

    MAX_ROUNDS = 5

    def __init__(self, emulator: MotoServer, bucket: str, log: TextIO | None = None):
        self.emulator, self.bucket, self.region, self.log = emulator, bucket, emulator.region, log
        self.s3 = emulator.client("s3")
        self.lambda_client = emulator.client("lambda")
        self.seen = object_versions(self.s3, bucket)

    def new_objects(self) -> list[StoredObject]:
        current = object_versions(self.s3, self.bucket)
        fresh = [obj for ident, obj in current.items() if ident not in self.seen]
        self.seen = current
        return sorted(fresh, key=lambda obj: (obj.last_modified, obj.key))

    def deliver(self) -> list[Delivery]:
        deliveries: list[Delivery] = []
        rules = notification_rules(self.s3, self.bucket)
        for _ in range(self.MAX_ROUNDS):
            fresh = self.new_objects()
            matched = [
                (rule, obj)
                for obj in fresh
                for rule in rules
                if rule.matches("ObjectCreated:Put", obj.key)
            ]
            if not matched:
                return deliveries
            for rule, obj in matched:
                name = function_name_from_arn(rule.function_arn)
                function = describe_function(self.lambda_client, name)
                event = s3_event(rule, self.bucket, obj, self.region)
                try:
                    response, printed = invoke_report_processor(
                        self.emulator, function, event, self.log
                    )
                    deliveries.append(Delivery(obj.key, name, response, metrics_from_emf(printed)))
                except Exception as error:  # noqa: BLE001 (Lambda would log it and retry)
                    deliveries.append(
                        Delivery(obj.key, name, None, [], f"{type(error).__name__}: {error}")
                    )
        raise RuntimeError(
            f"notifications still produced new matching objects after {self.MAX_ROUNDS} rounds: "
            "a handler writes under its own trigger prefix"
        )
