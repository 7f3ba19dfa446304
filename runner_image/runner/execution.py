"""One run from a checked request to its results: the runner's core, free of AWS code.

The shells hand in a SecretSource and a ResultStore (boto3-backed in production, anything
with the same methods in tests).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .artifacts import collect, content_type, writable_roots
from .config import RunnerConfig
from .database import DatabaseSecret, SecretUnavailable, unreachable_reason
from .events import RunRequest
from .isolation import ProcessesSurvived, child_environment
from .layout import JUNIT, MANIFEST, OUTPUT_LOG, command_slug, latest_docs_prefix, run_prefix
from .process import ChildResult, run_child
from .redact import NotWellFormed, Redactor, redact_xml
from .rundir import RunDir, UnsafeFile, remove_stale
from .sharding.shard import (
    ShardDatabaseError,
    ShardRun,
    drop_database,
    install_configuration,
    open_database,
    shard_args,
)
from .workspace import build_mirror, write_php_ini

RESPONSE_MAX_BYTES = 256 * 1024
TAIL_BYTES = 64 * 1024
# A shard's response is one of many a Step Functions Map gathers (its state data is limited to
# 256 KiB in all): only the end of its output, the full log is in S3.
SHARD_TAIL_CHARS = 2 * 1024
MIRROR = "app"


class SecretSource(Protocol):
    def database_secret(self, arn: str) -> DatabaseSecret: ...


class StoreError(RuntimeError):
    """An upload failed; the message names the key and the cause."""


class ResultStore(Protocol):
    def exists(self, key: str) -> bool: ...

    def get(self, key: str, max_bytes: int) -> bytes | None:
        """The object's bytes (at most `max_bytes`), or None when there is no such key."""
        ...

    def put(self, key: str, body: BinaryIO, content_type: str) -> None: ...

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
    shard: ShardRun | None = None
    database: dict[str, Any] | None = None  # a shard's own database: name, mode, dropped

    @property
    def duration_seconds(self) -> float:
        end = self.finished_at or self.started_at
        return round((end - self.started_at).total_seconds(), 3)

    def manifest(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "command": self.command,
            "args": list(self.args),
            "status": self.status,
            "exit_code": self.exit_code,
            "started_at": iso_time(self.started_at),
            "finished_at": iso_time(self.finished_at),
            "duration_seconds": self.duration_seconds,
            "app_version": self.app_version,
            "image_version": self.image_version,
            "artifacts": self.artifacts,
            "message": self.message,
            **({"shard": self.shard.record()} if self.shard else {}),
            **({"database": self.database} if self.database else {}),
        }

    def response(self) -> dict[str, Any]:
        """At most RESPONSE_MAX_BYTES as JSON: the output tail shrinks to fit."""
        body: dict[str, Any] = {
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
        if self.shard:
            body["shard"] = {"index": self.shard.index, "count": self.shard.count}
            tail = body["output_tail"] = tail[-SHARD_TAIL_CHARS:]
        while len(json.dumps(body).encode()) > RESPONSE_MAX_BYTES:
            tail = tail[len(tail) // 4 :]
            body["output_tail"] = tail
        return body


def iso_time(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


@dataclass(frozen=True)
class RunFiles:
    """What a run produced, as the runner holds it: its folder (by descriptor), the log it
    wrote (open), the artifacts found in the app mirror, and where they go in the bucket."""

    folder: RunDir
    log: BinaryIO
    prefix: str
    artifacts: tuple[str, ...] = ()
    writes_junit: bool = False
    # A shard's docs are a part of the run's: never published as the latest.
    publishes_docs: bool = True


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
    stop: threading.Event | None = None,
    shard: ShardRun | None = None,
) -> RunOutcome:
    """Run `request` and keep everything it produced; never raises for a failed run.
    Setting `stop` ends the command early (the Fargate task was asked to stop). A `shard` runs
    only the plan's files for it, in its own database when configured, and keeps its files
    under the shard's prefix (never the run-level junit.xml, which the merge writes)."""
    job = _Job(
        request, config, secrets, store, deadline, base_env, on_output, log, now, stop, shard
    )
    outcome = RunOutcome(
        run_id=request.run_id,
        command=request.command,
        args=request.args,
        status="error",
        started_at=now(),
        app_version=config.app_version,
        image_version=config.image_version,
        shard=shard,
    )
    if shard is None:
        prefix = run_prefix(outcome.started_at, request.run_id, request.command)
    else:
        prefix = shard.prefix
    name = f"{request.run_id}-{command_slug(request.command)}"
    folder = new_run_folder(config, name if shard is None else f"{name}-s{shard.index}", log)
    try:
        with folder.create_file(OUTPUT_LOG) as output_log:
            files = RunFiles(
                folder,
                output_log,
                prefix,
                writes_junit=request.command == "test",
                publishes_docs=shard is None,
            )
            _run_and_keep(job, files, outcome)
    finally:
        folder.close()
    return outcome


@dataclass(frozen=True)
class _Job:
    """What one execute() call was handed, passed as one to the steps that carry it out."""

    request: RunRequest
    config: RunnerConfig
    secrets: SecretSource
    store: ResultStore | None
    deadline: float | None
    base_env: Mapping[str, str]
    on_output: Callable[[bytes], None]
    log: Callable[[str], None]
    now: Callable[[], datetime]
    stop: threading.Event | None
    shard: ShardRun | None


def new_run_folder(config: RunnerConfig, name: str, log: Callable[[str], None]) -> RunDir:
    """A fresh run folder, after removing the ones earlier invocations left behind."""
    stale = remove_stale(config.work_root)
    if stale:
        log(f"removed {len(stale)} run folder(s) earlier invocations left: {', '.join(stale)}")
    return RunDir.create(config.work_root, name)


def _run_and_keep(job: _Job, files: RunFiles, outcome: RunOutcome) -> None:
    """Run the command (unless its run id is taken), then keep its results."""
    redactor, notes = Redactor(), list[str]()
    try:
        # A shard retried by Step Functions replaces its own earlier files.
        if job.shard is None and _run_id_taken(job.request, job.store, files.prefix, outcome):
            files.folder.remove()
            return
        secret = database_secret(job.config, job.secrets)
        if secret is not None:
            redactor = Redactor([secret.password], [secret.username])
        result = _run_in_database(job, files, secret, redactor, outcome, notes)
        _record(outcome, result, notes)
        found = collect(files.folder.path / MIRROR, job.config.globs_for(job.request.command))
        files = dataclasses.replace(files, artifacts=tuple(found))
    except (
        SecretUnavailable,
        StoreError,
        ProcessesSurvived,
        ShardDatabaseError,
    ) as error:
        outcome.message = str(error)
        notes.append(f"[runner] error: {outcome.message}")
    except (OSError, ValueError) as error:
        outcome.message = f"could not start {job.request.command}: {error}"
        notes.append(f"[runner] error: {outcome.message}")
    _finish(job, files, redactor, notes, outcome)


def _run_in_database(
    job: _Job,
    files: RunFiles,
    secret: DatabaseSecret | None,
    redactor: Redactor,
    outcome: RunOutcome,
    notes: list[str],
) -> ChildResult:
    """The command, in the shard's own database when there is one (dropped afterwards)."""
    outcome.database = open_database(job.config, job.shard, secret, outcome.run_id, job.base_env)
    database = outcome.database["name"] if outcome.database else None
    if outcome.database:
        record = outcome.database
        job.log(
            f"created database {record['name']} from {record['template']} in "
            f"{record['create_seconds']:.2f}s"
        )
    try:
        return _run_command(job, files, secret, redactor, database)
    finally:
        # Also after a failure, a timeout or an exception: the run is over.
        if outcome.database and secret is not None:
            warning = drop_database(job.config, secret, outcome.database, job.base_env)
            if warning:
                notes.append(f"[runner] warning: {warning}")


def _finish(
    job: _Job, files: RunFiles, redactor: Redactor, notes: list[str], outcome: RunOutcome
) -> None:
    """The runner's notes, the end time, the masked message, then the results kept."""
    _note(files, redactor, notes, outcome, job.log)
    outcome.finished_at = job.now()
    if outcome.message:
        outcome.message = redactor.text(outcome.message)
    try:
        _publish(outcome, files, job.store, redactor, job.log)
    except OSError as error:  # the run's code can rename or fill the run's folder
        outcome.status = "error"
        outcome.message = redactor.text(f"could not keep the run's results: {error}")
        job.log(f"[runner] error: {outcome.message}")


def _run_id_taken(
    request: RunRequest, store: ResultStore | None, prefix: str, outcome: RunOutcome
) -> bool:
    if store is None or not request.run_id_given or not store.exists(prefix + MANIFEST):
        return False
    outcome.message = (
        f"run_id {request.run_id!r} was already used for {request.command} today "
        f"({store.uri(prefix)}); leave run_id out to get a new one"
    )
    outcome.status = "rejected"
    return True


def database_secret(config: RunnerConfig, secrets: SecretSource) -> DatabaseSecret | None:
    if not config.db_secret_arn:
        return None
    secret = secrets.database_secret(config.db_secret_arn)
    reason = unreachable_reason(secret.host, secret.port)
    if reason:
        raise SecretUnavailable(
            f"database unreachable at {secret.host}:{secret.port} ({reason}); check that the "
            "runner's security group may reach the database and that the secret "
            f"{config.db_secret_arn} names the right host"
        )
    return secret


@dataclass(frozen=True)
class ChildSetup:
    mirror: Path
    ini_dir: Path
    env: dict[str, str]


def prepare_child(
    config: RunnerConfig,
    run_dir: Path,
    command: str,
    secret: DatabaseSecret | None,
    base_env: Mapping[str, str],
) -> ChildSetup:
    """The app's mirror, the run's PHP settings and the child's environment (an allowlist)."""
    mirror = run_dir / MIRROR
    build_mirror(config.app_dir, mirror, writable_roots(config.globs_for(command)))
    (run_dir / "tmp").mkdir()
    ini_dir = write_php_ini(run_dir / "php.d")
    child_env = child_environment(base_env, config.child_env)
    if secret is not None:
        child_env.update(secret.child_env())
    # The runner's PHP settings come last, so they win over the image's.
    scan = base_env.get("PHP_INI_SCAN_DIR", "")
    child_env.update(
        APP_BASE_PATH=str(mirror), PHP_INI_SCAN_DIR=f"{scan}:{ini_dir}", TMPDIR=str(run_dir / "tmp")
    )
    return ChildSetup(mirror, ini_dir, child_env)


def _run_command(
    job: _Job,
    files: RunFiles,
    secret: DatabaseSecret | None,
    redactor: Redactor,
    database: str | None = None,
) -> ChildResult:
    config, request, shard = job.config, job.request, job.shard
    run_dir = files.folder.path
    setup = prepare_child(config, run_dir, request.command, secret, job.base_env)
    mirror, child_env = setup.mirror, setup.env
    args = list(request.args)
    if shard is not None:
        install_configuration(config.app_dir, mirror, shard)
        args = shard_args(request.args)
    if database is not None:
        child_env["DB_DATABASE"] = database
    argv = [config.php, "artisan", request.command, *args]
    if files.writes_junit:
        argv += ["--log-junit", str(run_dir / JUNIT)]
    return run_child(
        argv,
        env=child_env,
        cwd=mirror,
        log=files.log,
        redactor=redactor,
        on_output=job.on_output,
        deadline=job.deadline,
        kill_grace_seconds=config.kill_grace_seconds,
        tail_bytes=TAIL_BYTES,
        stop=job.stop,
    )


def _record(outcome: RunOutcome, result: ChildResult, notes: list[str]) -> None:
    outcome.exit_code = result.exit_code
    outcome.output_tail = result.tail.decode(errors="replace")
    if result.stopped:
        outcome.status = "error"
        outcome.message = "stopped early: the runner received SIGTERM (the task was stopped)"
        notes.append(f"[runner] {outcome.message}; exit code {result.exit_code}")
    elif result.timed_out:
        outcome.status = "timed_out"
        outcome.message = "stopped at the deadline (remaining Lambda time minus the margin)"
        notes.append(f"[runner] {outcome.message}; exit code {result.exit_code}")
    else:
        outcome.status = "passed" if result.exit_code == 0 else "failed"


def _note(
    files: RunFiles,
    redactor: Redactor,
    notes: list[str],
    outcome: RunOutcome,
    log: Callable[[str], None],
) -> None:
    """The runner's own lines, at the end of the log it holds (never reopened by path)."""
    for note in notes:
        masked = redactor.text(note)
        files.log.write(masked.encode() + b"\n")
        log(masked)
        outcome.output_tail += masked + "\n"
    files.log.flush()
    notes.clear()


def _publish(
    outcome: RunOutcome,
    files: RunFiles,
    store: ResultStore | None,
    redactor: Redactor,
    log: Callable[[str], None],
) -> None:
    """Upload in the order the report processor relies on: junit.xml last. Every body is
    read through a descriptor: the log the runner wrote, or a masked copy of a file opened
    without following links."""
    with contextlib.ExitStack() as opened:
        notes: list[str] = []
        artifacts = [
            (relative, body)
            for relative in files.artifacts
            if (body := _masked(files, f"{MIRROR}/{relative}", redactor, notes, opened))
        ]
        junit = _masked(files, JUNIT, redactor, notes, opened) if files.writes_junit else None
        _note(files, redactor, notes, outcome, log)

        uploads = [(files.prefix + OUTPUT_LOG, files.log)]
        uploads += [(files.prefix + relative, body) for relative, body in artifacts]
        # Only a passing run's docs replace the published ones.
        if outcome.status == "passed" and files.publishes_docs:
            latest = latest_docs_prefix(outcome.command)
            uploads += [(latest + relative, body) for relative, body in artifacts]
        outcome.artifacts = [key for key, _ in uploads]
        if junit is not None:
            outcome.artifacts.append(files.prefix + JUNIT)

        if store is None:
            kept = files.folder.keep()
            outcome.local_results, outcome.results_uri = str(kept), kept.as_uri()
            _write_locally(outcome, files)
            return
        try:
            for key, body in uploads:
                _put(store, key, body)
            _put(store, files.prefix + MANIFEST, io.BytesIO(_manifest_bytes(outcome)))
            if junit is not None:
                _put(store, files.prefix + JUNIT, junit)
        except StoreError as error:
            kept = files.folder.keep()
            outcome.status, outcome.local_results = "error", str(kept)
            outcome.message = (
                f"{error}; nothing produced is lost: the results are kept in {kept}"
                + (f" (the run itself ended: {outcome.message})" if outcome.message else "")
            )
            log(f"[runner] error: {outcome.message}")
            _write_locally(outcome, files)
            return
    outcome.results_uri = store.uri(files.prefix)
    files.folder.remove()


def _masked(
    files: RunFiles,
    relative: str,
    redactor: Redactor,
    notes: list[str],
    opened: contextlib.ExitStack,
) -> BinaryIO | None:
    """A masked copy of a file of the run, or None (and a note) when it is missing or not a
    regular file inside the run's folder."""
    try:
        source = opened.enter_context(files.folder.open_regular(relative))
    except FileNotFoundError:
        if relative != JUNIT:  # a run may end before PHPUnit writes its report
            notes.append(f"[runner] {relative} not uploaded: it is gone")
        return None
    except UnsafeFile as error:
        notes.append(f"[runner] {relative} not uploaded: {error}")
        return None
    target = opened.enter_context(files.folder.scratch())
    if relative == JUNIT:
        try:
            redact_xml(source, target, redactor)
        except NotWellFormed as error:
            notes.append(f"[runner] {JUNIT} is not well-formed XML ({error}): masked as text")
            source.seek(0)
            target.seek(0)
            target.truncate()
            _copy_masked(source, target, redactor)
    else:
        _copy_masked(source, target, redactor)
    return target


def _copy_masked(source: BinaryIO, target: BinaryIO, redactor: Redactor) -> None:
    stream = redactor.stream()
    while chunk := source.readline(64 * 1024):
        target.write(stream.feed(chunk))
    target.write(stream.flush())


def _put(store: ResultStore, key: str, body: BinaryIO) -> None:
    body.flush()
    body.seek(0)
    store.put(key, body, content_type(key))


def _manifest_bytes(outcome: RunOutcome) -> bytes:
    return (json.dumps(outcome.manifest(), indent=2) + "\n").encode()


def _write_locally(outcome: RunOutcome, files: RunFiles) -> None:
    """Results that were not uploaded stay on disk (under the kept name, which the clean-up
    of later invocations leaves alone): the manifest, and the log copied from the runner's."""
    files.log.seek(0)
    with files.folder.create_file(OUTPUT_LOG) as copy:
        for chunk in iter(lambda: files.log.read(64 * 1024), b""):
            copy.write(chunk)
    with files.folder.create_file(MANIFEST) as manifest:
        manifest.write(_manifest_bytes(outcome))
