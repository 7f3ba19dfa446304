"""The pure core of `ltr`: check requests (with the runner's own rules, runner/commands.py and
runner/layout.py), read results found by the runner's layout, decide the exit code, render.

Nothing here talks to AWS or imports boto3; the shell (ltr/aws.py, ltr/cli.py) feeds it plain
values, so every rule below is testable without an emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum, StrEnum
from urllib.parse import urlsplit

from runner.commands import ArgumentError, spec_for, validate_args
from runner.layout import DOCS_PREFIX, InvalidRunId, RunLocation, command_slug, day_of
from runner.layout import validate_run_id as layout_validate_run_id

SUMMARY_FORMATS = ("markdown", "json")
RUN_PASSED = "passed"  # the runner's manifest status of a run whose command exited 0
REPORT_PASSED = "passed"  # the report processor's summary status when every test ran and passed
UNREADABLE = "unreadable"  # ltr's own status for a manifest it cannot read


class LtrError(Exception):
    """A problem the user can fix; `str()` is the one line `ltr` prints before exiting 2."""


class ExitCode(IntEnum):
    OK = 0
    RUN_NOT_PASSED = 1  # any runner or report status but "passed" (no_tests included)
    USAGE_OR_AWS = 2  # bad input, missing resource, no credentials, endpoint unreachable
    STILL_RUNNING = 3  # --wait gave up before the results arrived


# --------------------------------------------------------------------------- run requests


@dataclass(frozen=True)
class RunRequest:
    command: str
    args: tuple[str, ...]
    run_id: str

    @property
    def slug(self) -> str:
        return command_slug(self.command)

    def event(self) -> dict[str, object]:
        """The runner's event, exactly as EventBridge targets shape it, plus our run id."""
        return {"command": self.command, "args": list(self.args), "run_id": self.run_id}


def validate_run_id(run_id: str) -> str:
    """The runner's own run-id rule (runner/layout.py), worded for the command line."""
    try:
        return layout_validate_run_id(run_id)
    except InvalidRunId as error:
        raise LtrError(f"{error}; use a run id as printed by `ltr runs`") from None


def validate_run_request(
    command: str, args: Sequence[str], allowed_commands: Sequence[str], run_id: str
) -> RunRequest:
    """The runner's own checks (runner/commands.py), applied before anything starts: an
    asynchronous invocation discards the function's response, so nobody would see the runner
    reject the request. The runner checks again: it trusts no caller."""
    if command not in allowed_commands:
        allowed = ", ".join(allowed_commands) or "(none)"
        raise LtrError(
            f"command {command!r} is not allowed: choose one of {allowed} "
            "(the allowlist comes from the stack's config)"
        )
    try:
        validate_args(spec_for(command), list(args))
    except ArgumentError as error:
        raise LtrError(f"{command}: {error}") from None
    return RunRequest(command=command, args=tuple(args), run_id=validate_run_id(run_id))


# --------------------------------------------------------------------------- endpoint


def endpoint_problem(name: str, value: str) -> str | None:
    """Why an endpoint override (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, ...) cannot be used, or
    None. botocore would otherwise fail deep inside client creation with a traceback."""
    shown = terminal_safe(value[:200])
    fix = (
        "use http(s)://host[:port], like http://127.0.0.1:5000 for an emulator, "
        f"or unset {name} to use AWS"
    )
    if any(char.isspace() for char in value):
        return f"{name}={shown!r} is not a URL (it contains whitespace): {fix}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError:
        return f"{name}={shown!r} is not a URL (bad port): {fix}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{name}={shown!r} is not an http(s) URL: {fix}"
    return None


# --------------------------------------------------------------------------- S3 layout


def candidate_days(started: datetime, now: datetime) -> list[str]:
    """The UTC days a run started at `started` may be filed under: the runner dates it by its own
    start, which is ours give or take the invocation delay, so a run near midnight may land on the
    next day (and, with a skewed client clock, the previous one)."""
    first = started.astimezone(UTC).date() - timedelta(days=1)
    last = max(now.astimezone(UTC).date(), first + timedelta(days=1)) + timedelta(days=1)
    days: list[str] = []
    current: date = first
    while current <= last:
        days.append(day_of(current))
        current += timedelta(days=1)
    # Most likely first: the start day, then the next ones, then the day before.
    start_day = day_of(started.astimezone(UTC))
    return sorted(days, key=lambda day: (day < start_day, day))


# --------------------------------------------------------------------------- reading results


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # a JSON integer of hundreds of digits: junk, not a traceback
        return None


@dataclass(frozen=True)
class SummaryCounts:
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int
    pass_rate: float | None  # a fraction, 0..1, as the report processor writes it
    status: str | None = None  # the report's own verdict: passed, failed, unusable, no_tests

    @property
    def is_pass(self) -> bool:
        """The report's own verdict is "passed" and no count contradicts it. Any other status
        (failed, error, timed_out, no_tests: nothing ran is not a pass, unusable, or none) is
        not a pass."""
        return self.status == REPORT_PASSED and self.failed == 0 and self.errors == 0


def summary_counts(summary: Mapping[str, object] | None) -> SummaryCounts | None:
    """Counts from a report processor summary.json; None when it is absent or not that shape."""
    if not isinstance(summary, Mapping):
        return None
    totals = summary.get("totals")
    if not isinstance(totals, Mapping):
        return None
    counts: dict[str, int] = {}
    for field_name in ("tests", "passed", "failed", "errors", "skipped"):
        value = totals.get(field_name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
        counts[field_name] = value
    rate = _number(summary.get("pass_rate"))
    if rate is not None and not 0.0 <= rate <= 1.0:
        rate = None
    return SummaryCounts(pass_rate=rate, status=_text(summary.get("status")), **counts)


@dataclass(frozen=True)
class RunRecord:
    """One command of one run, as `ltr runs` lists it."""

    location: RunLocation
    command: str
    status: str
    exit_code: int | None
    duration_seconds: float | None
    started_at: str | None
    artifacts: tuple[str, ...]
    counts: SummaryCounts | None = None
    message: str | None = None  # the runner's reason for an error, rejection or timeout

    @property
    def run_id(self) -> str:
        return self.location.run_id

    @property
    def day(self) -> str:
        return self.location.day

    @property
    def expects_report(self) -> bool:
        """Only a run that uploaded its JUnit XML triggers the report processor."""
        return self.location.junit_key in self.artifacts

    @property
    def passed(self) -> bool:
        """The runner says passed and, when it uploaded JUnit XML, so does the report."""
        if self.status != RUN_PASSED:
            return False
        if not self.expects_report:
            return True  # a command without tests (docs): the runner's verdict is all there is
        return self.counts is not None and self.counts.is_pass


def run_record(
    manifest: Mapping[str, object],
    location: RunLocation,
    summary: Mapping[str, object] | None = None,
) -> RunRecord:
    """Build a record from an untrusted manifest.json: wrong types become unknowns, never a crash;
    the path it was found under wins over what the file claims."""
    artifacts = manifest.get("artifacts")
    exit_code = manifest.get("exit_code")
    if not isinstance(exit_code, int) or isinstance(exit_code, bool):
        exit_code = None
    return RunRecord(
        location=location,
        command=_text(manifest.get("command")) or location.slug,
        status=_text(manifest.get("status")) or "unknown",
        exit_code=exit_code,
        duration_seconds=_number(manifest.get("duration_seconds")),
        started_at=_text(manifest.get("started_at")),
        artifacts=tuple(a for a in artifacts if isinstance(a, str))
        if isinstance(artifacts, list)
        else (),
        counts=summary_counts(summary),
        message=_text(manifest.get("message")),
    )


def unreadable_record(location: RunLocation, reason: str) -> RunRecord:
    """A manifest that exists but cannot be read (not JSON, not an object, too large): listed as
    such, so one bad object never hides the other runs."""
    return RunRecord(
        location=location,
        command=location.slug,
        status=UNREADABLE,
        exit_code=None,
        duration_seconds=None,
        started_at=None,
        artifacts=(),
        message=reason,
    )


def exit_code_for(record: RunRecord) -> ExitCode:
    return ExitCode.OK if record.passed else ExitCode.RUN_NOT_PASSED


# --------------------------------------------------------------------------- rendering

# Characters that act on a terminal instead of being shown: C0 and C1 controls (ESC starts the
# escape sequences that move the cursor, recolour or retitle the window; 0x9b is a one-byte
# CSI), DEL, and the bidirectional overrides that make text read differently than it is stored.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_SEPARATORS = frozenset("\u2028\u2029")


def _acts_on_terminal(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or char in _BIDI_CONTROLS or char in _LINE_SEPARATORS


def terminal_safe(text: str, *, multiline: bool = False) -> str:
    """`text` from S3 (manifests, summaries, keys) made inert for a terminal: every control
    character is shown as a `\\uXXXX` escape (valid inside a JSON string too); line feeds and
    tabs are kept only when `multiline`."""
    if not any(_acts_on_terminal(char) for char in text):
        return text
    kept = "\n\t" if multiline else ""
    return "".join(
        f"\\u{ord(char):04x}" if _acts_on_terminal(char) and char not in kept else char
        for char in text
    )


MAX_CELL_CHARS = 60


def table_cell(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """One line, at most `limit` characters: a manifest field can hold anything."""
    safe = terminal_safe(text)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def format_pass_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_started(started_at: str | None) -> str:
    """ISO 8601 to `YYYY-MM-DD HH:MM:SSZ` in UTC; anything unparseable is shown as given."""
    if not started_at:
        return "-"
    try:
        moment = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return started_at[:40]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], last_column_chars: int = MAX_CELL_CHARS
) -> str:
    """Aligned columns; every cell goes through table_cell, so no value can break a row. The
    last column may be wider (test ids: `file::class::name` rarely fits 60 characters)."""
    last = len(headers) - 1
    rows = [
        [
            table_cell(cell, last_column_chars if i == last else MAX_CELL_CHARS)
            for i, cell in enumerate(row)
        ]
        for row in rows
    ]
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    separator = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers).rstrip(), separator, *(line(row).rstrip() for row in rows)])


RUNS_HEADERS = ("RUN ID", "COMMAND", "STATUS", "PASS RATE", "TESTS", "DURATION", "STARTED")


def render_runs(records: Sequence[RunRecord]) -> str:
    rows = []
    for record in records:
        counts = record.counts
        tests = "-" if counts is None else f"{counts.passed}/{counts.tests - counts.skipped}"
        rows.append(
            (
                record.run_id,
                record.command,
                record.status,
                format_pass_rate(counts.pass_rate if counts else None),
                tests,
                format_duration(record.duration_seconds),
                format_started(record.started_at),
            )
        )
    return render_table(RUNS_HEADERS, rows)


def sort_newest_first(records: Iterable[RunRecord]) -> list[RunRecord]:
    return sorted(records, key=lambda r: (r.day, r.started_at or "", r.run_id), reverse=True)


def outcome_line(record: RunRecord) -> str:
    parts = [f"run {record.run_id} {table_cell(record.command)}: {table_cell(record.status)}"]
    if record.exit_code is not None:
        parts.append(f"exit code {record.exit_code}")
    if record.counts is not None:
        counts = record.counts
        if counts.status is not None and counts.status != record.status:
            parts.append(f"report {table_cell(counts.status)}")
        parts.append(
            f"{counts.passed} passed, {counts.failed} failed, {counts.errors} errors, "
            f"{counts.skipped} skipped, pass rate {format_pass_rate(counts.pass_rate)}"
        )
    parts.append(format_duration(record.duration_seconds))
    line = ", ".join(parts)
    if record.message:
        first_line = record.message.splitlines()[0] if record.message.splitlines() else ""
        line += f" ({terminal_safe(first_line[:200])})"
    return line


# --------------------------------------------------------------------------- waiting


class Phase(StrEnum):
    RUNNING = "waiting for the runner's manifest"
    REPORTING = "waiting for the report processor's summary"
    DONE = "done"


@dataclass(frozen=True)
class Observation:
    """What the shell found in S3 on one poll."""

    record: RunRecord | None
    summary_markdown: str | None = None


def phase_of(observation: Observation) -> Phase:
    record = observation.record
    if record is None:
        return Phase.RUNNING
    if record.expects_report and (record.counts is None or observation.summary_markdown is None):
        return Phase.REPORTING
    return Phase.DONE


def progress_text(phase: Phase, run_id: str, elapsed: float) -> str:
    return f"run {run_id}: {phase.value} ({format_duration(elapsed)})"


@dataclass(frozen=True)
class WaitResult:
    phase: Phase
    observation: Observation
    elapsed: float


def wait_for_run(
    poll: Callable[[], Observation],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    timeout: float,
    interval: float,
    on_progress: Callable[[Phase, float], None],
) -> WaitResult:
    """Poll until the run is done or `timeout` seconds passed; the last poll happens at or after
    the deadline so a result that lands just in time is not missed."""
    start = clock()
    while True:
        observation = poll()
        elapsed = clock() - start
        phase = phase_of(observation)
        on_progress(phase, elapsed)
        if phase is Phase.DONE or elapsed >= timeout:
            return WaitResult(phase, observation, elapsed)
        sleep(max(0.0, min(interval, timeout - elapsed)))


def still_running_message(result: WaitResult, run_id: str, where: str, logs: str) -> str:
    if result.phase is Phase.RUNNING:
        return (
            f"run {run_id}: no manifest under {where} after {format_duration(result.elapsed)}; "
            f"it may still be running, or the runner rejected it: see {logs}, "
            f"then `ltr report {run_id}`"
        )
    return (
        f"run {run_id}: the runner finished but no summary appeared after "
        f"{format_duration(result.elapsed)}; see the report processor's log, "
        f"then `ltr report {run_id}`"
    )


# --------------------------------------------------------------------------- docs


@dataclass(frozen=True)
class DocsObject:
    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class DocsSet:
    slug: str
    prefix: str
    objects: tuple[DocsObject, ...]

    @property
    def entry(self) -> DocsObject:
        """The page to open first: an index.html, else a README/index markdown, else the
        shallowest file."""

        def rank(obj: DocsObject) -> tuple[int, int, int, str]:
            name = obj.key.rsplit("/", 1)[-1].lower()
            preferred = {"index.html": 0, "index.md": 1, "readme.md": 2}.get(name, 3)
            other_doc = 0 if name.endswith((".html", ".md")) else 1
            return (preferred, obj.key.count("/"), other_doc, obj.key)

        return min(self.objects, key=rank)

    @property
    def updated(self) -> datetime:
        return max(obj.last_modified for obj in self.objects)


def group_docs(objects: Iterable[DocsObject]) -> list[DocsSet]:
    by_slug: dict[str, list[DocsObject]] = {}
    for obj in objects:
        if not obj.key.startswith(DOCS_PREFIX):
            continue
        rest = obj.key[len(DOCS_PREFIX) :]
        if "/" not in rest:
            continue
        by_slug.setdefault(rest.split("/", 1)[0], []).append(obj)
    return [
        DocsSet(slug, f"{DOCS_PREFIX}{slug}/", tuple(sorted(items, key=lambda o: o.key)))
        for slug, items in sorted(by_slug.items())
    ]


# --------------------------------------------------------------------------- `ltr run` argv


@dataclass(frozen=True)
class RunArgv:
    command: str
    args: tuple[str, ...]
    env: str | None = None
    config: str | None = None
    wait: bool = False
    timeout: float | None = None
    shards: int | None = None


_RUN_VALUE_OPTIONS = ("--env", "--config", "--timeout", "--shards")
RUN_USAGE = (
    "usage: ltr run COMMAND [ARGS...] [--env ENV | --config FILE] [--shards N] [--wait] "
    "[--timeout SECONDS] [-- ARGS...]"
)
# A sharded run's shard count (the deployed runner.max_shards may cap it lower).
MAX_SHARDS_ASKED = 40


def split_run_argv(argv: Sequence[str]) -> RunArgv:
    """Separate ltr's own options from the artisan command's arguments.

    ltr's options may come anywhere (`ltr run test --filter Unit --wait`), so that the command's
    arguments read as they would after `php artisan`; everything after `--` goes to the command
    untouched (`ltr run test --wait -- --env testing`)."""
    options: dict[str, object] = {}
    positional: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        index += 1
        if word == "--":
            positional.extend(argv[index:])
            break
        if word == "--wait":
            options["wait"] = True
            continue
        name, has_value, value = word.partition("=")
        if name in _RUN_VALUE_OPTIONS:
            if not has_value:
                if index >= len(argv):
                    raise LtrError(f"{name} needs a value; {RUN_USAGE}")
                value = argv[index]
                index += 1
            options[name[2:]] = value
            continue
        positional.append(word)
    if not positional or positional[0].startswith("-"):
        raise LtrError(f"which command? {RUN_USAGE}")
    timeout = None
    if "timeout" in options:
        try:
            timeout = float(str(options["timeout"]))
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 86_400:
            raise LtrError(f"--timeout {options['timeout']!r}: give seconds between 1 and 86400")
    shards = None
    if "shards" in options:
        text = str(options["shards"])
        shards = int(text) if text.isdigit() else -1
        if not 2 <= shards <= MAX_SHARDS_ASKED:
            raise LtrError(
                f"--shards {text!r}: give a number of shards from 2 to {MAX_SHARDS_ASKED}"
            )
    return RunArgv(
        command=positional[0],
        args=tuple(positional[1:]),
        env=options.get("env"),  # type: ignore[arg-type]
        config=options.get("config"),  # type: ignore[arg-type]
        wait=bool(options.get("wait", False)),
        timeout=timeout,
        shards=shards,
    )
