"""What the Lambda handler and the command line share: config, wiring, output streaming."""

from __future__ import annotations

import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from .aws import S3ResultStore, SecretsManagerSource
from .commands import ArgumentError, spec_for, validate_args
from .config import RunnerConfig
from .events import PlanRequest, RejectedInput, RunRequest, ShardRequest
from .execution import RunOutcome, StoreError, execute
from .sharding.plan import MAX_PLAN_BYTES, PlanError, read_shard
from .sharding.planning import plan_run
from .sharding.shard import ShardRun

logger = logging.getLogger("runner")


def stream_to_stdout(data: bytes) -> None:
    """The child's output reaches the function's log (or the task's) as it comes."""
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def run(
    request: RunRequest,
    config: RunnerConfig,
    deadline: float | None,
    stop: threading.Event | None = None,
    shard: ShardRun | None = None,
) -> RunOutcome:
    store = _store(config)
    outcome = execute(
        request,
        config,
        secrets=SecretsManagerSource(),
        store=store,
        deadline=deadline,
        base_env=os.environ,
        on_output=stream_to_stdout,
        log=logger.info,
        stop=stop,
        shard=shard,
    )
    logger.info(
        "run %s %s: %s (exit code %s) in %.1fs, results %s",
        outcome.run_id,
        outcome.command,
        outcome.status,
        outcome.exit_code,
        outcome.duration_seconds,
        outcome.results_uri or outcome.local_results,
    )
    return outcome


def _store(config: RunnerConfig) -> S3ResultStore | None:
    return S3ResultStore(config.results_bucket) if config.results_bucket else None


def plan(
    request: PlanRequest,
    config: RunnerConfig,
    deadline: float | None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """The plan event: list, pack and write plan.json; the response names the shards."""
    return plan_run(
        request,
        config,
        secrets=SecretsManagerSource(),
        store=_store(config),
        deadline=deadline,
        base_env=os.environ,
        on_output=stream_to_stdout,
        log=logger.info,
        now=utc_now,
        stop=stop,
    ).response()


def load_shard(request: ShardRequest, config: RunnerConfig) -> tuple[RunRequest, ShardRun]:
    """The shard's part of its run's plan, checked (RejectedInput when it cannot run)."""
    store = _store(config)
    if store is None:
        raise RejectedInput("a shard needs RESULTS_BUCKET: its plan is read from there")
    try:
        raw = store.get(request.plan_key, MAX_PLAN_BYTES + 1)
    except StoreError as error:
        raise RejectedInput(str(error)) from None
    if raw is None:
        raise RejectedInput(f"no plan at {store.uri(request.plan_key)}: plan the run first")
    try:
        assignment = read_shard(
            raw,
            run_id=request.run_id,
            command=request.command,
            index=request.index,
            count=request.count,
        )
        args = validate_args(spec_for(request.command), assignment.args)
    except (PlanError, ArgumentError) as error:
        raise RejectedInput(f"{request.plan_key}: {error}") from None
    shard = ShardRun(
        index=request.index,
        count=request.count,
        plan_key=request.plan_key,
        location=request.location,
        files=assignment.files,
        tests_planned=assignment.tests,
    )
    return RunRequest(request.command, args, request.run_id, run_id_given=True), shard


def rejected(reason: str) -> dict[str, Any]:
    logger.warning("rejected: %s", reason)
    return {"status": "rejected", "reason": reason, "run_id": None}


def misconfigured(message: str) -> dict[str, Any]:
    logger.error("runner misconfigured: %s", message)
    return {"status": "error", "message": f"runner misconfigured: {message}", "run_id": None}


def utc_now() -> datetime:
    return datetime.now(UTC)


def configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
        )
    logger.setLevel(logging.INFO)
