"""Typed, immutable results of the pure core: what a report says, independent of its format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Totals:
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    duration_seconds: float = 0.0

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
class RunMetadata:
    run_id: str | None = None
    command: str | None = None
    environment: str | None = None
    project: str | None = None
    started_at: str | None = None

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
    schema_version: int = SCHEMA_VERSION

    @property
    def pass_rate(self) -> float | None:
        return self.totals.pass_rate

    @property
    def unusable_inputs(self) -> tuple[InputResult, ...]:
        return tuple(item for item in self.inputs if not item.ok)

    @property
    def status(self) -> str:
        """One word for the headline and for callers: failed > unusable > no_tests > passed."""
        if self.totals.failed or self.totals.errors:
            return "failed"
        if self.unusable_inputs:
            return "unusable"
        if self.totals.tests == 0:
            return "no_tests"
        return "passed"
