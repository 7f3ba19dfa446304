"""Lambda entry point: `runner.handler.handler(event, context)`."""

from __future__ import annotations

import time
from typing import Any, Protocol

from .config import ConfigError, RunnerConfig
from .events import PlanRequest, RejectedInput, ShardRequest, parse_event
from .sharding.shard import ShardRun
from .shell import configure_logging, load_shard, misconfigured, plan, rejected, run, utc_now


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


# Below this, a run could not do anything useful before it had to be stopped.
MIN_RUN_SECONDS = 5.0

configure_logging()


def handler(event: object, context: LambdaContext) -> dict[str, Any]:
    try:
        config = RunnerConfig.from_env()
    except ConfigError as error:
        return misconfigured(str(error))
    shard: ShardRun | None = None
    try:
        request = parse_event(event, config.commands, utc_now())
        if isinstance(request, ShardRequest):
            request, shard = load_shard(request, config)
    except RejectedInput as error:
        return rejected(str(error))

    usable = context.get_remaining_time_in_millis() / 1000 - config.deadline_margin_seconds
    if usable < MIN_RUN_SECONDS:
        return misconfigured(
            f"only {usable:.1f}s left after the {config.deadline_margin_seconds:g}s margin: "
            "raise the function timeout or lower RUNNER_DEADLINE_MARGIN_SECONDS"
        )
    deadline = time.monotonic() + usable
    if isinstance(request, PlanRequest):
        return plan(request, config, deadline)
    return run(request, config, deadline=deadline, shard=shard).response()
