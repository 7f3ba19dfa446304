"""Streaming JUnit/xUnit XML parser: one file in, bounded accumulators out.

Speed and memory matter more than elegance here: a nightly report can hold a million testcases, so
the parser never builds a tree. It drives expat directly and does as little Python work per element
as it can: the hot path is a testcase start and end. Everything it keeps is bounded (the first N
failures in detail, the N slowest tests, at most N suite rows) while every count stays exact.

Untrusted input: any DOCTYPE is refused before its internal subset is read, so entity expansion
(billion laughs) and external entities (XXE) never happen and nothing is fetched.
"""

from __future__ import annotations

import heapq
import textwrap
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any, BinaryIO

from report_processor.grouping import GroupCounter
from report_processor.headline import best_message, failure_message
from report_processor.location import failing_frame
from report_processor.model import Failure, FlakyTest, SlowTest, SuiteRow, TestWarning, Totals
from report_processor.skips import SkipCounter
from report_processor.xmlstream import JUnitError as JUnitError
from report_processor.xmlstream import feed, open_source, safe_parser

DEFAULT_CHUNK_BYTES = 1 << 20
DEFAULT_MAX_TOKEN_BYTES = 8 << 20
# Beyond these a `time` or a declared count is junk (no test runs for 115 days): it counts as 0, so
# sums stay finite and summary.json stays strict JSON.
MAX_SECONDS = 1e7
MAX_COUNT = 10**9
MAX_WARNINGS = 20
_MAX_CONTEXT_CHARS = 200
_MAX_PROPERTIES = 10
OTHER_SUITES = "(other suites)"
UNNAMED_SUITE = "(unnamed suite)"

# Outcome ranks, highest wins: a case with an <error> and a <failure> is an error.
_PASSED, _SKIPPED, _FAILED, _ERROR = 0, 1, 2, 3
_RESULT_RANKS = {"skipped": _SKIPPED, "failure": _FAILED, "error": _ERROR}
_FLAKY_TAGS = frozenset({"flakyFailure", "flakyError"})
# Surefire's reruns: not an outcome of their own, but counted in the suite's declared failures.
_RERUN_TAGS = frozenset({"rerunFailure", "rerunError"})
_KIND_NAMES = {_FAILED: "failed", _ERROR: "error"}
# Google Test marks tests that did not run with attributes, not elements.
_SKIPPED_RESULTS = frozenset({"skipped", "suppressed"})
# Encodings expat decodes itself; anything else Python knows is transcoded to UTF-8 first.
# Testcases queued before they are counted together (see parse_junit's `pending`); the queue is
# also counted after every chunk, which bounds its memory for testcases with huge attributes.
_PENDING_CASES = 1024
_NAMES = itemgetter(slice(None, None, 2))  # the names of pyexpat's [name, value, ...] list


# Per-testcase callback (history): file, classname, name, outcome rank, seconds, flaky-within-run.
OnCase = Callable[[str | None, str, str, int, float, bool], None]


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
class _Row:
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
    rows: dict[str, _Row] = field(default_factory=dict)
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

    def row(self, name: str, file: str | None) -> _Row:
        row = self.rows.get(name)
        if row is None:
            if len(self.rows) < self.limits.max_suite_rows_parsed:
                row = self.rows[name] = _Row(name, file)
            else:
                self.suites_folded += 1
                row = self._overflow_row()
        elif row.file is None and file:
            row.file = file
        return row

    def _overflow_row(self) -> _Row:
        row = self.rows.get(OTHER_SUITES)
        if row is None:
            row = self.rows[OTHER_SUITES] = _Row(OTHER_SUITES, None)
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


def lenient_seconds(raw: str | None) -> float:
    """Seconds from a `time` attribute; "1,234.5" reads as 1234.5; junk, empty or negative is 0."""
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        try:
            value = float(raw.strip().replace(",", ""))
        except ValueError:
            return 0.0
    if not 0.0 <= value <= MAX_SECONDS:
        return 0.0
    return value


def lenient_count(raw: str | None) -> int:
    """A declared count attribute; anything that is not a non-negative number counts as 0."""
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        try:
            value = int(float(raw.strip().replace(",", "")))
        except (ValueError, OverflowError):
            return 0
    return value if 0 <= value <= MAX_COUNT else 0


def _line_number(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def _details(text: str, limit: int) -> str:
    """A failure's text as the XML indents it, minus the indentation common to its lines."""
    lines = text.rstrip().splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    text = textwrap.dedent("\n".join(lines))
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def _trim(text: str | None, limit: int) -> str:
    if not text:
        return ""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def parse_junit(
    stream: BinaryIO, limits: ParseLimits | None = None, on_case: OnCase | None = None
) -> Accumulator:
    """Fold every testcase of one JUnit XML byte stream into an accumulator.

    Raises JUnitError with a message naming the problem (not XML, truncated, DOCTYPE, not JUnit,
    unknown encoding, a token or the file too large). Each file gets a fresh accumulator, merged
    only when it parsed, so a broken file adds nothing to a report.

    `on_case(file, classname, name, rank, seconds, flaky)` (history), when given, is called once
    per testcase, in document order, once its outcome is known: `rank` is 0 passed, 1 skipped,
    2 failed, 3 error (history's outcome codes); `file` is the testcase's `file` attribute (None
    without one); `flaky` says it had a flakyFailure/flakyError. Testcases without children
    reach it in batches, a little after their `</testcase>`, still in order.
    """
    limits = limits or ParseLimits()
    acc = Accumulator(limits)
    source = open_source(stream, limits, "the test runner wrote no JUnit report")
    # Attributes arrive as a flat [name, value, name, value, ...] list (safe_parser), which
    # pyexpat builds much faster than a dict (a quarter of the parse at a million testcases).
    # Testcases are read through the positions of their attribute names (_CaseLayout); other
    # elements, which are few, are turned into dicts (_attr_dict).
    parser = safe_parser(source)

    max_failures = limits.max_failures_listed
    max_detailed = limits.max_failures_detailed
    max_details = limits.max_details_chars
    max_message = limits.max_message_chars
    max_flaky = limits.max_flaky_listed

    # Frames: [row or None, suite name, file, tests at start, attrs, fallback below,
    #          fault elements at start, tag, hostname, properties, top suites' declared time].
    stack: list[list[Any]] = []
    # Every outcome is counted once; a suite's test count is their sum (no counter of its own).
    passed = failed = errors = skipped = flaky = 0
    # Failure/error elements (rerun and flaky ones too), which is what suites' declared
    # failures + errors count (Surefire counts every rerun, others every element).
    faults = 0
    total_seconds = 0.0
    slow_floor = -1.0
    slow_size = limits.slowest
    # The hot path is a testcase without children: its end only queues its attribute list in
    # `pending`, and `flush` counts the queue at C speed (map) before anything else happens (any
    # other element, a testcase with children, the queue full, the end of a chunk or of the
    # input), so every count, sum, list and order is exactly what counting case by case gives.
    # The queued testcases belong to the innermost suite: any suite start or end flushes first.
    case_attrs: list[str] = []
    pending: list[list[str]] = []
    queue_case = pending.append
    # Where the queued testcases' attributes sit; testcases of one report share their
    # attribute names, so the layout is rebuilt only when they change.
    layout = _CaseLayout.of([])
    # True once the current testcase has a child element. Until then the per-case state below
    # is at its defaults and the case's not-run mark (case_rank) is not read yet; a testcase's
    # start resets that state only when it was touched. Its end then takes the full path
    # (end_case_in_full), which leaves the state as it is, as case-by-case counting always did.
    case_extra = False
    case_rank = _PASSED
    case_flaky = False
    case_properties: list[str] | None = None
    in_case = False
    # Detail of the most severe result element of the current case, while failures are kept.
    result_attrs: dict[str, str] | None = None
    result_rank = _PASSED
    flaky_attrs: dict[str, str] | None = None
    # A <failure>/<error> directly inside a suite (crashed or unloadable file, class setup).
    suite_fault: dict[str, str] | None = None
    skip_attrs: dict[str, str] | None = None
    text_parts: list[str] = []
    text_size = 0
    capture_tag: str | None = None
    failures = acc.failures
    flaky_list = acc.flaky_tests

    def collect_text(data: str) -> None:
        nonlocal text_size
        if text_size < max_details:
            text_parts.append(data)
            text_size += len(data)

    def frame_row(frame: list[Any]) -> _Row:
        row: _Row = acc.row(frame[1], frame[2])
        frame[0] = row
        return row

    def capture(tag: str) -> None:
        nonlocal text_size, capture_tag
        text_parts.clear()
        text_size = 0
        capture_tag = tag
        parser.CharacterDataHandler = collect_text

    def start(name: str, attr_list: list[str]) -> None:
        nonlocal case_attrs, case_rank, case_flaky, case_properties, in_case, result_attrs
        nonlocal result_rank, flaky_attrs, suite_fault, faults, skip_attrs, case_extra
        if name == "testcase":
            if case_extra:
                case_rank = _PASSED
                case_flaky = False
                case_properties = None
                result_attrs = None
                result_rank = _PASSED
                case_extra = False
            case_attrs = attr_list
            in_case = True
            return
        if pending:
            flush()
        attrs = _attr_dict(attr_list)
        if name == "testsuite" or name == "testsuites":
            suite_name = attrs.get("name") or ""
            file = attrs.get("file") or None
            hostname = attrs.get("hostname") or None
            properties: list[str] = []
            if stack:
                parent = stack[-1]
                # PHPUnit writes a "Class::method" suite per data provider: fold it into its class.
                if not suite_name or ("::" in suite_name and suite_name.startswith(parent[1])):
                    suite_name = parent[1]
                    file = file or parent[2]
                hostname = hostname or parent[8]
                properties = parent[9]
            stack.append(
                [
                    None,
                    suite_name or UNNAMED_SUITE,
                    file,
                    passed + failed + errors + skipped,
                    attrs,
                    False,
                    faults,
                    name,
                    hostname,
                    properties,
                    None,
                ]
            )
        elif in_case:
            if not case_extra:
                # The first child: from here on the case is counted in full, from its not-run
                # mark (Google Test) on, as a testcase's start always set it.
                case_extra = True
                case_rank = _not_run(_attr_dict(case_attrs), _PASSED)
            rank = _RESULT_RANKS.get(name)
            if rank is not None:
                if rank >= _FAILED:
                    faults += 1
                if rank > case_rank:
                    case_rank = rank
                    if rank >= _FAILED:
                        # Every failure's text is read: its message joins a group.
                        result_attrs = attrs
                        result_rank = rank
                        capture(name)
                    else:
                        skip_attrs = attrs
            elif name in _FLAKY_TAGS:
                faults += 1
                case_flaky = True
                if flaky_attrs is None:
                    flaky_attrs = attrs
            elif name in _RERUN_TAGS:
                faults += 1
            elif name == "property":
                if case_properties is None:
                    case_properties = []
                _add_property(case_properties, attrs)
            elif name == "warning":
                acc.test_warning_count += 1
                if capture_tag is None and len(acc.test_warnings) < limits.max_warnings_listed:
                    capture(name)
        elif (name == "error" or name == "failure") and stack and suite_fault is None:
            suite_fault = attrs
            capture(name)
        elif name == "property" and stack:
            frame = stack[-1]
            # A suite shares its parent's properties until it has its own: copy on write.
            if len(stack) > 1 and frame[9] is stack[-2][9]:
                frame[9] = list(frame[9])
            _add_property(frame[9], attrs)

    def end(name: str) -> None:
        nonlocal in_case, capture_tag, suite_fault
        if name == "testcase":
            in_case = False
            if case_extra or capture_tag is not None:
                if pending:
                    flush()
                end_case_in_full()
            else:
                queue_case(case_attrs)
                if len(pending) >= _PENDING_CASES:
                    flush()
            return
        if pending:
            flush()
        if name == "testsuite" or name == "testsuites":
            frame = stack.pop()
            below = frame[5]
            # Only a <testsuite> stands in for its cases: a <testsuites> root's counts are sums.
            if passed + failed + errors + skipped == frame[3] and not below and name == "testsuite":
                below = fold_declared_counts(frame)
            count_declared_not_carried(frame)
            if below and stack:
                stack[-1][5] = True
            # A declared time of 0 (or junk, which reads as 0) says nothing: it is not known.
            declared = lenient_seconds(frame[4].get("time")) or None
            if len(stack) == 1 and declared is not None:
                stack[0][10] = (stack[0][10] or 0.0) + declared
            elif not stack:
                acc.declared_seconds = declared or frame[10]
        elif suite_fault is not None and not in_case and (name == "error" or name == "failure"):
            count_suite_fault(name)
        elif name == "warning" and capture_tag == "warning" and stack:
            capture_tag = None
            parser.CharacterDataHandler = None
            text = _details("".join(text_parts), max_details)
            attrs = _attr_dict(case_attrs)
            acc.test_warnings.append(
                TestWarning(
                    suite=stack[-1][1],
                    classname=_classname(attrs),
                    name=attrs.get("name", ""),
                    message=_trim(failure_message(text, attrs.get("name", "")), max_message),
                )
            )
        elif name == capture_tag:
            capture_tag = None
            parser.CharacterDataHandler = None

    def end_case_in_full() -> None:
        """The end of a testcase with children: results, failure details, flaky reruns."""
        nonlocal capture_tag
        if capture_tag is not None:
            capture_tag = None
            parser.CharacterDataHandler = None
        if not stack:
            return
        frame = stack[-1]
        attrs = _attr_dict(case_attrs)
        # case_rank holds the not-run mark once the case had a child; without one, read it here.
        rank = case_rank if case_extra else _not_run(attrs, case_rank)
        count_case(frame, frame[0] or frame_row(frame), attrs, rank, case_flaky)

    def count_case(
        frame: list[Any], row: _Row, attrs: dict[str, str], rank: int, flaky_case: bool
    ) -> None:
        """One testcase, counted case by case (the general path)."""
        nonlocal passed, failed, errors, skipped, flaky, total_seconds, slow_floor
        nonlocal flaky_attrs, skip_attrs
        seconds = _case_seconds(attrs.get("time"))
        total_seconds += seconds
        row.duration_seconds += seconds
        if on_case is not None:
            on_case(
                attrs.get("file"),
                _classname(attrs),
                attrs.get("name", ""),
                rank,
                seconds,
                flaky_case,
            )
        if rank == _PASSED:
            passed += 1
            row.passed += 1
            if flaky_case:
                flaky += 1
                row.flaky += 1
                if len(flaky_list) < max_flaky:
                    flaky_list.append(
                        FlakyTest(
                            suite=frame[1],
                            classname=_classname(attrs),
                            name=attrs.get("name", ""),
                            message=_trim((flaky_attrs or {}).get("message"), max_message),
                        )
                    )
        elif rank == _FAILED:
            failed += 1
            row.failed += 1
        elif rank == _ERROR:
            errors += 1
            row.errors += 1
        else:
            skipped += 1
            row.skipped += 1
            acc.skip_reasons.add((skip_attrs or {}).get("message"), _label(frame[1], attrs))
            skip_attrs = None
        flaky_attrs = None
        if rank >= _FAILED:
            skip_attrs = None
            if result_attrs is not None and result_rank == rank:
                label = _label(frame[1], attrs)
                if len(failures) < max_failures:
                    failure = _failure(frame, attrs, result_attrs, rank)
                    failures.append(failure)
                    acc.groups.add(failure.message, failure.kind, label)
                else:
                    # Past the listed ones only the message is needed, for its group.
                    message = best_message(
                        result_attrs.get("message") or "",
                        "".join(text_parts),
                        attrs.get("name", ""),
                    )
                    acc.groups.add(message[:max_message], _KIND_NAMES[rank], label)
                    acc.failures_not_detailed += 1
            else:
                acc.failures_not_detailed += 1
        if seconds > slow_floor:
            acc.offer_slow(SlowTest(frame[1], _classname(attrs), attrs.get("name", ""), seconds))
            if len(acc.slow_heap) >= slow_size:
                slow_floor = acc.slow_heap[0][0]

    def flush() -> None:
        """Count the queued testcases (no children: passed, or skipped when marked not run)."""
        nonlocal flaky_attrs
        frame = stack[-1]
        row = frame[0] or frame_row(frame)
        names = list(map(_NAMES, pending))
        if names.count(names[0]) == len(names):
            count_run(frame, row, pending, names[0])
        else:
            # Runs of testcases with the same attribute names, in document order.
            first = 0
            for index in range(1, len(names) + 1):
                if index == len(names) or names[index] != names[first]:
                    count_run(frame, row, pending[first:index], names[first])
                    first = index
        pending.clear()
        flaky_attrs = None  # as after any counted testcase

    def count_run(frame: list[Any], row: _Row, batch: list[list[str]], names: list[str]) -> None:
        """Queued testcases that share their attribute names, at C speed."""
        nonlocal passed, total_seconds, slow_floor, layout
        if names != layout.names:
            layout = _CaseLayout.of(names)
        if layout.marks_not_run:
            # Google Test's not-run marks (and their skip reasons): case by case, exactly.
            for attr_list in batch:
                attrs = _attr_dict(attr_list)
                count_case(frame, row, attrs, _not_run(attrs, _PASSED), False)
            return
        raw = list(map(layout.time_of, batch)) if layout.time else None
        seconds = _batch_seconds(raw, len(batch))
        # `+=` in document order, as case by case: the very same float sums.
        total = total_seconds
        row_total = row.duration_seconds
        for value in seconds:
            total += value
            row_total += value
        total_seconds = total
        row.duration_seconds = row_total
        passed += len(batch)
        row.passed += len(batch)
        if max(seconds) > slow_floor:
            for attr_list, case_seconds in zip(batch, seconds, strict=True):
                if case_seconds > slow_floor:
                    acc.offer_slow(
                        SlowTest(
                            frame[1],
                            layout.classname(attr_list),
                            layout.name(attr_list),
                            case_seconds,
                        )
                    )
                    if len(acc.slow_heap) >= slow_size:
                        slow_floor = acc.slow_heap[0][0]
        if on_case is not None:
            # One call per testcase, made by map(): no Python loop around history's callback.
            count = len(batch)
            deque(
                map(
                    on_case,
                    layout.files(batch),
                    layout.classnames(batch),
                    layout.names_of(batch),
                    repeat(_PASSED, count),
                    seconds,
                    repeat(False, count),
                ),
                maxlen=0,
            )

    def count_suite_fault(tag: str) -> None:
        """A suite-level <error>/<failure> is one error case named after its suite."""
        nonlocal errors, faults, capture_tag, suite_fault
        frame = stack[-1]
        row = frame[0] or frame_row(frame)
        errors += 1
        faults += 1
        row.errors += 1
        fault = suite_fault or {}
        if capture_tag == tag:
            capture_tag = None
            parser.CharacterDataHandler = None
            details = _details("".join(text_parts), max_details)
            message = _trim(best_message(fault.get("message") or "", details, ""), max_message)
            acc.groups.add(message, "error", frame[1])
            if len(failures) >= max_failures:
                acc.failures_not_detailed += 1
                suite_fault = None
                return
            failures.append(
                Failure(
                    suite=frame[1],
                    classname="",
                    name=frame[1],
                    file=frame[2],
                    line=None,
                    kind="error",
                    message=message,
                    details=details,
                    type=_trim(fault.get("type"), 200),
                    context=f"a <{tag}> of the suite itself, outside any testcase",
                )
            )
        else:
            acc.failures_not_detailed += 1
        suite_fault = None

    def _failure(
        frame: list[Any], attrs: dict[str, str], result: dict[str, str], rank: int
    ) -> Failure:
        name = attrs.get("name", "")
        details = _details("".join(text_parts), max_details)
        message = _trim(best_message(result.get("message") or "", details, name), max_message)
        file = attrs.get("file") or result.get("file") or None
        at = failing_frame(details, file, _classname(attrs), frame[1])
        return Failure(
            suite=frame[1],
            classname=_classname(attrs),
            name=name,
            file=file,
            line=_line_number(attrs.get("line") or result.get("line")),
            at_file=at.path if at else None,
            at_line=at.line if at else None,
            kind=_KIND_NAMES[rank],
            message=message,
            # Only the first failures keep their trace (memory: up to 1,000 are listed).
            details=details if len(failures) < max_detailed else "",
            type=_trim(result.get("type"), 200),
            context=_context(frame[8], case_properties, frame[9]),
        )

    def fold_declared_counts(frame: list[Any]) -> bool:
        """A suite without testcases that declares counts stands in for its cases, flagged."""
        nonlocal passed, failed, errors, skipped, total_seconds, faults
        attrs = frame[4]
        declared = lenient_count(attrs.get("tests"))
        if declared == 0:
            return False
        suite_failed = lenient_count(attrs.get("failures"))
        suite_errors = lenient_count(attrs.get("errors"))
        # Google Test declares its disabled tests apart from the skipped ones.
        suite_skipped = lenient_count(attrs.get("skipped")) + lenient_count(attrs.get("disabled"))
        declared = max(declared, suite_failed + suite_errors + suite_skipped)
        suite_passed = declared - suite_failed - suite_errors - suite_skipped
        seconds = lenient_seconds(attrs.get("time"))
        row = frame[0] or frame_row(frame)
        row.from_declared_counts = True
        row.passed += suite_passed
        row.failed += suite_failed
        row.errors += suite_errors
        row.skipped += suite_skipped
        row.duration_seconds += seconds
        passed += suite_passed
        failed += suite_failed
        errors += suite_errors
        skipped += suite_skipped
        total_seconds += seconds
        faults += suite_failed + suite_errors
        acc.failures_not_detailed += suite_failed + suite_errors
        return True

    def count_declared_not_carried(frame: list[Any]) -> None:
        """Failures/errors a suite declares beyond what its testcases carry count as errors.

        Converters (go test JSON -> JUnit) put a package build failure only on the root's `errors`:
        without this the report would read green over a declared error.
        """
        nonlocal errors, faults
        attrs = frame[4]
        if "failures" not in attrs and "errors" not in attrs:
            return
        declared = lenient_count(attrs.get("failures")) + lenient_count(attrs.get("errors"))
        missing = declared - (faults - frame[6])
        if missing <= 0:
            return
        tag = frame[7]
        where = "the root" if frame[1] == UNNAMED_SUITE else frame[1]
        label = f"{where} (declared by <{tag}>, carried by no testcase)"
        row = acc.row(label, frame[2])
        row.from_declared_counts = True
        row.errors += missing
        errors += missing
        faults += missing
        acc.failures_not_detailed += missing
        acc.warn(
            f"<{tag}> {where!r} declares {declared} failure(s)/error(s) but its testcases "
            f"carry {declared - missing}: the {missing} missing counted as errors "
            f"in the row {label!r}"
        )

    def root(name: str, attrs: list[str]) -> None:
        if name not in ("testsuites", "testsuite"):
            raise JUnitError(
                f"not a JUnit XML report: the root element is <{_trim(name, 80)}>, expected "
                "<testsuites> or <testsuite>; pass the runner's JUnit output (e.g. phpunit "
                "--log-junit FILE)"
            )
        parser.StartElementHandler = start
        start(name, attrs)

    parser.StartElementHandler = root
    parser.EndElementHandler = end

    def after_chunk() -> None:
        # Queued testcases hold their attributes: at most one chunk's worth (plus the token
        # carried over) stays in memory, however large each testcase is.
        if pending:
            flush()

    feed(parser, source, after_chunk)
    if stack:
        raise JUnitError("the file ends inside a <testsuite>: was the test run cut off?")

    acc.tests += passed + failed + errors + skipped
    acc.passed += passed
    acc.failed += failed
    acc.errors += errors
    acc.skipped += skipped
    acc.flaky += flaky
    acc.duration_seconds += total_seconds
    return acc


def _add_property(properties: list[str], attrs: dict[str, str]) -> None:
    if len(properties) < _MAX_PROPERTIES and attrs.get("name"):
        properties.append(f"{attrs['name']}={attrs.get('value', '')}")


def _context(hostname: str | None, case: list[str] | None, suite: list[str]) -> str:
    parts = [f"hostname={hostname}"] if hostname else []
    parts.extend(case or ())
    parts.extend(suite)
    return _trim(", ".join(parts), _MAX_CONTEXT_CHARS)


def _classname(attrs: dict[str, str]) -> str:
    return attrs.get("classname") or attrs.get("class") or ""


def _label(suite: str, attrs: dict[str, str]) -> str:
    """ "Class › name" for lists of tests; the class is left out where it repeats the suite."""
    classname = _classname(attrs)
    name = attrs.get("name", "")
    if classname and name and classname not in (suite, name):
        return f"{classname} › {name}"
    return name or classname or "(unnamed test)"


def _not_run(attrs: dict[str, str], rank: int) -> int:
    """Google Test marks tests that did not run with attributes: at least skipped."""
    if attrs.get("status") == "notrun" or attrs.get("result") in _SKIPPED_RESULTS:
        return max(rank, _SKIPPED)
    return rank


def _case_seconds(raw: str | None) -> float:
    """A testcase's `time`: float() first (the common case), lenient_seconds for the rest."""
    try:
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return lenient_seconds(raw)
    return seconds if 0.0 <= seconds <= MAX_SECONDS else 0.0


def _batch_seconds(raw: list[str] | None, count: int) -> list[float]:
    """_case_seconds of each of `count` testcases (None: no `time` attribute), at C speed."""
    if raw is None:
        return [0.0] * count
    try:
        seconds = list(map(float, raw))
    except ValueError:
        return [_case_seconds(value) for value in raw]
    # A NaN makes the sum NaN (min() and max() are only reliable without NaNs).
    check = sum(seconds)
    if check == check and min(seconds) >= 0.0 and max(seconds) <= MAX_SECONDS:
        return seconds
    return [value if 0.0 <= value <= MAX_SECONDS else 0.0 for value in seconds]


def _attr_dict(attr_list: list[str]) -> dict[str, str]:
    """pyexpat's ordered attribute list as a dict (XML forbids repeated attribute names)."""
    return dict(zip(attr_list[::2], attr_list[1::2], strict=True))


@dataclass(frozen=True, slots=True)
class _CaseLayout:
    """Where a testcase's attributes sit in pyexpat's [name, value, ...] list; 0 when absent."""

    names: list[str]
    time: int
    file: int
    name_at: int
    classname_at: int
    class_at: int
    # Google Test's `status`/`result` can mark a test that did not run: read them as a dict.
    marks_not_run: bool
    time_of: Callable[[list[str]], str]

    @classmethod
    def of(cls, names: list[str]) -> _CaseLayout:
        def at(key: str) -> int:
            return 2 * names.index(key) + 1 if key in names else 0

        return cls(
            names,
            at("time"),
            at("file"),
            at("name"),
            at("classname"),
            at("class"),
            "status" in names or "result" in names,
            itemgetter(at("time")),
        )

    def name(self, attrs: list[str]) -> str:
        return attrs[self.name_at] if self.name_at else ""

    # The same for a batch of testcases, as iterables (column by column, at C speed).

    def files(self, batch: list[list[str]]) -> Iterable[str | None]:
        return map(itemgetter(self.file), batch) if self.file else repeat(None)

    def classnames(self, batch: list[list[str]]) -> Iterable[str]:
        if not self.classname_at:
            return map(itemgetter(self.class_at), batch) if self.class_at else repeat("")
        names = list(map(itemgetter(self.classname_at), batch))
        if "" in names and self.class_at:
            return [self.classname(attrs) for attrs in batch]
        return names

    def names_of(self, batch: list[list[str]]) -> Iterable[str]:
        return map(itemgetter(self.name_at), batch) if self.name_at else repeat("")

    def classname(self, attrs: list[str]) -> str:
        """As _classname: `classname`, else `class`, else ""."""
        return (attrs[self.classname_at] if self.classname_at else "") or (
            attrs[self.class_at] if self.class_at else ""
        )
