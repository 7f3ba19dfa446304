"""The report processor's one core: one S3 object in, summaries written, the metrics to publish out.

It talks to storage only through the `Storage` protocol (the boto3 `ResultsBucket` in aws.py
implements it; tests may pass anything that does), and publishes nothing itself: it returns the
metric values and the handler emits them. History and sharding plug in here.

Flow per object: route the key (only runs/<date>/<run_id>/<slug>/junit.xml) -> skip if this object
version was already processed (marker) -> open the object (gone: log and skip, nothing written) ->
read manifest.json beside it -> stream-parse -> write reports/<run path>/summary.md|json -> move
reports/latest/ forward (never to an earlier run) -> claim the marker with a conditional put ->
the caller publishes the metrics only when the claim won.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol

from report_processor.config import ProcessorConfig
from report_processor.model import InputResult, Report, RunMetadata
from report_processor.parse import ParseLimits
from report_processor.render import to_json, to_markdown
from report_processor.routing import (
    LATEST_PREFIX,
    classify_key,
    marker_key,
    metric_command,
    run_metadata,
)
from report_processor.summary import build_report

MANIFEST_MAX_BYTES = 1 << 20
LATEST_SUMMARY_MAX_BYTES = 16 << 20
LATEST_JSON = f"{LATEST_PREFIX}summary.json"
LATEST_MARKDOWN = f"{LATEST_PREFIX}summary.md"
# Concurrent writers of reports/latest/ retry this often before the record is retried as a whole.
LATEST_ATTEMPTS = 5


class ObjectTooLarge(Exception):
    """The JUnit object is over the configured byte limit; the report says so."""


class Storage(Protocol):
    """What the core needs of the results bucket."""

    def exists(self, key: str) -> bool: ...

    def read_json(self, key: str, max_bytes: int) -> Any | None: ...

    def read_json_with_etag(self, key: str, max_bytes: int) -> tuple[Any | None, str | None]:
        """(document or None when unreadable, ETag or None when the object does not exist)."""
        ...

    def open_object(self, key: str, version_id: str | None, max_bytes: int) -> BinaryIO | None:
        """A streaming body, None when the object is gone; ObjectTooLarge over max_bytes."""
        ...

    def put_text(self, key: str, text: str, content_type: str) -> None: ...

    def put_text_if(self, key: str, text: str, content_type: str, etag: str | None) -> bool:
        """Write only if the object still has `etag` (absent when None); False when it changed."""
        ...

    def etag(self, key: str) -> str | None: ...

    def claim(self, key: str, body: str) -> bool: ...


@dataclass(frozen=True)
class S3Record:
    bucket: str
    key: str
    version_id: str | None
    # Version id, else sequencer, else eTag: what makes a second delivery a duplicate.
    dedup_id: str


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # "Count", "Seconds" or "Percent"
    value: float


@dataclass(frozen=True)
class Outcome:
    key: str
    outcome: str  # "ignored", "gone", "duplicate" or "processed"
    reason: str | None = None
    status: str | None = None
    report_prefix: str | None = None
    latest: str | None = None  # "replaced" or "kept" (a later run is already there)
    command: str | None = None  # the Command metric dimension
    metrics: tuple[Metric, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, str]:
        """The handler's result line: what happened, without the metric values."""
        fields = {
            "key": self.key,
            "outcome": self.outcome,
            "reason": self.reason,
            "status": self.status,
            "report_prefix": self.report_prefix,
            "latest": self.latest,
        }
        return {name: value for name, value in fields.items() if value is not None}


def process_object(
    record: S3Record,
    storage: Storage,
    config: ProcessorConfig,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    run = classify_key(record.key)
    if isinstance(run, str):
        return Outcome(record.key, "ignored", reason=run)
    marker = marker_key(record.bucket, record.key, record.dedup_id)
    if storage.exists(marker):
        return Outcome(record.key, "duplicate", reason="already processed")

    name = f"s3://{record.bucket}/{record.key}"
    too_large: str | None = None
    try:
        body = storage.open_object(record.key, record.version_id, config.max_object_bytes)
    except ObjectTooLarge as error:
        body, too_large = None, str(error)
    if body is None and too_large is None:
        # Deleted (or overwritten by a delete marker) before we got to it: nothing to report,
        # and certainly not an "unusable" summary over reports/latest/.
        return Outcome(record.key, "gone", reason="the object no longer exists")

    manifest = storage.read_json(run.manifest_key, MANIFEST_MAX_BYTES)
    metadata = run_metadata(run, manifest, config.project, config.environment)
    if body is None:
        report = _unusable(name, too_large or "unreadable", metadata)
    else:
        try:
            report = build_report([(name, body)], metadata, _limits(config), config.paths)
        finally:
            body.close()

    markdown = to_markdown(report, config.max_markdown_bytes)
    document = to_json(report)
    storage.put_text(f"{run.report_prefix}summary.json", document, "application/json")
    storage.put_text(f"{run.report_prefix}summary.md", markdown, "text/markdown")
    latest = advance_latest(storage, metadata.started_at, document, markdown)

    claim = json.dumps(
        {
            "bucket": record.bucket,
            "key": record.key,
            "version": record.dedup_id,
            "processed_at": now().isoformat(),
        }
    )
    base = Outcome(
        record.key,
        "processed",
        status=report.status,
        report_prefix=run.report_prefix,
        latest=latest,
        command=metric_command(metadata, run, config.commands),
    )
    if not storage.claim(marker, claim):
        return replace(base, outcome="duplicate", reason="a concurrent delivery published it")
    return replace(base, metrics=metrics_for(report))


def advance_latest(storage: Storage, started_at: str | None, document: str, markdown: str) -> str:
    """Point reports/latest/ at this run unless a run that started later is already there.

    Each write is conditional on the ETag read just before (If-Match, or If-None-Match when the
    object is absent), so two writers racing cannot move latest backwards: the loser re-reads
    and decides again.
    """
    ours = parse_instant(started_at)
    for _ in range(LATEST_ATTEMPTS):
        current, json_etag = storage.read_json_with_etag(LATEST_JSON, LATEST_SUMMARY_MAX_BYTES)
        markdown_etag = storage.etag(LATEST_MARKDOWN)
        theirs = parse_instant(_started_at(current))
        if theirs is not None and (ours is None or ours < theirs):
            return "kept"
        if not storage.put_text_if(LATEST_JSON, document, "application/json", json_etag):
            continue
        if not storage.put_text_if(LATEST_MARKDOWN, markdown, "text/markdown", markdown_etag):
            continue
        return "replaced"
    raise RuntimeError(
        f"reports/latest/ kept changing during {LATEST_ATTEMPTS} attempts; the record is retried"
    )


def metrics_for(report: Report) -> tuple[Metric, ...]:
    """The values behind the alarms; see the status table in the report-processor docs.

    TestsTotal is the number of testcases, except 0 when nothing executed (no testcase, or all
    skipped) or the runner did not finish, so the too-few-tests alarm fires on such a night.
    """
    metrics = [
        Metric("ReportParseErrors", "Count", len(report.unusable_inputs)),
        # 1 for any verdict but passed (a failed command over a clean report included): the
        # run-not-passed alarm's metric, published for unusable reports too.
        Metric("RunsNotPassed", "Count", int(report.status != "passed")),
    ]
    if report.unusable_inputs:
        return tuple(metrics)
    totals = report.totals
    complete = report.status not in ("timed_out", "error", "rejected")
    tests_total = totals.tests if complete and totals.executed > 0 else 0
    metrics.extend(
        Metric(name, "Count", value)
        for name, value in (
            ("TestsTotal", tests_total),
            ("TestsPassed", totals.passed),
            ("TestsFailed", totals.failed),
            ("TestsErrored", totals.errors),
            ("TestsSkipped", totals.skipped),
            ("TestsFlaky", totals.flaky),
        )
    )
    metrics.append(Metric("DurationSeconds", "Seconds", totals.duration_seconds))
    if report.pass_rate is not None:
        metrics.append(Metric("PassRate", "Percent", round(report.pass_rate * 100, 4)))
    return tuple(metrics)


def parse_instant(value: str | None) -> datetime | None:
    """An ISO 8601 instant (the runner writes `2025-11-27T02:00:00.000Z`); None when not one."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _started_at(document: Any) -> str | None:
    if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
        return None
    value = document["metadata"].get("started_at")
    return value if isinstance(value, str) else None


def _limits(config: ProcessorConfig) -> ParseLimits:
    return ParseLimits(
        max_input_bytes=config.max_object_bytes, max_token_bytes=config.max_token_bytes
    )


def _unusable(name: str, error: str, metadata: RunMetadata) -> Report:
    return replace(build_report([], metadata), inputs=(InputResult(name, False, error),))


__all__ = [
    "Metric",
    "ObjectTooLarge",
    "Outcome",
    "S3Record",
    "Storage",
    "advance_latest",
    "metrics_for",
    "parse_instant",
    "process_object",
]
