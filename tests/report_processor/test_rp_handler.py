"""The Lambda handler against moto's in-process S3 (mock_aws), with events shaped as S3 sends them.

Metrics are asserted on the Embedded Metric Format records the handler prints to stdout, which is
exactly what CloudWatch Logs would turn into metrics.
"""

import itertools
import json
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from report_processor import handler as handler_module
from report_processor.handler import ConfigError, HandlerConfig, handler, parse_event
from report_processor.routing import MARKER_PREFIX

FIXTURES = Path(__file__).parent / "fixtures"
BUCKET = "ltr-results-dev"
RUN = "runs/2025-11-27/20251127T020000Z-ab12/test"
MANIFEST = {
    "run_id": "20251127T020000Z-ab12",
    "command": "test",
    "args": [],
    "status": "failed",
    "exit_code": 1,
    "started_at": "2025-11-27T02:00:00Z",
}
METRIC_NAMES = {
    "TestsTotal",
    "TestsPassed",
    "TestsFailed",
    "TestsErrored",
    "TestsSkipped",
    "TestsFlaky",
    "PassRate",
    "DurationSeconds",
    "ReportParseErrors",
    "RunsNotPassed",
    # From the history (issue 12): the handler records every report.
    "NewFailures",
    "FixedTests",
    "FlakyTests",
    "QuarantinedTests",
}


@pytest.fixture
def s3(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("PROJECT", "shop")
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LambdaTestRunner/Test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "report-processor")
    for name in ("REPORT_MAX_BYTES", "REPORT_MAX_OBJECT_BYTES", "REPORT_MAX_TOKEN_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RUNNER_COMMANDS", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


SEQUENCER = itertools.count(0x0062E99A88DC407460)


def upload(s3, key: str, body: bytes) -> dict:
    """Put an object and return the S3 event record S3 would send for it."""
    response = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2025-11-27T02:05:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "junit-to-report-processor",
            "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": len(body),
                "eTag": response["ETag"].strip('"'),
                "versionId": response.get("VersionId"),
                "sequencer": f"{next(SEQUENCER):018X}",
            },
        },
    }


def upload_run(s3, run: str = RUN, junit: str = "phpunit9_nested.xml", manifest=MANIFEST) -> dict:
    if manifest is not None:
        s3.put_object(Bucket=BUCKET, Key=f"{run}/manifest.json", Body=json.dumps(manifest))
    return upload(s3, f"{run}/junit.xml", (FIXTURES / junit).read_bytes())


def emf_records(captured: str) -> list[dict]:
    records = []
    for line in captured.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record:
            # Powertools writes each value as a list of samples; one flush here = one sample.
            records.append(
                {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in record.items()}
            )
    return records


def read(s3, key: str) -> str:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode("utf-8")


def keys(s3, prefix: str = "") -> set[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for item in listing.get("Contents", [])}


def test_writes_summaries_and_publishes_emf_metrics(s3, capsys):
    record = upload_run(s3)
    capsys.readouterr()
    result = handler({"Records": [record]}, None)

    report_prefix = "reports/2025-11-27/20251127T020000Z-ab12/test/"
    assert result["results"] == [
        {
            "key": f"{RUN}/junit.xml",
            "outcome": "processed",
            "status": "failed",
            "report_prefix": report_prefix,
            "latest": "replaced",
            "history": "recorded",
        }
    ]
    summary = json.loads(read(s3, f"{report_prefix}summary.json"))
    assert summary["totals"]["tests"] == 9
    assert summary["history"]["headline"] == "first recorded run: nothing to compare yet"
    assert summary["metadata"] == {
        "run_id": "20251127T020000Z-ab12",
        "command": "test",
        "environment": "dev",
        "project": "shop",
        "started_at": "2025-11-27T02:00:00Z",
        "runner_status": "failed",
        "exit_code": 1,
        "duration_seconds": None,
        "app_version": None,
    }
    markdown = read(s3, f"{report_prefix}summary.md")
    assert markdown.startswith("# ❌ Test report: failed")
    assert read(s3, "reports/latest/summary.md") == markdown
    assert json.loads(read(s3, "reports/latest/summary.json")) == summary
    head = s3.head_object(Bucket=BUCKET, Key=f"{report_prefix}summary.md")
    assert head["ContentType"].startswith("text/markdown")

    (emf,) = emf_records(capsys.readouterr().out)
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "LambdaTestRunner/Test"
    assert directive["Dimensions"] == [["Project", "Environment", "Command"]]
    assert {metric["Name"] for metric in directive["Metrics"]} == METRIC_NAMES
    units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert units["PassRate"] == "Percent" and units["DurationSeconds"] == "Seconds"
    assert (emf["Project"], emf["Environment"], emf["Command"]) == ("shop", "dev", "test")
    assert "service" not in emf and "run_id" not in emf
    assert emf["TestsTotal"] == 9.0
    assert emf["TestsPassed"] == 4.0
    assert emf["TestsFailed"] == 2.0
    assert emf["TestsErrored"] == 1.0
    assert emf["TestsSkipped"] == 2.0
    assert emf["TestsFlaky"] == 0.0
    assert emf["PassRate"] == pytest.approx(57.1429, abs=1e-3)
    assert emf["DurationSeconds"] == pytest.approx(0.734512)
    assert emf["ReportParseErrors"] == 0.0


def test_redelivered_event_publishes_metrics_once(s3, capsys):
    event = {"Records": [upload_run(s3)]}
    capsys.readouterr()
    first = handler(event, None)
    second = handler(event, None)
    assert first["results"][0]["outcome"] == "processed"
    assert second["results"][0]["outcome"] == "duplicate"
    assert len(emf_records(capsys.readouterr().out)) == 1
    assert len(keys(s3, MARKER_PREFIX)) == 1


def test_concurrent_duplicate_loses_the_conditional_put_and_publishes_nothing(
    s3, capsys, monkeypatch
):
    event = {"Records": [upload_run(s3)]}
    handler(event, None)
    capsys.readouterr()
    # A second delivery that raced past the marker check: the conditional put must stop it.
    monkeypatch.setattr(handler_module.ResultsBucket, "exists", lambda self, key: False)
    result = handler(event, None)
    assert result["results"][0]["outcome"] == "duplicate"
    assert emf_records(capsys.readouterr().out) == []


def test_a_new_version_of_the_same_key_is_processed_again(s3, capsys):
    handler({"Records": [upload_run(s3)]}, None)
    rerun = upload_run(s3, junit="go.xml")
    capsys.readouterr()
    result = handler({"Records": [rerun]}, None)
    assert result["results"][0]["outcome"] == "processed"
    (emf,) = emf_records(capsys.readouterr().out)
    assert emf["TestsTotal"] == 4.0


def test_several_records_url_encoded_keys_and_ignored_objects(s3, capsys, caplog):
    odd_run = "runs/2025-11-27/nightly run+1 ünï/test"
    records = [
        upload_run(s3, run=odd_run, junit="pytest.xml", manifest=None),
        upload_run(s3, run="runs/2025-11-27/r-2/test", junit="go.xml"),
        upload(s3, "runs/2025-11-27/r-2/test/output.log", b"log"),
        upload(s3, "docs/latest/scribe-generate/index.xml", b"<x/>"),
        upload(s3, "runs/junit.xml", b"<testsuites/>"),
    ]
    before = keys(s3, "runs/")
    capsys.readouterr()
    result = handler({"Records": records}, None)

    outcomes = [(item["key"], item["outcome"]) for item in result["results"]]
    assert outcomes == [
        (f"{odd_run}/junit.xml", "processed"),
        ("runs/2025-11-27/r-2/test/junit.xml", "processed"),
        ("runs/2025-11-27/r-2/test/output.log", "ignored"),
        ("docs/latest/scribe-generate/index.xml", "ignored"),
        ("runs/junit.xml", "ignored"),
    ]
    summary = json.loads(read(s3, "reports/2025-11-27/nightly run+1 ünï/test/summary.json"))
    # Without manifest.json the run id and command come from the key itself.
    assert summary["metadata"]["run_id"] == "nightly run+1 ünï"
    assert summary["metadata"]["command"] == "test"
    assert summary["totals"]["tests"] == 5
    assert keys(s3, "runs/") == before, "the processor must never write under runs/"

    captured = capsys.readouterr().out
    assert [record["TestsTotal"] for record in emf_records(captured)] == [5.0, 4.0]
    ignored_logs = [log for log in caplog.records if log.getMessage() == "ignoring object"]
    assert {log.key for log in ignored_logs} == {
        "runs/2025-11-27/r-2/test/output.log",
        "docs/latest/scribe-generate/index.xml",
        "runs/junit.xml",
    }


def test_unusable_report_still_gets_a_summary_and_one_parse_error_metric(s3, capsys):
    record = upload_run(s3, junit="billion_laughs.xml")
    capsys.readouterr()
    result = handler({"Records": [record]}, None)
    assert result["results"][0]["status"] == "unusable"
    markdown = read(s3, "reports/2025-11-27/20251127T020000Z-ab12/test/summary.md")
    assert "report unusable" in markdown and "DOCTYPE" in markdown
    (emf,) = emf_records(capsys.readouterr().out)
    assert emf["ReportParseErrors"] == 1.0
    assert emf["RunsNotPassed"] == 1.0  # the run-not-passed alarm fires for it too
    assert "TestsTotal" not in emf and "PassRate" not in emf


def test_oversized_objects_are_unusable_not_crashes(s3, capsys, monkeypatch):
    monkeypatch.setenv("REPORT_MAX_OBJECT_BYTES", "100")
    result = handler({"Records": [upload_run(s3)]}, None)
    assert result["results"][0]["status"] == "unusable"
    summary = json.loads(read(s3, "reports/latest/summary.json"))
    assert "over the 100 byte limit" in summary["inputs"][0]["error"]


def test_a_vanished_object_is_logged_and_skipped_and_never_replaces_latest(s3, capsys, caplog):
    handler({"Records": [upload_run(s3)]}, None)
    latest = read(s3, "reports/latest/summary.json")
    gone = upload_run(s3, run="runs/2025-11-28/r-gone/test")
    s3.delete_object(Bucket=BUCKET, Key="runs/2025-11-28/r-gone/test/junit.xml")
    gone["s3"]["object"]["versionId"] = None  # unversioned delivery: the latest is a delete marker
    capsys.readouterr()
    result = handler({"Records": [gone]}, None)
    assert result["results"] == [
        {
            "key": "runs/2025-11-28/r-gone/test/junit.xml",
            "outcome": "gone",
            "reason": "the object no longer exists",
        }
    ]
    assert read(s3, "reports/latest/summary.json") == latest
    assert keys(s3, "reports/2025-11-28/") == set()
    assert emf_records(capsys.readouterr().out) == []
    assert any(log.getMessage() == "object no longer exists; skipped" for log in caplog.records)


def test_only_a_runs_junit_xml_drives_a_report(s3, capsys):
    handler({"Records": [upload_run(s3)]}, None)
    latest = read(s3, "reports/latest/summary.json")
    strays = [
        upload(s3, "runs/2025-11-28/r-3/scribe-generate/docs/sitemap.xml", b"<urlset/>"),
        upload(s3, "runs/2025-11-28/r-3/scribe-generate/sitemap.xml", b"<urlset/>"),
        upload(s3, "runs/2025-11-28/r-3/test/report.xml", b"<testsuites/>"),
        upload(s3, "runs/not-a-date/r-3/test/junit.xml", b"<testsuites/>"),
        upload(s3, "runs/2025-11-28/r-3/test/extra/junit.xml", b"<testsuites/>"),
    ]
    capsys.readouterr()
    result = handler({"Records": strays}, None)
    assert {item["outcome"] for item in result["results"]} == {"ignored"}
    assert emf_records(capsys.readouterr().out) == []
    assert read(s3, "reports/latest/summary.json") == latest


def test_latest_only_moves_forward(s3, capsys):
    later = {**MANIFEST, "run_id": "r-later", "started_at": "2025-11-28T02:00:00.000Z"}
    earlier = {**MANIFEST, "run_id": "r-earlier", "started_at": "2025-11-27T02:00:00.000Z"}
    first = handler(
        {"Records": [upload_run(s3, "runs/2025-11-28/r-later/test", manifest=later)]}, None
    )
    assert first["results"][0]["latest"] == "replaced"
    # The earlier run's event arrives late: its own report is written, latest stays.
    late = upload_run(s3, "runs/2025-11-27/r-earlier/test", "go.xml", manifest=earlier)
    result = handler({"Records": [late]}, None)
    assert result["results"][0]["outcome"] == "processed"
    assert result["results"][0]["latest"] == "kept"
    assert json.loads(read(s3, "reports/latest/summary.json"))["metadata"]["run_id"] == "r-later"
    assert "Run r-later" in read(s3, "reports/latest/summary.md")
    own = json.loads(read(s3, "reports/2025-11-27/r-earlier/test/summary.json"))
    assert own["metadata"]["run_id"] == "r-earlier"
    # A run without a start time cannot prove it is newer: latest stays, too.
    unknown = upload_run(s3, "runs/2025-11-29/r-unknown/test", manifest=None)
    assert handler({"Records": [unknown]}, None)["results"][0]["latest"] == "kept"
    newer = {**MANIFEST, "run_id": "r-newer", "started_at": "2025-11-29T02:00:00Z"}
    rerun = upload_run(s3, "runs/2025-11-29/r-newer/test", manifest=newer)
    assert handler({"Records": [rerun]}, None)["results"][0]["latest"] == "replaced"
    assert json.loads(read(s3, "reports/latest/summary.json"))["metadata"]["run_id"] == "r-newer"


@pytest.mark.parametrize(
    ("runner_commands", "manifest_command", "run", "dimension"),
    [
        (None, "test", "runs/2025-11-27/r/test", "test"),
        (None, "scribe:generate", "runs/2025-11-27/r/scribe-generate", "scribe:generate"),
        (None, None, "runs/2025-11-27/r/scribe-generate", "scribe:generate"),
        (None, "evil:new-stream-1", "runs/2025-11-27/r/evil-new-stream-1", "other"),
        (None, "test", "runs/2025-11-27/r/made-up", "test"),
        ('["test", "db:check"]', "db:check", "runs/2025-11-27/r/db-check", "db:check"),
        ('["db:check"]', "test", "runs/2025-11-27/r/test", "other"),
    ],
)
def test_command_dimension_takes_only_allowlisted_commands(
    s3, capsys, monkeypatch, runner_commands, manifest_command, run, dimension
):
    if runner_commands is None:
        monkeypatch.delenv("RUNNER_COMMANDS", raising=False)
    else:
        monkeypatch.setenv("RUNNER_COMMANDS", runner_commands)
    manifest = {**MANIFEST, "command": manifest_command}
    capsys.readouterr()
    handler({"Records": [upload_run(s3, run, manifest=manifest)]}, None)
    (emf,) = emf_records(capsys.readouterr().out)
    assert emf["Command"] == dimension


@pytest.mark.parametrize(
    ("junit", "runner_status", "status", "tests_total", "pass_rate"),
    [
        ("phpunit9_nested.xml", "failed", "failed", 9.0, 57.1429),
        ("no_root.xml", "passed", "passed", 2.0, 100.0),
        ("zero_tests.xml", "passed", "no_tests", 0.0, None),
        ("all_skipped.xml", "passed", "no_tests", 0.0, None),
        ("no_root.xml", "timed_out", "timed_out", 0.0, 100.0),
        ("no_root.xml", "error", "error", 0.0, 100.0),
        ("no_root.xml", "failed", "failed", 2.0, 100.0),
        ("truncated.xml", "timed_out", "timed_out", None, None),
    ],
)
def test_status_and_metrics_follow_the_status_table(
    s3, capsys, junit, runner_status, status, tests_total, pass_rate
):
    manifest = {**MANIFEST, "status": runner_status, "duration_seconds": 46.5}
    capsys.readouterr()
    result = handler({"Records": [upload_run(s3, junit=junit, manifest=manifest)]}, None)
    assert result["results"][0]["status"] == status
    (emf,) = emf_records(capsys.readouterr().out)
    assert emf.get("TestsTotal") == tests_total
    assert emf.get("PassRate") == (None if pass_rate is None else pytest.approx(pass_rate))
    assert emf["ReportParseErrors"] == (1.0 if junit == "truncated.xml" else 0.0)
    # The run-not-passed alarm's metric: 1 for every verdict but passed, including a command
    # that failed over a clean report (no_root.xml with runner status failed).
    assert emf["RunsNotPassed"] == (0.0 if status == "passed" else 1.0)
    if tests_total is not None:
        assert emf["DurationSeconds"] == 46.5


def test_markdown_cap_comes_from_the_environment(s3, monkeypatch):
    monkeypatch.setenv("REPORT_MAX_BYTES", "1200")
    handler({"Records": [upload_run(s3)]}, None)
    markdown = read(s3, "reports/latest/summary.md")
    assert len(markdown.encode("utf-8")) <= 1200
    assert "Cut to fit 1,200 bytes" in markdown


def test_events_that_are_not_s3_notifications_are_ignored(s3, capsys):
    assert handler({"detail-type": "Scheduled Event"}, None) == {"results": []}
    removed = upload_run(s3)
    removed["eventName"] = "ObjectRemoved:Delete"
    assert handler({"Records": [removed, {"junk": True}]}, None) == {"results": []}
    assert emf_records(capsys.readouterr().out) == []


def test_parse_event_decodes_keys_like_s3_encodes_them():
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:CompleteMultipartUpload",
                "s3": {
                    "bucket": {"name": "b"},
                    "object": {"key": "runs/a+b/%C3%BC%2B/test/junit.xml", "sequencer": "01"},
                },
            }
        ]
    }
    (record,), problems = parse_event(event)
    assert problems == []
    assert record.key == "runs/a b/ü+/test/junit.xml"
    assert record.version_id is None and record.dedup_id == "01"


def test_bad_configuration_names_the_variable():
    with pytest.raises(ConfigError, match="REPORT_MAX_BYTES='big'"):
        HandlerConfig.from_env({"REPORT_MAX_BYTES": "big"})
    with pytest.raises(ConfigError, match="must be at least 1024"):
        HandlerConfig.from_env({"REPORT_MAX_BYTES": "10"})
    with pytest.raises(ConfigError, match="RUNNER_COMMANDS='test': expected a JSON list"):
        HandlerConfig.from_env({"RUNNER_COMMANDS": "test"})
    with pytest.raises(ConfigError, match="REPORT_MAX_TOKEN_BYTES=1: must be at least"):
        HandlerConfig.from_env({"REPORT_MAX_TOKEN_BYTES": "1"})
    defaults = HandlerConfig.from_env({})
    assert (defaults.project, defaults.namespace) == ("unknown", "LambdaTestRunner")
    assert defaults.commands == {"test", "scribe:generate", "api:export-markdown"}
    assert HandlerConfig.from_env({"RUNNER_COMMANDS": '["a:b"]'}).commands == {"a:b"}
