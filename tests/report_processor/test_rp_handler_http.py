"""The handler against a moto server over HTTP, as the deployed Lambda reaches S3.

The in-process tests cover the behaviour in detail; this one proves the real wire path: the
streaming GET, the conditional PUT (`If-None-Match: *`) and the AWS_ENDPOINT_URL plumbing.
"""

import json
import uuid
from pathlib import Path
from urllib.parse import quote_plus

from report_processor.handler import handler

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
