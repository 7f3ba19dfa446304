"""The results bucket's layout: every prefix, key and file name, in one pure module.

The runner writes it, `ltr`, the stack (modules/) and the demo read it; all of them import this
module. The report processor's zip cannot import the runner, so report_processor/routing.py keeps
its own copy of the prefixes and key shape, held equal by tests/test_layout_contract.py.

    runs/<date>/<run_id>/<slug>/manifest.json   the runner's record of the run (written last
                                output.log       but one: junit.xml follows it)
                                junit.xml        the trigger of the report processor
                                <artifact path>  files the command generated (docs, ...)
                                plan.json        a sharded run's plan (issue 13)
                                shards/<i:03d>/junit.xml|manifest.json|output.log
                                                 one shard's files (never routed: only
                                                 the run-level junit.xml the merge writes is)
    reports/<date>/<run_id>/<slug>/summary.md|json   the report processor's summaries
    reports/latest/summary.md|json                    the newest report
    reports/.processed/<digest>.json                  markers of processed object versions
    docs/latest/<slug>/<artifact path>                the last passing run's generated docs
    history/<project>/<environment>/quarantine.json   the quarantine list (all commands)
    history/<project>/<environment>/<slug>/index.json       the report processor's index of runs
                                           durations.json   median seconds per test class
                                           runs/<run-key>/  rows.tsv.gz, digest.bin,
                                                            failing.bin, classes.json, run.json
    (report_processor/history/keys.py builds these in the processor's zip, with validation;
    the functions below are the same rules for the runner, `ltr` and the stack)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

RUNS_PREFIX = "runs/"
REPORTS_PREFIX = "reports/"
LATEST_REPORT_PREFIX = "reports/latest/"
MARKER_PREFIX = "reports/.processed/"
DOCS_PREFIX = "docs/latest/"
HISTORY_PREFIX = "history/"  # written by the report processor (issue 12)
HISTORY_QUARANTINE = "quarantine.json"
HISTORY_INDEX = "index.json"
HISTORY_DURATIONS = "durations.json"
HISTORY_RUNS = "runs/"
HISTORY_ROWS = "rows.tsv.gz"
HISTORY_DIGEST = "digest.bin"
HISTORY_FAILING = "failing.bin"
HISTORY_CLASSES = "classes.json"
HISTORY_RUN_RECORD = "run.json"

MANIFEST = "manifest.json"
JUNIT = "junit.xml"
OUTPUT_LOG = "output.log"
SUMMARY_MARKDOWN = "summary.md"
SUMMARY_JSON = "summary.json"
PLAN = "plan.json"
SHARDS_FOLDER = "shards/"
MAX_SHARD_INDEX = 999  # three digits in the key: shards/000/ .. shards/999/

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_IN_SLUG = re.compile(r"[^a-z0-9._-]+")


class InvalidRunId(ValueError):
    """A run id that would not make one safe path segment; the message says what would."""


def validate_run_id(run_id: object) -> str:
    """The run id itself, or InvalidRunId naming it and the rule."""
    if not isinstance(run_id, str):
        raise InvalidRunId(f"run_id must be a string, got {type(run_id).__name__}")
    if not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise InvalidRunId(
            f"invalid run_id {run_id[:80]!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return run_id


def command_slug(command: str) -> str:
    """`scribe:generate` -> `scribe-generate`: lower case, safe in S3 keys and file names."""
    return _NOT_IN_SLUG.sub("-", command.lower()).strip("-") or "command"


def day_of(moment: datetime | date) -> str:
    """The `<date>` segment: the day of the run's start, in the timezone `moment` carries (the
    runner passes UTC)."""
    return f"{moment:%Y-%m-%d}"


@dataclass(frozen=True)
class RunLocation:
    """Where one command of one run keeps its files, and where its report goes."""

    day: str
    run_id: str
    slug: str

    @classmethod
    def of(cls, started_at: datetime, run_id: str, command: str) -> RunLocation:
        return cls(day_of(started_at), validate_run_id(run_id), command_slug(command))

    @property
    def path(self) -> str:
        """`<date>/<run_id>/<slug>`: the same below `runs/` and `reports/`."""
        return f"{self.day}/{self.run_id}/{self.slug}"

    @property
    def run_prefix(self) -> str:
        return f"{RUNS_PREFIX}{self.path}/"

    @property
    def report_prefix(self) -> str:
        return f"{REPORTS_PREFIX}{self.path}/"

    @property
    def manifest_key(self) -> str:
        return self.run_prefix + MANIFEST

    @property
    def junit_key(self) -> str:
        return self.run_prefix + JUNIT

    @property
    def output_log_key(self) -> str:
        return self.run_prefix + OUTPUT_LOG

    def artifact_key(self, relative: str) -> str:
        return self.run_prefix + relative

    @property
    def plan_key(self) -> str:
        return self.run_prefix + PLAN

    @property
    def summary_markdown_key(self) -> str:
        return self.report_prefix + SUMMARY_MARKDOWN

    @property
    def summary_json_key(self) -> str:
        return self.report_prefix + SUMMARY_JSON


def run_prefix(started_at: datetime, run_id: str, command: str) -> str:
    """`runs/<date>/<run_id>/<slug>/` for a run started at `started_at`."""
    return RunLocation.of(started_at, run_id, command).run_prefix


def shard_prefix(location: RunLocation, index: int) -> str:
    """`runs/<date>/<run_id>/<slug>/shards/<i:03d>/`: shard `index` (0-based) of a sharded run."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_SHARD_INDEX:
        raise ValueError(f"shard index must be an integer from 0 to {MAX_SHARD_INDEX}: {index!r}")
    return f"{location.run_prefix}{SHARDS_FOLDER}{index:03d}/"


def parse_plan_key(key: str) -> RunLocation | None:
    """The location of `runs/<date>/<run_id>/<slug>/plan.json`, or None for any other key."""
    parsed = parse_result_key(key)
    if parsed is None or parsed.area != RUNS_PREFIX.rstrip("/") or parsed.name != PLAN:
        return None
    if parsed.location.slug != command_slug(parsed.location.slug):
        return None
    return parsed.location


def day_prefix(day: str) -> str:
    """`runs/<date>/`: every run filed under one day."""
    return f"{RUNS_PREFIX}{day}/"


def run_id_prefix(day: str, run_id: str) -> str:
    """`runs/<date>/<run_id>/`: every command of one run."""
    return f"{RUNS_PREFIX}{day}/{run_id}/"


def latest_docs_prefix(command: str) -> str:
    return f"{DOCS_PREFIX}{command_slug(command)}/"


@dataclass(frozen=True)
class ResultKey:
    """A key under runs/ or reports/, split: `<area>/<day>/<run_id>/<slug>/<name>`."""

    area: str  # "runs" or "reports"
    location: RunLocation
    name: str


def parse_result_key(key: str) -> ResultKey | None:
    """The parts of a run or report key, or None when the key is not one (junk is ignored)."""
    parts = key.split("/")
    if len(parts) < 5 or f"{parts[0]}/" not in (RUNS_PREFIX, REPORTS_PREFIX):
        return None
    area, day, run_id, slug = parts[:4]
    name = "/".join(parts[4:])
    if not DAY.fullmatch(day) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        return None
    if not slug or not name:
        return None
    return ResultKey(area, RunLocation(day, run_id, slug), name)


def days_from_prefixes(prefixes: list[str], area_prefix: str = RUNS_PREFIX) -> list[str]:
    """Day names from S3 common prefixes (`runs/2025-01-31/`), newest first, junk ignored."""
    days = {
        prefix[len(area_prefix) :].rstrip("/")
        for prefix in prefixes
        if prefix.startswith(area_prefix)
    }
    return sorted((day for day in days if DAY.fullmatch(day)), reverse=True)


# --------------------------------------------------------------------------- history (issue 12)

_HISTORY_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HISTORY_SLUG = re.compile(r"[a-z0-9._-]{1,100}")
_HISTORY_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HISTORY_RUN_KEY = re.compile(r"\d{8}T\d{9}Z-[A-Za-z0-9._-]{1,64}")


class InvalidHistoryKey(ValueError):
    """A project, environment, slug or run key that cannot be part of a history key."""


def _history_segment(what: str, value: str) -> str:
    if not _HISTORY_SEGMENT.fullmatch(value):
        raise InvalidHistoryKey(
            f"{what} {value[:80]!r} cannot be part of a history key: use 1-64 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return value


def history_environment_prefix(project: str, environment: str) -> str:
    """`history/<project>/<environment>/`."""
    project = _history_segment("project", project)
    return f"{HISTORY_PREFIX}{project}/{_history_segment('environment', environment)}/"


def history_prefix(project: str, environment: str, slug: str) -> str:
    """`history/<project>/<environment>/<slug>/`: the history of one command."""
    if not _HISTORY_SLUG.fullmatch(slug) or slug in (".", "..", HISTORY_QUARANTINE):
        raise InvalidHistoryKey(f"command slug {slug[:80]!r} is not a runner slug")
    return f"{history_environment_prefix(project, environment)}{slug}/"


def history_quarantine_key(project: str, environment: str) -> str:
    return history_environment_prefix(project, environment) + HISTORY_QUARANTINE


def history_index_key(project: str, environment: str, slug: str) -> str:
    return history_prefix(project, environment, slug) + HISTORY_INDEX


def history_durations_key(project: str, environment: str, slug: str) -> str:
    """Median seconds per test class (the sharding planner's input; missing = no history)."""
    return history_prefix(project, environment, slug) + HISTORY_DURATIONS


def history_run_key(started_at: datetime, run_id: str) -> str:
    """`<UTC start, YYYYMMDDTHHMMSSmmmZ>-<run id>` (a digest of the id when it is not key-safe)."""
    moment = started_at.astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    if not _HISTORY_RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        run_id = "h" + hashlib.sha256(run_id.encode("utf-8", "replace")).hexdigest()[:32]
    return f"{stamp}-{run_id}"


def history_run_prefix(project: str, environment: str, slug: str, run_key: str) -> str:
    if not _HISTORY_RUN_KEY.fullmatch(run_key) or run_key.endswith(("-.", "-..")):
        raise InvalidHistoryKey(f"run key {run_key[:80]!r} is not <YYYYMMDDTHHMMSSmmmZ>-<run id>")
    return f"{history_prefix(project, environment, slug)}{HISTORY_RUNS}{run_key}/"


def history_run_object_key(
    project: str, environment: str, slug: str, run_key: str, name: str
) -> str:
    """One object of a recorded run: HISTORY_ROWS, _DIGEST, _FAILING, _CLASSES or _RUN_RECORD."""
    if name not in (
        HISTORY_ROWS,
        HISTORY_DIGEST,
        HISTORY_FAILING,
        HISTORY_CLASSES,
        HISTORY_RUN_RECORD,
    ):
        raise InvalidHistoryKey(f"{name[:80]!r} is not an object of a recorded run")
    return history_run_prefix(project, environment, slug, run_key) + name
