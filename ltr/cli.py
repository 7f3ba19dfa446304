"""`ltr`: start runs of the deployed Lambda Test Runner and read their results from S3.

Exit codes: 0 the run passed (the runner's status is "passed" and, for a run that uploaded JUnit,
so is the report's: "no tests ran" is not a pass) or the command succeeded; 1 the run did not
pass (any other runner or report status); 2 bad input or an AWS problem (one line on stderr);
3 `--wait` gave up before the results arrived.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn, Protocol, TextIO

from runner.events import new_run_id
from runner.layout import (
    DOCS_PREFIX,
    LATEST_REPORT_PREFIX,
    RUNS_PREFIX,
    SUMMARY_JSON,
    SUMMARY_MARKDOWN,
    RunLocation,
    days_from_prefixes,
    run_id_prefix,
)

from ltr.core import (
    SUMMARY_FORMATS,
    ExitCode,
    LtrError,
    Observation,
    Phase,
    RunArgv,
    RunRequest,
    candidate_days,
    exit_code_for,
    format_duration,
    group_docs,
    outcome_line,
    progress_text,
    render_runs,
    sort_newest_first,
    split_run_argv,
    still_running_message,
    terminal_safe,
    validate_run_id,
    validate_run_request,
    wait_for_run,
)
from ltr.history import (
    DEFAULT_COMMAND,
    DEFAULT_FLAKY_DAYS,
    DEFAULT_HISTORY_LIMIT,
    DEFAULT_QUARANTINE_DAYS,
    LIST_FORMATS,
    MAX_FLAKY_DAYS,
    MAX_HISTORY_LIMIT,
    MAX_QUARANTINE_DAYS,
    added_line,
    check_range,
    check_test_query,
    comparison_json,
    flaky_json,
    history_scope,
    no_history,
    no_such_test,
    pick_entry,
    pick_test_id,
    quarantine_json,
    render_comparison,
    render_flaky,
    render_quarantine,
    render_test_history,
    resolve_run,
    test_history_json,
)
from ltr.shards import (
    ExecutionWait,
    ShardProgress,
    budget_warnings,
    config_cap,
    shard_progress,
    sharded_timeout,
    wait_for_execution,
)
from ltr.shards import progress_text as shard_progress_text

if TYPE_CHECKING:
    from ltr.aws import ResultsReader, ShardedRuns
    from ltr.target import Target
    from report_processor.history.keys import HistoryScope

POLL_SECONDS = 3.0
# Lambda's hard limit is 900 s; the report processor needs a few seconds more.
DEFAULT_WAIT_MARGIN_SECONDS = 120
# The merge function's timeout (modules/sharding.py MERGE_TIMEOUT_SECONDS).
MERGE_WAIT_SECONDS = 300
MAX_DAYS_SCANNED = 400
PRESIGN_DEFAULT_SECONDS = 3600


class Output(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class TerminalSafe:
    """Everything ltr prints passes here: manifests, summaries, keys and error messages come from
    S3 and may carry control characters or escape sequences, which are shown, never obeyed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str, /) -> int:
        return self.stream.write(terminal_safe(text, multiline=True))

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    """Progress on stderr: one rewritten line on a terminal, a line per change (and every
    `quiet_every` seconds) otherwise, so CI logs stay short. It writes to the raw stream: its
    own escape sequence (erase the line) is the only one ltr ever sends."""

    def __init__(self, stream: TextIO, run_id: str, quiet_every: float = 30.0) -> None:
        self.stream, self.run_id, self.quiet_every = stream, run_id, quiet_every
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_phase: Phase | None = None
        self.last_print = -1e9

    def __call__(self, phase: Phase, elapsed: float) -> None:
        text = progress_text(phase, self.run_id, elapsed)
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if phase is Phase.DONE else ""))
        elif phase is not self.last_phase or elapsed - self.last_print >= self.quiet_every:
            self.stream.write(text + "\n")
            self.last_print = elapsed
        self.last_phase = phase
        self.stream.flush()


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as ltr's one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        raise LtrError(f"{message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument("--env", help="use config/<ENV>.json (default: $LTR_ENV or example)")
    where.add_argument("--config", help="path of the stack's config file")

    parser = _Parser(
        prog="ltr",
        description="Run the Lambda Test Runner on demand and read its results.",
        epilog="Endpoint and credentials come from the usual AWS environment "
        "(AWS_PROFILE, AWS_ENDPOINT_URL for an emulator, ...).",
    )
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    commands.add_parser(
        "run",
        help="start an allowlisted artisan command: ltr run COMMAND [ARGS...] [--wait]",
        add_help=False,
    )
    runs = commands.add_parser("runs", parents=[common], help="list recent runs")
    runs.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    history_of = _Parser(add_help=False)
    history_of.add_argument(
        "--command",
        default=DEFAULT_COMMAND,
        help=f"whose history: one of the stack's commands (default {DEFAULT_COMMAND})",
    )
    _add_report(commands, [common, history_of])
    _add_history(commands, [common, history_of])
    _add_flaky(commands, [common, history_of])
    _add_quarantine(commands, common, history_of)
    docs = commands.add_parser("docs", parents=[common], help="where the latest docs are")
    docs.add_argument(
        "--expires",
        type=int,
        default=PRESIGN_DEFAULT_SECONDS,
        help=f"presigned link lifetime in seconds (default {PRESIGN_DEFAULT_SECONDS})",
    )
    return parser


def _add_report(
    commands: argparse._SubParsersAction[_Parser],
    parents: list[_Parser],
) -> None:
    report = commands.add_parser(
        "report", parents=parents, help="show one run's summary, or compare two runs"
    )
    report.add_argument("run_id", metavar="RUN_ID", help="a run id from `ltr runs`, or latest")
    report.add_argument("--format", choices=SUMMARY_FORMATS, default="markdown")
    report.add_argument(
        "--compare",
        metavar="OTHER_RUN_ID",
        help="show RUN_ID's difference from this run (from the run history) instead of its summary",
    )


def _add_history(
    commands: argparse._SubParsersAction[_Parser],
    parents: list[_Parser],
) -> None:
    history = commands.add_parser(
        "history", parents=parents, help="one test's outcomes over recent runs"
    )
    history.add_argument(
        "test_id", metavar="TEST_ID", help="file::class::name, or its end (Class::name, name)"
    )
    history.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_HISTORY_LIMIT,
        help=f"recent runs to read (default {DEFAULT_HISTORY_LIMIT}, at most {MAX_HISTORY_LIMIT})",
    )
    history.add_argument("--format", choices=LIST_FORMATS, default="table")


def _add_flaky(
    commands: argparse._SubParsersAction[_Parser],
    parents: list[_Parser],
) -> None:
    flaky = commands.add_parser(
        "flaky", parents=parents, help="flaky tests across runs, most flips first"
    )
    flaky.add_argument(
        "--days",
        type=int,
        default=DEFAULT_FLAKY_DAYS,
        help=f"look at the runs of the last N days (default {DEFAULT_FLAKY_DAYS})",
    )
    flaky.add_argument("--format", choices=LIST_FORMATS, default="table")


def _add_quarantine(
    commands: argparse._SubParsersAction[_Parser],
    common: _Parser,
    history_of: _Parser,
) -> None:
    quarantine = commands.add_parser(
        "quarantine", help="tests that still run but do not count, for at most 30 days"
    )
    quarantine_actions = quarantine.add_subparsers(
        dest="quarantine_action", required=True, metavar="ACTION"
    )
    add = quarantine_actions.add_parser(
        "add", parents=[common, history_of], help="quarantine a test: add TEST_ID --reason --owner"
    )
    add.add_argument("test_id", metavar="TEST_ID", help="file::class::name, or its end")
    add.add_argument("--reason", required=True, help="why (one line; shown in every report)")
    add.add_argument("--owner", required=True, help="who fixes it (one line)")
    add.add_argument(
        "--days",
        type=int,
        default=DEFAULT_QUARANTINE_DAYS,
        help=f"how long, 1 to {MAX_QUARANTINE_DAYS} (default {DEFAULT_QUARANTINE_DAYS})",
    )
    listing = quarantine_actions.add_parser("list", parents=[common], help="the quarantine list")
    listing.add_argument("--format", choices=LIST_FORMATS, default="table")
    remove = quarantine_actions.add_parser(
        "remove", parents=[common], help="end a test's quarantine: remove TEST_ID"
    )
    remove.add_argument("test_id", metavar="TEST_ID", help="as `ltr quarantine list` shows it")


def _bucket(target: Target) -> ResultsReader:
    from ltr.aws import ResultsReader

    return ResultsReader(target.results_bucket, target.region)


def _open_results(args: argparse.Namespace) -> tuple[Target, ResultsReader]:
    """The target's results bucket, checked to exist before anything is read from it."""
    from ltr.target import load_target

    target = load_target(args.env, args.config)
    bucket = _bucket(target)
    bucket.check_exists()
    return target, bucket


def cmd_run(
    argv: Sequence[str],
    out: Output,
    err: Output,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress_stream: TextIO | None = None,
) -> int:
    from ltr.aws import Runner
    from ltr.target import load_target

    parsed = split_run_argv(argv)
    target = load_target(parsed.env, parsed.config)
    started = datetime.now(UTC)
    request = validate_run_request(
        parsed.command, parsed.args, target.allowed_commands, new_run_id(started)
    )
    if parsed.shards is not None and request.command != "test":
        raise LtrError(f"--shards splits the test command only, not {request.command!r}")
    runner = Runner(target.runner_function, target.region)
    function_timeout = runner.timeout_seconds()
    if parsed.shards is not None:
        return cmd_run_sharded(
            parsed, target, request, function_timeout, out, err, clock, sleep, progress_stream
        )
    bucket = _bucket(target) if parsed.wait else None
    if bucket is not None:
        bucket.check_exists()  # fail before starting anything, not after the wait
    status = runner.invoke_async(request)
    err.write(
        f"started run {request.run_id}: {request.command} {' '.join(request.args)}".rstrip()
        + f" on {target.runner_function} (accepted, HTTP {status})\n"
    )
    where = _results_where(target, request)
    if bucket is None:
        out.write(request.run_id + "\n")
        err.write(f"results will appear under {where}; follow with `ltr report {request.run_id}`\n")
        return ExitCode.OK

    timeout = parsed.timeout or function_timeout + DEFAULT_WAIT_MARGIN_SECONDS
    return _wait_for_report(
        target, request, bucket, started, timeout, where, out, err, clock, sleep, progress_stream
    )


def _results_where(target: Target, request: RunRequest) -> str:
    """Where the run's results will appear (its day is not known before they do)."""
    return (
        f"s3://{target.results_bucket}/"
        + RunLocation("<day>", request.run_id, request.slug).run_prefix
    )


def _wait_for_report(
    target: Target,
    request: RunRequest,
    reader: ResultsReader,
    started: datetime,
    timeout: float,
    where: str,
    out: Output,
    err: Output,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    progress_stream: TextIO | None,
) -> int:
    def poll() -> Observation:
        days = candidate_days(started, datetime.now(UTC))
        return reader.observe(days, request.run_id, request.slug)

    progress = Progress(progress_stream or sys.stderr, request.run_id)
    result = wait_for_run(poll, clock, sleep, timeout, POLL_SECONDS, progress)
    if result.phase is not Phase.DONE:
        err.write(
            still_running_message(result, request.run_id, where, target.runner_log_group) + "\n"
        )
        return ExitCode.STILL_RUNNING
    record = result.observation.record
    assert record is not None  # DONE implies a manifest
    if result.observation.summary_markdown:
        out.write(result.observation.summary_markdown.rstrip("\n") + "\n")
    err.write(outcome_line(record) + "\n")
    err.write(f"results: s3://{target.results_bucket}/{record.location.run_prefix}\n")
    return exit_code_for(record)


class ShardProgressLine:
    """`--wait` progress of a sharded run, on stderr like Progress: shards done / total and the
    slowest shard still running; one rewritten line on a terminal, a line per change otherwise."""

    def __init__(self, stream: TextIO, run_id: str, quiet_every: float = 30.0) -> None:
        self.stream, self.run_id, self.quiet_every = stream, run_id, quiet_every
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_state: tuple[object, ...] | None = None
        self.last_print = -1e9
        self.warned = False

    def __call__(self, progress: ShardProgress, elapsed: float) -> None:
        if progress.planned is not None and not self.warned:
            # Once, as soon as the plan is known: long before the shard would be stopped.
            self.warned = True
            for warning in budget_warnings(progress):
                self.stream.write(("\r\x1b[2K" if self.tty else "") + terminal_safe(warning) + "\n")
        text = terminal_safe(shard_progress_text(progress, self.run_id, elapsed))
        state = (progress.status, progress.planned, progress.done, progress.failed)
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if progress.finished else ""))
        elif state != self.last_state or elapsed - self.last_print >= self.quiet_every:
            self.stream.write(text + "\n")
            self.last_print = elapsed
        self.last_state = state
        self.stream.flush()


def cmd_run_sharded(
    parsed: RunArgv,
    target: Target,
    request: RunRequest,
    function_timeout: int,
    out: Output,
    err: Output,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    progress_stream: TextIO | None,
) -> int:
    """`ltr run test --shards N [--wait]`: start an execution of the sharded-run state machine
    named after the run id; with --wait follow it, then wait for the merged report."""
    from ltr.aws import ShardedRuns

    assert parsed.shards is not None and request.command == "test"  # checked by cmd_run
    started = datetime.now(UTC)
    runs = ShardedRuns(target.state_machine, target.region, target.partition)
    machine = runs.arn()
    bucket = _bucket(target) if parsed.wait else None
    if bucket is not None:
        bucket.check_exists()
    execution = _start_execution(runs, machine, parsed.shards, target, request, err)
    where = _results_where(target, request)
    if bucket is None:
        out.write(request.run_id + "\n")
        err.write(f"execution {execution}; follow with `ltr report {request.run_id}`\n")
        return ExitCode.OK

    timeout = parsed.timeout or sharded_timeout(
        function_timeout, parsed.shards, target.shard_concurrency, MERGE_WAIT_SECONDS
    )
    waited = _follow_execution(
        runs, execution, request.run_id, timeout, clock, sleep, progress_stream
    )
    ended = _execution_end(waited.progress, waited.elapsed, request.run_id, execution, err)
    if ended is not None:
        return ended
    remaining = max(DEFAULT_WAIT_MARGIN_SECONDS, timeout - waited.elapsed)
    return _wait_for_report(
        target, request, bucket, started, remaining, where, out, err, clock, sleep, progress_stream
    )


def _start_execution(
    runs: ShardedRuns,
    machine: str,
    shards: int,
    target: Target,
    request: RunRequest,
    err: Output,
) -> str:
    """Start the sharded run's execution and say so (and what caps its shards)."""
    from modules.shard_flow import execution_input

    execution = runs.start(
        machine, request.run_id, execution_input(request.command, request.args, shards)
    )
    err.write(
        f"started sharded run {request.run_id}: {request.command} {' '.join(request.args)}".rstrip()
        + f" over {shards} shards on {target.state_machine}\n"
    )
    note = config_cap(shards, target.max_shards, target.shard_concurrency)
    if note:
        err.write(f"cap: {note}\n")
    return execution


def _follow_execution(
    runs: ShardedRuns,
    execution: str,
    run_id: str,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    progress_stream: TextIO | None,
) -> ExecutionWait:
    def poll() -> ShardProgress:
        status, events = runs.observe(execution)
        return shard_progress(status, events, datetime.now(UTC))

    line = ShardProgressLine(progress_stream or sys.stderr, run_id)
    return wait_for_execution(poll, clock, sleep, timeout, POLL_SECONDS, line)


def _execution_end(
    progress: ShardProgress, elapsed: float, run_id: str, execution: str, err: Output
) -> int | None:
    """Say how the execution ended; the exit code when there is no merged report to wait for."""
    if progress.cap is not None:
        err.write(f"cap: {progress.cap.text()}\n")
    if not progress.finished:
        err.write(
            f"run {run_id}: still running after {format_duration(elapsed)}; "
            f"follow execution {execution}, then `ltr report {run_id}`\n"
        )
        return ExitCode.STILL_RUNNING
    if progress.status != "SUCCEEDED":
        err.write(
            f"run {run_id}: the sharded run's execution ended {progress.status}, so no "
            f"merged report: see its history (`aws stepfunctions get-execution-history "
            f"--execution-arn {execution}`)\n"
        )
        return ExitCode.RUN_NOT_PASSED
    return None


def cmd_runs(args: argparse.Namespace, out: Output) -> int:
    if not 1 <= args.limit <= 1000:
        raise LtrError(f"--limit {args.limit}: give a number between 1 and 1000")
    target, bucket = _open_results(args)
    candidates: list[tuple[RunLocation, datetime]] = []
    for day in days_from_prefixes(bucket.common_prefixes(RUNS_PREFIX))[:MAX_DAYS_SCANNED]:
        candidates.extend(bucket.manifest_keys(day))
        if len(candidates) >= args.limit:
            break
    # Newest manifests first by upload time, so only `limit` manifests are ever downloaded.
    candidates.sort(key=lambda pair: pair[1], reverse=True)
    records = [r for key, _ in candidates[: args.limit] if (r := bucket.record(key)) is not None]
    if not records:
        out.write(f"no runs yet under s3://{target.results_bucket}/{RUNS_PREFIX}\n")
        return ExitCode.OK
    out.write(render_runs(sort_newest_first(records)) + "\n")
    return ExitCode.OK


def _find_run(bucket: ResultsReader, run_id: str) -> list[RunLocation]:
    """Every command directory of a run, searching days newest first."""
    for day in days_from_prefixes(bucket.common_prefixes(RUNS_PREFIX))[:MAX_DAYS_SCANNED]:
        slugs = bucket.common_prefixes(run_id_prefix(day, run_id))
        if slugs:
            return [
                RunLocation(day, run_id, prefix.rstrip("/").rsplit("/", 1)[-1]) for prefix in slugs
            ]
    return []


def cmd_report(args: argparse.Namespace, out: Output) -> int:
    if args.compare is not None:
        return cmd_compare(args, out)
    target, bucket = _open_results(args)
    if args.run_id == "latest":
        prefixes = [LATEST_REPORT_PREFIX]
    else:
        run_id = validate_run_id(args.run_id)
        found = _find_run(bucket, run_id)
        if not found:
            raise LtrError(
                f"no run {run_id!r} under s3://{target.results_bucket}/{RUNS_PREFIX}: "
                "check the id with `ltr runs`"
            )
        prefixes = [location.report_prefix for location in found]
    shown = 0
    for prefix in prefixes:
        if args.format == "json":
            document = bucket.read_json(prefix + SUMMARY_JSON)
            text = None if document is None else json.dumps(document, indent=2, ensure_ascii=False)
        else:
            text = bucket.read_text(prefix + SUMMARY_MARKDOWN)
        if text is None:
            continue
        out.write(text.rstrip("\n") + "\n")
        shown += 1
    if shown:
        return ExitCode.OK
    if args.run_id == "latest":
        raise LtrError(f"no summary under s3://{target.results_bucket}/{LATEST_REPORT_PREFIX} yet")
    records = [bucket.record(location) for location in found]
    described = "; ".join(outcome_line(r) for r in records if r is not None) or "no manifest yet"
    raise LtrError(f"run {args.run_id} has no test summary ({described})")


# --------------------------------------------------------------------------- run history


def _open_history(args: argparse.Namespace) -> tuple[Target, ResultsReader, HistoryScope]:
    target, bucket = _open_results(args)
    command = getattr(args, "command", DEFAULT_COMMAND)
    scope = history_scope(target.project, target.environment, command, target.allowed_commands)
    return target, bucket, scope


def cmd_compare(args: argparse.Namespace, out: Output) -> int:
    from ltr.aws import history_errors
    from report_processor.history.queries import compare
    from report_processor.history.session import load_index

    run_id = args.run_id if args.run_id == "latest" else validate_run_id(args.run_id)
    other_id = validate_run_id(args.compare)
    target, bucket, scope = _open_history(args)
    store = bucket.history_store()
    with history_errors("compare runs", bucket.uri(scope.prefix)):
        index = load_index(store, scope)
        run_id = resolve_run(index, run_id, scope)
        other_id = resolve_run(index, other_id, scope)
        comparison = compare(store, scope, run_id, other_id)
    if args.format == "json":
        out.write(comparison_json(comparison) + "\n")
    else:
        out.write(render_comparison(comparison, scope) + "\n")
    return ExitCode.OK


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    from ltr.aws import history_errors
    from report_processor.history.queries import outcomes_of_test
    from report_processor.history.session import load_index

    check_range("--limit", args.limit, 1, MAX_HISTORY_LIMIT, " (the history keeps that many runs)")
    query = check_test_query(args.test_id)
    target, bucket, scope = _open_history(args)
    store = bucket.history_store()
    with history_errors("read the run history", bucket.uri(scope.prefix)):
        runs = len(load_index(store, scope).runs)
        if runs == 0:
            raise no_history(scope, target.results_bucket)
        outcomes = outcomes_of_test(store, scope, query, args.limit)
    if not outcomes:
        raise no_such_test(query, scope, min(runs, args.limit))
    if args.format == "json":
        out.write(test_history_json(outcomes) + "\n")
    else:
        out.write(render_test_history(query, outcomes, min(runs, args.limit)) + "\n")
    return ExitCode.OK


def cmd_flaky(args: argparse.Namespace, out: Output, now: datetime | None = None) -> int:
    from ltr.aws import history_errors
    from report_processor.history.queries import flaky_tests

    days = check_range("--days", args.days, 1, MAX_FLAKY_DAYS)
    _target, bucket, scope = _open_history(args)
    with history_errors("read the run history", bucket.uri(scope.prefix)):
        found = flaky_tests(bucket.history_store(), scope, now or datetime.now(UTC), days)
    if args.format == "json":
        out.write(flaky_json(found) + "\n")
    else:
        out.write(render_flaky(found, scope, days) + "\n")
    return ExitCode.OK


def cmd_quarantine(args: argparse.Namespace, out: Output, now: datetime | None = None) -> int:
    from ltr.aws import history_errors
    from report_processor.history import keys
    from report_processor.history.queries import (
        add_to_quarantine,
        find_test_ids,
        list_quarantine,
        remove_from_quarantine,
    )

    now = now or datetime.now(UTC)
    action = args.quarantine_action
    if action == "add":
        check_range(
            "--days",
            args.days,
            1,
            MAX_QUARANTINE_DAYS,
            " (a quarantine expires; add it again if the test is still not fixed)",
        )
        query = check_test_query(args.test_id)
        target, bucket, scope = _open_history(args)
    else:
        target, bucket = _open_results(args)
        query = check_test_query(args.test_id) if action == "remove" else ""
    project, environment = target.project, target.environment
    store = bucket.history_store()
    with history_errors(
        f"{action} quarantine entries", bucket.uri(keys.quarantine_key(project, environment))
    ):
        if action == "list":
            entries = list_quarantine(store, project, environment)
            if args.format == "json":
                out.write(quarantine_json(entries, now) + "\n")
            else:
                out.write(render_quarantine(entries, now, project, environment) + "\n")
        elif action == "add":
            test_id = pick_test_id(query, find_test_ids(store, scope, query))
            entry = add_to_quarantine(
                store, project, environment, test_id, args.reason, args.owner, now, args.days
            )
            out.write(added_line(entry) + "\n")
        else:
            entry = pick_entry(query, list_quarantine(store, project, environment))
            remove_from_quarantine(store, project, environment, entry.test_id)
            out.write(f"removed {entry.test_id} from the quarantine list: it counts again\n")
    return ExitCode.OK


def cmd_docs(args: argparse.Namespace, out: Output) -> int:
    if not 1 <= args.expires <= 604_800:
        raise LtrError(f"--expires {args.expires}: give seconds between 1 and 604800 (7 days)")
    target, bucket = _open_results(args)
    sets = group_docs(bucket.docs_objects(DOCS_PREFIX))
    if not sets:
        raise LtrError(
            f"no docs under s3://{target.results_bucket}/{DOCS_PREFIX} yet: "
            "run `ltr run scribe:generate --wait` or `ltr run api:export-markdown --wait`"
        )
    for docs in sets:
        entry = docs.entry
        out.write(
            f"{docs.slug}: {bucket.uri(docs.prefix)} ({len(docs.objects)} "
            f"file{'s' if len(docs.objects) != 1 else ''}, "
            f"updated {docs.updated.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z)\n"
            f"  open: {bucket.uri(entry.key)}\n"
            f"  link (valid {args.expires}s): {bucket.presign(entry.key, args.expires)}\n"
        )
    return ExitCode.OK


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    raw_err = err or sys.stderr
    out_safe, err_safe = TerminalSafe(out or sys.stdout), TerminalSafe(raw_err)
    try:
        return _dispatch(argv, out_safe, err_safe, raw_err)
    except LtrError as error:
        err_safe.write(f"ltr: {terminal_safe(str(error))}\n")
        return int(ExitCode.USAGE_OR_AWS)
    except KeyboardInterrupt:
        err_safe.write("ltr: interrupted; a started run keeps going: see `ltr runs`\n")
        return 130


def _dispatch(argv: list[str], out: Output, err: Output, raw_err: TextIO) -> int:
    if argv and argv[0] == "run":
        if any(token in ("-h", "--help") for token in argv[1:2]):
            from ltr.core import RUN_USAGE

            out.write(RUN_USAGE + "\n")
            return ExitCode.OK
        return int(cmd_run(argv[1:], out, err, progress_stream=raw_err))
    args = _parser().parse_args(argv)
    handler = {
        "runs": cmd_runs,
        "report": cmd_report,
        "docs": cmd_docs,
        "history": cmd_history,
        "flaky": cmd_flaky,
        "quarantine": cmd_quarantine,
    }[args.action]
    return int(handler(args, out))
