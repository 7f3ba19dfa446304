"""Every S3 key of the history, in one place (the layout module and a contract test mirror these).

    history/<project>/<environment>/quarantine.json            quarantine list (all commands)
    history/<project>/<environment>/<command-slug>/index.json  index of runs (conditional puts)
    history/<project>/<environment>/<command-slug>/durations.json  median seconds per test class
                                                               (the sharding planner reads it)
    history/<project>/<environment>/<command-slug>/runs/<run-key>/
        rows.tsv.gz     one row per testcase (test id, outcome, time), gzip
        digest.bin      sorted 64-bit test-id hashes + outcome codes (what the diff reads)
        failing.bin     the same, only failed/errored/flaky-within-run tests (what flakiness reads)
        classes.json    seconds per test class in this run (what durations.json is made of)
        run.json        the run's record; written last, so a run is in history iff this exists

`<run-key>` is `<UTC start, 20260101T020000123Z>-<run id>`: keys sort by start time, which is what
"previous run" means, and the per-run run.json objects can rebuild the index by listing.
Every segment is validated here: nothing derived from a manifest or an event can leave its prefix.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

HISTORY_PREFIX = "history/"
INDEX_NAME = "index.json"
QUARANTINE_NAME = "quarantine.json"
RUNS_FOLDER = "runs/"
ROWS_NAME = "rows.tsv.gz"
DIGEST_NAME = "digest.bin"
FAILING_NAME = "failing.bin"
RUN_RECORD_NAME = "run.json"
CLASSES_NAME = "classes.json"
DURATIONS_NAME = "durations.json"

# fullmatch, not match: "$" would let a trailing newline through.
# Project and environment come from the deployment's configuration; the command slug is the
# runner's slug of the command (runs/<date>/<run_id>/<command-slug>/), never re-derived here.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SLUG = re.compile(r"^[a-z0-9._-]{1,100}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_RUN_KEY = re.compile(r"^\d{8}T\d{9}Z-[A-Za-z0-9._-]{1,64}$")


class HistoryKeyError(ValueError):
    """A project, environment, command slug or run id that cannot become part of a key."""


@dataclass(frozen=True)
class HistoryScope:
    """One history: the runs of one command in one environment of one project."""

    project: str
    environment: str
    command_slug: str

    def __post_init__(self) -> None:
        check_segment("project", self.project)
        check_segment("environment", self.environment)
        if (
            not _SLUG.fullmatch(self.command_slug)
            or self.command_slug in (".", "..")
            or self.command_slug == QUARANTINE_NAME
        ):
            raise HistoryKeyError(
                f"command slug {self.command_slug!r} is not a runner slug (lower-case letters, "
                "digits, '.', '_', '-'; e.g. 'test' for `artisan test`): pass the slug of "
                "the run's key (RunObject.command_slug)"
            )

    @property
    def prefix(self) -> str:
        return f"{HISTORY_PREFIX}{self.project}/{self.environment}/{self.command_slug}/"


def check_segment(what: str, value: str) -> str:
    if not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise HistoryKeyError(
            f"{what} {value!r} cannot be part of a history key: use 1-64 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit (set PROJECT/ENVIRONMENT accordingly)"
        )
    return value


def environment_prefix(project: str, environment: str) -> str:
    check_segment("project", project)
    check_segment("environment", environment)
    return f"{HISTORY_PREFIX}{project}/{environment}/"


def quarantine_key(project: str, environment: str) -> str:
    return environment_prefix(project, environment) + QUARANTINE_NAME


def index_key(scope: HistoryScope) -> str:
    return scope.prefix + INDEX_NAME


def durations_key(project: str, environment: str, slug: str) -> str:
    """Median seconds per test class of one command (the sharding contract of issue 13)."""
    return HistoryScope(project, environment, slug).prefix + DURATIONS_NAME


def runs_prefix(scope: HistoryScope) -> str:
    return scope.prefix + RUNS_FOLDER


def run_prefix(scope: HistoryScope, run_key: str) -> str:
    check_run_key(run_key)
    return f"{runs_prefix(scope)}{run_key}/"


def rows_key(scope: HistoryScope, run_key: str) -> str:
    return run_prefix(scope, run_key) + ROWS_NAME


def digest_key(scope: HistoryScope, run_key: str) -> str:
    return run_prefix(scope, run_key) + DIGEST_NAME


def failing_key(scope: HistoryScope, run_key: str) -> str:
    return run_prefix(scope, run_key) + FAILING_NAME


def classes_key(scope: HistoryScope, run_key: str) -> str:
    return run_prefix(scope, run_key) + CLASSES_NAME


def run_record_key(scope: HistoryScope, run_key: str) -> str:
    return run_prefix(scope, run_key) + RUN_RECORD_NAME


def safe_run_id(run_id: str) -> str:
    """The run id itself when it is key-safe, else a stable digest of it (never the raw text)."""
    if _RUN_ID.fullmatch(run_id) and run_id not in (".", ".."):
        return run_id
    return "h" + hashlib.sha256(run_id.encode("utf-8", "replace")).hexdigest()[:32]


def make_run_key(started_at: datetime, run_id: str) -> str:
    moment = started_at.astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{safe_run_id(run_id)}"


def check_run_key(run_key: str) -> str:
    if not _RUN_KEY.fullmatch(run_key) or run_key.endswith(("-.", "-..")):
        raise HistoryKeyError(
            f"run key {run_key!r} is not <YYYYMMDDTHHMMSSmmmZ>-<run id>: build it with make_run_key"
        )
    return run_key


def run_key_from_record_key(scope: HistoryScope, key: str) -> str | None:
    """The run key of a `runs/<run-key>/run.json` key of this scope (rebuilding the index)."""
    head = runs_prefix(scope)
    if not key.startswith(head) or not key.endswith("/" + RUN_RECORD_NAME):
        return None
    candidate = key[len(head) : -len(RUN_RECORD_NAME) - 1]
    return candidate if _RUN_KEY.fullmatch(candidate) else None
