"""What parsing JUnit files yields: bounded tallies that several files (or shards) merge into one.

Every count is exact; what is listed (failures, slow tests, suite rows, warnings) is bounded by
ParseLimits, so memory stays flat whatever the input size.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from report_processor.grouping import GroupCounter
from report_processor.model import Failure, FlakyTest, SlowTest, SuiteRow, TestWarning, Totals
from report_processor.skips import SkipCounter

DEFAULT_CHUNK_BYTES = 1 << 20
DEFAULT_MAX_TOKEN_BYTES = 8 << 20
MAX_WARNINGS = 20
OTHER_SUITES = "(other suites)"
UNNAMED_SUITE = "(unnamed suite)"


@dataclass(frozen=True)
class ParseLimits:
    """Bounds that keep memory flat whatever the input size; counts are never bounded."""

    # The first N failures keep their trace (`details`); up to `max_failures_listed` are listed
    # with name, location and message. Every failure is counted in its message group.
    max_failures_detailed: int = 100
    max_failures_listed: int = 1000
    max_warnings_listed: int = 50
    max_details_chars: int = 4000
    max_message_chars: int = 1000
    # Rows in the report; the parser keeps more, so the least important ones (fewest failures,
    # skips and time) are the ones folded into "(other suites)".
    max_suite_rows: int = 300
    max_suite_rows_parsed: int = 5000
    slowest: int = 10
    max_flaky_listed: int = 50
    max_input_bytes: int | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    # One attribute, text node or tag longer than this is refused: expat holds a whole token in
    # memory (several times its size), so one huge attribute could exhaust the function.
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES


@dataclass(slots=True)
class SuiteTally:
    name: str
    file: str | None
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    duration_seconds: float = 0.0
    from_declared_counts: bool = False

    @property
    def tests(self) -> int:
        # Derived, not counted: one increment less per testcase on the hot path.
        return self.passed + self.failed + self.errors + self.skipped


@dataclass
class Accumulator:
    """Mutable, bounded fold of testcase outcomes; several files merge into one."""

    limits: ParseLimits = field(default_factory=ParseLimits)
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    duration_seconds: float = 0.0
    rows: dict[str, SuiteTally] = field(default_factory=dict)
    suites_folded: int = 0
    failures: list[Failure] = field(default_factory=list)
    failures_not_detailed: int = 0
    flaky_tests: list[FlakyTest] = field(default_factory=list)
    # Min-heap of (seconds, sequence, SlowTest): the root is the fastest of the slowest.
    slow_heap: list[tuple[float, int, SlowTest]] = field(default_factory=list)
    slow_sequence: int = 0
    # The report's own declared duration (root `time`, else the sum of its top suites' `time`).
    declared_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)
    warnings_not_listed: int = 0
    groups: GroupCounter = field(default_factory=GroupCounter)
    skip_reasons: SkipCounter = field(default_factory=SkipCounter)
    # Testcase <warning>s (PHPUnit 9): counted, and the first ones listed.
    test_warnings: list[TestWarning] = field(default_factory=list)
    test_warning_count: int = 0

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)
        else:
            self.warnings_not_listed += 1

    def row(self, name: str, file: str | None) -> SuiteTally:
        row = self.rows.get(name)
        if row is None:
            if len(self.rows) < self.limits.max_suite_rows_parsed:
                row = self.rows[name] = SuiteTally(name, file)
            else:
                self.suites_folded += 1
                row = self._overflow_row()
        elif row.file is None and file:
            row.file = file
        return row

    def _overflow_row(self) -> SuiteTally:
        row = self.rows.get(OTHER_SUITES)
        if row is None:
            row = self.rows[OTHER_SUITES] = SuiteTally(OTHER_SUITES, None)
        return row

    def offer_slow(self, slow: SlowTest) -> None:
        self.slow_sequence += 1
        entry = (slow.duration_seconds, -self.slow_sequence, slow)
        if len(self.slow_heap) < self.limits.slowest:
            heapq.heappush(self.slow_heap, entry)
        elif entry[:2] > self.slow_heap[0][:2]:
            heapq.heapreplace(self.slow_heap, entry)

    def merge(self, other: Accumulator) -> None:
        self.tests += other.tests
        self.passed += other.passed
        self.failed += other.failed
        self.errors += other.errors
        self.skipped += other.skipped
        self.flaky += other.flaky
        self.duration_seconds += other.duration_seconds
        for source in other.rows.values():
            if source.name == OTHER_SUITES:
                target = self._overflow_row()
            else:
                target = self.row(source.name, source.file)
            target.passed += source.passed
            target.failed += source.failed
            target.errors += source.errors
            target.skipped += source.skipped
            target.flaky += source.flaky
            target.duration_seconds += source.duration_seconds
            target.from_declared_counts |= source.from_declared_counts
        self.suites_folded += other.suites_folded
        room = max(self.limits.max_failures_listed - len(self.failures), 0)
        self.failures.extend(other.failures[:room])
        self.failures_not_detailed += other.failures_not_detailed + max(
            len(other.failures) - room, 0
        )
        room = max(self.limits.max_flaky_listed - len(self.flaky_tests), 0)
        self.flaky_tests.extend(other.flaky_tests[:room])
        # In the other file's input order, so ties keep it (the heap's order is arbitrary).
        for _, _, slow in sorted(other.slow_heap, key=lambda entry: entry[1], reverse=True):
            self.offer_slow(slow)
        if other.declared_seconds is not None:
            # Shards run side by side: the longest one is the closest to the run's wall time.
            self.declared_seconds = max(self.declared_seconds or 0.0, other.declared_seconds)
        for text in other.warnings:
            self.warn(text)
        self.warnings_not_listed += other.warnings_not_listed
        self.groups.merge(other.groups)
        self.skip_reasons.merge(other.skip_reasons)
        room = max(self.limits.max_warnings_listed - len(self.test_warnings), 0)
        self.test_warnings.extend(other.test_warnings[:room])
        self.test_warning_count += other.test_warning_count

    def totals(self) -> Totals:
        return Totals(
            tests=self.tests,
            passed=self.passed,
            failed=self.failed,
            errors=self.errors,
            skipped=self.skipped,
            flaky=self.flaky,
            warnings=self.test_warning_count,
            duration_seconds=round(self.duration_seconds, 6),
            testcase_seconds=round(self.duration_seconds, 6),
        )

    def all_warnings(self) -> tuple[str, ...]:
        more = self.warnings_not_listed
        extra = (f"…and {more} more warning{'s' if more != 1 else ''}",) if more else ()
        return (*self.warnings, *extra)

    def suite_rows(self) -> tuple[SuiteRow, ...]:
        rows = [row for row in self.rows.values() if row.tests or row.from_declared_counts]
        return tuple(
            SuiteRow(
                name=row.name,
                file=row.file,
                tests=row.tests,
                passed=row.passed,
                failed=row.failed,
                errors=row.errors,
                skipped=row.skipped,
                flaky=row.flaky,
                duration_seconds=round(row.duration_seconds, 6),
                from_declared_counts=row.from_declared_counts,
            )
            for row in rows
        )

    def slowest(self) -> tuple[SlowTest, ...]:
        return tuple(slow for _, _, slow in sorted(self.slow_heap, reverse=True))
