"""Creates and drops a shard's database through PHP's PDO (the image has PHP and pdo_pgsql; the
runner's Python has no PostgreSQL driver). The statements come from databases.py; the
credentials reach the PHP process on its standard input, never in its arguments or
environment."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence

from ..database import DatabaseSecret
from .databases import create_statements, drop_statement

ADMIN_TIMEOUT_SECONDS = 60.0
_ADMIN_DATABASE = re.compile(r"[A-Za-z0-9_.-]{1,63}")

# Reads {"dsn", "username", "password", "statements"} from stdin; prints {"ok": true} or
# {"error", "sqlstate", "statement"} (the index of the statement that failed).
_ADMIN_SCRIPT = r"""
$request = json_decode(stream_get_contents(STDIN), true);
try {
    $pdo = new PDO($request['dsn'], $request['username'], $request['password'],
        [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 5]);
} catch (PDOException $e) {
    $failed = ['error' => $e->getMessage(), 'sqlstate' => $e->getCode(), 'statement' => null];
    echo json_encode($failed);
    exit(1);
}
foreach ($request['statements'] as $index => $sql) {
    try {
        $pdo->exec($sql);
    } catch (PDOException $e) {
        $failed = ['error' => $e->getMessage(), 'sqlstate' => $e->getCode(), 'statement' => $index];
        echo json_encode($failed);
        exit(1);
    }
}
echo json_encode(['ok' => true]);
"""


class ShardDatabaseError(RuntimeError):
    """The shard's database could not be created or dropped; the message says which and why."""


def run_statements(
    php: str,
    secret: DatabaseSecret,
    admin_database: str,
    statements: Sequence[str],
    env: Mapping[str, str],
) -> None:
    if secret.driver != "pgsql":
        raise ShardDatabaseError(
            f"a database per shard needs PostgreSQL; the secret's engine gives {secret.driver}"
        )
    if not _ADMIN_DATABASE.fullmatch(admin_database):
        raise ShardDatabaseError(
            f"DB_ADMIN_DATABASE {admin_database[:80]!r}: use letters, digits, '_', '.' or '-'"
        )
    request = {
        # host and port are checked by runner/database.py; the database name just above.
        "dsn": f"pgsql:host={secret.host};port={secret.port};dbname={admin_database};"
        "connect_timeout=5",
        "username": secret.username,
        "password": secret.password,
        "statements": list(statements),
    }
    try:
        result = subprocess.run(  # noqa: S603 (argv of the runner's own PHP code)
            [php, "-d", "display_errors=stderr", "-r", _ADMIN_SCRIPT],
            input=json.dumps(request).encode(),
            capture_output=True,
            env=dict(env),
            timeout=ADMIN_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ShardDatabaseError(
            f"could not run PHP for the database statements: {error}"
        ) from None
    try:
        answer = json.loads(result.stdout.decode(errors="replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = None
    if isinstance(answer, dict) and answer.get("ok") is True:
        return
    if isinstance(answer, dict) and "error" in answer:
        where = answer.get("statement")
        what = (
            statements[where]
            if isinstance(where, int) and 0 <= where < len(statements)
            else "connect"
        )
        raise ShardDatabaseError(f"{what}: {answer['error']}")
    raise ShardDatabaseError(
        f"PHP ended with exit code {result.returncode}: "
        + (result.stderr or result.stdout).decode(errors="replace")[-500:]
    )


def create_shard_database(
    php: str, secret: DatabaseSecret, admin_database: str, name: str, template: str,
    env: Mapping[str, str],
) -> None:  # fmt: skip
    run_statements(php, secret, admin_database, create_statements(name, template), env)


def drop_shard_database(
    php: str, secret: DatabaseSecret, admin_database: str, name: str, env: Mapping[str, str]
) -> None:
    run_statements(php, secret, admin_database, [drop_statement(name)], env)
