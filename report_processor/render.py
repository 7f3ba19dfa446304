"""Render a Report as JSON (complete, versioned) and as markdown (for people, under a byte cap).

The markdown cap is met by choosing what to render, never by cutting bytes: every piece (one
line per failure, each trace, each suite row, ...) is sized, and the budget is filled in order of
value (budget.py) — headline, shared causes, the first failures in full, one line per failure,
more traces, warnings, suites, slowest, flaky, skip reasons — and a note says what was cut. Whole
pieces are left out, so the output never ends inside a UTF-8 character, an HTML block or a table.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, replace

from report_processor.budget import Budget, utf8_size
from report_processor.grouping import mask
from report_processor.headline import NO_MESSAGE, message_lines
from report_processor.history.section import HistorySection
from report_processor.history.section import markdown as history_markdown
from report_processor.model import (
    Failure,
    FailureGroup,
    FlakyTest,
    InputResult,
    Report,
    ShardRow,
    SkipReason,
    SlowTest,
    SuiteRow,
    TestWarning,
    Totals,
)
from report_processor.parse import OTHER_SUITES

DEFAULT_MAX_BYTES = 60 * 1024
MIN_MAX_BYTES = 1024
_HEADLINE_ICONS = {
    "passed": "✅",
    "failed": "❌",
    "unusable": "⚠️",
    "no_tests": "⚪",
    "timed_out": "⏱️",
    "error": "💥",
    "rejected": "⛔",
}
_STATUS_WORDS = {
    "passed": "passed",
    "failed": "failed",
    "unusable": "report unusable",
    "no_tests": "no tests ran",
    "timed_out": "timed out",
    "error": "runner error",
    "rejected": "rejected",
}
_DURATION_SOURCES = {
    "runner": "wall time (runner)",
    "report": "wall time (declared by the report)",
    "testcases": "sum of test times",
}
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]{}|#~!])")
_WHITESPACE = re.compile(r"\s+")
_LIST_START = re.compile(r"^([-+=])|^(\d{1,9})([.)])(?=\s|$)")
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SEPARATORS = re.compile(r"\\|::|/|\.")


def to_json(report: Report) -> str:
    """The whole report; `schema_version` changes whenever a field changes meaning."""
    document = {
        "schema_version": report.schema_version,
        "status": report.status,
        "report_status": report.report_status,
        "metadata": _metadata(report),
        "totals": asdict(report.totals),
        "pass_rate": None if report.pass_rate is None else round(report.pass_rate, 6),
        "suites": [asdict(row) for row in _ordered_suites(report.suites)],
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
        return _valid_utf8(text)
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
        return _valid_utf8(best)
    # Even the headline alone is too long (huge metadata values): cut whole lines.
    text = _valid_utf8(_render(pieces, pieces.empty_plan(), full, max_bytes))
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
                self.variants[index] = _variant(failure, seen[key])
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
        self.slow = _slow_rows(report)
        self.suite_rows = _ordered_suites(report.suites)
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
            history=_history_entries(report.history),
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
        if not budget.take(utf8_size(_block(_headline(report)))):
            return None
        bad = report.unusable_inputs
        input_errors = 0
        if bad and budget.take(utf8_size(_input_errors_head(report))):
            input_errors = budget.take_while(utf8_size(_input_error(item)) for item in bad)
            budget.take(1)
        history = self._fit_history(budget)
        failing = report.totals.failed + report.totals.errors
        groups = 0
        traces: list[int] = []
        listed = 0
        if failing:
            budget.take(utf8_size(_failures_head(report)) + utf8_size(_not_listed(report, 0)))
            # All the causes or none: the one-line list refers to them by number.
            causes = utf8_size(_groups_head()) + 1
            causes += sum(utf8_size(_group_line(n, g)) for n, g in enumerate(self.groups, 1))
            if self.groups and budget.take(causes):
                groups = len(self.groups)
            # The first failures in full but without their trace: heading, location, message.
            for index in self.order[:_FIRST_SCREEN_FAILURES]:
                if not budget.take(self._full_size(index, 0)):
                    break
                traces.append(0)
            rest = self.order[len(traces) :]
            if rest and budget.take(utf8_size(_compact_head(len(traces))) + 1):
                listed = budget.take_while(
                    self._compact_size(index, bool(groups)) for index in rest
                )
        warnings = 0
        if report.test_warnings and budget.take(utf8_size(_warnings_head(report)) + 1):
            warnings = budget.take_while(utf8_size(_warning_line(w)) for w in report.test_warnings)
        # Kept for a short suites table and the slowest tests while traces fill the rest.
        reserve = min(self._tail_size(), budget.left)
        budget.left -= reserve
        if failing:
            listed = self._add_traces(budget, traces, listed, bool(groups))
        budget.left += reserve
        slow_size = utf8_size(_slowest_table(self.slow))
        suites = 0
        if self.suite_rows and budget.take(utf8_size(_suites_head(report, 0)) + 1):
            # The slowest table's room is kept while the suite rows are taken.
            kept = min(slow_size, budget.left)
            budget.left -= kept
            suites = budget.take_while(utf8_size(_suite_row(row)) for row in self.suite_rows)
            budget.left += kept
        slowest = len(self.slow) if self.slow and budget.take(slow_size) else 0
        flaky = 0
        if report.flaky_tests and budget.take(utf8_size(_flaky_head(report)) + 1):
            flaky = budget.take_while(utf8_size(_flaky_line(f)) for f in report.flaky_tests)
        skips = 0
        if report.skip_reasons and budget.take(utf8_size(_skipped_frame(report, "")) + 1):
            skips = budget.take_while(utf8_size(_skip_line(r)) for r in report.skip_reasons)
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

    def _fit_history(self, budget: Budget) -> int:
        """The longest history lists whose section takes at most a third of what is left: the
        failures below it still need the room. The section's counts stay whole at any length."""
        section = self.report.history
        if section is None:
            return 0
        share = budget.left // 3
        for entries in [_history_entries(section), *_halvings(_history_entries(section))]:
            size = utf8_size(_history_section(self.report, entries))
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
        suites = utf8_size(_suites_head(self.report, 0)) + sum(
            utf8_size(_suite_row(r)) for r in rows
        )
        return (suites if rows else 0) + utf8_size(_slowest_table(self.slow))

    def _full_size(self, index: int, trace_chars: int) -> int:
        key = (index, trace_chars)
        if key not in self._sizes:
            # + room for a 7-digit number in the heading.
            self._sizes[key] = utf8_size(self.full_block(0, index, trace_chars)) + 6
        return self._sizes[key]

    def _compact_size(self, index: int, causes: bool) -> int:
        return utf8_size(self.compact_line(index, causes))

    def full_block(self, number: int, index: int, trace_chars: int) -> str:
        return _failure(number, self.report.failures[index], trace_chars, self.variants.get(index))

    def compact_line(self, index: int, causes: bool) -> str:
        cause = self.cause_of.get(index) if causes else None
        return _compact_line(self.report.failures[index], self.variants.get(index), cause)


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
    out: list[str] = [_block(_headline(report))]
    note = _cut_note(report, plan, full, max_bytes)
    if note:
        out.append(f"> ✂️ {note}\n\n")
    if report.unusable_inputs and plan.input_errors:
        out.append(_input_errors_head(report))
        out.extend(_input_error(item) for item in report.unusable_inputs[: plan.input_errors])
        out.append("\n")
    out.append(_history_section(report, plan.history))
    if report.totals.failed + report.totals.errors:
        out.append(_failures_head(report))
        if plan.groups:
            out.append(_groups_head())
            out.extend(
                _group_line(number, group)
                for number, group in enumerate(pieces.groups[: plan.groups], 1)
            )
            out.append("\n")
        for number, (index, chars) in enumerate(zip(pieces.order, plan.traces, strict=False), 1):
            out.append(pieces.full_block(number, index, chars))
        compact = pieces.order[len(plan.traces) : len(plan.traces) + plan.listed]
        if compact:
            out.append(_compact_head(len(plan.traces)))
            out.extend(pieces.compact_line(index, plan.groups > 0) for index in compact)
            out.append("\n")
        out.append(_not_listed(report, len(plan.traces) + len(compact)))
    if plan.warnings:
        out.append(_warnings_head(report))
        out.extend(_warning_line(warning) for warning in report.test_warnings[: plan.warnings])
        out.append("\n")
    if plan.suites:
        out.append(_suites_head(report, plan.suites, len(pieces.suite_rows)))
        out.extend(_suite_row(row) for row in pieces.suite_rows[: plan.suites])
        out.append("\n")
    if plan.slowest:
        out.append(_slowest_table(pieces.slow))
    if plan.flaky:
        out.append(_flaky_head(report))
        out.extend(_flaky_line(flaky) for flaky in report.flaky_tests[: plan.flaky])
        out.append("\n")
    if plan.skip_reasons:
        lines = "".join(_skip_line(reason) for reason in report.skip_reasons[: plan.skip_reasons])
        out.append(_skipped_frame(report, lines))
    return "".join(out).rstrip("\n") + "\n"


def _block(lines: list[str]) -> str:
    """A list of lines (a trailing "\\n" marks a paragraph end) as one block plus a blank line."""
    return "\n".join(lines).rstrip("\n") + "\n\n"


def _headline(report: Report) -> list[str]:
    totals = report.totals
    status = report.status
    lines = [f"# {_HEADLINE_ICONS[status]} Test report: {_STATUS_WORDS[status]}\n"]
    if report.history is not None and report.history.headline:
        # The diff with the previous run leads: what changed since last night (issue 12).
        lines.append(f"**{_inline(report.history.headline, 500)}**\n")
    meta = report.metadata
    facts = [
        f"{label} {_inline(value, 100)}"
        for label, value in (
            ("Project", meta.project),
            ("Environment", meta.environment),
            ("Command", meta.command),
            ("Run", meta.run_id),
            ("Started", meta.started_at),
        )
        if value
    ]
    if facts:
        lines.append(" · ".join(facts) + "\n")
    warned = f", {_count(totals.warnings, 'warning')}" if totals.warnings else ""
    rate = "n/a" if report.pass_rate is None else f"{report.pass_rate * 100:.2f} %"
    protected = report.protected
    if protected[0] + protected[2] + protected[3]:
        rate += " (quarantined tests left out)"
    lines.append(
        f"**Pass rate {rate}** · {_count(totals.tests, 'test')}: {totals.passed:,} passed, "
        f"{totals.failed:,} failed, {_count(totals.errors, 'error')}, {totals.skipped:,} skipped, "
        f"{totals.flaky:,} flaky{warned} · {_durations(totals)}\n"
    )
    note = _status_note(report)
    if note:
        lines.append(f"> {note}\n")
    for warning in report.warnings:
        lines.append(f"> ⚠️ {_inline(warning, 500)}\n")
    declared = sum(1 for row in report.suites if row.from_declared_counts)
    if declared:
        lines.append(
            f"> ℹ️ {_count(declared, 'suite row')} from declared counts, not from testcases.\n"
        )
    # A sharded run's table belongs to its headline: the budget never drops it.
    lines.extend(_shard_table(report))
    return lines


def _durations(totals: Totals) -> str:
    text = f"{_seconds(totals.duration_seconds)} {_DURATION_SOURCES[totals.duration_source]}"
    if totals.duration_source != "testcases":
        text += f" · sum of test times {_seconds(totals.testcase_seconds)}"
    return text


def _status_note(report: Report) -> str:
    """Why the headline is not simply the report's own verdict, or why nothing is a pass."""
    meta = report.metadata
    code = f", exit code {meta.exit_code}" if meta.exit_code is not None else ""
    runner = meta.runner_status
    if runner == "timed_out":
        return (
            "⏱️ The runner stopped the command at its deadline: this report holds only what ran "
            "before it."
        )
    if runner == "error" and meta.shards:
        return _shards_not_finished(meta.shards, meta.tests_not_run or 0)
    if runner == "error":
        return f"💥 The runner reported an error{code}: this report may be partial."
    if runner == "rejected":
        return "⛔ The runner rejected the run: nothing of it should have been reported."
    warnings = report.totals.warnings
    if runner == "failed" and report.report_status == "passed":
        if warnings:
            return (
                f"⚠️ The command failed{code}: the report holds no failing test, but "
                f"{_count(warnings, 'warning')}, which fail a PHPUnit run under `failOnWarning`."
            )
        return f"⚠️ The command failed{code}, but the report holds no failing test."
    if report.report_status == "no_tests":
        skipped = report.totals.skipped
        why = f"all {_count(skipped, 'test')} skipped" if skipped else "the report has no testcase"
        return f"⚪ Nothing executed ({why}): a run that tests nothing is not a pass."
    if warnings and report.status == "passed":
        return (
            f"⚠️ Passed with {_count(warnings, 'warning')} (listed below): PHPUnit fails such a "
            "run only under `failOnWarning`."
        )
    return ""


def _shards_not_finished(shards: tuple[ShardRow, ...], tests_not_run: int) -> str:
    unfinished = sum(1 for row in shards if row.status not in ("passed", "failed"))
    return (
        f"💥 {_count(tests_not_run, 'test')} not run: {unfinished} of {len(shards)} shards did "
        "not finish (see the shard table); this report holds only what the others ran."
    )


def _shard_table(report: Report) -> list[str]:
    """The per-shard table of a sharded run (tests, time, status); nothing for other runs."""
    shards = report.metadata.shards
    if not shards:
        return []
    out = [
        f"## Shards ({len(shards)})\n",
        "| Shard | Tests | Time | Status |",
        "|---:|---:|---:|---|",
    ]
    for row in shards:
        time = "–" if row.seconds is None else _seconds(row.seconds)
        status = _STATUS_WORDS.get(row.status, row.status)
        if row.status not in ("passed", "failed"):
            status = f"**{_inline(status, 40)}**" + (
                f": {_inline(row.error, 160)}" if row.error else ""
            )
        out.append(f"| {row.index} | {row.tests:,} | {time} | {status} |")
    out.append("")
    return out


def _count(value: int, noun: str) -> str:
    return f"{value:,} {noun}" + ("" if value == 1 else "s")


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
        cuts.append(f"{_count(shortened, 'trace')} shortened to {_FIRST_SCREEN_TRACE:,} characters")
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


def _input_errors_head(report: Report) -> str:
    return f"## Unusable inputs ({len(report.unusable_inputs)} of {len(report.inputs)})\n\n"


def _input_error(item: InputResult) -> str:
    return f"- {_inline(item.path, 200)}: {_inline(item.error or 'unusable', 500)}\n"


def _failures_head(report: Report) -> str:
    return f"## Failures ({report.totals.failed + report.totals.errors:,})\n\n"


def _groups_head() -> str:
    return (
        "**Shared causes** (messages that are equal once numbers, ids, quoted values and "
        "paths are masked):\n\n"
    )


def _group_line(number: int, group: FailureGroup) -> str:
    example = message_lines(group.example, 1)
    text = _inline(example[0] if example else group.pattern or NO_MESSAGE, 300)
    first = _first_tests(group.count, group.first_tests)
    return f"- **Cause {number} · {group.count:,} ×** {text}{first}\n"


def _first_tests(count: int, tests: tuple[str, ...]) -> str:
    if not tests:
        return ""
    names = ", ".join(_inline(test, 120) for test in tests)
    return f" — {names}" if count <= len(tests) else f" — first {len(tests)}: {names}"


def _compact_head(shown_in_full: int) -> str:
    return "One line each:\n\n" if not shown_in_full else "More failures, one line each:\n\n"


def _compact_line(failure: Failure, variant: str | None, cause: int | None = None) -> str:
    icon = "💥" if failure.kind == "error" else "❌"
    label = _test_label(failure.classname, failure.name)
    if variant:
        label += f" [{_inline(variant, 200)}]"
    parts = [f"- {icon} {label}"]
    where = _where(failure, short=True)
    if where:
        parts.append(where)
    if cause is not None:
        parts.append(f"cause {cause}")
    else:
        lines = message_lines(failure.message or "", 1)
        parts.append(_inline(lines[0], 200) if lines else NO_MESSAGE)
    return " · ".join(parts) + "\n"


def _not_listed(report: Report, shown: int) -> str:
    grouped = sum(group.count for group in report.failure_groups)
    unlisted = grouped - shown
    # Counted from a suite's declared failures/errors: no testcase, so nothing to list.
    declared = report.totals.failed + report.totals.errors - grouped
    parts = []
    if unlisted > 0:
        parts.append(
            f"…and {unlisted:,} more not listed here (summary.json lists up to 1,000; "
            "the shared causes count every one)"
        )
    if declared > 0:
        parts.append(
            f"{_count(declared, 'failure')} counted from declared counts, with no detail in "
            "the report (see the suite rows)"
        )
    return "".join(f"_{part}._\n\n" for part in parts)


def _variant(failure: Failure, occurrence: int) -> str:
    if failure.context:
        return failure.context
    if failure.file:
        return failure.file + (f":{failure.line}" if failure.line else "")
    return f"occurrence {occurrence}"


def _failure(number: int, failure: Failure, trace_chars: int, variant: str | None = None) -> str:
    icon = "💥" if failure.kind == "error" else "❌"
    label = _test_label(failure.classname, failure.name, failure.suite)
    if variant:
        label += f" [{_inline(variant, 200)}]"
    lines = [f"### {number}. {icon} {label} ({failure.kind})\n"]
    where = [f"Suite: {_inline(failure.suite, 200)}"]
    location = _where(failure)
    if location:
        where.append(location)
    if failure.type:
        where.append(f"Type: {_inline(failure.type, 200)}")
    lines.append(" · ".join(where) + "\n")
    quoted = message_lines(failure.message or "") or (NO_MESSAGE,)
    # A trailing backslash is a hard line break: the quoted lines stay lines.
    lines.append("\\\n".join(f"> {_inline(line, 500)}" for line in quoted) + "\n")
    if trace_chars and failure.details:
        details = failure.details
        if len(details) > trace_chars:
            details = details[: trace_chars - 1] + "…"
        lines.append("<details><summary>Details</summary>\n")
        lines.append(f"<pre>{html.escape(_neutral(details), quote=False)}</pre>\n")
        lines.append("</details>\n")
    return _block(lines)


def _where(failure: Failure, short: bool = False) -> str:
    """`at tests/Unit/OrderTest.php:24 (test at :12)`: the failing line, then the declaration."""
    declared = ""
    if failure.file:
        declared = failure.file.split("::", 1)[0] + (f":{failure.line}" if failure.line else "")
    if not failure.at_file:
        return f"test at {_inline(declared, 300)}" if declared else ""
    at = _inline(f"{failure.at_file}:{failure.at_line}", 300)
    if failure.url:
        at = f"[{at}]({failure.url})"
    if short or not declared:
        return f"at {at}"
    if failure.file and failure.file.split("::", 1)[0] == failure.at_file:
        if failure.line and failure.line != failure.at_line:
            return f"at {at} (test at :{failure.line})"
        return f"at {at}"
    return f"at {at} (test at {_inline(declared, 300)})"


def _warnings_head(report: Report) -> str:
    return (
        f"## Warnings ({_count(report.totals.warnings, 'test')})\n\n"
        "Counted as passed; PHPUnit fails the run on them only with `failOnWarning`.\n\n"
    )


def _warning_line(warning: TestWarning) -> str:
    label = _test_label(warning.classname, warning.name)
    lines = message_lines(warning.message or "", 1)
    return f"- {label}: {_inline(lines[0], 300) if lines else NO_MESSAGE}\n"


def _flaky_head(report: Report) -> str:
    return f"## Flaky tests ({report.totals.flaky})\n\n"


def _flaky_line(flaky: FlakyTest) -> str:
    message = f": {_inline(flaky.message, 200)}" if flaky.message else ""
    return f"- {_test_label(flaky.classname, flaky.name)}{message}\n"


def _skipped_frame(report: Report, lines: str) -> str:
    return (
        f"<details><summary>Skipped ({report.totals.skipped:,}), by reason</summary>\n\n"
        f"{lines}\n</details>\n\n"
    )


def _skip_line(reason: SkipReason) -> str:
    first = _first_tests(reason.count, reason.first_tests)
    return f"- **{reason.count:,} ×** {_inline(reason.reason, 300)}{first}\n"


# The slowest table says nothing for tiny or fast runs.
_SLOWEST_MIN_TESTS = 10
_SLOWEST_MIN_SECONDS = 0.01


def _slow_rows(report: Report) -> list[SlowTest]:
    """Hidden for 10 tests or fewer or when all are under 10 ms; no 0 ms rows; ties in input
    order (the parser's order)."""
    if report.totals.tests <= _SLOWEST_MIN_TESTS:
        return []
    rows = [slow for slow in report.slowest if slow.duration_seconds >= 0.00005]
    if not any(slow.duration_seconds >= _SLOWEST_MIN_SECONDS for slow in rows):
        return []
    return rows


def _slowest_table(rows: list[SlowTest]) -> str:
    if not rows:
        return ""
    # The suite column only when it tells something the class does not.
    with_suite = any(not _same_name(slow.suite, slow.classname) for slow in rows)
    lines = ["## Slowest tests\n"]
    if with_suite:
        lines += ["| # | Test | Suite | Time |", "|---:|---|---|---:|"]
    else:
        lines += ["| # | Test | Time |", "|---:|---|---:|"]
    for number, slow in enumerate(rows, 1):
        label = _test_label(slow.classname, slow.name, slow.suite if with_suite else "")
        suite = f" {_inline(slow.suite, 120)} |" if with_suite else ""
        lines.append(f"| {number} | {label} |{suite} {_seconds(slow.duration_seconds)} |")
    return _block(lines)


def _suites_head(report: Report, shown: int, rows: int = 0) -> str:
    named = sum(1 for row in report.suites if row.name != OTHER_SUITES)
    total = named + report.suites_folded
    shown_named = min(shown, named)
    count = f"{total:,}" if shown_named >= total else f"{total:,}; {shown_named:,} shown"
    return (
        f"## Suites ({count})\n\n"
        "| Suite | Tests | Passed | Failed | Errors | Skipped | Time |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
    )


def _suite_row(row: SuiteRow) -> str:
    if row.name == OTHER_SUITES:
        name = "(other suites)"
    else:
        name = _inline(row.name, 150) + (" (declared counts)" if row.from_declared_counts else "")
    return (
        f"| {name} | {row.tests:,} | {row.passed:,} | {row.failed:,} | {row.errors:,} "
        f"| {row.skipped:,} | {_seconds(row.duration_seconds)} |\n"
    )


def _ordered_suites(rows: tuple[SuiteRow, ...]) -> list[SuiteRow]:
    """Failing first, then the slowest; the folded row last."""
    return sorted(
        rows,
        key=lambda row: (
            row.name == OTHER_SUITES,
            -(row.failed + row.errors),
            -row.duration_seconds,
        ),
    )


def _same_name(suite: str, classname: str) -> bool:
    """PHPUnit's suite `Tests\\Unit\\FooTest` is its classname `Tests.Unit.FooTest`."""
    return bool(suite) and _SEPARATORS.sub(".", suite) == _SEPARATORS.sub(".", classname)


def _test_label(classname: str, name: str, suite: str = "") -> str:
    """`Class › name`; the class is left out where it repeats the suite shown beside it."""
    if classname and name and classname != name and not _same_name(suite, classname):
        return f"{_inline(classname, 150)} › {_inline(name, 200)}"
    return _inline(name or classname or "(unnamed test)", 200)


def _inline(text: str | None, limit: int) -> str:
    """Untrusted text as one line of markdown: no structure can leak out of it."""
    if not text:
        return ""
    text = _WHITESPACE.sub(" ", _neutral(text)).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(text, quote=False))
    # A leading "- ", "+ " or "1. " would start a list, "===" or "---" underline a heading.
    return _LIST_START.sub(_escape_start, text, count=1)


def _escape_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    return f"{match.group(2)}\\{match.group(3)}"


def _neutral(text: str) -> str:
    """Bidirectional overrides shown as their code point: a name cannot reverse what follows."""
    return _BIDI.sub(lambda match: f"<U+{ord(match.group(0)):04X}>", text)


def _seconds(value: float) -> str:
    if value >= 119.5:
        whole = round(value)
        if whole >= 3600:
            hours, minutes = divmod(round(value / 60), 60)
            return f"{hours} h {minutes} min"
        minutes, seconds = divmod(whole, 60)
        return f"{minutes} min {seconds} s"
    return f"{value:.2f} s" if value >= 0.01 else f"{value * 1000:.1f} ms"


def _valid_utf8(text: str) -> str:
    """Lone surrogates (from hostile metadata) become '?' so the text always encodes."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _halvings(count: int) -> list[int]:
    values = []
    while count > 0:
        count = count // 2
        values.append(count)
    return values


def _history_entries(section: HistorySection | None) -> int:
    if section is None:
        return 0
    return max(
        len(section.new_failures),
        len(section.still_failing),
        len(section.fixed),
        len(section.new_tests),
        len(section.disappeared),
        len(section.flaky),
        len(section.quarantine),
        1,
    )


def _history_section(report: Report, entries: int) -> str:
    """The history library's section (history/section.py), each list cut to `entries` items
    when the markdown must shrink; the counts stay whole and the cut lists say how many more."""
    section = report.history
    if section is None:
        return ""
    if entries == 0:
        return (
            "## Since the previous run\n\n"
            "_The per-test lists are left out to fit; summary.json has them._\n\n"
        )
    shown = replace(
        section,
        new_failures=section.new_failures[:entries],
        still_failing=section.still_failing[:entries],
        fixed=section.fixed[:entries],
        new_tests=section.new_tests[:entries],
        disappeared=section.disappeared[:entries],
        flaky=section.flaky[:entries],
        quarantine=section.quarantine[:entries],
    )
    text = history_markdown(shown).rstrip("\n") + "\n\n"
    counts = section.counts
    hidden = [
        f"{title}: {len(shown_items)} of {total} shown"
        for title, shown_items, total in (
            ("new failures", shown.new_failures, counts.new_failures),
            ("still failing", shown.still_failing, counts.still_failing),
            ("flaky", shown.flaky, counts.flaky),
            ("quarantine", shown.quarantine, len(section.quarantine)),
        )
        if total > len(shown_items)
    ]
    if hidden:
        text += f"_{'; '.join(hidden)}; summary.json has the longer lists._\n\n"
    return text
