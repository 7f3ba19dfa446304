"""Typed, immutable results of the pure core: what a report says, independent of its format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from report_processor.history.section import HistorySection

# 3: failure groups, warnings, skip reasons, failing-line locations (issue 14); `history`
# (issue 12); pass_rate and status leave out tests an active quarantine protects.
SCHEMA_VERSION = 3

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
    # Testcases with a <warning> (PHPUnit 9); they are counted in passed (or their outcome).
    warnings: int = 0
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
    # Where it failed: the first trace frame in the test's own file (else the first frame outside
    # vendor code and the test framework), relative to the app root when it lies below it.
    at_file: str | None = None
    at_line: int | None = None
    # A link to that line, from the configured source-URL template.
    url: str | None = None


@dataclass(frozen=True)
class FailureGroup:
    """Failures whose messages are equal once numbers, ids, quoted values and paths are masked."""

    pattern: str  # the masked message
    example: str  # the first failure's own message
    count: int
    kind: str  # "failed", "error", or "mixed"
    first_tests: tuple[str, ...]  # "Class › name" of the first few


@dataclass(frozen=True)
class SkipReason:
    reason: str
    count: int
    first_tests: tuple[str, ...]


@dataclass(frozen=True)
class TestWarning:
    """A `<warning>` of a testcase (PHPUnit 9): the case still counts as passed."""

    __test__ = False  # not a pytest test class

    suite: str
    classname: str
    name: str
    message: str


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
    # The app's version (manifest `app_version`): the `{app_version}` of source links.
    app_version: str | None = None
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
    # Largest first; counted over every failing case, not only the listed ones.
    failure_groups: tuple[FailureGroup, ...] = ()
    skip_reasons: tuple[SkipReason, ...] = ()
    test_warnings: tuple[TestWarning, ...] = ()
    schema_version: int = SCHEMA_VERSION
    # The comparison with earlier runs, when the run was recorded in history (issue 12).
    history: HistorySection | None = None

    @property
    def protected(self) -> tuple[int, int, int, int]:
        """(passed, skipped, failed, errors) of the tests an active quarantine entry protects
        that ran: they still run and are listed, but count neither for the pass rate nor the
        status (one per test id, by its worst outcome, as the history counts them)."""
        counts = [0, 0, 0, 0]
        if self.history is not None:
            for entry in self.history.quarantine:
                if entry.state == "active" and entry.outcome is not None:
                    kind = entry.outcome.split(" ", 1)[0]
                    counts[("passed", "skipped", "failed", "error").index(kind)] += 1
        return counts[0], counts[1], counts[2], counts[3]

    @property
    def pass_rate(self) -> float | None:
        """passed / executed, without quarantined tests; None when nothing (else) ran."""
        passed, _, failed, errors = self.protected
        if not passed + failed + errors:
            return self.totals.pass_rate
        runnable = self.totals.executed - passed - failed - errors
        return None if runnable <= 0 else (self.totals.passed - passed) / runnable

    @property
    def unusable_inputs(self) -> tuple[InputResult, ...]:
        return tuple(item for item in self.inputs if not item.ok)

    @property
    def report_status(self) -> str:
        """What the XML alone says: failed > unusable > no_tests > passed.

        no_tests means nothing executed: no testcase at all, or every one skipped. Failing tests an
        active quarantine protects do not fail it (only when each failing testcase is one).
        """
        if self.totals.failed + self.totals.errors > self._protected_failing:
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
        # The runner's "failed" is PHPUnit's exit code: quarantined failures explain it.
        if runner == "failed" and own == "passed" and not self._protected_failing:
            return "failed"
        return own

    @property
    def _protected_failing(self) -> int:
        _, _, failed, errors = self.protected
        return failed + errors
