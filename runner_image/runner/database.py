"""The database credentials secret (RDS JSON shape) and what the child gets from it."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

_DRIVERS = {"postgres": "pgsql", "postgresql": "pgsql", "aurora-postgresql": "pgsql",
            "mysql": "mysql", "mariadb": "mysql", "aurora-mysql": "mysql"}  # fmt: skip


class SecretUnavailable(RuntimeError):
    """The secret could not be read or has the wrong shape; the message says which and why."""


@dataclass(frozen=True)
class DatabaseSecret:
    username: str
    password: str = field(repr=False)
    host: str
    port: int
    dbname: str
    driver: str

    def child_env(self) -> dict[str, str]:
        return {
            "DB_CONNECTION": self.driver,
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_DATABASE": self.dbname,
            "DB_USERNAME": self.username,
            "DB_PASSWORD": self.password,
        }

    def sensitive_values(self) -> tuple[str, ...]:
        return (self.password, self.username)


def parse_db_secret(secret_string: str, source: str) -> DatabaseSecret:
    """RDS writes `{"engine", "username", "password", "host", "port", "dbname"}`."""
    try:
        data = json.loads(secret_string)
    except (TypeError, json.JSONDecodeError):
        raise SecretUnavailable(
            f"secret {source} is not JSON; store the RDS shape "
            '{"username", "password", "host", "port", "dbname"}'
        ) from None
    if not isinstance(data, dict):
        raise SecretUnavailable(f"secret {source} must hold a JSON object")
    missing = [k for k in ("username", "password", "host") if not isinstance(data.get(k), str)]
    if missing:
        raise SecretUnavailable(f"secret {source} lacks {', '.join(missing)} (RDS JSON shape)")
    try:
        port = int(data.get("port", 5432))
    except (TypeError, ValueError):
        raise SecretUnavailable(f"secret {source}: port must be a number") from None
    engine = str(data.get("engine", "postgres")).lower()
    return DatabaseSecret(
        username=data["username"],
        password=data["password"],
        host=data["host"],
        port=port,
        dbname=str(data.get("dbname") or "postgres"),
        driver=_DRIVERS.get(engine, "pgsql"),
    )


def unreachable_reason(host: str, port: int, timeout: float = 3.0) -> str | None:
    """None when a TCP connection opens; otherwise why not (fail fast, with a clear cause,
    instead of every database test failing on its own)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:
        return f"{type(error).__name__}: {error.strerror or error}"
