"""The plan event: list the suite with PHPUnit, estimate, pack, write plan.json.

The listing runs as any run does (a mirror of the app under /tmp, the child's allowlisted
environment, the deadline, every process ended afterwards); what it writes back is untrusted and
read through the run folder's descriptor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import RunnerConfig
from ..database import SecretUnavailable
from ..events import PlanRequest
from ..execution import (
    ChildSetup,
    ResultStore,
    SecretSource,
    StoreError,
    database_secret,
    iso_time,
    new_run_folder,
    prepare_child,
)
from ..isolation import ProcessesSurvived
from ..layout import RunLocation, history_durations_key
from ..process import ChildResult, run_child
from ..redact import Redactor
from ..rundir import RunDir, UnsafeFile
from .phpunit import (
    CLASSES_ENV,
    LISTING_PREPEND,
    effective_groups,
    listing_ini,
    parse_class_files,
    read_app_configuration,
)
from .plan import (
    MAX_DURATIONS_BYTES,
    MAX_LISTING_BYTES,
    MAX_PLAN_BYTES,
    Durations,
    Plan,
    PlanError,
    build_plan,
    check_phpt_tests,
    parse_durations,
    read_listing,
    relative_test_file,
    repeated_plan_response,
    select_groups,
    shards_over_budget,
)

LISTING = "listing"
TESTS_XML = f"{LISTING}/tests.xml"
CLASSES = f"{LISTING}/classes"
_DUMP = re.compile(r"classes-\d{1,10}\.json")
TAIL_BYTES = 16 * 1024


@dataclass
class PlanOutcome:
    run_id: str
    status: str = "error"
    message: str | None = None
    output_tail: str = ""
    response_fields: dict[str, Any] | None = None

    def response(self) -> dict[str, Any]:
        if self.status == "planned" and self.response_fields is not None:
            return {"status": "planned", "run_id": self.run_id, **self.response_fields}
        body: dict[str, Any] = {"status": self.status, "run_id": self.run_id}
        body["reason" if self.status == "rejected" else "message"] = self.message
        if self.output_tail:
            body["output_tail"] = self.output_tail
        return body


def plan_run(
    request: PlanRequest,
    config: RunnerConfig,
    *,
    secrets: SecretSource,
    store: ResultStore | None,
    deadline: float | None,
    base_env: Mapping[str, str],
    on_output: Callable[[bytes], None],
    log: Callable[[str], None],
    now: Callable[[], datetime],
    stop: threading.Event | None = None,
) -> PlanOutcome:
    outcome = PlanOutcome(request.run_id)
    started_at = now()
    # What a shard, a fresh invocation of this same function, has before its deadline.
    shard_budget = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    location = RunLocation.of(started_at, request.run_id, request.command)
    if store is None:
        outcome.message = "a sharded run needs RESULTS_BUCKET: the shards read the plan from it"
        return outcome
    if _answered_before(request, store, location, outcome, log):
        return outcome
    folder = new_run_folder(config, f"{request.run_id}-plan", log)
    redactor = Redactor()
    try:
        secret = database_secret(config, secrets)
        if secret is not None:
            redactor = Redactor([secret.password], [secret.username])
        setup = prepare_child(config, folder.path, request.command, secret, base_env)
        result = _list_suite(request, config, folder, setup, redactor, on_output, deadline, stop)
        outcome.output_tail = result.tail.decode(errors="replace")
        _check_listing(result, request.command)
        plan = _pack(request, config, store, folder, setup, location, started_at, log)
        budget = None if shard_budget is None else round(shard_budget, 1)
        plan = dataclasses.replace(plan, shard_budget_seconds=budget)
        _store_plan(plan, store, location, request.run_id, log)
        outcome.status = "planned"
        outcome.response_fields = _planned_fields(plan, store, location)
        _warn_over_budget(plan, log)
        if plan.placeholders:
            log(
                f"[runner] warning: PHPUnit listed {plan.placeholders} problem(s) of its own "
                "(e.g. a data provider that fails); they run again with their class's shard"
            )
    except (PlanError, SecretUnavailable, StoreError, ProcessesSurvived, UnsafeFile) as error:
        outcome.message = redactor.text(str(error))
    except OSError as error:
        outcome.message = redactor.text(f"could not list the suite: {error}")
    finally:
        folder.remove()
        folder.close()
    if outcome.message:
        log(f"[runner] plan {request.run_id}: {outcome.message}")
    return outcome


def _answered_before(
    request: PlanRequest,
    store: ResultStore,
    location: RunLocation,
    outcome: PlanOutcome,
    log: Callable[[str], None],
) -> bool:
    """Whether a run id given again settles `outcome` without listing anything: the earlier
    plan's answer, a refusal, or the store's error."""
    try:
        if request.run_id_given and store.exists(location.plan_key):
            repeated = _repeated(request, store, location)
            if repeated is not None:
                log(
                    f"[runner] plan {request.run_id}: already planned, answering with its plan.json"
                )
                outcome.status, outcome.response_fields = "planned", repeated
                return True
        if request.run_id_given and (
            store.exists(location.plan_key) or store.exists(location.manifest_key)
        ):
            outcome.status = "rejected"
            outcome.message = (
                f"run_id {request.run_id!r} was already used for {request.command} today "
                f"({store.uri(location.run_prefix)}); leave run_id out to get a new one"
            )
            return True
    except StoreError as error:
        outcome.message = str(error)
        return True
    return False


def _list_suite(
    request: PlanRequest,
    config: RunnerConfig,
    folder: RunDir,
    setup: ChildSetup,
    redactor: Redactor,
    on_output: Callable[[bytes], None],
    deadline: float | None,
    stop: threading.Event | None,
) -> ChildResult:
    """PHPUnit's --list-tests-xml, with the prepend script that dumps the loaded classes' files."""
    listing = folder.path / LISTING
    (listing / "classes").mkdir(parents=True)
    (listing / "prepend.php").write_text(LISTING_PREPEND)
    (setup.ini_dir / "zz-runner-listing.ini").write_text(listing_ini(str(listing / "prepend.php")))
    env = {**setup.env, CLASSES_ENV: str(listing / "classes")}
    argv = [config.php, "artisan", request.command, *_suite_args(request.args)]
    argv += ["--list-tests-xml", str(folder.path / TESTS_XML)]
    with folder.create_file("output.log") as output_log:
        return run_child(
            argv,
            env=env,
            cwd=setup.mirror,
            log=output_log,
            redactor=redactor,
            on_output=on_output,
            deadline=deadline,
            kill_grace_seconds=config.kill_grace_seconds,
            tail_bytes=TAIL_BYTES,
            stop=stop,
        )


def _check_listing(result: ChildResult, command: str) -> None:
    if result.timed_out or result.stopped or result.exit_code != 0:
        how = "was stopped" if result.timed_out or result.stopped else "failed"
        raise PlanError(
            f"listing the suite (artisan {command} --list-tests-xml) {how} "
            f"(exit code {result.exit_code}); its output ends with the lines below"
        )


def _pack(
    request: PlanRequest,
    config: RunnerConfig,
    store: ResultStore,
    folder: RunDir,
    setup: ChildSetup,
    location: RunLocation,
    started_at: datetime,
    log: Callable[[str], None],
) -> Plan:
    """The plan from what the listing wrote, the app's groups and the durations of history."""
    listing = read_listing(_read(folder, TESTS_XML, MAX_LISTING_BYTES))
    groups = effective_groups(read_app_configuration(config.app_dir), *_groups(request.args))
    check_phpt_tests(listing.phpt_files, *groups)
    classes = select_groups(listing.classes, *groups)
    roots = _roots(config.app_dir, setup.mirror)
    files = {
        name: relative
        for name, path in parse_class_files(_dumps(folder)).items()
        if (relative := relative_test_file(path, roots)) is not None
    }
    durations = _durations(config, store, location.slug, log)
    return build_plan(
        run_id=request.run_id,
        command=request.command,
        slug=location.slug,
        started_at=iso_time(started_at) or "",
        args=request.args,
        classes=classes,
        files=files,
        durations=durations,
        requested=request.shards,
        limits=config.shard_limits,
    )


def _store_plan(
    plan: Plan, store: ResultStore, location: RunLocation, run_id: str, log: Callable[[str], None]
) -> None:
    body = (json.dumps(plan.document(), indent=1) + "\n").encode()
    store.put(location.plan_key, io.BytesIO(body), "application/json")
    log(
        f"planned {plan.tests_total} tests of {run_id} into {len(plan.shards)} "
        f"shard(s) ({plan.cap.reason}; estimates: {plan.basis})"
    )


def _warn_over_budget(plan: Plan, log: Callable[[str], None]) -> None:
    budget = plan.shard_budget_seconds
    over = [] if budget is None else shards_over_budget(plan.shards, budget)
    if over:
        shards = ", ".join(f"shard {index} ({seconds:.0f} s)" for index, seconds in over)
        log(
            f"[runner] warning: estimated from history over the {budget:.0f} s a shard has "
            f"before its deadline: {shards}; it will be stopped there and its remaining tests "
            "reported as not run: plan more shards, or run the command unsharded on Fargate"
        )


def _planned_fields(plan: Plan, store: ResultStore, location: RunLocation) -> dict[str, Any]:
    return {
        "plan_key": location.plan_key,
        "plan_uri": store.uri(location.plan_key),
        "shard_count": len(plan.shards),
        "shards": plan.summary(),
        "tests_total": plan.tests_total,
        "classes_without_history": plan.classes_without_history,
        "estimate_basis": plan.basis,
        "cap": plan.cap.as_json(),
        "phpunit_placeholders": plan.placeholders,
        # ltr compares the shards' estimates with it.
        "shard_budget_seconds": plan.shard_budget_seconds,
    }


def _repeated(
    request: PlanRequest, store: ResultStore, location: RunLocation
) -> dict[str, Any] | None:
    """The earlier answer to this same plan request, while its run has not finished (no
    run-level manifest): a retried Plan step must not be refused, nor pack a second time."""
    if store.exists(location.manifest_key):
        return None
    fields = repeated_plan_response(
        store.get(location.plan_key, MAX_PLAN_BYTES + 1),
        run_id=request.run_id,
        command=request.command,
        args=request.args,
        requested=request.shards,
    )
    if fields is None:
        return None
    return {"plan_key": location.plan_key, "plan_uri": store.uri(location.plan_key), **fields}


def _suite_args(args: tuple[str, ...]) -> list[str]:
    """The listing honours --testsuite only (PHPUnit 9 ignores --filter and the group options
    with --list-tests-xml, and says so): the rest applies when the shards run."""
    kept: list[str] = []
    for position, arg in enumerate(args):
        if arg == "--testsuite" and position + 1 < len(args):
            kept += [arg, args[position + 1]]
        elif arg.startswith("--testsuite="):
            kept.append(arg)
    return kept


def _groups(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """--group and --exclude-group values (normal form `--opt value`, comma-separated)."""
    include: list[str] = []
    exclude: list[str] = []
    for position, arg in enumerate(args[:-1]):
        value = [name.strip() for name in args[position + 1].split(",") if name.strip()]
        if arg == "--group":
            include += value
        elif arg == "--exclude-group":
            exclude += value
    return include, exclude


def _roots(app_dir: Path, mirror: Path) -> list[str]:
    """Where a test file may have been loaded from: the app's real path, as configured, or the
    run's mirror of it."""
    return list(dict.fromkeys([os.path.realpath(app_dir), str(app_dir), str(mirror)]))


def _read(folder: RunDir, relative: str, limit: int) -> bytes:
    try:
        with folder.open_regular(relative) as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise PlanError(f"the listing wrote no {relative.rsplit('/', 1)[-1]}") from None
    if len(data) > limit:
        raise PlanError(f"{relative} is over {limit} bytes")
    return data


def _dumps(folder: RunDir) -> list[bytes]:
    """The prepend script's files (one per PHP process that had loaded test classes)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(CLASSES, flags, dir_fd=folder.fd)
    except OSError as error:
        raise UnsafeFile(f"{CLASSES} is not a folder ({error.strerror})") from None
    try:
        names = sorted(entry.name for entry in os.scandir(fd) if _DUMP.fullmatch(entry.name))
    finally:
        os.close(fd)
    return [_read(folder, f"{CLASSES}/{name}", 64 * 1024 * 1024) for name in names[:64]]


def _durations(
    config: RunnerConfig, store: ResultStore, slug: str, log: Callable[[str], None]
) -> Durations:
    if not config.project or not config.environment:
        return Durations(note="PROJECT/ENVIRONMENT unset: no history to read")
    try:
        key = history_durations_key(config.project, config.environment, slug)
    except ValueError as error:
        return Durations(note=str(error))
    with contextlib.suppress(StoreError):
        durations = parse_durations(store.get(key, MAX_DURATIONS_BYTES + 1))
        if durations.note:
            log(f"[runner] {key}: {durations.note}")
        return durations
    log(f"[runner] could not read {key}: planning without history")
    return Durations(note="durations.json could not be read")
