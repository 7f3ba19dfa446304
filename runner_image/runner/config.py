"""The runner's configuration, read once from the environment and validated."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .artifacts import DEFAULT_ARTIFACT_GLOBS, check_glob
from .commands import DEFAULT_COMMANDS
from .isolation import forbidden_child_env
from .sharding.databases import (
    SHARED,
    TEMPLATE,
    DatabaseNameError,
    ShardDatabaseConfig,
    quote_identifier,
)
from .sharding.plan import MAX_SHARDS_PER_RUN, Limits

DEFAULT_APP_DIR = "/var/task/app"  # where runner_image/Dockerfile installs the Laravel app


class ConfigError(ValueError):
    """A setting is wrong; the message names the variable and an example of a good value."""


@dataclass(frozen=True)
class RunnerConfig:
    app_dir: Path
    php: str
    results_bucket: str | None
    db_secret_arn: str | None
    commands: tuple[str, ...]
    artifact_globs: Mapping[str, tuple[str, ...]]
    project: str | None
    environment: str | None
    work_root: Path
    deadline_margin_seconds: float
    kill_grace_seconds: float
    timeout_seconds: float | None
    app_version: str | None
    image_version: str | None
    # Names of the runner's environment the child gets besides the fixed allowlist.
    child_env: tuple[str, ...] = ()
    # Sharded runs (issue 13): what bounds the number of shards, and each shard's database.
    shard_limits: Limits = Limits()
    shard_database: ShardDatabaseConfig = ShardDatabaseConfig()

    def globs_for(self, command: str) -> tuple[str, ...]:
        return self.artifact_globs.get(command, ())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunnerConfig:
        env = os.environ if env is None else env
        app_dir = Path(env.get("RUNNER_APP_DIR") or DEFAULT_APP_DIR)
        margin = _number(env, "RUNNER_DEADLINE_MARGIN_SECONDS", 30.0)
        grace = _number(env, "RUNNER_KILL_GRACE_SECONDS", 5.0)
        if grace >= margin:
            raise ConfigError(
                f"RUNNER_KILL_GRACE_SECONDS ({grace:g}) must be below "
                f"RUNNER_DEADLINE_MARGIN_SECONDS ({margin:g}): the margin has to cover the "
                "grace period and the uploads"
            )
        timeout = env.get("RUNNER_TIMEOUT_SECONDS")
        return cls(
            app_dir=app_dir,
            php=env.get("RUNNER_PHP") or "php",
            results_bucket=env.get("RESULTS_BUCKET") or None,
            db_secret_arn=env.get("DB_SECRET_ARN") or None,
            commands=_commands(env.get("RUNNER_COMMANDS")),
            artifact_globs=_artifact_globs(env.get("RUNNER_ARTIFACTS")),
            project=env.get("PROJECT") or None,
            environment=env.get("ENVIRONMENT") or None,
            work_root=Path(env.get("TMPDIR") or tempfile.gettempdir()),
            deadline_margin_seconds=margin,
            kill_grace_seconds=grace,
            timeout_seconds=_number(env, "RUNNER_TIMEOUT_SECONDS", 0.0) if timeout else None,
            app_version=env.get("APP_VERSION") or _composer_version(app_dir),
            image_version=env.get("IMAGE_VERSION") or None,
            child_env=_child_env(env.get("RUNNER_CHILD_ENV")),
            shard_limits=Limits(
                max_shards=_count(env, "MAX_SHARDS", MAX_SHARDS_PER_RUN),
                reserved_concurrency=_count(env, "RESERVED_CONCURRENCY", 10000),
                db_connection_budget=_count(env, "DB_CONNECTION_BUDGET", 100000),
                db_connections_per_shard=_count(env, "DB_CONNECTIONS_PER_SHARD", 1000) or 2,
            ),
            shard_database=_shard_database(env),
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{name}={raw!r}: use a positive number of seconds, like {default:g}")
    return value


def _count(env: Mapping[str, str], name: str, highest: int) -> int | None:
    """A whole number from 1 to `highest`, or None when unset."""
    raw = env.get(name)
    if not raw:
        return None
    if not raw.strip().isdigit() or not 1 <= int(raw) <= highest:
        raise ConfigError(f"{name}={raw[:40]!r}: use a whole number from 1 to {highest}")
    return int(raw)


def _shard_database(env: Mapping[str, str]) -> ShardDatabaseConfig:
    """DB_SHARD_MODE `template` (DB_TEMPLATE required; the default when DB_TEMPLATE is set) or
    `shared` (the default otherwise)."""
    template = env.get("DB_TEMPLATE") or None
    mode = env.get("DB_SHARD_MODE") or (TEMPLATE if template else SHARED)
    if mode not in (TEMPLATE, SHARED):
        raise ConfigError(f"DB_SHARD_MODE={mode[:40]!r}: use {TEMPLATE!r} or {SHARED!r}")
    if mode == TEMPLATE and not template:
        raise ConfigError(
            "DB_SHARD_MODE=template needs DB_TEMPLATE, the database each shard's own is "
            "cloned from (e.g. app_test_template)"
        )
    if template:
        try:
            quote_identifier(template)
        except DatabaseNameError as error:
            raise ConfigError(f"DB_TEMPLATE: {error}") from None
    return ShardDatabaseConfig(
        mode=mode, template=template, admin_database=env.get("DB_ADMIN_DATABASE") or "postgres"
    )


def _commands(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return DEFAULT_COMMANDS
    example = '\'["test", "scribe:generate"]\''
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"RUNNER_COMMANDS is not JSON ({error}); use {example}") from None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(c, str) and c and c.strip() == c for c in value)
    ):
        raise ConfigError(f"RUNNER_COMMANDS must be a non-empty JSON list of names, like {example}")
    return tuple(value)


def _artifact_globs(raw: str | None) -> dict[str, tuple[str, ...]]:
    globs = dict(DEFAULT_ARTIFACT_GLOBS)
    if not raw:
        return globs
    example = '\'{"scribe:generate": ["public/docs/**"]}\''
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"RUNNER_ARTIFACTS is not JSON ({error}); use {example}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"RUNNER_ARTIFACTS must be a JSON object, like {example}")
    for command, patterns in value.items():
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(f"RUNNER_ARTIFACTS[{command!r}] must be a list of globs")
        try:
            globs[command] = tuple(check_glob(p) for p in patterns)
        except ValueError as error:
            raise ConfigError(f"RUNNER_ARTIFACTS[{command!r}]: {error}") from None
    return globs


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _child_env(raw: str | None) -> tuple[str, ...]:
    """`APP_KEY,MAIL_HOST`: extra variables the app's tests need from the runner's environment."""
    names = tuple(name.strip() for name in (raw or "").split(",") if name.strip())
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                f"RUNNER_CHILD_ENV: {name[:40]!r} is not a variable name; use a comma-separated "
                "list like 'APP_KEY,MAIL_HOST'"
            )
        if forbidden_child_env(name):
            raise ConfigError(
                f"RUNNER_CHILD_ENV may not pass {name} to the child: AWS_*, ECS_* and Lambda "
                "variables are the runner's credentials and stay with it"
            )
    return names


def _composer_version(app_dir: Path) -> str | None:
    try:
        version = json.loads((app_dir / "composer.json").read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None
