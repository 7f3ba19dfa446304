"""Lambda entry: S3 ObjectCreated events for runs/**/*.xml -> reports/ summaries + EMF metrics.

Flow per record: skip if this object version was already processed (marker) -> read manifest.json
beside the JUnit file -> stream-parse the JUnit object -> write reports/<run path>/summary.md|json
and reports/latest/ -> claim the marker with a conditional put -> publish metrics only if the claim
won. S3 delivers at least once, so a redelivered or concurrent duplicate publishes nothing twice.
An unusable report still gets a summary that says so and ReportParseErrors=1; the function returns
normally so Lambda does not retry what can never succeed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from report_processor.aws import ObjectTooLarge, ResultsBucket
from report_processor.model import InputResult, Report, RunMetadata
from report_processor.parse import ParseLimits
from report_processor.render import DEFAULT_MAX_BYTES, MIN_MAX_BYTES, to_json, to_markdown
from report_processor.routing import (
    LATEST_PREFIX,
    RunObject,
    classify_key,
    marker_key,
    metric_command,
    run_metadata,
)
from report_processor.summary import build_report

DEFAULT_NAMESPACE = "LambdaTestRunner"
DEFAULT_MAX_OBJECT_BYTES = 1 << 30
MANIFEST_MAX_BYTES = 1 << 20

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "report-processor")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class HandlerConfig:
    project: str
    environment: str
    namespace: str
    max_markdown_bytes: int = DEFAULT_MAX_BYTES
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HandlerConfig:
        env = os.environ if env is None else env
        return cls(
            project=env.get("PROJECT") or "unknown",
            environment=env.get("ENVIRONMENT") or "unknown",
            namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
            max_markdown_bytes=_int_env(env, "REPORT_MAX_BYTES", DEFAULT_MAX_BYTES, MIN_MAX_BYTES),
            max_object_bytes=_int_env(env, "REPORT_MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, 1),
        )


def _int_env(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number of bytes") from None
    if value < minimum:
        raise ConfigError(f"{name}={value}: must be at least {minimum}")
    return value


@dataclass(frozen=True)
class S3Record:
    bucket: str
    key: str
    version_id: str | None
    # Version id, else sequencer, else eTag: what makes a second delivery a duplicate.
    dedup_id: str


def parse_event(event: Any) -> tuple[list[S3Record], list[str]]:
    """Validated records, plus one line per record that is not an S3 ObjectCreated record."""
    records, problems = [], []
    raw_records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(raw_records, list):
        return [], ["event has no Records list: not an S3 notification"]
    for index, raw in enumerate(raw_records):
        try:
            event_name = str(raw.get("eventName", ""))
            s3 = raw["s3"]
            bucket = str(s3["bucket"]["name"])
            obj = s3["object"]
            key = unquote_plus(str(obj["key"]))
        except (AttributeError, KeyError, TypeError):
            problems.append(f"record {index}: not an S3 event record")
            continue
        if raw.get("eventSource") not in (None, "aws:s3") or not event_name.startswith(
            "ObjectCreated"
        ):
            problems.append(f"record {index}: {event_name or 'unknown event'} is not ObjectCreated")
            continue
        version_id = obj.get("versionId") or None
        dedup_id = version_id or obj.get("sequencer") or obj.get("eTag") or ""
        records.append(S3Record(bucket, key, version_id and str(version_id), str(dedup_id)))
    return records, problems


def handler(event: dict, context: Any) -> dict:
    config = HandlerConfig.from_env()
    records, problems = parse_event(event)
    for problem in problems:
        logger.warning("ignoring event record", extra={"reason": problem})
    results, failures = [], []
    for record in records:
        run = classify_key(record.key)
        if isinstance(run, str):
            logger.info("ignoring object", extra={"key": record.key, "reason": run})
            results.append({"key": record.key, "outcome": "ignored", "reason": run})
            continue
        try:
            results.append(process_record(record, run, config, ResultsBucket(record.bucket)))
        except Exception:  # one bad record must not hide the others; retried below
            logger.exception("failed to process object", extra={"key": record.key})
            failures.append(record.key)
    if failures:
        # Lambda retries the event: summaries are idempotent and markers stop double metrics.
        raise RuntimeError(f"could not process {len(failures)} object(s): {failures}")
    return {"results": results}


def process_record(
    record: S3Record, run: RunObject, config: HandlerConfig, bucket: ResultsBucket
) -> dict:
    marker = marker_key(record.bucket, record.key, record.dedup_id)
    if bucket.exists(marker):
        logger.info("already processed; not publishing again", extra={"key": record.key})
        return {"key": record.key, "outcome": "duplicate"}

    manifest = bucket.read_json(run.manifest_key, MANIFEST_MAX_BYTES)
    metadata = run_metadata(run, manifest, config.project, config.environment)
    report = _build(record, config, bucket, metadata)
    markdown = to_markdown(report, config.max_markdown_bytes)
    document = to_json(report)
    for prefix in (run.report_prefix, LATEST_PREFIX):
        bucket.put_text(f"{prefix}summary.json", document, "application/json")
        bucket.put_text(f"{prefix}summary.md", markdown, "text/markdown")

    claim = json.dumps(
        {
            "bucket": record.bucket,
            "key": record.key,
            "version": record.dedup_id,
            "processed_at": datetime.now(UTC).isoformat(),
        }
    )
    if not bucket.claim(marker, claim):
        logger.info("a concurrent delivery published this object", extra={"key": record.key})
        return {"key": record.key, "outcome": "duplicate", "report_prefix": run.report_prefix}
    publish_metrics(report, config, metric_command(metadata, run))
    logger.info(
        "report written",
        extra={"key": record.key, "report_prefix": run.report_prefix, "status": report.status},
    )
    return {
        "key": record.key,
        "outcome": "processed",
        "status": report.status,
        "report_prefix": run.report_prefix,
    }


def _build(
    record: S3Record,
    config: HandlerConfig,
    bucket: ResultsBucket,
    metadata: RunMetadata,
) -> Report:
    name = f"s3://{record.bucket}/{record.key}"
    try:
        body = bucket.open_object(record.key, record.version_id, config.max_object_bytes)
    except ObjectTooLarge as error:
        return _unusable(name, str(error), metadata)
    if body is None:
        return _unusable(name, "the object no longer exists (deleted before processing)", metadata)
    limits = ParseLimits(max_input_bytes=config.max_object_bytes)
    try:
        return build_report([(name, body)], metadata, limits)
    finally:
        body.close()


def _unusable(name: str, error: str, metadata: RunMetadata) -> Report:
    return replace(build_report([], metadata), inputs=(InputResult(name, False, error),))


def publish_metrics(report: Report, config: HandlerConfig, command: str) -> None:
    # EphemeralMetrics: this record's dimensions only, no state shared across records or
    # invocations; service="" keeps Powertools from adding a fourth "service" dimension.
    metrics = EphemeralMetrics(namespace=config.namespace, service="")
    metrics.add_dimension(name="Project", value=config.project)
    metrics.add_dimension(name="Environment", value=config.environment)
    metrics.add_dimension(name="Command", value=command)
    unusable = len(report.unusable_inputs)
    metrics.add_metric(name="ReportParseErrors", unit=MetricUnit.Count, value=unusable)
    if not unusable:
        totals = report.totals
        for name, value in (
            ("TestsTotal", totals.tests),
            ("TestsPassed", totals.passed),
            ("TestsFailed", totals.failed),
            ("TestsErrored", totals.errors),
            ("TestsSkipped", totals.skipped),
            ("TestsFlaky", totals.flaky),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.add_metric(
            name="DurationSeconds", unit=MetricUnit.Seconds, value=totals.duration_seconds
        )
        if report.pass_rate is not None:
            metrics.add_metric(
                name="PassRate", unit=MetricUnit.Percent, value=round(report.pass_rate * 100, 4)
            )
    metrics.flush_metrics()
