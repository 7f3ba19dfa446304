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
import math
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.parsers import expat

from report_processor.model import Failure, FlakyTest, SlowTest, SuiteRow, Totals

DEFAULT_CHUNK_BYTES = 1 << 20
OTHER_SUITES = "(other suites)"
UNNAMED_SUITE = "(unnamed suite)"

# Outcome ranks, highest wins: a case with an <error> and a <failure> is an error.
_PASSED, _SKIPPED, _FAILED, _ERROR = 0, 1, 2, 3
_RESULT_RANKS = {"skipped": _SKIPPED, "failure": _FAILED, "error": _ERROR}
_FLAKY_TAGS = frozenset({"flakyFailure", "flakyError"})
_KIND_NAMES = {_FAILED: "failed", _ERROR: "error"}


class JUnitError(Exception):
    """The input is not a usable JUnit report; the message says why and what to do."""


@dataclass(frozen=True)
class ParseLimits:
    """Bounds that keep memory flat whatever the input size; counts are never bounded."""

    max_failures_detailed: int = 100
    max_details_chars: int = 4000
    max_message_chars: int = 1000
    max_suite_rows: int = 300
    slowest: int = 10
    max_flaky_listed: int = 50
    max_input_bytes: int | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES


@dataclass(slots=True)
class _Row:
    name: str
    file: str | None
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    duration_seconds: float = 0.0
    from_declared_counts: bool = False


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

    def row(self, name: str, file: str | None) -> _Row:
        row = self.rows.get(name)
        if row is None:
            if len(self.rows) < self.limits.max_suite_rows:
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
            target.tests += source.tests
            target.passed += source.passed
            target.failed += source.failed
            target.errors += source.errors
            target.skipped += source.skipped
            target.flaky += source.flaky
            target.duration_seconds += source.duration_seconds
            target.from_declared_counts |= source.from_declared_counts
        self.suites_folded += other.suites_folded
        room = max(self.limits.max_failures_detailed - len(self.failures), 0)
        self.failures.extend(other.failures[:room])
        self.failures_not_detailed += other.failures_not_detailed + max(
            len(other.failures) - room, 0
        )
        room = max(self.limits.max_flaky_listed - len(self.flaky_tests), 0)
        self.flaky_tests.extend(other.flaky_tests[:room])
        for _, _, slow in other.slow_heap:
            self.offer_slow(slow)

    def totals(self) -> Totals:
        return Totals(
            tests=self.tests,
            passed=self.passed,
            failed=self.failed,
            errors=self.errors,
            skipped=self.skipped,
            flaky=self.flaky,
            duration_seconds=round(self.duration_seconds, 6),
        )

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
    if not 0.0 <= value < math.inf:
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
    return max(value, 0)


def _line_number(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def _trim(text: str | None, limit: int) -> str:
    if not text:
        return ""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def _refuse_doctype(*_args: object) -> None:
    raise JUnitError(
        "the file declares a DOCTYPE; JUnit reports never need one and DTDs/entities are refused "
        "(they enable entity expansion and external entity attacks): remove the <!DOCTYPE> line"
    )


def parse_junit(stream: BinaryIO, limits: ParseLimits | None = None) -> Accumulator:
    """Fold every testcase of one JUnit XML byte stream into an accumulator.

    Raises JUnitError with a message naming the problem (not XML, truncated, DOCTYPE, not JUnit,
    too large). Each file gets a fresh accumulator, merged only when it parsed, so a broken file
    adds nothing to a report.
    """
    limits = limits or ParseLimits()
    acc = Accumulator(limits)
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.buffer_size = 1 << 16
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.ExternalEntityRefHandler = _refuse_doctype

    max_failures = limits.max_failures_detailed
    max_details = limits.max_details_chars
    max_message = limits.max_message_chars
    max_flaky = limits.max_flaky_listed

    # Frames: [row or None, suite name, file, tests at start, attrs, fallback below].
    stack: list[list] = []
    tests = passed = failed = errors = skipped = flaky = 0
    total_seconds = 0.0
    slow_floor = -1.0
    slow_size = limits.slowest
    case_attrs: dict[str, str] = {}
    case_rank = _PASSED
    case_flaky = False
    in_case = False
    # Detail of the most severe result element of the current case, while failures are kept.
    result_attrs: dict[str, str] | None = None
    result_rank = _PASSED
    flaky_attrs: dict[str, str] | None = None
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

    def frame_row(frame: list) -> _Row:
        row = frame[0] = acc.row(frame[1], frame[2])
        return row

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal case_attrs, case_rank, case_flaky, in_case, result_attrs, result_rank
        nonlocal flaky_attrs, text_size, capture_tag
        if name == "testcase":
            case_attrs = attrs
            case_rank = _PASSED
            case_flaky = False
            in_case = True
            result_attrs = None
            result_rank = _PASSED
        elif name == "testsuite" or name == "testsuites":
            suite_name = attrs.get("name") or ""
            file = attrs.get("file") or None
            if stack:
                parent = stack[-1]
                # PHPUnit writes a "Class::method" suite per data provider: fold it into its class.
                if not suite_name or ("::" in suite_name and suite_name.startswith(parent[1])):
                    suite_name = parent[1]
                    file = file or parent[2]
            stack.append([None, suite_name or UNNAMED_SUITE, file, tests, attrs, False])
        elif in_case:
            rank = _RESULT_RANKS.get(name)
            if rank is not None:
                if rank > case_rank:
                    case_rank = rank
                    if rank >= _FAILED and len(failures) < max_failures:
                        result_attrs = attrs
                        result_rank = rank
                        text_parts.clear()
                        text_size = 0
                        capture_tag = name
                        parser.CharacterDataHandler = collect_text
            elif name in _FLAKY_TAGS:
                case_flaky = True
                if flaky_attrs is None:
                    flaky_attrs = attrs

    def end(name: str) -> None:
        nonlocal tests, passed, failed, errors, skipped, flaky, total_seconds, slow_floor
        nonlocal in_case, capture_tag, flaky_attrs
        if name == "testcase":
            in_case = False
            if capture_tag is not None:
                capture_tag = None
                parser.CharacterDataHandler = None
            if not stack:
                return
            frame = stack[-1]
            row = frame[0] or frame_row(frame)
            raw_time = case_attrs.get("time")
            try:
                seconds = float(raw_time)
                if not 0.0 <= seconds < math.inf:
                    seconds = 0.0
            except (TypeError, ValueError):
                seconds = lenient_seconds(raw_time)
            tests += 1
            row.tests += 1
            total_seconds += seconds
            row.duration_seconds += seconds
            if case_rank == _PASSED:
                passed += 1
                row.passed += 1
                if case_flaky:
                    flaky += 1
                    row.flaky += 1
                    if len(flaky_list) < max_flaky:
                        flaky_list.append(
                            FlakyTest(
                                suite=frame[1],
                                classname=_classname(case_attrs),
                                name=case_attrs.get("name", ""),
                                message=_trim((flaky_attrs or {}).get("message"), max_message),
                            )
                        )
            elif case_rank == _FAILED:
                failed += 1
                row.failed += 1
            elif case_rank == _ERROR:
                errors += 1
                row.errors += 1
            else:
                skipped += 1
                row.skipped += 1
            flaky_attrs = None
            if case_rank >= _FAILED:
                if result_attrs is not None and result_rank == case_rank:
                    failures.append(_failure(frame[1], case_attrs, result_attrs, case_rank))
                else:
                    acc.failures_not_detailed += 1
            if seconds > slow_floor:
                acc.offer_slow(
                    SlowTest(frame[1], _classname(case_attrs), case_attrs.get("name", ""), seconds)
                )
                if len(acc.slow_heap) >= slow_size:
                    slow_floor = acc.slow_heap[0][0]
        elif name == "testsuite" or name == "testsuites":
            frame = stack.pop()
            below = frame[5]
            # Only a <testsuite> stands in for its cases: a <testsuites> root's counts are sums.
            if tests == frame[3] and not below and name == "testsuite":
                below = fold_declared_counts(frame)
            if below and stack:
                stack[-1][5] = True
        elif name == capture_tag:
            capture_tag = None
            parser.CharacterDataHandler = None

    def _failure(suite: str, attrs: dict, result: dict, rank: int) -> Failure:
        return Failure(
            suite=suite,
            classname=_classname(attrs),
            name=attrs.get("name", ""),
            file=attrs.get("file") or result.get("file") or None,
            line=_line_number(attrs.get("line") or result.get("line")),
            kind=_KIND_NAMES[rank],
            message=_trim(result.get("message"), max_message),
            details=_trim("".join(text_parts), max_details),
            type=_trim(result.get("type"), 200),
        )

    def fold_declared_counts(frame: list) -> bool:
        """A suite without testcases that declares counts stands in for its cases, flagged."""
        nonlocal tests, passed, failed, errors, skipped, total_seconds
        attrs = frame[4]
        declared = lenient_count(attrs.get("tests"))
        if declared == 0:
            return False
        suite_failed = lenient_count(attrs.get("failures"))
        suite_errors = lenient_count(attrs.get("errors"))
        suite_skipped = lenient_count(attrs.get("skipped"))
        declared = max(declared, suite_failed + suite_errors + suite_skipped)
        suite_passed = declared - suite_failed - suite_errors - suite_skipped
        seconds = lenient_seconds(attrs.get("time"))
        row = frame[0] or frame_row(frame)
        row.from_declared_counts = True
        for name, value in (
            ("tests", declared),
            ("passed", suite_passed),
            ("failed", suite_failed),
            ("errors", suite_errors),
            ("skipped", suite_skipped),
        ):
            setattr(row, name, getattr(row, name) + value)
        row.duration_seconds += seconds
        tests += declared
        passed += suite_passed
        failed += suite_failed
        errors += suite_errors
        skipped += suite_skipped
        total_seconds += seconds
        acc.failures_not_detailed += suite_failed + suite_errors
        return True

    def root(name: str, attrs: dict[str, str]) -> None:
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

    size = 0
    read = stream.read
    chunk_bytes = limits.chunk_bytes
    max_bytes = limits.max_input_bytes
    try:
        while True:
            chunk = read(chunk_bytes)
            if not chunk:
                break
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise JUnitError(
                    f"the file is larger than the {max_bytes} byte limit; split the run into "
                    "shards or raise the limit"
                )
            parser.Parse(chunk, False)
        if size == 0:
            raise JUnitError("the file is empty: the test runner wrote no JUnit report")
        parser.Parse(b"", True)
    except expat.ExpatError as error:
        reason = expat.errors.messages.get(error.code, str(error))
        hint = (
            " (the file ends early: was the test run cut off?)"
            if reason in ("no element found", "unclosed token")
            else ""
        )
        raise JUnitError(
            f"not well-formed XML: {reason} at line {error.lineno}, column {error.offset}{hint}"
        ) from None
    if stack:
        raise JUnitError("the file ends inside a <testsuite>: was the test run cut off?")

    acc.tests += tests
    acc.passed += passed
    acc.failed += failed
    acc.errors += errors
    acc.skipped += skipped
    acc.flaky += flaky
    acc.duration_seconds += total_seconds
    return acc


def _classname(attrs: dict[str, str]) -> str:
    return attrs.get("classname") or attrs.get("class") or ""
