"""What the Lambda handler and the command line share: config, wiring, output streaming."""

from __future__ import annotations

import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from .aws import S3ResultStore, SecretsManagerSource
from .config import RunnerConfig
from .events import RunRequest
from .execution import RunOutcome, execute

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
) -> RunOutcome:
    store = S3ResultStore(config.results_bucket) if config.results_bucket else None
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
