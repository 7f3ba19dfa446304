"""Local stand-ins for the AWS side and the private database: a moto server over HTTP and a
throwaway PostgreSQL cluster. Used by the tests, the benchmarks and `make demo`.

Both are context managers that always stop what they started, and both bind to 127.0.0.1 on a
free port, so several can run side by side.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ServiceError(RuntimeError):
    """A local service could not be started; the message says why and where its log is."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _wait_until(
    ready, timeout: float, what: str, log_path: Path, process: subprocess.Popen
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(
                f"{what} exited with code {process.returncode} while starting; log: {log_path}\n"
                + _tail(log_path)
            )
        if ready():
            return
        time.sleep(0.1)
    raise ServiceError(
        f"{what} did not become ready in {timeout:.0f}s; log: {log_path}\n" + _tail(log_path)
    )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- moto


@dataclass
class MotoServer:
    """A moto server reached over HTTP, as the AWS SDKs and Terraform reach AWS."""

    endpoint_url: str
    region: str = "us-east-1"
    log_path: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def in_region(self, region: str) -> MotoServer:
        """The same server seen from another region (moto keeps each region's resources apart)."""
        return dataclasses.replace(self, region=region)

    def client(self, service: str):
        import boto3  # only the shell of a caller needs boto3; keep this module importable without

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
        )

    def reset(self) -> None:
        """Wipe every resource in the emulator (moto's own reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def _is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            return False

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        region: str = "us-east-1",
        log_dir: Path | None = None,
        service_port: int | None = None,
    ) -> Iterator[MotoServer]:
        """`service_port`: where the server's own service calls go (a state machine's Lambda
        invocations): itself by default, or a local stand-in that runs the handlers
        (demo/step_functions.py)."""
        port = free_port()
        owns_log_dir = log_dir is None
        log_dir = Path(log_dir or tempfile.mkdtemp(prefix="ltr-moto-"))
        log_path = log_dir / "moto_server.log"
        process = _start_moto(port, service_port or port, region, log_path)
        server = cls(endpoint_url=f"http://{LOOPBACK}:{port}", region=region, log_path=log_path)
        try:
            _wait_until(server._is_ready, 60, "moto server", log_path, process)
            yield server
        except BaseException:
            owns_log_dir = False  # keep the log: the error message points at it
            raise
        finally:
            _stop(process)
            if owns_log_dir:
                shutil.rmtree(log_dir, ignore_errors=True)


def _start_moto(
    port: int, service_port: int, region: str, log_path: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        # Terraform attaches AWS-managed policies; moto only knows them when asked to load them.
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
        # moto's Step Functions interpreter calls other services at localhost:$MOTO_PORT.
        "MOTO_PORT": str(service_port),
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_DEFAULT_REGION": region,
    }
    env.pop("AWS_ENDPOINT_URL", None)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class DatabaseCredentials:
    username: str
    password: str = field(repr=False)
    host: str
    port: int
    dbname: str

    def as_secret_json(self) -> str:
        """The JSON shape RDS writes into a Secrets Manager secret."""
        return json.dumps(
            {
                "engine": "postgres",
                "username": self.username,
                "password": self.password,
                "host": self.host,
                "port": self.port,
                "dbname": self.dbname,
            }
        )


def find_postgres_bin() -> Path:
    """The directory holding initdb/postgres: $LTR_PG_BIN, then PATH, then Debian's layout."""
    configured = os.environ.get("LTR_PG_BIN")
    if configured:
        return Path(configured)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise ServiceError(
        "PostgreSQL server binaries (initdb, postgres) not found: install them with "
        "`apt-get install postgresql` or point LTR_PG_BIN at their directory"
    )


def _unprivileged_prefix() -> tuple[list[str], str | None]:
    """initdb refuses to run as root, so as root the cluster runs as the `postgres` user."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], user
    raise ServiceError("running as root and no unprivileged user (postgres, nobody) exists")


@dataclass
class PostgresServer:
    host: str
    port: int
    superuser: str
    superuser_password: str = field(repr=False)
    bin_dir: Path
    log_path: Path

    def _psql(self, sql: str, dbname: str = "postgres") -> None:
        psql = shutil.which("psql") or str(self.bin_dir / "psql")
        result = subprocess.run(
            [
                psql,
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                "-d",
                dbname,
                "-c",
                sql,
            ],
            env={**os.environ, "PGPASSWORD": self.superuser_password},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"psql failed ({result.returncode}): {result.stderr.strip()}")

    def create_database(self, name: str) -> DatabaseCredentials:
        """A database with its own owner role: one test's RefreshDatabase cannot touch another's."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        password = secrets.token_urlsafe(18)
        self._psql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        self._psql(f"CREATE DATABASE {name} OWNER {name}")
        return DatabaseCredentials(name, password, self.host, self.port, name)

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                pass
        except OSError:
            return False
        isready = shutil.which("pg_isready") or str(self.bin_dir / "pg_isready")
        if not Path(isready).exists():
            return True
        probe = [isready, "-h", self.host, "-p", str(self.port), "-U", self.superuser]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator[PostgresServer]:
        bin_dir = find_postgres_bin()
        prefix, user = _unprivileged_prefix()
        workdir = Path(tempfile.mkdtemp(prefix="ltr-pg-"))
        data_dir, socket_dir = workdir / "data", workdir / "sock"
        socket_dir.mkdir()
        password = secrets.token_urlsafe(18)
        password_file = workdir / "pwfile"
        password_file.write_text(password)
        if user:
            shutil.chown(workdir, user)
            for child in (socket_dir, password_file):
                shutil.chown(child, user)
        log_path = workdir / "postgres.log"
        try:
            init = subprocess.run(
                [
                    *prefix,
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    "postgres",
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if init.returncode != 0:
                raise ServiceError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
            port = free_port()
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        *prefix,
                        str(bin_dir / "postgres"),
                        "-D",
                        str(data_dir),
                        "-p",
                        str(port),
                        "-k",
                        str(socket_dir),
                        "-c",
                        f"listen_addresses={LOOPBACK}",
                        "-c",
                        "fsync=off",
                        "-c",
                        "full_page_writes=off",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            server = cls(LOOPBACK, port, "postgres", password, bin_dir, log_path)
            try:
                _wait_until(server._is_ready, 60, "PostgreSQL", log_path, process)
                yield server
            finally:
                _stop(process, grace=20)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
