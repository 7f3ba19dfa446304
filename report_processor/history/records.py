"""Configuration, the per-run record, the index of runs and the "failed wholesale" rule."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from report_processor.history.keys import HistoryKeyError, check_run_key
from report_processor.history.testid import DEFAULT_APP_ROOTS

INDEX_VERSION = 1


class HistoryConfigError(ValueError):
    pass


@dataclass(frozen=True)
class HistoryConfig:
    """Knobs; environment variables HISTORY_<NAME upper-case> override each (see from_env)."""

    app_roots: tuple[str, ...] = DEFAULT_APP_ROOTS
    # A run "failed wholesale" when more than this share of its runnable tests failed/errored
    # (with at least wholesale_min_tests runnable), or when no test ran at all.
    wholesale_share: float = 0.5
    wholesale_min_tests: int = 10
    # "failed k of the last N runs", "failing since", "last passed": the last N runs (incl. this).
    history_runs: int = 10
    # Flaky rule 1: passed and failed on the same app version within flaky_days.
    flaky_days: int = 14
    flaky_max_runs: int = 30
    # Flaky rule 2: at least flip_min_flips outcome changes within the last flip_runs runs in
    # which the test ran (and at least flip_min_runs such runs).
    flip_runs: int = 10
    flip_min_runs: int = 5
    flip_min_flips: int = 3
    index_max_runs: int = 400
    max_listed: int = 50
    max_tracked_failures: int = 1000
    max_flaky_candidates: int = 20_000
    compress_level: int = 1
    quarantine_max_days: int = 30
    # durations.json: median class seconds over this many newest runs not failed wholesale.
    durations_runs: int = 5

    def __post_init__(self) -> None:
        if not 0.0 < self.wholesale_share <= 1.0:
            raise HistoryConfigError(
                f"wholesale_share={self.wholesale_share}: must be in (0, 1], e.g. 0.5"
            )
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise HistoryConfigError(f"{item.name}={value}: must be at least 1")
        if not 1 <= self.compress_level <= 9:
            raise HistoryConfigError(f"compress_level={self.compress_level}: must be 1..9")
        if self.flip_min_runs > self.flip_runs:
            raise HistoryConfigError(
                f"flip_min_runs={self.flip_min_runs} exceeds flip_runs={self.flip_runs}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HistoryConfig:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = env.get(f"HISTORY_{item.name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                if item.name == "app_roots":
                    values[item.name] = tuple(part for part in raw.split(":") if part)
                elif item.name == "wholesale_share":
                    values[item.name] = float(raw)
                else:
                    values[item.name] = int(raw)
            except ValueError:
                raise HistoryConfigError(
                    f"HISTORY_{item.name.upper()}={raw!r}: expected a number"
                ) from None
        return cls(**values)


@dataclass(frozen=True)
class RunInfo:
    """What the manifest says about the run (read before the JUnit file is parsed)."""

    run_id: str
    started_at: datetime  # timezone-aware; the processing time when the manifest has none
    app_version: str | None = None
    image_version: str | None = None
    runner_status: str | None = None  # manifest "status": passed/failed/error/timed_out/...


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp ('Z' allowed) as an aware UTC datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_info_from_manifest(manifest: Any, run_id: str | None, now: datetime) -> RunInfo:
    """RunInfo from an untrusted manifest dict (any field may be missing or junk)."""
    manifest = manifest if isinstance(manifest, dict) else {}

    def text(name: str) -> str | None:
        value = manifest.get(name)
        return value.strip()[:200] if isinstance(value, str) and value.strip() else None

    return RunInfo(
        run_id=text("run_id") or run_id or "unknown",
        started_at=parse_time(manifest.get("started_at")) or now.astimezone(UTC),
        app_version=text("app_version"),
        image_version=text("image_version"),
        runner_status=text("status"),
    )


@dataclass(frozen=True)
class RunRecord:
    """One run in the index and in runs/<run-key>/run.json."""

    run_key: str
    run_id: str
    started_at: str
    status: str  # passed / failed / no_tests (after quarantine)
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    unique_tests: int = 0
    app_version: str | None = None
    image_version: str | None = None
    runner_status: str | None = None
    wholesale: bool = False
    wholesale_reason: str | None = None
    recorded_at: str = ""

    @property
    def started(self) -> datetime:
        return parse_time(self.started_at) or datetime.min.replace(tzinfo=UTC)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> RunRecord | None:
        """A record from untrusted JSON, None when it is not one."""
        if not isinstance(raw, dict):
            return None
        values: dict[str, Any] = {}
        for item in fields(cls):
            value = raw.get(item.name)
            if value is None:
                continue
            if item.type in ("int",) and (isinstance(value, bool) or not isinstance(value, int)):
                return None
            if item.type == "bool" and not isinstance(value, bool):
                return None
            if item.type.startswith("str") and not isinstance(value, str):
                return None
            values[item.name] = value
        try:
            record = cls(**values)
            check_run_key(record.run_key)
        except (TypeError, HistoryKeyError):
            return None
        if parse_time(record.started_at) is None:
            return None
        return record


def failed_wholesale(
    tests: int, skipped: int, failing: int, runner_status: str | None, config: HistoryConfig
) -> str | None:
    """Why the run failed as a whole (left out of flakiness), or None."""
    if tests == 0:
        if runner_status and runner_status != "passed":
            return f"the run ended '{runner_status}' before any test ran"
        return "no test ran"
    runnable = tests - skipped
    if runnable >= config.wholesale_min_tests and failing > config.wholesale_share * runnable:
        return (
            f"{failing} of {runnable} tests failed, more than "
            f"{config.wholesale_share * 100:g} %: an outage, not the tests"
        )
    return None


@dataclass(frozen=True)
class RunIndex:
    """Runs sorted by run key, i.e. by start time (then run id)."""

    runs: tuple[RunRecord, ...] = field(default_factory=tuple)

    def before(self, run_key: str) -> list[RunRecord]:
        """Runs that started before this one, newest first (arrival order plays no part)."""
        return [run for run in reversed(self.runs) if run.run_key < run_key]

    def previous(self, run_key: str) -> RunRecord | None:
        earlier = self.before(run_key)
        return earlier[0] if earlier else None

    def baseline(self, run_key: str) -> RunRecord | None:
        """The previous run that did not fail wholesale: what tonight is compared with."""
        for run in self.before(run_key):
            if not run.wholesale:
                return run
        return None

    def newer_than(self, run_key: str) -> list[RunRecord]:
        return [run for run in self.runs if run.run_key > run_key]

    def find(self, run_id: str) -> RunRecord | None:
        for run in reversed(self.runs):
            if run.run_id == run_id or run.run_key == run_id:
                return run
        return None


def parse_index(document: Any) -> RunIndex:
    """Lenient: entries that are not records are dropped; duplicates keep the last."""
    raw_runs = document.get("runs") if isinstance(document, dict) else None
    by_key: dict[str, RunRecord] = {}
    for raw in raw_runs if isinstance(raw_runs, list) else []:
        record = RunRecord.from_json(raw)
        if record is not None:
            by_key[record.run_key] = record
    return RunIndex(tuple(by_key[key] for key in sorted(by_key)))


def index_document(index: RunIndex) -> dict[str, Any]:
    return {"version": INDEX_VERSION, "runs": [run.to_json() for run in index.runs]}


def upsert(document: Any, record: RunRecord, max_runs: int) -> dict[str, Any]:
    """The index document with this run added (or replaced: a redelivery), oldest runs dropped."""
    index = parse_index(document)
    runs = {run.run_key: run for run in index.runs}
    runs[record.run_key] = record
    kept = [runs[key] for key in sorted(runs)][-max_runs:]
    return index_document(RunIndex(tuple(kept)))


def with_recorded_at(record: RunRecord, now: datetime) -> RunRecord:
    return replace(record, recorded_at=iso(now))
