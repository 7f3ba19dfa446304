"""Render a Report as JSON (complete, versioned) and as markdown (for people, under a byte cap).

The markdown cap is met by choosing what to render, never by cutting bytes: every piece (one
line per failure, each trace, each suite row, ...) is sized, and the budget is filled in order of
value (budget.py) — headline, shared causes, the first failures in full, one line per failure,
more traces, warnings, suites, slowest, flaky, skip reasons — and a note says what was cut. Whole
pieces are left out, so the output never ends inside a UTF-8 character, an HTML block or a table.
The sections are written by markdown_sections.py; untrusted text goes through markdown_text.py.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, replace

from report_processor.budget import Budget, utf8_size
from report_processor.grouping import mask
from report_processor.markdown_sections import (
    block,
    compact_head,
    compact_line,
    failure_block,
    failures_head,
    flaky_head,
    flaky_line,
    group_line,
    groups_head,
    headline_lines,
    history_entries,
    history_section,
    input_error_line,
    input_errors_head,
    not_listed,
    ordered_suites,
    skip_line,
    skipped_frame,
    slow_rows,
    slowest_table,
    suite_row,
    suites_head,
    variant_label,
    warning_line,
    warnings_head,
)
from report_processor.markdown_text import counted, valid_utf8
from report_processor.model import (
    Report,
)

DEFAULT_MAX_BYTES = 60 * 1024
MIN_MAX_BYTES = 1024


def to_json(report: Report) -> str:
    """The whole report; `schema_version` changes whenever a field changes meaning."""
    document = {
        "schema_version": report.schema_version,
        "status": report.status,
        "report_status": report.report_status,
        "metadata": _metadata(report),
        "totals": asdict(report.totals),
        "pass_rate": None if report.pass_rate is None else round(report.pass_rate, 6),
        "suites": [asdict(row) for row in ordered_suites(report.suites)],
        "suites_folded": report.suites_folded,
        "failures": [asdict(failure) for failure in report.failures],
        "failures_not_detailed": report.failures_not_detailed,
        "flaky_tests": [asdict(flaky) for flaky in report.flaky_tests],
        "slowest": [asdict(slow) for slow in report.slowest],
        "inputs": [asdict(item) for item in report.inputs],
        "warnings": list(report.warnings),
        "failure_groups": [asdict(group) for group in report.failure_groups],
        "test_warnings": [asdict(warning) for warning in report.test_warnings],
        "skip_reasons": [asdict(reason) for reason in report.skip_reasons],
        "history": None if report.history is None else report.history.to_dict(),
    }
    # Strict JSON: the parser keeps every number finite, and this refuses any that is not.
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _metadata(report: Report) -> dict[str, object]:
    """The run's metadata; the shard fields only for a sharded run (unsharded summaries keep
    their shape)."""
    metadata = asdict(report.metadata)
    if not report.metadata.shards:
        del metadata["shards"], metadata["tests_not_run"]
    return metadata


@dataclass(frozen=True)
class _Plan:
    groups: int
    # Trace length of each failure shown in full, in display order (0: no trace); the failures
    # after them get one line each, `listed` of them.
    traces: tuple[int, ...]
    listed: int
    warnings: int
    flaky: int
    slowest: int
    suites: int
    skip_reasons: int
    input_errors: int
    history: int = 0  # entries per list of the history section (issue 12)


_FULL_TRACE = 4000
_FIRST_SCREEN_TRACE = 1500
# Failures shown in full before the one-line list: the first screen.
_FIRST_SCREEN_FAILURES = 3
_MAX_GROUPS_SHOWN = 10
# Suite rows kept (with the slowest tests) before more traces take the rest of the budget.
_SHORT_SUITE_TABLE = 20
# Bytes kept for the "Cut to fit" note while filling.
_NOTE_RESERVE = 800


def to_markdown(report: Report, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Markdown no longer than `max_bytes` UTF-8 bytes (at least MIN_MAX_BYTES)."""
    if max_bytes < MIN_MAX_BYTES:
        raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}, got {max_bytes}")
    pieces = _Pieces(report)
    full = pieces.full_plan()
    text = _render(pieces, full, full, max_bytes)
    if utf8_size(text) <= max_bytes:
        return valid_utf8(text)
    best = None
    reserve = _NOTE_RESERVE
    # The note's size depends on the plan: fit with a generous reserve, then with the room the
    # note really took, and keep the fuller result that fits.
    for _ in range(2):
        plan = pieces.fit(max_bytes - reserve)
        if plan is None:
            break
        text = _render(pieces, plan, full, max_bytes)
        size = utf8_size(text)
        if size <= max_bytes and (best is None or size > utf8_size(best)):
            best = text
        reserve = utf8_size(_cut_note(report, plan, full, max_bytes)) + 64
    if best is not None:
        return valid_utf8(best)
    # Even the headline alone is too long (huge metadata values): cut whole lines.
    text = valid_utf8(_render(pieces, pieces.empty_plan(), full, max_bytes))
    kept = text.encode("utf-8")[:max_bytes]
    return kept[: kept.rfind(b"\n") + 1].decode("utf-8")


class _Pieces:
    """Every piece of the markdown, rendered once, so a plan's size is a sum."""

    def __init__(self, report: Report) -> None:
        self.report = report
        failures = report.failures
        self.order = _display_order(report)
        same = Counter((failure.suite, failure.classname, failure.name) for failure in failures)
        seen: Counter[tuple[str, str, str]] = Counter()
        self.variants: dict[int, str] = {}
        for index in self.order:
            failure = failures[index]
            key = (failure.suite, failure.classname, failure.name)
            if same[key] > 1:
                seen[key] += 1
                self.variants[index] = variant_label(failure, seen[key])
        self.groups = [group for group in report.failure_groups if group.count > 1][
            :_MAX_GROUPS_SHOWN
        ]
        # Failure index -> its shared cause's number: its one line names the cause instead of
        # repeating a message the causes list already shows.
        numbers = {group.pattern: number for number, group in enumerate(self.groups, 1)}
        self.cause_of = {
            index: numbers[pattern]
            for index, failure in enumerate(failures)
            if (pattern := mask(failure.message) if failure.message else "") in numbers
        }
        self.slow = slow_rows(report)
        self.suite_rows = ordered_suites(report.suites)
        self._sizes: dict[tuple[int, int], int] = {}

    def full_plan(self) -> _Plan:
        report = self.report
        return _Plan(
            groups=len(self.groups),
            traces=tuple(_FULL_TRACE for _ in self.order),
            listed=0,
            warnings=len(report.test_warnings),
            flaky=len(report.flaky_tests),
            slowest=len(self.slow),
            suites=len(self.suite_rows),
            skip_reasons=len(report.skip_reasons),
            input_errors=len(report.unusable_inputs),
            history=history_entries(report.history),
        )

    def empty_plan(self) -> _Plan:
        return replace(
            self.full_plan(),
            groups=0,
            traces=(),
            listed=0,
            warnings=0,
            flaky=0,
            slowest=0,
            suites=0,
            skip_reasons=0,
            history=0,
        )

    def fit(self, max_bytes: int) -> _Plan | None:
        """Fill `max_bytes` in order of value: headline, causes, the first failures in full, one
        line per failure, more traces, warnings, suites, slowest, flaky, skip reasons."""
        report = self.report
        budget = Budget(max_bytes)
        if not budget.take(utf8_size(block(headline_lines(report)))):
            return None
        input_errors = self._fit_input_errors(budget)
        history = self._fit_history(budget)
        groups, traces, listed = self._fit_failures(budget)
        warnings = 0
        if report.test_warnings and budget.take(utf8_size(warnings_head(report)) + 1):
            warnings = budget.take_while(utf8_size(warning_line(w)) for w in report.test_warnings)
        # Kept for a short suites table and the slowest tests while traces fill the rest.
        reserve = min(self._tail_size(), budget.left)
        budget.left -= reserve
        if report.totals.failed + report.totals.errors:
            listed = self._add_traces(budget, traces, listed, bool(groups))
        budget.left += reserve
        suites, slowest = self._fit_suites_and_slowest(budget)
        flaky = 0
        if report.flaky_tests and budget.take(utf8_size(flaky_head(report)) + 1):
            flaky = budget.take_while(utf8_size(flaky_line(f)) for f in report.flaky_tests)
        skips = 0
        if report.skip_reasons and budget.take(utf8_size(skipped_frame(report, "")) + 1):
            skips = budget.take_while(utf8_size(skip_line(r)) for r in report.skip_reasons)
        return _Plan(
            groups=groups,
            traces=tuple(traces),
            listed=listed,
            warnings=warnings,
            flaky=flaky,
            slowest=slowest,
            suites=suites,
            skip_reasons=skips,
            input_errors=input_errors,
            history=history,
        )

    def _fit_input_errors(self, budget: Budget) -> int:
        bad = self.report.unusable_inputs
        if not bad or not budget.take(utf8_size(input_errors_head(self.report))):
            return 0
        taken = budget.take_while(utf8_size(input_error_line(item)) for item in bad)
        budget.take(1)
        return taken

    def _fit_failures(self, budget: Budget) -> tuple[int, list[int], int]:
        """The causes, the first failures in full without their trace (heading, location,
        message), then one line per failure: (causes shown, trace lengths, one-line count)."""
        report = self.report
        traces: list[int] = []
        if not report.totals.failed + report.totals.errors:
            return 0, traces, 0
        budget.take(utf8_size(failures_head(report)) + utf8_size(not_listed(report, 0)))
        # All the causes or none: the one-line list refers to them by number.
        causes = utf8_size(groups_head()) + 1
        causes += sum(utf8_size(group_line(n, g)) for n, g in enumerate(self.groups, 1))
        groups = len(self.groups) if self.groups and budget.take(causes) else 0
        for index in self.order[:_FIRST_SCREEN_FAILURES]:
            if not budget.take(self._full_size(index, 0)):
                break
            traces.append(0)
        listed = 0
        rest = self.order[len(traces) :]
        if rest and budget.take(utf8_size(compact_head(len(traces))) + 1):
            listed = budget.take_while(self._compact_size(index, bool(groups)) for index in rest)
        return groups, traces, listed

    def _fit_suites_and_slowest(self, budget: Budget) -> tuple[int, int]:
        slow_size = utf8_size(slowest_table(self.slow))
        suites = 0
        if self.suite_rows and budget.take(utf8_size(suites_head(self.report, 0)) + 1):
            # The slowest table's room is kept while the suite rows are taken.
            kept = min(slow_size, budget.left)
            budget.left -= kept
            suites = budget.take_while(utf8_size(suite_row(row)) for row in self.suite_rows)
            budget.left += kept
        slowest = len(self.slow) if self.slow and budget.take(slow_size) else 0
        return suites, slowest

    def _fit_history(self, budget: Budget) -> int:
        """The longest history lists whose section takes at most a third of what is left: the
        failures below it still need the room. The section's counts stay whole at any length."""
        section = self.report.history
        if section is None:
            return 0
        share = budget.left // 3
        for entries in [history_entries(section), *_halvings(history_entries(section))]:
            size = utf8_size(history_section(self.report, entries))
            if size <= share or entries == 0:
                budget.take(size)
                return entries
        return 0

    def _add_traces(self, budget: Budget, traces: list[int], listed: int, causes: bool) -> int:
        """Traces in order while they fit: full length, else shortened, else stop. Failures past
        the full ones turn full only when every failure has its line (the lists stay in order).
        Returns how many failures keep one line each."""
        position = 0
        while position < len(self.order):
            index = self.order[position]
            if not self.report.failures[index].details:
                return listed
            if position < len(traces):
                before = self._full_size(index, traces[position])
            elif listed == len(self.order) - len(traces):
                before = self._compact_size(index, causes)
            else:
                return listed
            for chars in (_FULL_TRACE, _FIRST_SCREEN_TRACE):
                if budget.take(self._full_size(index, chars) - before):
                    break
            else:
                return listed
            if position < len(traces):
                traces[position] = chars
            else:
                traces.append(chars)
                listed -= 1
            position += 1
        return listed

    def _tail_size(self) -> int:
        rows = self.suite_rows[:_SHORT_SUITE_TABLE]
        suites = utf8_size(suites_head(self.report, 0)) + sum(utf8_size(suite_row(r)) for r in rows)
        return (suites if rows else 0) + utf8_size(slowest_table(self.slow))

    def _full_size(self, index: int, trace_chars: int) -> int:
        key = (index, trace_chars)
        if key not in self._sizes:
            # + room for a 7-digit number in the heading.
            self._sizes[key] = utf8_size(self.full_block(0, index, trace_chars)) + 6
        return self._sizes[key]

    def _compact_size(self, index: int, causes: bool) -> int:
        return utf8_size(self.compact_line(index, causes))

    def full_block(self, number: int, index: int, trace_chars: int) -> str:
        return failure_block(
            number, self.report.failures[index], trace_chars, self.variants.get(index)
        )

    def compact_line(self, index: int, causes: bool) -> str:
        cause = self.cause_of.get(index) if causes else None
        return compact_line(self.report.failures[index], self.variants.get(index), cause)


def _display_order(report: Report) -> list[int]:
    """The first failure of each shared cause (largest first), then the rest in report order."""
    shared = [group.pattern for group in report.failure_groups if group.count > 1]
    first: dict[str, int] = {}
    for index, failure in enumerate(report.failures):
        first.setdefault(mask(failure.message) if failure.message else "", index)
    lead = [first[pattern] for pattern in shared if pattern in first]
    taken = set(lead)
    return lead + [index for index in range(len(report.failures)) if index not in taken]


def _render(pieces: _Pieces, plan: _Plan, full: _Plan, max_bytes: int) -> str:
    report = pieces.report
    out: list[str] = [block(headline_lines(report))]
    note = _cut_note(report, plan, full, max_bytes)
    if note:
        out.append(f"> ✂️ {note}\n\n")
    if report.unusable_inputs and plan.input_errors:
        out.append(input_errors_head(report))
        out.extend(input_error_line(item) for item in report.unusable_inputs[: plan.input_errors])
        out.append("\n")
    out.append(history_section(report, plan.history))
    if report.totals.failed + report.totals.errors:
        out.extend(_failures_part(pieces, plan))
    if plan.warnings:
        out.append(warnings_head(report))
        out.extend(warning_line(warning) for warning in report.test_warnings[: plan.warnings])
        out.append("\n")
    if plan.suites:
        out.append(suites_head(report, plan.suites, len(pieces.suite_rows)))
        out.extend(suite_row(row) for row in pieces.suite_rows[: plan.suites])
        out.append("\n")
    if plan.slowest:
        out.append(slowest_table(pieces.slow))
    if plan.flaky:
        out.append(flaky_head(report))
        out.extend(flaky_line(flaky) for flaky in report.flaky_tests[: plan.flaky])
        out.append("\n")
    if plan.skip_reasons:
        lines = "".join(skip_line(reason) for reason in report.skip_reasons[: plan.skip_reasons])
        out.append(skipped_frame(report, lines))
    return "".join(out).rstrip("\n") + "\n"


def _failures_part(pieces: _Pieces, plan: _Plan) -> list[str]:
    """The causes, the failures in full, then one line each, then what was not listed."""
    report = pieces.report
    out = [failures_head(report)]
    if plan.groups:
        out.append(groups_head())
        out.extend(
            group_line(number, group)
            for number, group in enumerate(pieces.groups[: plan.groups], 1)
        )
        out.append("\n")
    for number, (index, chars) in enumerate(zip(pieces.order, plan.traces, strict=False), 1):
        out.append(pieces.full_block(number, index, chars))
    compact = pieces.order[len(plan.traces) : len(plan.traces) + plan.listed]
    if compact:
        out.append(compact_head(len(plan.traces)))
        out.extend(pieces.compact_line(index, plan.groups > 0) for index in compact)
        out.append("\n")
    out.append(not_listed(report, len(plan.traces) + len(compact)))
    return out


def _cut_note(report: Report, plan: _Plan, full: _Plan, max_bytes: int) -> str:
    cuts = []
    with_trace = sum(1 for failure in report.failures if failure.details)
    traced = sum(
        1
        for index, chars in zip(_display_order(report), plan.traces, strict=False)
        if chars and report.failures[index].details
    )
    if traced < with_trace:
        cuts.append(f"traces: {traced:,} of {with_trace:,} shown")
    if _FIRST_SCREEN_TRACE in plan.traces:
        shortened = plan.traces.count(_FIRST_SCREEN_TRACE)
        cuts.append(
            f"{counted(shortened, 'trace')} shortened to {_FIRST_SCREEN_TRACE:,} characters"
        )
    listed = len(plan.traces) + plan.listed
    if listed < len(report.failures):
        cuts.append(f"failures listed: {listed:,} of {len(report.failures):,}")
    for field, noun in (
        ("groups", "shared causes"),
        ("warnings", "warnings"),
        ("suites", "suite rows"),
        ("slowest", "slowest tests"),
        ("flaky", "flaky tests"),
        ("skip_reasons", "skip reasons"),
        ("input_errors", "unusable inputs"),
        ("history", "history entries per list"),
    ):
        kept, total = getattr(plan, field), getattr(full, field)
        if kept < total:
            cuts.append(f"{noun}: {kept:,} of {total:,} shown" if kept else f"{noun} left out")
    if not cuts:
        return ""
    return f"Cut to fit {max_bytes:,} bytes: " + "; ".join(cuts) + ". summary.json has the rest."


def _halvings(count: int) -> list[int]:
    values = []
    while count > 0:
        count = count // 2
        values.append(count)
    return values
