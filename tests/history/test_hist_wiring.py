"""The history wired into the report processor, end to end against the moto server over HTTP.

The eight scripted nights of test_hist_scenario.py (a renamed test, a removed test, an outage
night, a quarantined test, an expired quarantine, a same-version flake, a rerun flake) go through
the real core (`process.process_object`) as JUnit objects in S3 with their manifests; each
night's summary.json, summary.md, metrics and notification are checked test by test against the
same expectations the library scenario holds. Then: late arrival through the core, SNS delivery
read back from an SQS subscription, and history failures that never stop a report.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from statistics import median
from typing import Any

import pytest

from report_processor.aws import ResultsBucket
from report_processor.config import ProcessorConfig
from report_processor.handler import handler
from report_processor.history import keys
from report_processor.history.queries import add_to_quarantine
from report_processor.history.records import HistoryConfig
from report_processor.history.s3 import S3HistoryStore
from report_processor.parse import parse_junit
from report_processor.process import Outcome, S3Record, process_object, summary_console_url
from tests.history.helpers import CLASS, FILE, SCOPE, START, Night, junit_xml, names, tid
from tests.history.test_hist_scenario import CONFIG, EXPECTED, nights

MESSAGES = {"provider with data set #1": "Failed asserting that 500 is 200."}


class RecordingNotifier:
    """The Notifier protocol, keeping what it was asked to send (SNS itself: the last test)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, dict[str, str]]]] = []

    def publish(self, subject: str, body: str, attributes: dict[str, dict[str, str]]) -> None:
        self.sent.append((subject, body, attributes))


def new_bucket(moto_server) -> tuple[Any, str]:
    s3 = moto_server.client("s3")
    bucket = f"ltr-wired-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def run_prefix(night: Night) -> str:
    return f"runs/{night.started_at:%Y-%m-%d}/{night.run_id}/test/"


def upload(s3, bucket: str, night: Night, messages=None) -> S3Record:
    prefix = run_prefix(night)
    manifest = {
        "run_id": night.run_id,
        "command": "test",
        "status": night.runner_status,
        "started_at": night.started_at.isoformat().replace("+00:00", "Z"),
        "app_version": night.version,
        "image_version": "img-1",
    }
    s3.put_object(Bucket=bucket, Key=prefix + "manifest.json", Body=json.dumps(manifest))
    body = junit_xml(night.outcomes, messages)
    s3.put_object(Bucket=bucket, Key=prefix + "junit.xml", Body=body)
    return S3Record(bucket, prefix + "junit.xml", None, uuid.uuid4().hex)


def process(s3, bucket: str, night: Night, config: ProcessorConfig, notifier=None, store=None):
    record = upload(s3, bucket, night, MESSAGES)
    outcome = process_object(
        record,
        ResultsBucket(bucket, s3),
        config,
        now=lambda: night.started_at + timedelta(minutes=30),
        history=store or S3HistoryStore(bucket, s3),
        notifier=notifier,
    )
    report = f"reports/{night.started_at:%Y-%m-%d}/{night.run_id}/test/"
    summary = json.loads(s3.get_object(Bucket=bucket, Key=report + "summary.json")["Body"].read())
    markdown = s3.get_object(Bucket=bucket, Key=report + "summary.md")["Body"].read().decode()
    return outcome, summary, markdown


def metric(outcome: Outcome, name: str) -> float | None:
    values = [m.value for m in outcome.metrics if m.name == name]
    return values[0] if values else None


@pytest.fixture(scope="module")
def scripted(moto_server):
    s3, bucket = new_bucket(moto_server)
    store = S3HistoryStore(bucket, s3)
    config = ProcessorConfig("shop", "prod", history=CONFIG)
    add_to_quarantine(store, "shop", "prod", tid("expiring"), "flaky on CI", "ana",
                      START + timedelta(days=1, hours=-1), days=4)  # fmt: skip
    notifier = RecordingNotifier()
    results = {}
    for night in nights():
        sent_before = len(notifier.sent)
        outcome, summary, markdown = process(s3, bucket, night, config, notifier)
        results[night.number] = (outcome, summary, markdown, notifier.sent[sent_before:])
        if night.number == 2:
            add_to_quarantine(store, "shop", "prod", tid("quarantined"), "ticket SHOP-12",
                              "bo", night.started_at + timedelta(hours=1))  # fmt: skip
    return s3, bucket, results


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_each_night_through_the_core_is_classified_exactly(scripted, number):
    _, _, results = scripted
    outcome, summary, _, sent = results[number]
    want = EXPECTED[number]
    history = summary["history"]
    assert outcome.history == "recorded"
    got = dict(
        new=names(t["test_id"] for t in history["new_failures"]),
        still=names(t["test_id"] for t in history["still_failing"]),
        fixed=names(history["fixed"]),
        added=names(history["new_tests"]),
        gone=names(history["disappeared"]),
        flaky=names(t["test_id"] for t in history["flaky"]),
        quarantined=history["counts"]["quarantined"],
        expired=history["counts"]["quarantine_expired"],
        status=history["status"],
        notify=bool(sent),
        dropped=history["tests_dropped"],
    )
    assert got == want
    assert (history["notification"] is not None) == want["notify"]
    # The report's own verdict and pass rate agree with the history (quarantine left out).
    assert summary["status"] == history["status"]
    assert summary["pass_rate"] == pytest.approx(history["pass_rate"], abs=1e-6)
    assert metric(outcome, "PassRate") == pytest.approx(history["pass_rate"] * 100, abs=1e-3)
    assert metric(outcome, "NewFailures") == len(want["new"])
    assert metric(outcome, "FixedTests") == len(want["fixed"])
    assert metric(outcome, "FlakyTests") == len(want["flaky"])
    assert metric(outcome, "QuarantinedTests") == want["quarantined"]


def test_the_markdown_leads_with_the_diff_and_has_the_history_section(scripted):
    _, bucket, results = scripted
    _, summary, markdown, sent = results[6]
    lines = markdown.splitlines()
    assert lines[0] == "# ❌ Test report: failed"
    assert lines[2].startswith("**1 new failure · 2 fixed · 2 still failing · 2 flaky")
    assert "## Since the previous run" in markdown
    assert markdown.index("## Since the previous run") < markdown.index("## Failures")
    assert "| passed and failed on v2 |" in markdown
    ((subject, body, attributes),) = sent
    assert subject == "[ltr] test on prod: 1 new failure, pass rate 66.7 %"
    assert "provider with data set #1\n    Failed asserting that 500 is 200." in body
    summary_key = "reports/2026-11-07/n6/test/summary.md"
    assert body.rstrip().endswith(summary_console_url(bucket, summary_key, "us-east-1"))
    assert "{summary_url}" not in body
    assert summary["history"]["notification"]["body"] == body
    assert attributes["status"] == {"DataType": "String", "StringValue": "failed"}


def test_quarantine_keeps_a_night_green_whose_only_failure_is_protected(scripted):
    _, _, results = scripted
    _, summary, markdown, _ = results[7]
    assert summary["totals"]["failed"] == 1  # the quarantined test still ran and failed
    assert (summary["status"], summary["pass_rate"]) == ("passed", 1.0)
    assert markdown.startswith("# ✅ Test report: passed")
    assert "### Quarantine" in markdown and "**expired: counts again**" in markdown


def test_durations_json_follows_the_sharding_contract(scripted):
    s3, bucket, _ = scripted
    key = keys.durations_key("shop", "prod", "test")
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    used = [n for n in nights() if n.number in (8, 7, 6, 5, 3)]  # n4 failed wholesale
    assert document["version"] == 1 and document["runs"] == 5
    assert document["classes"] == {CLASS: median(0.25 * len(n.outcomes) for n in used)}
    assert document["newest_run_key"] == keys.make_run_key(used[-1].started_at, "n8")
    assert document["updated_at"].endswith("Z")


def test_a_late_event_for_an_earlier_run_never_becomes_previous_through_the_core(moto_server):
    s3, bucket = new_bucket(moto_server)
    config = ProcessorConfig("shop", "prod", history=HistoryConfig(wholesale_min_tests=2))
    notifier = RecordingNotifier()
    n1 = Night(1, "v1", {"a": "pass", "b": "pass"})
    n2 = Night(2, "v1", {"a": "fail", "b": "pass"})
    n3 = Night(3, "v2", {"a": "pass", "b": "fail"})
    n4 = Night(4, "v3", {"a": "pass", "b": "pass"})
    process(s3, bucket, n1, config, notifier)
    (
        _,
        three,
        _,
    ) = process(s3, bucket, n3, config, notifier)
    sent_before = len(notifier.sent)
    late, two, _ = process(s3, bucket, n2, config, notifier)  # arrives after n3
    assert two["history"]["previous"]["run_id"] == "n1"
    assert two["history"]["superseded"] is True
    assert names(t["test_id"] for t in two["history"]["new_failures"]) == {"a"}
    assert len(notifier.sent) == sent_before  # stale news: n3 was already reported
    assert late.latest == "kept"  # reports/latest/ stays on n3
    _, four, _ = process(s3, bucket, n4, config, notifier)
    assert four["history"]["previous"]["run_id"] == "n3"
    assert names(four["history"]["fixed"]) == {"b"}
    assert three["history"]["previous"]["run_id"] == "n1"


class BrokenStore(S3HistoryStore):
    """A history store whose uploads fail (history objects cannot be written)."""

    def put_stream(self, key, stream, content_type):
        raise OSError("the history prefix is not writable")


def test_a_failing_history_never_stops_the_report(moto_server, caplog):
    s3, bucket = new_bucket(moto_server)
    config = ProcessorConfig("shop", "prod")
    night = Night(1, "v1", {"a": "pass", "b": "fail"})
    outcome, summary, markdown = process(s3, bucket, night, config, store=BrokenStore(bucket, s3))
    assert outcome.outcome == "processed"
    assert outcome.history == "failed: OSError: the history prefix is not writable"
    assert summary["history"] is None and summary["status"] == "failed"
    assert "Since the previous run" not in markdown
    assert metric(outcome, "NewFailures") is None and metric(outcome, "TestsTotal") == 2
    assert "could not record the run" in caplog.text


def test_an_unusable_report_is_recorded_as_a_run_in_which_no_test_ran(moto_server):
    s3, bucket = new_bucket(moto_server)
    config = ProcessorConfig("shop", "prod", history=HistoryConfig(wholesale_min_tests=2))
    process(s3, bucket, Night(1, "v1", {"a": "pass", "b": "pass"}), config)
    night = Night(2, "v1", {"a": "pass"})
    prefix = run_prefix(night)
    record = upload(s3, bucket, night)
    s3.put_object(Bucket=bucket, Key=prefix + "junit.xml", Body=b"<testsuites><testsuite>")
    outcome = process_object(record, ResultsBucket(bucket, s3), config,
                             history=S3HistoryStore(bucket, s3))  # fmt: skip
    summary = json.loads(
        s3.get_object(Bucket=bucket, Key=f"reports/{prefix[5:]}summary.json")["Body"].read()
    )
    assert summary["status"] == "unusable"
    assert summary["history"]["tests"] == 0  # the half-read file recorded nothing
    assert summary["history"]["wholesale_reason"] is not None
    assert summary["history"]["notes"][0].startswith("the JUnit report was unusable")
    assert outcome.history == "recorded"
    after, _, _ = process(s3, bucket, Night(3, "v1", {"a": "pass", "b": "fail"}), config)
    # The unusable night is never the baseline.
    index = json.loads(s3.get_object(Bucket=bucket, Key=keys.index_key(SCOPE))["Body"].read())
    assert [run["run_id"] for run in index["runs"]] == ["n1", "n2", "n3"]
    assert metric(after, "NewFailures") == 1


def test_the_parser_hands_every_testcase_to_on_case():
    seen = []
    xml = junit_xml({"a": "pass", "b": "fail", "c": "error", "d": "skip", "e": "flaky"})
    parse_junit(io.BytesIO(xml), on_case=lambda *args: seen.append(args))
    classname = CLASS.replace("\\", ".")
    assert seen == [
        (FILE, classname, "a", 0, 0.25, False),
        (FILE, classname, "b", 2, 0.25, False),
        (FILE, classname, "c", 3, 0.25, False),
        (FILE, classname, "d", 1, 0.25, False),
        (FILE, classname, "e", 0, 0.25, True),
    ]


def test_the_notification_goes_out_through_sns_with_its_attributes(moto_server, monkeypatch):
    """The deployed path: the handler, NOTIFICATION_TOPIC_ARN, boto3 SNS, an SQS subscriber."""
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROJECT", "shop")
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("HISTORY_WHOLESALE_MIN_TESTS", "2")
    s3, bucket = new_bucket(moto_server)
    sns, sqs = moto_server.client("sns"), moto_server.client("sqs")
    topic = sns.create_topic(Name=f"ltr-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"ltr-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", topic)

    def deliver(night: Night) -> dict:
        record = upload(s3, bucket, night)
        obj = {"key": record.key, "sequencer": record.dedup_id}
        raw = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
               "s3": {"bucket": {"name": bucket}, "object": obj}}  # fmt: skip
        event = {"Records": [raw]}
        return handler(event, None)["results"][0]

    quiet = deliver(Night(1, "v1", {"a": "pass", "b": "pass"}, runner_status="passed"))
    assert "notified" not in quiet  # a first green night sends nothing
    loud = deliver(Night(2, "v1", {"a": "pass", "b": "fail"}))
    assert loud["notified"] == "sent"
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    (message,) = messages["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == "[ltr] test on prod: 1 new failure, pass rate 50.0 %"
    assert envelope["Message"].startswith("shop / prod / test: run n2\n")
    assert (
        "NEW FAILURES (1)\n- tests/Feature/ShopTest.php::Tests.Feature.ShopTest::b"
        in (envelope["Message"])
    )
    link = summary_console_url(bucket, "reports/2026-11-03/n2/test/summary.md", "us-east-1")
    assert envelope["Message"].rstrip().endswith(f"Summary: {link}")
    attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
    assert attributes == {
        "project": "shop",
        "environment": "prod",
        "command": "test",
        "status": "failed",
    }
