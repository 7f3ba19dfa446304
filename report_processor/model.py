"""Typed, immutable results of the pure core: what a report says, independent of its format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCHEMA_VERSION = 2

# Runner statuses (manifest.json `status`) that mean the run did not finish: its report is partial.
INCOMPLETE_RUNNER_STATUSES = ("timed_out", "error", "rejected")


@dataclass(frozen=True)
class Totals:
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    # The headline duration: the run's wall time (see `duration_source`).
    duration_seconds: float = 0.0
    # The sum of the testcases' own times (plus the declared times of suites without testcases);
    # larger than the wall time when a runner works in parallel.
    testcase_seconds: float = 0.0
    # Where duration_seconds comes from: "runner" (manifest), "report" (the report's declared
    # root/suite time) or "testcases" (neither was known).
    duration_source: str = "testcases"

    @property
    def executed(self) -> int:
        """Tests that ran: everything but the skipped ones."""
        return self.tests - self.skipped

    @property
    def pass_rate(self) -> float | None:
        """passed / (tests - skipped); None when nothing ran, so "no tests" never reads as 0 %."""
        runnable = self.tests - self.skipped
        if runnable <= 0:
            return None
        return self.passed / runnable


@dataclass(frozen=True)
class SuiteRow:
    """One test class or suite; `from_declared_counts` marks a suite without testcases."""

    name: str
    file: str | None
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int
    flaky: int
    duration_seconds: float
    from_declared_counts: bool = False


@dataclass(frozen=True)
class Failure:
    suite: str
    classname: str
    name: str
    file: str | None
    line: int | None
    kind: str  # "failed" or "error"
    message: str
    details: str
    type: str = ""
    # What the report says about where the case ran (suite hostname, properties): tells apart
    # cases that share suite, class and name (one test run for several browsers or platforms).
    context: str = ""


@dataclass(frozen=True)
class FlakyTest:
    suite: str
    classname: str
    name: str
    message: str


@dataclass(frozen=True)
class SlowTest:
    suite: str
    classname: str
    name: str
    duration_seconds: float


@dataclass(frozen=True)
class InputResult:
    path: str
    ok: bool
    error: str | None = None
    tests: int = 0


@dataclass(frozen=True)
class ShardRow:
    """One shard of a sharded run, from the run-level manifest the merge step writes."""

    index: int
    status: str
    tests: int
    seconds: float | None
    error: str | None = None


@dataclass(frozen=True)
class RunMetadata:
    run_id: str | None = None
    command: str | None = None
    environment: str | None = None
    project: str | None = None
    started_at: str | None = None
    # From the runner's manifest.json, when there is one.
    runner_status: str | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    # A sharded run (issue 13): one row per planned shard, and the planned tests that never ran.
    shards: tuple[ShardRow, ...] = ()
    tests_not_run: int | None = None

    def is_empty(self) -> bool:
        return not any(asdict(self).values())


@dataclass(frozen=True)
class Report:
    totals: Totals
    suites: tuple[SuiteRow, ...]
    failures: tuple[Failure, ...]
    slowest: tuple[SlowTest, ...]
    inputs: tuple[InputResult, ...]
    metadata: RunMetadata = field(default_factory=RunMetadata)
    flaky_tests: tuple[FlakyTest, ...] = ()
    # Counts beyond what the bounded lists kept: the totals stay exact, the detail does not.
    failures_not_detailed: int = 0
    suites_folded: int = 0
    # Things the reader must know that the counts alone do not say (declared but not carried).
    warnings: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @property
    def pass_rate(self) -> float | None:
        return self.totals.pass_rate

    @property
    def unusable_inputs(self) -> tuple[InputResult, ...]:
        return tuple(item for item in self.inputs if not item.ok)

    @property
    def report_status(self) -> str:
        """What the XML alone says: failed > unusable > no_tests > passed.

        no_tests means nothing executed: no testcase at all, or every one skipped.
        """
        if self.totals.failed or self.totals.errors:
            return "failed"
        if self.unusable_inputs:
            return "unusable"
        if self.totals.executed <= 0:
            return "no_tests"
        return "passed"

    @property
    def status(self) -> str:
        """The run's verdict for the headline, summary.json and `ltr`: the runner's word first.

        A run the runner did not finish (timed_out, error, rejected) keeps that status whatever its
        partial report says; a runner `failed` over a clean report is `failed`; otherwise the
        report's own status. Only `passed` is a pass.
        """
        runner = self.metadata.runner_status
        if runner in INCOMPLETE_RUNNER_STATUSES:
            return runner
        own = self.report_status
        if runner == "failed" and own == "passed":
            return "failed"
        return own
