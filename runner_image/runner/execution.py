"""One run from a checked request to its results: the runner's core, free of AWS code.

The shells hand in a SecretSource and a ResultStore (boto3-backed in production, anything
with the same methods in tests).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from .artifacts import collect, content_type, writable_roots
from .config import RunnerConfig
from .database import DatabaseSecret, SecretUnavailable, unreachable_reason
from .events import RunRequest
from .layout import command_slug, latest_docs_prefix, run_prefix
from .process import run_child
from .redact import Redactor
from .workspace import build_mirror, write_php_ini

RESPONSE_MAX_BYTES = 256 * 1024
TAIL_BYTES = 64 * 1024
# The runner's own credentials stay with the runner: the app's tests have no use for them.
_WITHHELD_ENV = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "DB_SECRET_ARN",
    }
)


class SecretSource(Protocol):
    def database_secret(self, arn: str) -> DatabaseSecret: ...


class StoreError(RuntimeError):
    """An upload failed; the message names the key and the cause."""


class ResultStore(Protocol):
    def exists(self, key: str) -> bool: ...

    def put_file(self, key: str, path: Path, content_type: str) -> None: ...

    def uri(self, key: str) -> str: ...


@dataclass
class RunOutcome:
    run_id: str
    command: str
    args: tuple[str, ...]
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    exit_code: int | None = None
    message: str | None = None
    output_tail: str = ""
    results_uri: str | None = None
    local_results: str | None = None
    artifacts: list[str] = field(default_factory=list)
    app_version: str | None = None
    image_version: str | None = None

    @property
    def duration_seconds(self) -> float:
        end = self.finished_at or self.started_at
        return round((end - self.started_at).total_seconds(), 3)

    def manifest(self) -> dict:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "args": list(self.args),
            "status": self.status,
            "exit_code": self.exit_code,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_seconds": self.duration_seconds,
            "app_version": self.app_version,
            "image_version": self.image_version,
            "artifacts": self.artifacts,
            "message": self.message,
        }

    def response(self) -> dict:
        """At most RESPONSE_MAX_BYTES as JSON: the output tail shrinks to fit."""
        body = {
            "run_id": self.run_id,
            "command": self.command,
            "status": self.status,
            "exit_code": self.exit_code,
            "duration_seconds": self.duration_seconds,
            "results_uri": self.results_uri,
            "output_tail": self.output_tail,
        }
        if self.message:
            body["reason" if self.status == "rejected" else "message"] = self.message
        if self.local_results:
            body["local_results"] = self.local_results
        tail = self.output_tail
        while len(json.dumps(body).encode()) > RESPONSE_MAX_BYTES:
            tail = tail[len(tail) // 4 :]
            body["output_tail"] = tail
        return body


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def execute(
    request: RunRequest,
    config: RunnerConfig,
    *,
    secrets: SecretSource,
    store: ResultStore | None,
    deadline: float | None,
    base_env: Mapping[str, str],
    on_output: Callable[[bytes], None],
    log: Callable[[str], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunOutcome:
    """Run `request` and keep everything it produced; never raises for a failed run."""
    outcome = RunOutcome(
        run_id=request.run_id,
        command=request.command,
        args=request.args,
        status="error",
        started_at=now(),
        app_version=config.app_version,
        image_version=config.image_version,
    )
    prefix = run_prefix(outcome.started_at, request.run_id, request.command)
    config.work_root.mkdir(parents=True, exist_ok=True)
    run_dir = Path(
        tempfile.mkdtemp(
            prefix=f"ltr-{request.run_id}-{command_slug(request.command)}-", dir=config.work_root
        )
    )
    output_log = run_dir / "output.log"
    junit = run_dir / "junit.xml"
    redactor = Redactor(())
    notes: list[str] = []

    try:
        if store is not None and request.run_id_given and store.exists(prefix + "manifest.json"):
            outcome.message = (
                f"run_id {request.run_id!r} was already used for {request.command} today "
                f"({store.uri(prefix)}); leave run_id out to get a new one"
            )
            outcome.status = "rejected"
            shutil.rmtree(run_dir, ignore_errors=True)
            return outcome

        child_env = {k: v for k, v in base_env.items() if k not in _WITHHELD_ENV}
        if config.db_secret_arn:
            secret = secrets.database_secret(config.db_secret_arn)
            redactor = Redactor(secret.sensitive_values())
            reason = unreachable_reason(secret.host, secret.port)
            if reason:
                raise SecretUnavailable(
                    f"database unreachable at {secret.host}:{secret.port} ({reason}); check "
                    "that the runner's security group may reach the database and that the "
                    f"secret {config.db_secret_arn} names the right host"
                )
            child_env.update(secret.child_env())

        mirror = run_dir / "app"
        build_mirror(config.app_dir, mirror, writable_roots(config.globs_for(request.command)))
        (run_dir / "tmp").mkdir()
        ini_dir = write_php_ini(run_dir / "php.d")
        scan = base_env.get("PHP_INI_SCAN_DIR", "")
        child_env.update(
            APP_BASE_PATH=str(mirror),
            PHP_INI_SCAN_DIR=f"{scan}:{ini_dir}",
            TMPDIR=str(run_dir / "tmp"),
        )
        argv = [config.php, "artisan", request.command, *request.args]
        if request.command == "test":
            argv += ["--log-junit", str(junit)]
        log(f"running {' '.join(argv[1:])} (run {request.run_id})")

        result = run_child(
            argv,
            env=child_env,
            cwd=mirror,
            log_path=output_log,
            redactor=redactor,
            on_output=on_output,
            deadline=deadline,
            kill_grace_seconds=config.kill_grace_seconds,
            tail_bytes=TAIL_BYTES,
        )
        outcome.exit_code = result.exit_code
        outcome.output_tail = result.tail.decode(errors="replace")
        if result.timed_out:
            outcome.status = "timed_out"
            outcome.message = "stopped at the deadline (remaining Lambda time minus the margin)"
            notes.append(f"[runner] {outcome.message}; exit code {result.exit_code}")
        else:
            outcome.status = "passed" if result.exit_code == 0 else "failed"
        artifact_files = collect(mirror, config.globs_for(request.command))
    except (SecretUnavailable, StoreError) as error:
        outcome.message = str(error)
        notes.append(f"[runner] error: {outcome.message}")
        artifact_files, mirror = [], run_dir / "app"
    except OSError as error:
        outcome.message = f"could not start {request.command}: {error}"
        notes.append(f"[runner] error: {outcome.message}")
        artifact_files, mirror = [], run_dir / "app"

    if notes:
        with output_log.open("ab") as handle:
            for note in notes:
                handle.write(redactor.bytes(note.encode()) + b"\n")
                log(note)
        outcome.output_tail += "\n".join(notes) + "\n"
    outcome.finished_at = now()
    if outcome.message:
        outcome.message = redactor.text(outcome.message)
    _publish(outcome, store, prefix, run_dir, mirror, artifact_files, junit, redactor, log)
    return outcome


def _publish(outcome, store, prefix, run_dir, mirror, artifact_files, junit, redactor, log):
    """Upload in the order the report processor relies on: junit.xml last."""
    upload_dir = run_dir / "upload"
    upload_dir.mkdir(exist_ok=True)
    uploads: list[tuple[str, Path]] = [(prefix + "output.log", run_dir / "output.log")]
    latest: list[tuple[str, Path]] = []
    for relative in artifact_files:
        source = _redacted_copy(mirror / relative, upload_dir / relative, redactor)
        uploads.append((prefix + relative, source))
        latest.append((latest_docs_prefix(outcome.command) + relative, source))
    junit_upload = None
    if junit.is_file():
        junit_upload = (
            prefix + "junit.xml",
            _redacted_copy(junit, upload_dir / "junit.xml", redactor),
        )
    outcome.artifacts = [key for key, _ in uploads]
    if outcome.status == "passed":
        outcome.artifacts += [key for key, _ in latest]
    if junit_upload:
        outcome.artifacts.append(junit_upload[0])

    manifest_path = run_dir / "manifest.json"
    if store is None:
        outcome.local_results = str(run_dir)
        outcome.results_uri = run_dir.as_uri()
        manifest_path.write_text(json.dumps(outcome.manifest(), indent=2) + "\n")
        return

    try:
        for key, path in uploads:
            store.put_file(key, path, content_type(key))
        # Only a passing run's docs replace the published ones.
        if outcome.status == "passed":
            for key, path in latest:
                store.put_file(key, path, content_type(key))
        manifest_path.write_text(json.dumps(outcome.manifest(), indent=2) + "\n")
        store.put_file(prefix + "manifest.json", manifest_path, "application/json")
        if junit_upload:
            store.put_file(junit_upload[0], junit_upload[1], "application/xml")
    except StoreError as error:
        outcome.status = "error"
        outcome.local_results = str(run_dir)
        outcome.message = (
            f"{error}; nothing produced is lost: the results are kept in {run_dir}"
            + (f" (the run itself ended: {outcome.message})" if outcome.message else "")
        )
        manifest_path.write_text(json.dumps(outcome.manifest(), indent=2) + "\n")
        log(f"[runner] error: {outcome.message}")
        return
    outcome.results_uri = store.uri(prefix)
    shutil.rmtree(run_dir, ignore_errors=True)


def _redacted_copy(source: Path, target: Path, redactor: Redactor) -> Path:
    if not redactor.longest:
        return source
    target.parent.mkdir(parents=True, exist_ok=True)
    stream = redactor.stream()
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.readline(64 * 1024):
            writer.write(stream.feed(chunk))
        writer.write(stream.flush())
    return target
