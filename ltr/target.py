"""Which deployed stack `ltr` talks to: resource names come from the same config file the stack
was synthesized from (modules.config derives them in one place), never from flags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ltr.core import LtrError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV = "example"


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

    @property
    def runner_log_group(self) -> str:
        return f"/aws/lambda/{self.runner_function}"


def config_path_for(env: str | None, config: str | None) -> Path:
    """--config wins, then --env (config/<env>.json), then $LTR_CONFIG, then $LTR_ENV, then the
    example config; relative env names are looked up in the working directory, then the repo."""
    if config or (not env and os.environ.get("LTR_CONFIG")):
        return Path(config or os.environ["LTR_CONFIG"])
    name = env or os.environ.get("LTR_ENV") or DEFAULT_ENV
    if not name.replace("-", "").replace("_", "").isalnum():
        raise LtrError(f"--env {name!r}: use the name of a file config/<env>.json, like 'dev'")
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base / "config" / f"{name}.json"
        if candidate.is_file():
            return candidate
    return Path("config") / f"{name}.json"


def load_target(env: str | None = None, config: str | None = None) -> Target:
    path = config_path_for(env, config)
    if not path.is_file():
        raise LtrError(f"no config file {path}: create it (copy config/example.json) or fix --env")
    from modules.config import ConfigError, load_config  # no cdktf import: cheap

    try:
        stack = load_config(path)
    except ConfigError as error:
        problems = list(error.problems) or [str(error)]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise LtrError(f"config {path}: {problems[0]}{more}") from None
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
    )
