"""The report processor's one core: one S3 object in, summaries written, the metrics to publish out.

It talks to storage only through the `Storage` protocol (the boto3 `ResultsBucket` in aws.py
implements it; tests may pass anything that does), and publishes nothing itself: it returns the
metric values and the handler emits them. History and sharding plug in here.

Flow per object: route the key (only runs/<date>/<run_id>/<slug>/junit.xml) -> skip if this object
version was already processed (marker) -> open the object (gone: log and skip, nothing written) ->
read manifest.json beside it -> open the run's history (when a history store is given) ->
stream-parse, each testcase recorded as it goes -> finish the history (rows, digest, run record,
index; the comparison with earlier runs) -> write reports/<run path>/summary.md|json -> move
reports/latest/ forward (never to an earlier run) -> claim the marker with a conditional put ->
only when the claim won: send the notification (when the history decided one) and return the
metrics for the caller to publish.

History is advisory: any error in it is logged and the summary is written without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote

from report_processor.config import ProcessorConfig
from report_processor.fold import OnCase
from report_processor.history.keys import HistoryScope
from report_processor.history.records import run_info_from_manifest
from report_processor.history.section import SUMMARY_LINK_PLACEHOLDER, HistorySection
from report_processor.history.session import HistorySession
from report_processor.history.storage import HistoryStore
from report_processor.history.testid import stable_test_id
from report_processor.model import InputResult, Report, RunMetadata
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

logger = logging.getLogger(__name__)


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


class Notifier(Protocol):
    """Where a run's notification goes (SNS in the shell: aws.SnsNotifier)."""

    def publish(self, subject: str, body: str, attributes: dict[str, dict[str, str]]) -> None: ...


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
    # "recorded", "off" (no history store) or "failed: <why>" (the summary has no history).
    history: str | None = None
    notified: str | None = None  # "sent", "failed: <why>"; None when there was nothing to send
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
            "history": self.history,
            "notified": self.notified,
        }
        return {name: value for name, value in fields.items() if value is not None}


def process_object(
    record: S3Record,
    storage: Storage,
    config: ProcessorConfig,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    history: HistoryStore | None = None,
    notifier: Notifier | None = None,
) -> Outcome:
    """One JUnit object: summaries written; history recorded when `history` is given; the
    notification sent through `notifier` and the metrics returned once the marker is claimed."""
    run = classify_key(record.key)
    if isinstance(run, str):
        return Outcome(record.key, "ignored", reason=run)
    marker = marker_key(record.bucket, record.key, record.dedup_id)
    if storage.exists(marker):
        return Outcome(record.key, "duplicate", reason="already processed")

    body, too_large = _open_junit(record, storage, config)
    if body is None and too_large is None:
        # Deleted (or overwritten by a delete marker) before we got to it: nothing to report,
        # and certainly not an "unusable" summary over reports/latest/.
        return Outcome(record.key, "gone", reason="the object no longer exists")

    manifest = storage.read_json(run.manifest_key, MANIFEST_MAX_BYTES)
    metadata = run_metadata(run, manifest, config.project, config.environment)
    recorder = _HistoryRun.open(history, config, run.command_slug, run.run_id, manifest, now)
    report = _report(record, storage, config, body, too_large, metadata, recorder)
    if report is None:
        return Outcome(record.key, "gone", reason="the object no longer exists")
    summary_key = f"{run.report_prefix}summary.md"
    report = _with_history(report, recorder, record.bucket, summary_key, config)
    latest = _write_summaries(
        storage, run.report_prefix, summary_key, report, config, metadata.started_at
    )

    claim = _claim_body(record, now)
    base = Outcome(
        record.key,
        "processed",
        status=report.status,
        report_prefix=run.report_prefix,
        latest=latest,
        command=metric_command(metadata, run, config.commands),
        history=recorder.state,
    )
    if not storage.claim(marker, claim):
        return replace(base, outcome="duplicate", reason="a concurrent delivery published it")
    notified = _notify(notifier, report.history)
    return replace(base, metrics=metrics_for(report), notified=notified)


def _open_junit(
    record: S3Record, storage: Storage, config: ProcessorConfig
) -> tuple[BinaryIO | None, str | None]:
    """(stream, None), (None, why) when over the byte limit, or (None, None) when gone."""
    try:
        return storage.open_object(record.key, record.version_id, config.max_object_bytes), None
    except ObjectTooLarge as error:
        return None, str(error)


def _report(
    record: S3Record,
    storage: Storage,
    config: ProcessorConfig,
    body: BinaryIO | None,
    too_large: str | None,
    metadata: RunMetadata,
    recorder: _HistoryRun,
) -> Report | None:
    """The object's report, each testcase recorded as it is parsed; None when the object is
    gone by the time a failed recording makes us read it again."""
    name = f"s3://{record.bucket}/{record.key}"
    if body is None:
        return _unusable(name, too_large or "unreadable", metadata)
    try:
        return _parse(name, body, metadata, config, recorder.on_case)
    except Exception as error:
        if recorder.session is None:
            raise
        # The recorder itself failed mid-parse (a full /tmp): parse again without it.
        recorder.fail(error)
        body = storage.open_object(record.key, record.version_id, config.max_object_bytes)
        if body is None:
            return None
        return _parse(name, body, metadata, config, None)


def _with_history(
    report: Report, recorder: _HistoryRun, bucket: str, summary_key: str, config: ProcessorConfig
) -> Report:
    """The report with its history section (when there is one), linked to its summary."""
    report = replace(report, history=recorder.finish(report, config.history.app_roots))
    if report.history is not None:
        linked = _with_link(report.history, bucket, summary_key, config)
        report = replace(report, history=linked)
    return report


def _write_summaries(
    storage: Storage,
    report_prefix: str,
    summary_key: str,
    report: Report,
    config: ProcessorConfig,
    started_at: str | None,
) -> str:
    """summary.json and summary.md (`summary_key`) under the run's prefix, then reports/latest/
    (the result: "replaced" or "kept")."""
    markdown = to_markdown(report, config.max_markdown_bytes)
    document = to_json(report)
    storage.put_text(f"{report_prefix}summary.json", document, "application/json")
    storage.put_text(summary_key, markdown, "text/markdown")
    return advance_latest(storage, started_at, document, markdown)


def _claim_body(record: S3Record, now: Callable[[], datetime]) -> str:
    return json.dumps(
        {
            "bucket": record.bucket,
            "key": record.key,
            "version": record.dedup_id,
            "processed_at": now().isoformat(),
        }
    )


def _parse(
    name: str,
    body: BinaryIO,
    metadata: RunMetadata,
    config: ProcessorConfig,
    on_case: OnCase | None,
) -> Report:
    try:
        return build_report([(name, body)], metadata, config.parse_limits(), config.paths, on_case)
    finally:
        body.close()


@dataclass
class _HistoryRun:
    """One report's history, advisory from end to end: any failure is logged, and the report
    is written without a history section."""

    session: HistorySession | None
    state: str
    reopen: Callable[[], HistorySession] | None = None

    @classmethod
    def open(
        cls,
        store: HistoryStore | None,
        config: ProcessorConfig,
        slug: str,
        run_id: str | None,
        manifest: Any,
        now: Callable[[], datetime],
    ) -> _HistoryRun:
        if store is None:
            return cls(None, "off")

        def start() -> HistorySession:
            scope = HistoryScope(config.project, config.environment, slug)
            info = run_info_from_manifest(manifest, run_id, now())
            return HistorySession.open(store, scope, info, config.history, now)

        try:
            return cls(start(), "recorded", start)
        except Exception as error:  # noqa: BLE001 (history never stops a report)
            logger.exception("history: could not open; the report goes without it")
            return cls(None, f"failed: {_why(error)}")

    @property
    def on_case(self) -> OnCase | None:
        return self.session.on_case if self.session is not None else None

    def fail(self, error: BaseException) -> None:
        logger.error("history: recording failed (%s); the report goes without it", _why(error))
        if self.session is not None:
            self.session.discard()
        self.session, self.state = None, f"failed: {_why(error)}"

    def finish(self, report: Report, app_roots: tuple[str, ...]) -> HistorySection | None:
        session = self.session
        if session is None:
            return None
        try:
            if report.unusable_inputs:
                # What was recorded may be half a file: keep none of it, and record the run as
                # one in which no test ran (failed wholesale: never a baseline, never flaky).
                session.discard()
                assert self.reopen is not None  # noqa: S101 (set whenever session is)
                session = self.reopen()
            messages = {
                stable_test_id(f.file, f.classname, f.name, app_roots): f.message or f.details
                for f in report.failures
            }
            section = session.finish(messages)
            if report.unusable_inputs:
                note = "the JUnit report was unusable: recorded as a run in which no test ran"
                section = replace(section, notes=(note, *section.notes))
            return section
        except Exception as error:  # noqa: BLE001 (history never stops a report)
            logger.exception("history: could not record the run; the report goes without it")
            self.session, self.state = None, f"failed: {_why(error)}"
            return None


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}"


def summary_console_url(bucket: str, key: str, region: str) -> str:
    """The S3 console page of one object (where a notification's reader opens the summary)."""
    return (
        f"https://{quote(region, safe='')}.console.aws.amazon.com/s3/object/"
        f"{quote(bucket, safe='')}?region={quote(region, safe='')}&prefix={quote(key, safe='')}"
    )


def _with_link(
    section: HistorySection, bucket: str, key: str, config: ProcessorConfig
) -> HistorySection:
    note = section.notification
    if note is None:
        return section
    url = summary_console_url(bucket, key, config.region)
    return replace(
        section, notification=replace(note, body=note.body.replace(SUMMARY_LINK_PLACEHOLDER, url))
    )


def _notify(notifier: Notifier | None, section: HistorySection | None) -> str | None:
    """Send the run's notification; a failure is logged, never raised (the report is out)."""
    if notifier is None or section is None or section.notification is None:
        return None
    note = section.notification
    try:
        notifier.publish(note.subject, note.body, note.attributes)
    except Exception as error:  # noqa: BLE001 (the marker is claimed: a retry would not resend)
        logger.exception("notification not sent")
        return f"failed: {_why(error)}"
    return "sent"


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
    if report.history is not None:
        counts = report.history.counts
        metrics.extend(
            Metric(name, "Count", value)
            for name, value in (
                ("NewFailures", counts.new_failures),
                ("FixedTests", counts.fixed),
                ("FlakyTests", counts.flaky),
                ("QuarantinedTests", counts.quarantined),
            )
        )
    # Quarantined tests are left out (Report.pass_rate), as in the history section.
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


def _unusable(name: str, error: str, metadata: RunMetadata) -> Report:
    return replace(build_report([], metadata), inputs=(InputResult(name, False, error),))


__all__ = [
    "Metric",
    "Notifier",
    "ObjectTooLarge",
    "Outcome",
    "S3Record",
    "Storage",
    "advance_latest",
    "metrics_for",
    "parse_instant",
    "process_object",
    "summary_console_url",
]
