"""The pieces of demo/pipeline.py that play AWS's part: notification matching, the S3 event
shape, EMF extraction. Fast; no emulator needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from demo.delivery import (
    NotificationRule,
    StoredObject,
    function_name_from_arn,
    metrics_from_emf,
    s3_event,
)
from report_processor.handler import parse_event

RULE = NotificationRule(
    id="junit",
    function_arn="arn:aws:lambda:us-east-1:123456789012:function:ltr-example-report-processor",
    events=("s3:ObjectCreated:*",),
    prefix="runs/",
    suffix="junit.xml",
)


@pytest.mark.parametrize(
    ("key", "matches"),
    [
        ("runs/2025-01-01/r1/test/junit.xml", True),
        ("runs/2025-01-01/r1/test/manifest.json", False),
        ("reports/2025-01-01/r1/test/junit.xml", False),
        ("docs/latest/x.xml", False),
    ],
)
def test_notification_filters(key, matches):
    assert RULE.matches("ObjectCreated:Put", key) is matches


def test_event_type_patterns():
    only_put = NotificationRule("x", RULE.function_arn, ("s3:ObjectCreated:Put",), "", "")
    assert only_put.matches("ObjectCreated:Put", "a")
    assert not only_put.matches("ObjectCreated:Copy", "a")
    assert not RULE.matches("ObjectRemoved:Delete", "runs/a/b/c/junit.xml")


@pytest.mark.parametrize(
    "key",
    [
        "runs/2025-01-01/r1/test/junit.xml",
        "runs/2025-01-01/r 1/test/my junit+shard.xml",
        "runs/2025-01-01/r1/tést/ünïcode ☃.xml",
    ],
)
def test_s3_event_keys_are_encoded_as_s3_does_and_decode_in_the_real_handler(key):
    stored = StoredObject(key, "3HL4kqtJlcpXroDTDmJ", '"abc"', 12, datetime(2025, 1, 1, tzinfo=UTC))
    event = s3_event(RULE, "bucket", stored, "us-east-1")
    record = event["Records"][0]
    encoded = record["s3"]["object"]["key"]
    assert " " not in encoded  # S3 writes a space as '+' and a '+' as %2B
    assert ("%2B" in encoded) is ("+" in key)
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["configurationId"] == "junit"
    assert record["s3"]["object"]["eTag"] == "abc"
    assert record["eventTime"].endswith("Z")
    records, problems = parse_event(json.loads(json.dumps(event)))
    assert problems == []
    assert [r.key for r in records] == [key]


def test_metrics_from_emf_reads_every_metric_with_its_dimensions():
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "LambdaTestRunner",
                        "Dimensions": [["Project", "Environment", "Command"]],
                        "Metrics": [
                            {"Name": "TestsTotal", "Unit": "Count"},
                            {"Name": "PassRate", "Unit": "Percent"},
                        ],
                    }
                ],
            },
            "Project": "ltr",
            "Environment": "dev",
            "Command": "test",
            "TestsTotal": 13,
            "PassRate": [75.0],
        }
    )
    text = "\n".join(["not json", '{"level": "INFO", "message": "x"}', line])
    metrics = metrics_from_emf(text)
    assert [(m.name, m.value, m.unit) for m in metrics] == [
        ("TestsTotal", 13.0, "Count"),
        ("PassRate", 75.0, "Percent"),
    ]
    assert metrics[0].dimensions == {"Project": "ltr", "Environment": "dev", "Command": "test"}


def test_function_name_from_arn():
    assert function_name_from_arn(RULE.function_arn) == "ltr-example-report-processor"
    assert function_name_from_arn(RULE.function_arn + ":live") == "ltr-example-report-processor"
