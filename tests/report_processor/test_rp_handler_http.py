"""The handler against a moto server over HTTP, as the deployed Lambda reaches S3.

The in-process tests cover the behaviour in detail; this one proves the real wire path: the
streaming GET, the conditional PUT (`If-None-Match: *`) and the AWS_ENDPOINT_URL plumbing.
"""

import json
import uuid
from pathlib import Path
from urllib.parse import quote_plus

from report_processor.aws import ResultsBucket
from report_processor.config import ProcessorConfig
from report_processor.handler import handler
from report_processor.process import S3Record, process_object

FIXTURES = Path(__file__).parent / "fixtures"


def test_handler_over_http_publishes_once_and_writes_reports(moto_server, monkeypatch, capsys):
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROJECT", "shop")
    monkeypatch.setenv("ENVIRONMENT", "ci")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LambdaTestRunner/Http")
    s3 = moto_server.client("s3")
    bucket = f"ltr-results-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    run = "runs/2025-11-28/run 7+ü/test"
    s3.put_object(
        Bucket=bucket,
        Key=f"{run}/manifest.json",
        Body=json.dumps({"run_id": "run-7", "command": "test", "started_at": "2025-11-28T02:00Z"}),
    )
    body = (FIXTURES / "surefire_flaky.xml").read_bytes()
    put = s3.put_object(Bucket=bucket, Key=f"{run}/junit.xml", Body=body)
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {
                        "key": quote_plus(f"{run}/junit.xml", safe="/"),
                        "size": len(body),
                        "versionId": put["VersionId"],
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }
    capsys.readouterr()
    assert handler(event, None)["results"][0]["outcome"] == "processed"
    assert handler(event, None)["results"][0]["outcome"] == "duplicate"

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(emf) == 1
    assert emf[0]["TestsFlaky"] == [1.0] and emf[0]["Environment"] == "ci"
    report = s3.get_object(Bucket=bucket, Key="reports/2025-11-28/run 7+ü/test/summary.json")
    summary = json.loads(report["Body"].read())
    assert summary["metadata"]["run_id"] == "run-7"
    assert summary["totals"]["flaky"] == 1
    latest = s3.get_object(Bucket=bucket, Key="reports/latest/summary.md")["Body"].read()
    assert latest.decode("utf-8").startswith("# ❌ Test report: failed")


def _bucket(moto_server) -> tuple[object, str]:
    s3 = moto_server.client("s3")
    bucket = f"ltr-results-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def test_conditional_writes_over_http(moto_server, monkeypatch):
    """What moto 5.2.5 does with If-Match / If-None-Match on PutObject, as real S3 documents it."""
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    s3, bucket = _bucket(moto_server)
    storage = ResultsBucket(bucket, s3)
    key = "reports/latest/summary.json"
    assert storage.put_text_if(key, "{}", "application/json", None) is True
    assert storage.put_text_if(key, "{}", "application/json", None) is False  # exists now
    document, etag = storage.read_json_with_etag(key, 1024)
    assert document == {} and etag == storage.etag(key)
    assert storage.put_text_if(key, '{"a": 1}', "application/json", etag) is True
    assert storage.put_text_if(key, '{"a": 2}', "application/json", etag) is False  # stale ETag
    assert storage.read_json(key, 1024) == {"a": 1}
    assert storage.put_text_if("reports/latest/gone.json", "{}", "application/json", etag) is False


class RacingStorage:
    """A ResultsBucket behind which another run writes latest right after we read it."""

    def __init__(self, inner: ResultsBucket, newer_document: str) -> None:
        self.inner = inner
        self.newer_document = newer_document
        self.raced = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read_json_with_etag(self, key, max_bytes):
        result = self.inner.read_json_with_etag(key, max_bytes)
        if not self.raced:
            self.raced = True
            self.inner.put_text(key, self.newer_document, "application/json")
        return result


def test_a_concurrent_newer_run_wins_the_race_for_latest(moto_server, monkeypatch):
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    s3, bucket = _bucket(moto_server)
    run = "runs/2025-11-27/r-old/test"
    s3.put_object(
        Bucket=bucket,
        Key=f"{run}/manifest.json",
        Body=json.dumps({"run_id": "r-old", "started_at": "2025-11-27T02:00:00Z"}),
    )
    s3.put_object(Bucket=bucket, Key=f"{run}/junit.xml", Body=(FIXTURES / "go.xml").read_bytes())
    newer = json.dumps({"metadata": {"run_id": "r-new", "started_at": "2025-11-28T02:00:00Z"}})
    storage = RacingStorage(ResultsBucket(bucket, s3), newer)
    record = S3Record(bucket, f"{run}/junit.xml", None, "seq-1")
    outcome = process_object(record, storage, ProcessorConfig("shop", "ci"))
    assert storage.raced
    assert (outcome.outcome, outcome.latest) == ("processed", "kept")
    latest = s3.get_object(Bucket=bucket, Key="reports/latest/summary.json")["Body"].read()
    assert json.loads(latest)["metadata"]["run_id"] == "r-new"


def _record(bucket: str, key: str, version: str | None, sequencer: str) -> dict:
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {
                "key": quote_plus(key, safe="/"),
                "versionId": version,
                "sequencer": sequencer,
            },
        },
    }


def test_routing_vanished_objects_and_forward_only_latest_over_http(
    moto_server, monkeypatch, capsys
):
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RUNNER_COMMANDS", '["test"]')
    s3, bucket = _bucket(moto_server)

    def upload(run: str, started_at: str | None, fixture: str = "go.xml") -> dict:
        if started_at:
            manifest = {"run_id": run.split("/")[2], "command": "test", "started_at": started_at}
            s3.put_object(Bucket=bucket, Key=f"{run}/manifest.json", Body=json.dumps(manifest))
        key = f"{run}/junit.xml"
        s3.put_object(Bucket=bucket, Key=key, Body=(FIXTURES / fixture).read_bytes())
        return _record(bucket, key, None, uuid.uuid4().hex)

    later = upload("runs/2025-11-28/r-later/test", "2025-11-28T02:00:00.000Z")
    earlier = upload("runs/2025-11-27/r-earlier/test", "2025-11-27T02:00:00.000Z")
    gone = upload("runs/2025-11-29/r-gone/test", "2025-11-29T02:00:00.000Z")
    s3.delete_object(Bucket=bucket, Key="runs/2025-11-29/r-gone/test/junit.xml")
    s3.put_object(
        Bucket=bucket, Key="runs/2025-11-29/r-x/scribe-generate/sitemap.xml", Body=b"<x/>"
    )
    sitemap = _record(bucket, "runs/2025-11-29/r-x/scribe-generate/sitemap.xml", None, "01")
    capsys.readouterr()

    results = handler({"Records": [later, earlier, gone, sitemap]}, None)["results"]
    assert [(r["outcome"], r.get("latest")) for r in results] == [
        ("processed", "replaced"),
        ("processed", "kept"),
        ("gone", None),
        ("ignored", None),
    ]
    latest = json.loads(
        s3.get_object(Bucket=bucket, Key="reports/latest/summary.json")["Body"].read()
    )
    assert latest["metadata"]["run_id"] == "r-later"
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [record["Command"] for record in emf] == ["test", "test"]
