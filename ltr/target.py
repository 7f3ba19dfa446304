"""Which deployed stack `ltr` talks to: resource names come from the same config file the stack
was synthesized from (modules.config derives them in one place, and resolves --env, --config,
$LTR_ENV and $LTR_CONFIG by the same rule as `main.py`), never from flags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ltr.core import LtrError


@dataclass(frozen=True)
class Target:
    config_path: Path
    project: str
    environment: str
    region: str
    runner_function: str
    report_function: str
    results_bucket: str
    allowed_commands: tuple[str, ...]
    state_machine: str = ""
    max_shards: int = 1
    shard_concurrency: int = 1
    partition: str = "aws"

    @property
    def runner_log_group(self) -> str:
        return f"/aws/lambda/{self.runner_function}"


def load_target(env: str | None = None, config: str | None = None) -> Target:
    # No cdktf import in modules.config: cheap.
    from modules.config import ConfigError, load_config, resolve_config_source

    try:
        path = resolve_config_source(os.environ, config=config, env=env)
        stack = load_config(path)
    except ConfigError as error:
        problems = list(error.problems) or [str(error)]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise LtrError(f"config {error.source}: {problems[0]}{more}") from None
    names = stack.names
    return Target(
        config_path=path,
        project=stack.project,
        environment=stack.environment,
        region=stack.region,
        runner_function=names.runner_function,
        report_function=names.report_function,
        results_bucket=names.results_bucket,
        allowed_commands=tuple(stack.runner.commands),
        state_machine=names.state_machine,
        max_shards=stack.runner.max_shards,
        shard_concurrency=stack.runner.shard_concurrency,
        partition=stack.partition,
    )
