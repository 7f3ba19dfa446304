"""report_processor/merge.py: the merge of a sharded run, pure core against an in-memory bucket."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from report_processor.merge import (
    JUnitWriter,
    MergeRejected,
    merge_run,
    parse_merge_event,
)
from report_processor.model import RunMetadata
from report_processor.parse import JUnitError, parse_junit
from report_processor.render import to_json, to_markdown
from report_processor.routing import classify_key, run_metadata
from report_processor.summary import build_report
from report_processor.tally import ParseLimits

FIXTURES = Path(__file__).parent.parent / "report_processor" / "fixtures"
RUN = "runs/2026-11-29/R1/test/"
PLAN_KEY = RUN + "plan.json"
NOW = datetime(2026, 11, 29, 2, 10, tzinfo=UTC)


class MemoryBucket:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = dict(objects)
        self.writes: list[str] = []

    def read_json(self, key, max_bytes):
        raw = self.objects.get(key)
        if raw is None or len(raw) > max_bytes:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def open_object(self, key, version_id, max_bytes):
        raw = self.objects.get(key)
        return None if raw is None else io.BytesIO(raw)

    def put_text(self, key, text, content_type):
        self.writes.append(key)
        self.objects[key] = text.encode()

    def put_file(self, key, body, content_type):
        self.writes.append(key)
        self.objects[key] = body.read()


def suite(cls: str, outcomes: list[str], seconds: float = 0.5) -> str:
    cases = []
    for number, outcome in enumerate(outcomes):
        inner = {
            "pass": "",
            "fail": '<failure type="AssertionError">'
            'expected "a" &lt; b &amp; c\n  at line 3</failure>',
            "skip": "<skipped/>",
        }[outcome]
        cases.append(
            f'<testcase name="test_{number}" class="{cls}" classname="{cls.replace(chr(92), ".")}"'
            f' file="/app/tests/{cls}.php" line="{number + 1}" assertions="1" time="{seconds}">'
            f"{inner}</testcase>"
        )
    return (
        f'<testsuite name="{cls}" file="/app/tests/{cls}.php" tests="{len(outcomes)}">'
        + "".join(cases)
        + "</testsuite>"
    )


def junit(*suites: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="">'
        + "".join(suites)
        + "</testsuite></testsuites>\n"
    ).encode()


def plan(*shards: list[tuple[str, int]]) -> bytes:
    return json.dumps(
        {
            "version": 1,
            "run_id": "R1",
            "command": "test",
            "slug": "test",
            "started_at": "2026-11-29T02:00:00.000Z",
            "shard_count": len(shards),
            "tests_total": sum(t for shard in shards for _, t in shard),
            "classes_without_history": 0,
            "shards": [
                {
                    "index": index,
                    "estimated_seconds": 1.0,
                    "classes": [
                        {
                            "name": name,
                            "file": f"tests/{name}.php",
                            "tests": tests,
                            "estimated_seconds": 1.0,
                        }
                        for name, tests in shard
                    ],
                }
                for index, shard in enumerate(shards)
            ],
        }
    ).encode()


def shard_files(index: int, status: str, body: bytes | None, seconds: float = 3.0) -> dict:
    prefix = f"{RUN}shards/{index:03d}/"
    files = {
        prefix + "manifest.json": json.dumps(
            {"run_id": "R1", "command": "test", "status": status, "duration_seconds": seconds}
        ).encode()
    }
    if body is not None:
        files[prefix + "junit.xml"] = body
    return files


def event(*shards: dict) -> dict:
    return {
        "action": "merge",
        "bucket": "ltr-results",
        "plan_key": PLAN_KEY,
        "shards": list(shards),
    }


def merged(bucket: MemoryBucket, *shards: dict):
    return merge_run(parse_merge_event(event(*shards)), bucket, spool=io.BytesIO, now=lambda: NOW)


def three_shards() -> dict:
    return {
        PLAN_KEY: plan([("A", 2)], [("B", 3)], [("C", 1), ("D", 1)]),
        **shard_files(0, "passed", junit(suite("A", ["pass", "pass"])), 4.0),
        **shard_files(1, "failed", junit(suite("B", ["pass", "fail", "skip"])), 7.5),
        **shard_files(2, "passed", junit(suite("C", ["pass"]), suite("D", ["pass"])), 2.0),
    }


def report_of(bucket: MemoryBucket):
    run = classify_key(RUN + "junit.xml")
    assert not isinstance(run, str)
    metadata = run_metadata(run, json.loads(bucket.objects[RUN + "manifest.json"]), "p", "e")
    body = io.BytesIO(bucket.objects[RUN + "junit.xml"])
    return build_report([("junit.xml", body)], metadata)


def test_all_shards_merge_into_one_report_with_every_test():
    bucket = MemoryBucket(three_shards())
    result = merged(
        bucket,
        {"index": 0, "status": "passed"},
        {"index": 1, "status": "failed"},
        {"index": 2, "status": "passed"},
    )
    # The manifest first, then the junit.xml whose arrival triggers the report processor.
    assert bucket.writes == [RUN + "manifest.json", RUN + "junit.xml"]
    assert result.status == "failed" and result.tests_not_run == 0
    assert result.makespan_seconds == 7.5
    report = report_of(bucket)
    assert (report.totals.tests, report.totals.passed, report.totals.failed) == (7, 5, 1)
    assert report.status == "failed"
    # The failure text survives the copy exactly (parsed and escaped again, not spliced).
    assert report.failures[0].details.startswith('expected "a" < b & c')
    markdown = to_markdown(report)
    assert "## Shards (3)" in markdown
    assert "| 1 | 3 | 7.50 s | failed |" in markdown


def test_a_killed_shard_makes_the_run_error_with_its_planned_tests_not_run():
    objects = three_shards()
    for name in ("manifest.json", "junit.xml"):
        del objects[f"{RUN}shards/001/{name}"]
    bucket = MemoryBucket(objects)
    result = merged(
        bucket,
        {"index": 0, "status": "passed"},
        {"index": 1, "error": {"Error": "Sandbox.Timedout", "Cause": "Task timed out"}},
        {"index": 2, "status": "passed"},
    )
    assert result.status == "error"
    assert result.tests_not_run == 3
    manifest = json.loads(bucket.objects[RUN + "manifest.json"])
    assert manifest["shards"][1]["status"] == "timed_out"
    assert manifest["message"].startswith("3 tests not run")
    report = report_of(bucket)
    assert report.status == "error"  # never passed, although every test that ran passed
    assert report.totals.tests == 4 and report.totals.failed == 0
    markdown = to_markdown(report)
    assert "3 tests not run: 1 of 3 shards did not finish" in markdown
    assert json.loads(to_json(report))["metadata"]["tests_not_run"] == 3


def test_a_runners_whole_answer_is_read_by_its_shard_index():
    request = parse_merge_event(
        event({"status": "failed", "exit_code": 1, "shard": {"index": 1, "count": 3}})
    )
    assert request.outcomes[1].status == "failed"


def test_a_shard_missing_from_the_event_and_the_bucket_counts_as_missing():
    objects = three_shards()
    del objects[f"{RUN}shards/002/manifest.json"]
    del objects[f"{RUN}shards/002/junit.xml"]
    bucket = MemoryBucket(objects)
    result = merged(bucket, {"index": 0, "status": "passed"}, {"index": 1, "status": "failed"})
    assert [row.status for row in result.shards] == ["passed", "failed", "missing"]
    assert result.tests_not_run == 2 and result.status == "error"


def test_a_partial_timed_out_shard_counts_only_the_tests_it_did_not_report():
    objects = three_shards()
    objects.update(shard_files(1, "timed_out", junit(suite("B", ["pass"]))))
    bucket = MemoryBucket(objects)
    result = merged(bucket, {"index": 1, "status": "timed_out"})
    assert result.tests_not_run == 2
    assert report_of(bucket).totals.tests == 5


def test_a_hostile_shard_report_is_refused_and_adds_nothing():
    objects = three_shards()
    objects[f"{RUN}shards/001/junit.xml"] = (FIXTURES / "billion_laughs.xml").read_bytes()
    bucket = MemoryBucket(objects)
    result = merged(bucket)
    assert result.shards[1].status == "error"
    assert "DOCTYPE" in (result.shards[1].error or "")
    report = report_of(bucket)
    assert report.totals.tests == 4 and not report.unusable_inputs


def test_a_shard_report_cut_in_the_middle_is_rolled_back():
    objects = three_shards()
    whole = objects[f"{RUN}shards/001/junit.xml"]
    objects[f"{RUN}shards/001/junit.xml"] = whole[: len(whole) // 2]
    bucket = MemoryBucket(objects)
    result = merged(bucket)
    assert result.shards[1].status == "error" and result.tests_not_run == 3
    assert report_of(bucket).totals.tests == 4  # the merged XML stays well-formed


def test_token_limits_apply_to_the_copy():
    out = io.BytesIO()
    writer = JUnitWriter(out, ParseLimits(max_token_bytes=1 << 16, chunk_bytes=4096))
    huge = junit(suite("A", ["pass"])).replace(b'name="A"', b'name="' + b"x" * (1 << 17) + b'"')
    with pytest.raises(JUnitError, match="token"):
        writer.copy(io.BytesIO(huge))
    writer.close()
    assert parse_junit(io.BytesIO(out.getvalue())).tests == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action": "plan"}, "not a merge event"),
        ({"plan_key": "runs/2026-11-29/R1/test/../../x/plan.json"}, "plan_key"),
        ({"plan_key": "reports/2026-11-29/R1/test/plan.json"}, "plan_key"),
        ({"bucket": "../etc"}, "bucket"),
        ({"shards": "all"}, "shards"),
    ],
)
def test_untrusted_events_are_refused(change, message):
    with pytest.raises(MergeRejected, match=message):
        parse_merge_event({**event(), **change})


def test_an_unusable_plan_is_refused():
    bucket = MemoryBucket({PLAN_KEY: b'{"shards": [{"index": 3}]}'})
    with pytest.raises(MergeRejected):
        merged(bucket)
    assert bucket.writes == []


def test_metadata_of_an_unsharded_run_has_no_shard_table():
    assert RunMetadata().shards == ()
    run = classify_key(RUN + "junit.xml")
    assert not isinstance(run, str)
    metadata = run_metadata(run, {"status": "passed"}, None, None)
    report = build_report([("x", io.BytesIO(junit(suite("A", ["pass"]))))], metadata)
    assert "## Shards" not in to_markdown(report)
