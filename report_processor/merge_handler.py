"""Lambda entry of the merge step of a sharded run: `report_processor.merge_handler.handler`.

A thin shell around report_processor/merge.py, deployed as its own function from the report
processor's zip and invoked only by the sharded run's state machine. It writes the run-level
manifest.json and junit.xml (whose arrival triggers the report processor) and emits the run's
shard makespan as an Embedded Metric Format line for the dashboard.
"""

from __future__ import annotations

import os
import tempfile
from typing import IO, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from report_processor.aws import ResultsBucket
from report_processor.config import ProcessorConfig
from report_processor.merge import MergeRejected, MergeResult, merge_run, parse_merge_event

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "shard-merge")
SHARD_MAKESPAN_METRIC = "ShardMakespanSeconds"


def handler(event: Any, context: Any) -> dict[str, Any]:
    config = ProcessorConfig.from_env()
    try:
        request = parse_merge_event(event)
    except MergeRejected as error:
        # A malformed event can never succeed: fail the state, which fails the execution (its
        # ExecutionsFailed alarm says so); retrying would not help.
        logger.error("merge event rejected", extra={"reason": str(error)})
        raise
    result = merge_run(
        request, ResultsBucket(request.bucket), spool=_spool, limits=config.parse_limits()
    )
    logger.info("sharded run merged", extra=result.response())
    publish_makespan(result, config)
    return result.response()


def _spool() -> IO[bytes]:
    # /tmp, not memory: a merged report can be hundreds of megabytes.
    return tempfile.TemporaryFile(mode="w+b", prefix="merged-junit-")  # noqa: SIM115 (closed by merge_run)


def publish_makespan(result: MergeResult, config: ProcessorConfig) -> None:
    command = str(result.manifest.get("command") or "other")
    metrics = EphemeralMetrics(namespace=config.namespace, service="")
    metrics.add_dimension(name="Project", value=config.project)
    metrics.add_dimension(name="Environment", value=config.environment)
    metrics.add_dimension(name="Command", value=command if command in config.commands else "other")
    metrics.add_metric(
        name=SHARD_MAKESPAN_METRIC, unit=MetricUnit.Seconds, value=result.makespan_seconds
    )
    metrics.flush_metrics()
