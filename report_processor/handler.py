"""Lambda entry: S3 ObjectCreated events for runs/<date>/<run_id>/<slug>/junit.xml.

A thin shell: it parses the event, hands each record to `process.process_object` with the boto3
bucket, its history store and the SNS notifier (when NOTIFICATION_TOPIC_ARN is set), publishes the
metrics the core returns as Embedded Metric Format, and returns. S3 delivers
at least once: the core's markers make a redelivered or concurrent duplicate publish nothing twice.
An unusable report still gets a summary that says so and ReportParseErrors=1; the function returns
normally so Lambda does not retry what can never succeed.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from report_processor.aws import ResultsBucket, SnsNotifier
from report_processor.config import ConfigError, ProcessorConfig
from report_processor.history.s3 import S3HistoryStore
from report_processor.process import Outcome, S3Record, process_object

# Kept under their old names for callers of the first version.
HandlerConfig = ProcessorConfig
__all__ = ["ConfigError", "HandlerConfig", "handler", "parse_event", "publish_metrics"]

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "report-processor")
_UNITS = {"Count": MetricUnit.Count, "Seconds": MetricUnit.Seconds, "Percent": MetricUnit.Percent}


def parse_event(event: Any) -> tuple[list[S3Record], list[str]]:
    """Validated records, plus one line per record that is not an S3 ObjectCreated record."""
    records: list[S3Record] = []
    problems: list[str] = []
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


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = ProcessorConfig.from_env()
    records, problems = parse_event(event)
    for problem in problems:
        logger.warning("ignoring event record", extra={"reason": problem})
    results: list[dict[str, str]] = []
    failures: list[str] = []
    topic = config.notification_topic_arn
    notifier = SnsNotifier(topic) if topic else None
    for record in records:
        try:
            outcome = process_object(
                record,
                ResultsBucket(record.bucket),
                config,
                history=S3HistoryStore(record.bucket),
                notifier=notifier,
            )
        except Exception:  # one bad record must not hide the others; retried below
            logger.exception("failed to process object", extra={"key": record.key})
            failures.append(record.key)
            continue
        _log(outcome)
        if outcome.metrics:
            publish_metrics(outcome, config)
        results.append(outcome.as_dict())
    if failures:
        # Lambda retries the event: summaries are idempotent and markers stop double metrics.
        raise RuntimeError(f"could not process {len(failures)} object(s): {failures}")
    return {"results": results}


def publish_metrics(outcome: Outcome, config: ProcessorConfig) -> None:
    # EphemeralMetrics: this record's dimensions only, no state shared across records or
    # invocations; service="" keeps Powertools from adding a fourth "service" dimension.
    metrics = EphemeralMetrics(namespace=config.namespace, service="")
    metrics.add_dimension(name="Project", value=config.project)
    metrics.add_dimension(name="Environment", value=config.environment)
    metrics.add_dimension(name="Command", value=outcome.command or "other")
    for metric in outcome.metrics:
        metrics.add_metric(name=metric.name, unit=_UNITS[metric.unit], value=metric.value)
    metrics.flush_metrics()


def _log(outcome: Outcome) -> None:
    messages = {
        "ignored": "ignoring object",
        "gone": "object no longer exists; skipped",
        "duplicate": "already processed; not publishing again",
        "processed": "report written",
    }
    logger.info(messages[outcome.outcome], extra=outcome.as_dict())
