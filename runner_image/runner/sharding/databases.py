"""One database per shard, cloned from a template, or one database shared by all shards: the
names and statements (pure; runner/sharding/shard_db.py executes them).

Every identifier is untrusted (the template comes from configuration, the shard's name from the
run id) and is quoted, never interpolated bare; PostgreSQL would silently cut a name over 63
bytes, which could make two shards' names one, so such a name is refused instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
SHARED, TEMPLATE = "shared", "template"
SHARD_DATABASE_PREFIX = "ltr_shard_"


class DatabaseNameError(ValueError):
    """An identifier that cannot be used safely; the message says why."""


@dataclass(frozen=True)
class ShardDatabaseConfig:
    mode: str = SHARED  # "shared": every shard uses the secret's database
    template: str | None = None  # "template": CREATE DATABASE ... TEMPLATE this
    admin_database: str = "postgres"  # where the runner connects to create and drop


def quote_identifier(name: str) -> str:
    """`"name"` with embedded quotes doubled: safe for any name PostgreSQL can hold."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise DatabaseNameError("a database name must be a non-empty string without NUL")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise DatabaseNameError(
            f"database name {name[:80]!r} is over {MAX_IDENTIFIER_BYTES} bytes: PostgreSQL "
            "would shorten it"
        )
    return '"' + name.replace('"', '""') + '"'


def shard_database_name(run_id: str, index: int) -> str:
    """`ltr_shard_<12 hex of the run id>_<index>`: the same for a retried shard (which drops
    what a killed attempt left), different for every run and shard, lower case, 29 bytes."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:12]
    return f"{SHARD_DATABASE_PREFIX}{digest}_{index:03d}"


def create_statements(name: str, template: str) -> list[str]:
    """Drop what an earlier attempt of the same shard left, then clone the template. The
    template must have no other connections while it is cloned (PostgreSQL's rule)."""
    return [
        drop_statement(name),
        f"CREATE DATABASE {quote_identifier(name)} TEMPLATE {quote_identifier(template)}",
    ]


def drop_statement(name: str) -> str:
    """WITH (FORCE) (PostgreSQL 13+) ends sessions the tests left open."""
    return f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)"
