"""The database credentials secret (RDS JSON shape) and what the child gets from it."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from dataclasses import dataclass, field
from typing import Any

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


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def parse_db_secret(secret_string: object, source: str) -> DatabaseSecret:
    """RDS writes `{"engine", "username", "password", "host", "port", "dbname"}`.

    Every value is checked before anything uses it: a value PHP, the socket layer or the
    child's environment would choke on ends the run with a message naming the field (never
    its value), not with a traceback."""
    try:
        data = json.loads(secret_string) if isinstance(secret_string, str) else None
    except json.JSONDecodeError:
        data = None
    if data is None:
        raise SecretUnavailable(
            f"secret {source} is not JSON; store the RDS shape "
            '{"username", "password", "host", "port", "dbname"}'
        )
    if not isinstance(data, dict):
        raise SecretUnavailable(f"secret {source} must hold a JSON object")
    missing = [k for k in ("username", "password", "host") if not isinstance(data.get(k), str)]
    if missing:
        raise SecretUnavailable(f"secret {source} lacks {', '.join(missing)} (RDS JSON shape)")
    for name in ("username", "password", "host", "dbname"):
        if "\0" in str(data.get(name, "")):
            raise SecretUnavailable(
                f"secret {source}: {name} contains a NUL character, which no database "
                "client accepts; store the value without it"
            )
    engine = str(data.get("engine", "postgres")).lower()
    return DatabaseSecret(
        username=data["username"],
        password=data["password"],
        host=_host(data["host"], source),
        port=_port(data.get("port", 5432), source),
        dbname=str(data.get("dbname") or "postgres"),
        driver=_DRIVERS.get(engine, "pgsql"),
    )


def _host(host: str, source: str) -> str:
    """A DNS name (labels of 1-63 letters, digits and '-') or an IP address."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise SecretUnavailable(
            f"secret {source}: host is not a DNS name or IP address (each dot-separated label "
            "1-63 letters, digits or '-', at most 253 characters in all); store the endpoint "
            "RDS shows, like mydb.abc123.eu-west-1.rds.amazonaws.com"
        )
    return host


def _port(raw: Any, source: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raw = "?"
    text = str(raw).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SecretUnavailable(
            f"secret {source}: port must be a number from 1 to 65535, like 5432"
        )
    return int(text)


def unreachable_reason(host: str, port: int, timeout: float = 3.0) -> str | None:
    """None when a TCP connection opens; otherwise why not (fail fast, with a clear cause,
    instead of every database test failing on its own)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:
        return f"{type(error).__name__}: {error.strerror or error}"
