"""One shard of a sharded run, as execution.py runs it: its place in the bucket, its PHPUnit
configuration in the run's mirror of the app, its own database (docs/sharding.md#shard)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import RunnerConfig
from ..database import DatabaseSecret
from ..isolation import child_environment
from ..layout import RunLocation, shard_prefix
from .databases import TEMPLATE, shard_database_name
from .phpunit import CONFIG_NAMES, read_app_configuration, shard_configuration
from .plan import PlanError
from .shard_db import ShardDatabaseError, create_shard_database, drop_shard_database

__all__ = [
    "ShardDatabaseError",
    "ShardRun",
    "drop_database",
    "install_configuration",
    "open_database",
    "shard_args",
]


@dataclass(frozen=True)
class ShardRun:
    """One shard of a sharded run (issue 13): what it runs, where its files go."""

    index: int
    count: int
    plan_key: str
    location: RunLocation  # the run's (from the plan key), whatever day the shard starts
    files: tuple[str, ...]  # test files relative to the app, from plan.json
    tests_planned: int

    @property
    def prefix(self) -> str:
        return shard_prefix(self.location, self.index)

    def record(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "plan_key": self.plan_key,
            "tests_planned": self.tests_planned,
        }


def open_database(
    config: RunnerConfig,
    shard: ShardRun | None,
    secret: DatabaseSecret | None,
    run_id: str,
    base_env: Mapping[str, str],
) -> dict[str, Any] | None:
    """Clone the shard's own database from the template (DB_SHARD_MODE=template): its record
    for the manifest, or None when the shards share the secret's database."""
    settings = config.shard_database
    if shard is None or settings.mode != TEMPLATE or settings.template is None:
        return None
    if secret is None:
        raise ShardDatabaseError("DB_SHARD_MODE=template needs DB_SECRET_ARN: no database is set")
    name = shard_database_name(run_id, shard.index)
    started = datetime.now(UTC)
    create_shard_database(
        config.php,
        secret,
        settings.admin_database,
        name,
        settings.template,
        child_environment(base_env),
    )
    return {
        "mode": TEMPLATE,
        "name": name,
        "template": settings.template,
        "create_seconds": _since(started),
        "dropped": False,
    }


def drop_database(
    config: RunnerConfig,
    secret: DatabaseSecret,
    record: dict[str, Any],
    base_env: Mapping[str, str],
) -> str | None:
    """Drop the shard's database (updating its record); a warning when that failed: the tests'
    outcome stands, and the record names what is left to remove."""
    started = datetime.now(UTC)
    try:
        drop_shard_database(
            config.php,
            secret,
            config.shard_database.admin_database,
            record["name"],
            child_environment(base_env),
        )
    except ShardDatabaseError as error:
        return f"could not drop the shard's database: {error}"
    record.update(dropped=True, drop_seconds=_since(started))
    return None


def _since(started: datetime) -> float:
    return round((datetime.now(UTC) - started).total_seconds(), 3)


def install_configuration(app_dir: Path, mirror: Path, shard: ShardRun) -> None:
    """The shard's PHPUnit configuration, in the mirror under each configuration name the app
    has (the app itself is never written)."""
    raw = read_app_configuration(app_dir)
    present = [name for name in CONFIG_NAMES if (app_dir / name).is_file()]
    root = app_dir.resolve()
    paths = []
    for relative in shard.files:
        path = (app_dir / relative).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise PlanError(
                f"the plan names {relative}, which is not a file of this app (was the plan "
                "made with another image?)"
            )
        paths.append(str(path))
    # The app's real paths, as PHPUnit reports a file it found through the configured
    # folders: a testcase's `file` (part of its stable id) is the same as in an unsharded run.
    generated = shard_configuration(raw, paths, f"shard-{shard.index:03d}")
    for name in {"phpunit.xml", *present}:
        target = mirror / name
        target.unlink(missing_ok=True)
        target.write_bytes(generated)


def shard_args(args: tuple[str, ...]) -> list[str]:
    """The plan applied --testsuite when it listed the suite; the shard's configuration has
    only the shard's suite, so the option is left out (the rest applies as in any run)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--testsuite":
            skip = True
        elif not arg.startswith("--testsuite="):
            kept.append(arg)
    return kept
