"""The element handlers of one parse: every testcase counted into an Accumulator as expat streams.

The hot path is a testcase start and end, which is all most of a large report is: a testcase
without children only queues its attribute list (`pending`), and `_flush` counts the queue at C
speed (map) before anything else happens (any other element, a testcase with children, the queue
full, the end of a chunk or of the input), so every count, sum, list and order is exactly what
counting case by case gives. Everything else (suites, failures, skips, reruns, properties,
warnings) takes the general path, which is rare and written for clarity.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from report_processor.case_fields import (
    ATTRIBUTE_NAMES,
    ERROR,
    FAILED,
    FLAKY_TAGS,
    KIND_NAMES,
    PASSED,
    RERUN_TAGS,
    RESULT_RANKS,
    CaseLayout,
    add_property,
    attr_dict,
    batch_seconds,
    case_label,
    case_seconds,
    classname_of,
    context_line,
    failure_details,
    lenient_count,
    lenient_seconds,
    line_number,
    not_run,
    trimmed,
)
from report_processor.headline import best_message, failure_message
from report_processor.location import failing_frame
from report_processor.model import Failure, FlakyTest, SlowTest, TestWarning
from report_processor.tally import UNNAMED_SUITE, Accumulator, SuiteTally
from report_processor.xmlstream import JUnitError

# Per-testcase callback (history): file, classname, name, outcome rank, seconds, flaky-within-run.
OnCase = Callable[[str | None, str, str, int, float, bool], None]

# Testcases queued before they are counted together; the queue is also counted after every
# chunk, which bounds its memory for testcases with huge attributes.
PENDING_CASES = 1024


@dataclass(slots=True)
class SuiteFrame:
    """A <testsuite>/<testsuites> being read."""

    row: SuiteTally | None
    name: str
    file: str | None
    tests_at_start: int
    attrs: dict[str, str]
    tag: str
    hostname: str | None
    # Shared with the parent until this suite has a property of its own (copy on write).
    properties: list[str]
    faults_at_start: int
    # A suite below it stood in for its cases with declared counts.
    declared_below: bool = False
    # The root only: the sum of its top suites' declared time.
    top_declared_seconds: float | None = None


class JUnitFold:
    """Expat's handlers for one file; `finish` adds the file's totals to the accumulator."""

    # Slots: the hot path reads and writes these a million times.
    __slots__ = (
        "acc",
        "limits",
        "parser",
        "on_case",
        "stack",
        "passed",
        "failed",
        "errors",
        "skipped",
        "flaky",
        "faults",
        "total_seconds",
        "slow_floor",
        "case_attrs",
        "pending",
        "layout",
        "case_extra",
        "case_rank",
        "case_flaky",
        "case_properties",
        "in_case",
        "result_attrs",
        "result_rank",
        "flaky_attrs",
        "suite_fault",
        "skip_attrs",
        "text_parts",
        "text_size",
        "capture_tag",
    )

    def __init__(self, acc: Accumulator, parser: Any, on_case: OnCase | None) -> None:
        self.acc = acc
        self.limits = acc.limits
        self.parser = parser
        self.on_case = on_case
        self.stack: list[SuiteFrame] = []
        # Every outcome is counted once; a suite's test count is their sum (no counter of its own).
        self.passed = self.failed = self.errors = self.skipped = self.flaky = 0
        # Failure/error elements (rerun and flaky ones too), which is what suites' declared
        # failures + errors count (Surefire counts every rerun, others every element).
        self.faults = 0
        self.total_seconds = 0.0
        self.slow_floor = -1.0
        self.case_attrs: list[str] = []
        self.pending: list[list[str]] = []
        # Where the queued testcases' attributes sit; testcases of one report share their
        # attribute names, so the layout is rebuilt only when they change.
        self.layout = CaseLayout.of([])
        # True once the current testcase has a child element. Until then the per-case state
        # below is at its defaults and the case's not-run mark (case_rank) is not read yet; a
        # testcase's start resets that state only when it was touched. Its end then takes the
        # full path (_end_case_in_full), which leaves the state as it is, as case-by-case
        # counting always did.
        self.case_extra = False
        self.case_rank = PASSED
        self.case_flaky = False
        self.case_properties: list[str] | None = None
        self.in_case = False
        # Detail of the most severe result element of the current case, while failures are kept.
        self.result_attrs: dict[str, str] | None = None
        self.result_rank = PASSED
        self.flaky_attrs: dict[str, str] | None = None
        # A <failure>/<error> directly inside a suite (crashed or unloadable file, class setup).
        self.suite_fault: dict[str, str] | None = None
        self.skip_attrs: dict[str, str] | None = None
        self.text_parts: list[str] = []
        self.text_size = 0
        self.capture_tag: str | None = None
        parser.StartElementHandler = self.root
        parser.EndElementHandler = self.end

    # -- the hot path ------------------------------------------------------------------------

    def start(self, name: str, attr_list: list[str]) -> None:
        if name == "testcase":
            if self.case_extra:
                self._reset_case()
            self.case_attrs = attr_list
            self.in_case = True
            return
        if self.pending:
            self._flush()
        attrs = attr_dict(attr_list)
        if name == "testsuite" or name == "testsuites":
            self._open_suite(name, attrs)
        elif self.in_case:
            self._case_child(name, attrs)
        elif (name == "error" or name == "failure") and self.stack and self.suite_fault is None:
            self.suite_fault = attrs
            self._capture(name)
        elif name == "property" and self.stack:
            self._suite_property(attrs)

    def end(self, name: str) -> None:
        if name == "testcase":
            self.in_case = False
            if self.case_extra or self.capture_tag is not None:
                if self.pending:
                    self._flush()
                self._end_case_in_full()
            else:
                pending = self.pending
                pending.append(self.case_attrs)
                if len(pending) >= PENDING_CASES:
                    self._flush()
            return
        if self.pending:
            self._flush()
        if name == "testsuite" or name == "testsuites":
            self._close_suite(name)
        elif self.suite_fault is not None and not self.in_case and name in ("error", "failure"):
            self._count_suite_fault(name)
        elif name == "warning" and self.capture_tag == "warning" and self.stack:
            self._end_warning()
        elif name == self.capture_tag:
            self._stop_capture()

    def after_chunk(self) -> None:
        # Queued testcases hold their attributes: at most one chunk's worth (plus the token
        # carried over) stays in memory, however large each testcase is.
        if self.pending:
            self._flush()

    def root(self, name: str, attrs: list[str]) -> None:
        if name not in ("testsuites", "testsuite"):
            raise JUnitError(
                f"not a JUnit XML report: the root element is <{trimmed(name, 80)}>, expected "
                "<testsuites> or <testsuite>; pass the runner's JUnit output (e.g. phpunit "
                "--log-junit FILE)"
            )
        self.parser.StartElementHandler = self.start
        self.start(name, attrs)

    def finish(self) -> Accumulator:
        if self.stack:
            raise JUnitError("the file ends inside a <testsuite>: was the test run cut off?")
        acc = self.acc
        acc.tests += self.passed + self.failed + self.errors + self.skipped
        acc.passed += self.passed
        acc.failed += self.failed
        acc.errors += self.errors
        acc.skipped += self.skipped
        acc.flaky += self.flaky
        acc.duration_seconds += self.total_seconds
        return acc

    # -- testcases without children, counted in batches ---------------------------------------

    def _flush(self) -> None:
        """Count the queued testcases (no children: passed, or skipped when marked not run)."""
        pending = self.pending
        frame = self.stack[-1]
        row = frame.row or self._frame_row(frame)
        names = list(map(ATTRIBUTE_NAMES, pending))
        if names.count(names[0]) == len(names):
            self._count_run(frame, row, pending, names[0])
        else:
            # Runs of testcases with the same attribute names, in document order.
            first = 0
            for index in range(1, len(names) + 1):
                if index == len(names) or names[index] != names[first]:
                    self._count_run(frame, row, pending[first:index], names[first])
                    first = index
        pending.clear()
        self.flaky_attrs = None  # as after any counted testcase

    def _count_run(
        self, frame: SuiteFrame, row: SuiteTally, batch: list[list[str]], names: list[str]
    ) -> None:
        """Queued testcases that share their attribute names, at C speed."""
        if names != self.layout.names:
            self.layout = CaseLayout.of(names)
        layout = self.layout
        if layout.marks_not_run:
            # Google Test's not-run marks (and their skip reasons): case by case, exactly.
            for attr_list in batch:
                attrs = attr_dict(attr_list)
                self._count_case(frame, row, attrs, not_run(attrs, PASSED), False)
            return
        raw = list(map(layout.time_of, batch)) if layout.time else None
        seconds = batch_seconds(raw, len(batch))
        # `+=` in document order, as case by case: the very same float sums (sum() would differ
        # on Python 3.12, which compensates rounding).
        total = self.total_seconds
        row_total = row.duration_seconds
        for value in seconds:
            total += value
            row_total += value
        self.total_seconds = total
        row.duration_seconds = row_total
        self.passed += len(batch)
        row.passed += len(batch)
        if max(seconds) > self.slow_floor:
            self._offer_slow_batch(frame, batch, seconds)
        if self.on_case is not None:
            self._report_batch(batch, seconds)

    def _offer_slow_batch(
        self, frame: SuiteFrame, batch: list[list[str]], seconds: list[float]
    ) -> None:
        layout = self.layout
        for attr_list, one_case in zip(batch, seconds, strict=True):
            if one_case > self.slow_floor:
                classname = layout.classname(attr_list)
                self._offer_slow(SlowTest(frame.name, classname, layout.name(attr_list), one_case))

    def _report_batch(self, batch: list[list[str]], seconds: list[float]) -> None:
        # One call per testcase, made by map(): no Python loop around history's callback.
        assert self.on_case is not None
        layout = self.layout
        count = len(batch)
        deque(
            map(
                self.on_case,
                layout.files(batch),
                layout.classnames(batch),
                layout.names_of(batch),
                repeat(PASSED, count),
                seconds,
                repeat(False, count),
            ),
            maxlen=0,
        )

    def _offer_slow(self, slow: SlowTest) -> None:
        acc = self.acc
        acc.offer_slow(slow)
        if len(acc.slow_heap) >= self.limits.slowest:
            self.slow_floor = acc.slow_heap[0][0]

    # -- testcases with children, counted one by one -----------------------------------------

    def _reset_case(self) -> None:
        self.case_rank = PASSED
        self.case_flaky = False
        self.case_properties = None
        self.result_attrs = None
        self.result_rank = PASSED
        self.case_extra = False

    def _case_child(self, name: str, attrs: dict[str, str]) -> None:
        if not self.case_extra:
            # The first child: from here on the case is counted in full, from its not-run
            # mark (Google Test) on, as a testcase's start always set it.
            self.case_extra = True
            self.case_rank = not_run(attr_dict(self.case_attrs), PASSED)
        rank = RESULT_RANKS.get(name)
        if rank is not None:
            self._case_result(name, rank, attrs)
        elif name in FLAKY_TAGS:
            self.faults += 1
            self.case_flaky = True
            if self.flaky_attrs is None:
                self.flaky_attrs = attrs
        elif name in RERUN_TAGS:
            self.faults += 1
        elif name == "property":
            if self.case_properties is None:
                self.case_properties = []
            add_property(self.case_properties, attrs)
        elif name == "warning":
            self.acc.test_warning_count += 1
            listed = len(self.acc.test_warnings) < self.limits.max_warnings_listed
            if self.capture_tag is None and listed:
                self._capture(name)

    def _case_result(self, name: str, rank: int, attrs: dict[str, str]) -> None:
        if rank >= FAILED:
            self.faults += 1
        if rank <= self.case_rank:
            return
        self.case_rank = rank
        if rank >= FAILED:
            # Every failure's text is read: its message joins a group.
            self.result_attrs = attrs
            self.result_rank = rank
            self._capture(name)
        else:
            self.skip_attrs = attrs

    def _end_case_in_full(self) -> None:
        """The end of a testcase with children: results, failure details, flaky reruns."""
        if self.capture_tag is not None:
            self._stop_capture()
        if not self.stack:
            return
        frame = self.stack[-1]
        attrs = attr_dict(self.case_attrs)
        # case_rank holds the not-run mark once the case had a child; without one, read it here.
        rank = self.case_rank if self.case_extra else not_run(attrs, self.case_rank)
        row = frame.row or self._frame_row(frame)
        self._count_case(frame, row, attrs, rank, self.case_flaky)

    def _count_case(
        self, frame: SuiteFrame, row: SuiteTally, attrs: dict[str, str], rank: int, flaky: bool
    ) -> None:
        """One testcase, counted case by case (the general path)."""
        seconds = case_seconds(attrs.get("time"))
        self.total_seconds += seconds
        row.duration_seconds += seconds
        if self.on_case is not None:
            self.on_case(
                attrs.get("file"), classname_of(attrs), attrs.get("name", ""), rank, seconds, flaky
            )
        if rank == PASSED:
            self._count_passed(frame, row, attrs, flaky)
        elif rank == FAILED:
            self.failed += 1
            row.failed += 1
        elif rank == ERROR:
            self.errors += 1
            row.errors += 1
        else:
            self.skipped += 1
            row.skipped += 1
            reason = (self.skip_attrs or {}).get("message")
            self.acc.skip_reasons.add(reason, case_label(frame.name, attrs))
            self.skip_attrs = None
        self.flaky_attrs = None
        if rank >= FAILED:
            self.skip_attrs = None
            self._list_failure(frame, attrs, rank)
        if seconds > self.slow_floor:
            self._offer_slow(
                SlowTest(frame.name, classname_of(attrs), attrs.get("name", ""), seconds)
            )

    def _count_passed(
        self, frame: SuiteFrame, row: SuiteTally, attrs: dict[str, str], flaky: bool
    ) -> None:
        self.passed += 1
        row.passed += 1
        if not flaky:
            return
        self.flaky += 1
        row.flaky += 1
        flaky_list = self.acc.flaky_tests
        if len(flaky_list) < self.limits.max_flaky_listed:
            message = (self.flaky_attrs or {}).get("message")
            flaky_list.append(
                FlakyTest(
                    suite=frame.name,
                    classname=classname_of(attrs),
                    name=attrs.get("name", ""),
                    message=trimmed(message, self.limits.max_message_chars),
                )
            )

    def _list_failure(self, frame: SuiteFrame, attrs: dict[str, str], rank: int) -> None:
        """A failed/errored case: listed with its detail while room lasts, always grouped."""
        acc = self.acc
        result = self.result_attrs
        if result is None or self.result_rank != rank:
            acc.failures_not_detailed += 1
            return
        label = case_label(frame.name, attrs)
        if len(acc.failures) < self.limits.max_failures_listed:
            failure = self._failure(frame, attrs, result, rank)
            acc.failures.append(failure)
            acc.groups.add(failure.message, failure.kind, label)
            return
        # Past the listed ones only the message is needed, for its group.
        message = best_message(
            result.get("message") or "", "".join(self.text_parts), attrs.get("name", "")
        )
        acc.groups.add(message[: self.limits.max_message_chars], KIND_NAMES[rank], label)
        acc.failures_not_detailed += 1

    def _failure(
        self, frame: SuiteFrame, attrs: dict[str, str], result: dict[str, str], rank: int
    ) -> Failure:
        limits = self.limits
        name = attrs.get("name", "")
        details = failure_details("".join(self.text_parts), limits.max_details_chars)
        message = best_message(result.get("message") or "", details, name)
        message = trimmed(message, limits.max_message_chars)
        file = attrs.get("file") or result.get("file") or None
        at = failing_frame(details, file, classname_of(attrs), frame.name)
        return Failure(
            suite=frame.name,
            classname=classname_of(attrs),
            name=name,
            file=file,
            line=line_number(attrs.get("line") or result.get("line")),
            at_file=at.path if at else None,
            at_line=at.line if at else None,
            kind=KIND_NAMES[rank],
            message=message,
            # Only the first failures keep their trace (memory: up to 1,000 are listed).
            details=details if len(self.acc.failures) < limits.max_failures_detailed else "",
            type=trimmed(result.get("type"), 200),
            context=context_line(frame.hostname, self.case_properties, frame.properties),
        )

    def _end_warning(self) -> None:
        self._stop_capture()
        limits = self.limits
        text = failure_details("".join(self.text_parts), limits.max_details_chars)
        attrs = attr_dict(self.case_attrs)
        name = attrs.get("name", "")
        self.acc.test_warnings.append(
            TestWarning(
                suite=self.stack[-1].name,
                classname=classname_of(attrs),
                name=name,
                message=trimmed(failure_message(text, name), limits.max_message_chars),
            )
        )

    # -- text capture (only inside the elements whose text is read) --------------------------

    def _capture(self, tag: str) -> None:
        self.text_parts.clear()
        self.text_size = 0
        self.capture_tag = tag
        self.parser.CharacterDataHandler = self._collect_text

    def _collect_text(self, data: str) -> None:
        if self.text_size < self.limits.max_details_chars:
            self.text_parts.append(data)
            self.text_size += len(data)

    def _stop_capture(self) -> None:
        self.capture_tag = None
        self.parser.CharacterDataHandler = None

    # -- suites --------------------------------------------------------------------------------

    def _frame_row(self, frame: SuiteFrame) -> SuiteTally:
        row = self.acc.row(frame.name, frame.file)
        frame.row = row
        return row

    def _open_suite(self, tag: str, attrs: dict[str, str]) -> None:
        suite_name = attrs.get("name") or ""
        file = attrs.get("file") or None
        hostname = attrs.get("hostname") or None
        properties: list[str] = []
        if self.stack:
            parent = self.stack[-1]
            # PHPUnit writes a "Class::method" suite per data provider: fold it into its class.
            if not suite_name or ("::" in suite_name and suite_name.startswith(parent.name)):
                suite_name = parent.name
                file = file or parent.file
            hostname = hostname or parent.hostname
            properties = parent.properties
        self.stack.append(
            SuiteFrame(
                row=None,
                name=suite_name or UNNAMED_SUITE,
                file=file,
                tests_at_start=self._tests_so_far(),
                attrs=attrs,
                tag=tag,
                hostname=hostname,
                properties=properties,
                faults_at_start=self.faults,
            )
        )

    def _tests_so_far(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped

    def _suite_property(self, attrs: dict[str, str]) -> None:
        stack = self.stack
        frame = stack[-1]
        # A suite shares its parent's properties until it has its own: copy on write.
        if len(stack) > 1 and frame.properties is stack[-2].properties:
            frame.properties = list(frame.properties)
        add_property(frame.properties, attrs)

    def _close_suite(self, tag: str) -> None:
        stack = self.stack
        frame = stack.pop()
        below = frame.declared_below
        # Only a <testsuite> stands in for its cases: a <testsuites> root's counts are sums.
        if self._tests_so_far() == frame.tests_at_start and not below and tag == "testsuite":
            below = self._fold_declared_counts(frame)
        self._count_declared_not_carried(frame)
        if below and stack:
            stack[-1].declared_below = True
        # A declared time of 0 (or junk, which reads as 0) says nothing: it is not known.
        declared = lenient_seconds(frame.attrs.get("time")) or None
        if len(stack) == 1 and declared is not None:
            stack[0].top_declared_seconds = (stack[0].top_declared_seconds or 0.0) + declared
        elif not stack:
            self.acc.declared_seconds = declared or frame.top_declared_seconds

    def _count_suite_fault(self, tag: str) -> None:
        """A suite-level <error>/<failure> is one error case named after its suite."""
        frame = self.stack[-1]
        row = frame.row or self._frame_row(frame)
        self.errors += 1
        self.faults += 1
        row.errors += 1
        fault = self.suite_fault or {}
        self.suite_fault = None
        acc = self.acc
        if self.capture_tag != tag:
            acc.failures_not_detailed += 1
            return
        self._stop_capture()
        limits = self.limits
        details = failure_details("".join(self.text_parts), limits.max_details_chars)
        message = best_message(fault.get("message") or "", details, "")
        message = trimmed(message, limits.max_message_chars)
        acc.groups.add(message, "error", frame.name)
        if len(acc.failures) >= limits.max_failures_listed:
            acc.failures_not_detailed += 1
            return
        acc.failures.append(
            Failure(
                suite=frame.name,
                classname="",
                name=frame.name,
                file=frame.file,
                line=None,
                kind="error",
                message=message,
                details=details,
                type=trimmed(fault.get("type"), 200),
                context=f"a <{tag}> of the suite itself, outside any testcase",
            )
        )

    def _fold_declared_counts(self, frame: SuiteFrame) -> bool:
        """A suite without testcases that declares counts stands in for its cases, flagged."""
        attrs = frame.attrs
        declared = lenient_count(attrs.get("tests"))
        if declared == 0:
            return False
        failed = lenient_count(attrs.get("failures"))
        errors = lenient_count(attrs.get("errors"))
        # Google Test declares its disabled tests apart from the skipped ones.
        skipped = lenient_count(attrs.get("skipped")) + lenient_count(attrs.get("disabled"))
        declared = max(declared, failed + errors + skipped)
        passed = declared - failed - errors - skipped
        seconds = lenient_seconds(attrs.get("time"))
        row = frame.row or self._frame_row(frame)
        row.from_declared_counts = True
        row.passed += passed
        row.failed += failed
        row.errors += errors
        row.skipped += skipped
        row.duration_seconds += seconds
        self.passed += passed
        self.failed += failed
        self.errors += errors
        self.skipped += skipped
        self.total_seconds += seconds
        self.faults += failed + errors
        self.acc.failures_not_detailed += failed + errors
        return True

    def _count_declared_not_carried(self, frame: SuiteFrame) -> None:
        """Failures/errors a suite declares beyond what its testcases carry count as errors.

        Converters (go test JSON -> JUnit) put a package build failure only on the root's
        `errors`: without this the report would read green over a declared error.
        """
        attrs = frame.attrs
        if "failures" not in attrs and "errors" not in attrs:
            return
        declared = lenient_count(attrs.get("failures")) + lenient_count(attrs.get("errors"))
        missing = declared - (self.faults - frame.faults_at_start)
        if missing <= 0:
            return
        where = "the root" if frame.name == UNNAMED_SUITE else frame.name
        label = f"{where} (declared by <{frame.tag}>, carried by no testcase)"
        acc = self.acc
        row = acc.row(label, frame.file)
        row.from_declared_counts = True
        row.errors += missing
        self.errors += missing
        self.faults += missing
        acc.failures_not_detailed += missing
        acc.warn(
            f"<{frame.tag}> {where!r} declares {declared} failure(s)/error(s) but its testcases "
            f"carry {declared - missing}: the {missing} missing counted as errors "
            f"in the row {label!r}"
        )
