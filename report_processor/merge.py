"""Merge a sharded run (issue 13): the shards' results in, one run-level manifest and JUnit out.

Pure core: storage is reached only through `MergeStorage` (report_processor/merge_handler.py
passes the boto3 bucket). Everything read is untrusted: the Step Functions event, plan.json
(written by the runner, but under a prefix the app under test can influence), each shard's
manifest.json and junit.xml.

The run-level manifest.json is written first, then the run-level junit.xml, whose arrival
triggers the normal report processor: one summary, one PassRate datapoint, one history record.
The manifest says `error` whenever a planned shard is missing, crashed or timed out, with the
number of planned tests that did not run: such a run is never `passed`.

The JUnit files are copied by parsing them (expat, DOCTYPE refused so no entity is ever
expanded, token and size limits as report_processor/parse.py applies them) and writing the
parsed events back out, escaped: bytes of a shard's file are never spliced into the output.
Memory stays flat: events stream from each shard's body to the output file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO, Protocol

from report_processor.case_fields import plausible_seconds
from report_processor.process import ObjectTooLarge
from report_processor.routing import RUNNER_STATUSES, RUNS_PREFIX
from report_processor.tally import ParseLimits
from report_processor.xmlstream import JUnitError, feed, open_source, safe_parser

PLAN_FILE = "plan.json"  # runner/layout.py PLAN, held equal by tests/test_layout_contract.py
SHARDS_DIR = "shards"
MANIFEST_FILE = "manifest.json"
JUNIT_FILE = "junit.xml"
PLAN_MAX_BYTES = 4 << 20
MANIFEST_MAX_BYTES = 1 << 20
MAX_SHARDS = 1000
_MAX_ERROR_CHARS = 300
# runs/<date>/<run_id>/<slug>/plan.json, with runner/layout.py's run id and slug rules.
_PLAN_KEY = re.compile(
    r"^runs/\d{4}-\d{2}-\d{2}/[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[a-z0-9._-]{1,100}/plan\.json$"
)
# Step Functions error names of a shard stopped at its deadline rather than crashed.
_TIMEOUT_ERRORS = frozenset({"Sandbox.Timedout", "States.Timeout"})
COMPLETE_STATUSES = frozenset({"passed", "failed"})


class MergeRejected(ValueError):
    """The event or the plan cannot be merged; the message says what is wrong."""


class MergeStorage(Protocol):
    def read_json(self, key: str, max_bytes: int) -> Any | None: ...

    def open_object(self, key: str, version_id: str | None, max_bytes: int) -> BinaryIO | None: ...

    def put_text(self, key: str, text: str, content_type: str) -> None: ...

    def put_file(self, key: str, body: IO[bytes], content_type: str) -> None: ...


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ShardOutcome:
    """What Step Functions says of one shard: the runner's status, or the error it caught."""

    index: int
    status: str | None = None
    error: str | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class MergeRequest:
    bucket: str
    plan_key: str
    outcomes: Mapping[int, ShardOutcome]

    @property
    def run_prefix(self) -> str:
        return self.plan_key[: -len(PLAN_FILE)]

    def shard_prefix(self, index: int) -> str:
        """runs/<date>/<run_id>/<slug>/shards/<i:03d>/ (runner/layout.py shard_prefix)."""
        return f"{self.run_prefix}{SHARDS_DIR}/{index:03d}/"


@dataclass(frozen=True)
class PlannedShard:
    index: int
    tests: int
    estimated_seconds: float


@dataclass(frozen=True)
class Plan:
    run_id: str
    command: str
    started_at: str | None
    tests_total: int
    shards: tuple[PlannedShard, ...]


def parse_merge_event(event: Any) -> MergeRequest:
    """`{"action": "merge", "bucket", "plan_key", "shards": [{"index", "status"} | {"index",
    "error": {"Error", "Cause"}}]}`, as the state machine builds it."""
    if not isinstance(event, Mapping) or event.get("action") != "merge":
        raise MergeRejected('not a merge event: expected {"action": "merge", ...}')
    bucket, plan_key, shards = event.get("bucket"), event.get("plan_key"), event.get("shards")
    if not isinstance(bucket, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise MergeRejected("bucket must be an S3 bucket name")
    if not isinstance(plan_key, str) or not _PLAN_KEY.fullmatch(plan_key) or ".." in plan_key:
        raise MergeRejected(
            "plan_key must be runs/<date>/<run_id>/<command>/plan.json, got "
            f"{str(plan_key)[:120]!r}"
        )
    if not isinstance(shards, list) or len(shards) > MAX_SHARDS:
        raise MergeRejected(f"shards must be a list of at most {MAX_SHARDS} shard outcomes")
    outcomes: dict[int, ShardOutcome] = {}
    for item in shards:
        outcome = _shard_outcome(item)
        if outcome is not None and outcome.index not in outcomes:
            outcomes[outcome.index] = outcome
    return MergeRequest(bucket, plan_key, outcomes)


def _shard_outcome(item: Any) -> ShardOutcome | None:
    if not isinstance(item, Mapping):
        return None
    # The state machine sends {"index", "status"}; a runner's whole answer names its shard.
    shard = item.get("shard")
    index = _int(item.get("index", shard.get("index") if isinstance(shard, Mapping) else None))
    if index is None or not 0 <= index < MAX_SHARDS:
        return None
    error = item.get("error")
    if error is not None:
        name = _short(error.get("Error") if isinstance(error, Mapping) else error) or "error"
        cause = _short(error.get("Cause")) if isinstance(error, Mapping) else None
        text = f"{name}: {cause}" if cause else name
        return ShardOutcome(index, error=text[:_MAX_ERROR_CHARS], timed_out=name in _TIMEOUT_ERRORS)
    status = item.get("status")
    return ShardOutcome(index, status=status if status in RUNNER_STATUSES else None)


def parse_plan(document: Any, plan_key: str) -> Plan:
    if not isinstance(document, Mapping):
        raise MergeRejected(f"{plan_key} is missing or not a JSON object: nothing to merge")
    raw_shards = document.get("shards")
    if not isinstance(raw_shards, list) or not 0 < len(raw_shards) <= MAX_SHARDS:
        raise MergeRejected(f"{plan_key}: shards must be a list of 1 to {MAX_SHARDS} shards")
    shards = []
    for position, raw in enumerate(raw_shards):
        raw = raw if isinstance(raw, Mapping) else {}
        classes = raw.get("classes")
        tests = sum(
            min(max(_int(item.get("tests")) or 0, 0), 10**9)
            for item in (classes if isinstance(classes, list) else [])
            if isinstance(item, Mapping)
        )
        index = _int(raw.get("index"))
        estimate = plausible_seconds(raw.get("estimated_seconds"))
        shards.append(PlannedShard(position if index is None else index, tests, estimate or 0.0))
    if sorted(shard.index for shard in shards) != list(range(len(shards))):
        raise MergeRejected(f"{plan_key}: shard indexes must be 0 to {len(shards) - 1}, once each")
    run_id = _short(document.get("run_id"))
    command = _short(document.get("command"))
    if not run_id or not command:
        raise MergeRejected(f"{plan_key}: run_id and command are required")
    return Plan(
        run_id=run_id,
        command=command,
        started_at=_short(document.get("started_at")),
        tests_total=sum(shard.tests for shard in shards),
        shards=tuple(sorted(shards, key=lambda shard: shard.index)),
    )


# --------------------------------------------------------------------------- JUnit copy


class JUnitWriter:
    """Writes one `<testsuites>` document from the shards' suites, streaming."""

    def __init__(self, out: IO[bytes], limits: ParseLimits | None = None) -> None:
        self.out = out
        self.limits = limits or ParseLimits()
        out.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n')

    def copy(self, stream: BinaryIO) -> int:
        """Copy the suites of one shard's report; returns its testcase count. On JUnitError the
        output is rolled back to before this shard, so a broken file adds nothing."""
        start = self.out.tell()
        try:
            return self._copy(stream)
        except JUnitError:
            self.out.seek(start)
            self.out.truncate()
            raise

    def close(self) -> None:
        self.out.write(b"</testsuites>\n")
        self.out.flush()

    def _copy(self, stream: BinaryIO) -> int:
        source = open_source(stream, self.limits, "the shard wrote no JUnit report")
        parser = safe_parser(source)
        write = self.out.write
        depth = 0
        # 1 when the root is <testsuites> (its children are copied), 0 for a <testsuite> root.
        skip = 0
        testcases = 0

        def start(name: str, attrs: list[str]) -> None:
            nonlocal depth, skip, testcases
            if depth == 0:
                if name not in ("testsuites", "testsuite"):
                    raise JUnitError(
                        f"not a JUnit XML report: the root element is <{name[:80]}>, "
                        "expected <testsuites> or <testsuite>"
                    )
                skip = 1 if name == "testsuites" else 0
            depth += 1
            if depth <= skip:
                return
            if name == "testcase":
                testcases += 1
            pairs = "".join(
                f' {attrs[i]}="{_attribute(attrs[i + 1])}"' for i in range(0, len(attrs), 2)
            )
            write(f"<{name}{pairs}>".encode())

        def end(name: str) -> None:
            nonlocal depth
            depth -= 1
            if depth >= skip:
                write(f"</{name}>".encode())
            if depth == skip:
                write(b"\n")

        def text(data: str) -> None:
            if depth > skip:
                write(_text(data).encode())

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = text
        feed(parser, source)
        return testcases


def _text(data: str) -> str:
    return data.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    return (
        _text(value)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


# --------------------------------------------------------------------------- the merge


@dataclass(frozen=True)
class ShardRecord:
    """One row of the run-level manifest's `shards` table."""

    index: int
    status: str  # a runner status, or "missing" when the shard left no manifest
    tests: int
    seconds: float | None
    error: str | None


@dataclass(frozen=True)
class MergeResult:
    run_key: str  # the run-level junit.xml
    status: str
    tests_not_run: int
    shards: tuple[ShardRecord, ...]
    makespan_seconds: float
    manifest: dict[str, Any]

    def response(self) -> dict[str, Any]:
        """The merge function's answer, the execution's output (small: no manifest copy)."""
        return {
            "status": self.status,
            "junit_key": self.run_key,
            "tests_not_run": self.tests_not_run,
            "makespan_seconds": self.makespan_seconds,
            "shards": [
                {"index": row.index, "status": row.status, "tests": row.tests}
                for row in self.shards
            ],
        }


def merge_run(
    request: MergeRequest,
    storage: MergeStorage,
    spool: Callable[[], IO[bytes]],
    limits: ParseLimits | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> MergeResult:
    """Read the plan and each shard, write the run's manifest.json then its junit.xml."""
    plan = parse_plan(storage.read_json(request.plan_key, PLAN_MAX_BYTES), request.plan_key)
    rows: list[ShardRecord] = []
    not_run = 0
    with spool() as out:
        writer = JUnitWriter(out, limits)
        for planned in plan.shards:
            row = _merge_shard(request, planned, storage, writer)
            rows.append(row)
            if row.status not in COMPLETE_STATUSES:
                not_run += max(0, planned.tests - row.tests)
        writer.close()
        manifest = run_manifest(plan, rows, not_run, now())
        run_prefix = request.run_prefix
        storage.put_text(run_prefix + MANIFEST_FILE, _json(manifest), "application/json")
        out.seek(0)
        storage.put_file(run_prefix + JUNIT_FILE, out, "application/xml")
    return MergeResult(
        run_prefix + JUNIT_FILE,
        manifest["status"],
        not_run,
        tuple(rows),
        manifest["makespan_seconds"],
        manifest,
    )


def _merge_shard(
    request: MergeRequest, planned: PlannedShard, storage: MergeStorage, writer: JUnitWriter
) -> ShardRecord:
    prefix = request.shard_prefix(planned.index)
    outcome = request.outcomes.get(planned.index)
    manifest = storage.read_json(prefix + MANIFEST_FILE, MANIFEST_MAX_BYTES)
    manifest = manifest if isinstance(manifest, Mapping) else {}
    recorded = manifest.get("status")
    status = recorded if recorded in RUNNER_STATUSES else None
    error = _short(manifest.get("message")) if status not in COMPLETE_STATUSES else None
    if outcome is not None and outcome.error is not None:
        # Step Functions' word wins: the invocation crashed, whatever the shard wrote first.
        status = "timed_out" if outcome.timed_out else "error"
        error = outcome.error
    elif status is None:
        status = "missing"
        error = "the shard left no manifest.json (it never ran, or crashed before uploading)"
    tests = 0
    try:
        body = storage.open_object(
            prefix + JUNIT_FILE, None, writer.limits.max_input_bytes or 2**62
        )
    except ObjectTooLarge as problem:
        body, status, error = None, "error", f"junit.xml unusable: {problem}"
    if body is not None:
        try:
            tests = writer.copy(body)
        except JUnitError as problem:
            status, error = "error", f"junit.xml unusable: {problem}"
        finally:
            body.close()
    elif status in COMPLETE_STATUSES:
        status, error = "error", "the shard left no junit.xml"
    return ShardRecord(
        planned.index,
        status,
        tests,
        plausible_seconds(manifest.get("duration_seconds")),
        error[:_MAX_ERROR_CHARS] if error else None,
    )


def run_manifest(
    plan: Plan, rows: list[ShardRecord], tests_not_run: int, finished: datetime
) -> dict[str, Any]:
    """The run-level manifest.json: the runner's manifest fields plus `shards`."""
    incomplete = [row for row in rows if row.status not in COMPLETE_STATUSES]
    if incomplete:
        status = "error"
        message = (
            f"{_count(tests_not_run, 'test')} not run: shard(s) "
            f"{', '.join(str(row.index) for row in incomplete)} of {len(rows)} did not finish"
        )
    elif any(row.status == "failed" for row in rows):
        status, message = "failed", None
    else:
        status, message = "passed", None
    started = _instant(plan.started_at)
    makespan = max((row.seconds or 0.0 for row in rows), default=0.0)
    wall = (finished - started).total_seconds() if started else None
    return {
        "run_id": plan.run_id,
        "command": plan.command,
        "status": status,
        "exit_code": {"passed": 0, "failed": 1}.get(status, 2),
        "started_at": plan.started_at,
        "finished_at": finished.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "duration_seconds": round(wall, 3) if wall is not None and wall >= 0 else None,
        "makespan_seconds": round(makespan, 3),
        "message": message,
        "tests_planned": plan.tests_total,
        "tests_not_run": tests_not_run,
        "shards": [asdict(row) for row in rows],
    }


# --------------------------------------------------------------------------- small helpers


def _json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _count(value: int, noun: str) -> str:
    return f"{value} {noun}" + ("" if value == 1 else "s")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _short(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:_MAX_ERROR_CHARS]


__all__ = [
    "RUNS_PREFIX",
    "JUnitWriter",
    "MergeRejected",
    "MergeRequest",
    "MergeResult",
    "MergeStorage",
    "Plan",
    "ShardRecord",
    "merge_run",
    "parse_merge_event",
    "parse_plan",
    "run_manifest",
]
