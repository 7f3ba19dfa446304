"""The markdown summary's sections, each a list of lines or a block, rendered from a Report.

render.py decides which of them fit the byte budget and in what length; these only write them.
"""

from __future__ import annotations

import html
from dataclasses import replace

from report_processor.headline import NO_MESSAGE, message_lines
from report_processor.history.section import HistorySection
from report_processor.history.section import markdown as history_markdown
from report_processor.markdown_text import (
    case_title,
    counted,
    inline,
    neutral,
    same_name,
    seconds_text,
)
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
from report_processor.tally import OTHER_SUITES

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


def headline_lines(report: Report) -> list[str]:
    totals = report.totals
    status = report.status
    lines = [f"# {_HEADLINE_ICONS[status]} Test report: {_STATUS_WORDS[status]}\n"]
    if report.history is not None and report.history.headline:
        # The diff with the previous run leads: what changed since last night (issue 12).
        lines.append(f"**{inline(report.history.headline, 500)}**\n")
    meta = report.metadata
    facts = [
        f"{label} {inline(value, 100)}"
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
    warned = f", {counted(totals.warnings, 'warning')}" if totals.warnings else ""
    rate = "n/a" if report.pass_rate is None else f"{report.pass_rate * 100:.2f} %"
    protected = report.protected
    if protected[0] + protected[2] + protected[3]:
        rate += " (quarantined tests left out)"
    lines.append(
        f"**Pass rate {rate}** · {counted(totals.tests, 'test')}: {totals.passed:,} passed, "
        f"{totals.failed:,} failed, {counted(totals.errors, 'error')}, {totals.skipped:,} skipped, "
        f"{totals.flaky:,} flaky{warned} · {durations_text(totals)}\n"
    )
    note = status_note(report)
    if note:
        lines.append(f"> {note}\n")
    for warning in report.warnings:
        lines.append(f"> ⚠️ {inline(warning, 500)}\n")
    declared = sum(1 for row in report.suites if row.from_declared_counts)
    if declared:
        lines.append(
            f"> ℹ️ {counted(declared, 'suite row')} from declared counts, not from testcases.\n"
        )
    # A sharded run's table belongs to its headline: the budget never drops it.
    lines.extend(shard_table(report))
    return lines


def durations_text(totals: Totals) -> str:
    text = f"{seconds_text(totals.duration_seconds)} {_DURATION_SOURCES[totals.duration_source]}"
    if totals.duration_source != "testcases":
        text += f" · sum of test times {seconds_text(totals.testcase_seconds)}"
    return text


def status_note(report: Report) -> str:
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
                f"{counted(warnings, 'warning')}, which fail a PHPUnit run under `failOnWarning`."
            )
        return f"⚠️ The command failed{code}, but the report holds no failing test."
    if report.report_status == "no_tests":
        skipped = report.totals.skipped
        why = f"all {counted(skipped, 'test')} skipped" if skipped else "the report has no testcase"
        return f"⚪ Nothing executed ({why}): a run that tests nothing is not a pass."
    if warnings and report.status == "passed":
        return (
            f"⚠️ Passed with {counted(warnings, 'warning')} (listed below): PHPUnit fails such a "
            "run only under `failOnWarning`."
        )
    return ""


def _shards_not_finished(shards: tuple[ShardRow, ...], tests_not_run: int) -> str:
    unfinished = sum(1 for row in shards if row.status not in ("passed", "failed"))
    return (
        f"💥 {counted(tests_not_run, 'test')} not run: {unfinished} of {len(shards)} shards did "
        "not finish (see the shard table); this report holds only what the others ran."
    )


def shard_table(report: Report) -> list[str]:
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
        time = "–" if row.seconds is None else seconds_text(row.seconds)
        status = _STATUS_WORDS.get(row.status, row.status)
        if row.status not in ("passed", "failed"):
            status = f"**{inline(status, 40)}**" + (
                f": {inline(row.error, 160)}" if row.error else ""
            )
        out.append(f"| {row.index} | {row.tests:,} | {time} | {status} |")
    out.append("")
    return out


def input_errors_head(report: Report) -> str:
    return f"## Unusable inputs ({len(report.unusable_inputs)} of {len(report.inputs)})\n\n"


def input_error_line(item: InputResult) -> str:
    return f"- {inline(item.path, 200)}: {inline(item.error or 'unusable', 500)}\n"


def failures_head(report: Report) -> str:
    return f"## Failures ({report.totals.failed + report.totals.errors:,})\n\n"


def groups_head() -> str:
    return (
        "**Shared causes** (messages that are equal once numbers, ids, quoted values and "
        "paths are masked):\n\n"
    )


def group_line(number: int, group: FailureGroup) -> str:
    example = message_lines(group.example, 1)
    text = inline(example[0] if example else group.pattern or NO_MESSAGE, 300)
    first = _first_tests(group.count, group.first_tests)
    return f"- **Cause {number} · {group.count:,} ×** {text}{first}\n"


def _first_tests(count: int, tests: tuple[str, ...]) -> str:
    if not tests:
        return ""
    names = ", ".join(inline(test, 120) for test in tests)
    return f" — {names}" if count <= len(tests) else f" — first {len(tests)}: {names}"


def compact_head(shown_in_full: int) -> str:
    return "One line each:\n\n" if not shown_in_full else "More failures, one line each:\n\n"


def compact_line(failure: Failure, variant: str | None, cause: int | None = None) -> str:
    icon = "💥" if failure.kind == "error" else "❌"
    label = case_title(failure.classname, failure.name)
    if variant:
        label += f" [{inline(variant, 200)}]"
    parts = [f"- {icon} {label}"]
    where = where_text(failure, short=True)
    if where:
        parts.append(where)
    if cause is not None:
        parts.append(f"cause {cause}")
    else:
        lines = message_lines(failure.message or "", 1)
        parts.append(inline(lines[0], 200) if lines else NO_MESSAGE)
    return " · ".join(parts) + "\n"


def not_listed(report: Report, shown: int) -> str:
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
            f"{counted(declared, 'failure')} counted from declared counts, with no detail in "
            "the report (see the suite rows)"
        )
    return "".join(f"_{part}._\n\n" for part in parts)


def variant_label(failure: Failure, occurrence: int) -> str:
    if failure.context:
        return failure.context
    if failure.file:
        return failure.file + (f":{failure.line}" if failure.line else "")
    return f"occurrence {occurrence}"


def failure_block(
    number: int, failure: Failure, trace_chars: int, variant: str | None = None
) -> str:
    icon = "💥" if failure.kind == "error" else "❌"
    label = case_title(failure.classname, failure.name, failure.suite)
    if variant:
        label += f" [{inline(variant, 200)}]"
    lines = [f"### {number}. {icon} {label} ({failure.kind})\n"]
    where = [f"Suite: {inline(failure.suite, 200)}"]
    location = where_text(failure)
    if location:
        where.append(location)
    if failure.type:
        where.append(f"Type: {inline(failure.type, 200)}")
    lines.append(" · ".join(where) + "\n")
    quoted = message_lines(failure.message or "") or (NO_MESSAGE,)
    # A trailing backslash is a hard line break: the quoted lines stay lines.
    lines.append("\\\n".join(f"> {inline(line, 500)}" for line in quoted) + "\n")
    if trace_chars and failure.details:
        details = failure.details
        if len(details) > trace_chars:
            details = details[: trace_chars - 1] + "…"
        lines.append("<details><summary>Details</summary>\n")
        lines.append(f"<pre>{html.escape(neutral(details), quote=False)}</pre>\n")
        lines.append("</details>\n")
    return block(lines)


def where_text(failure: Failure, short: bool = False) -> str:
    """`at tests/Unit/OrderTest.php:24 (test at :12)`: the failing line, then the declaration."""
    declared = ""
    if failure.file:
        declared = failure.file.split("::", 1)[0] + (f":{failure.line}" if failure.line else "")
    if not failure.at_file:
        return f"test at {inline(declared, 300)}" if declared else ""
    at = inline(f"{failure.at_file}:{failure.at_line}", 300)
    if failure.url:
        at = f"[{at}]({failure.url})"
    if short or not declared:
        return f"at {at}"
    if failure.file and failure.file.split("::", 1)[0] == failure.at_file:
        if failure.line and failure.line != failure.at_line:
            return f"at {at} (test at :{failure.line})"
        return f"at {at}"
    return f"at {at} (test at {inline(declared, 300)})"


def warnings_head(report: Report) -> str:
    return (
        f"## Warnings ({counted(report.totals.warnings, 'test')})\n\n"
        "Counted as passed; PHPUnit fails the run on them only with `failOnWarning`.\n\n"
    )


def warning_line(warning: TestWarning) -> str:
    label = case_title(warning.classname, warning.name)
    lines = message_lines(warning.message or "", 1)
    return f"- {label}: {inline(lines[0], 300) if lines else NO_MESSAGE}\n"


def flaky_head(report: Report) -> str:
    return f"## Flaky tests ({report.totals.flaky})\n\n"


def flaky_line(flaky: FlakyTest) -> str:
    message = f": {inline(flaky.message, 200)}" if flaky.message else ""
    return f"- {case_title(flaky.classname, flaky.name)}{message}\n"


def skipped_frame(report: Report, lines: str) -> str:
    return (
        f"<details><summary>Skipped ({report.totals.skipped:,}), by reason</summary>\n\n"
        f"{lines}\n</details>\n\n"
    )


def skip_line(reason: SkipReason) -> str:
    first = _first_tests(reason.count, reason.first_tests)
    return f"- **{reason.count:,} ×** {inline(reason.reason, 300)}{first}\n"


# The slowest table says nothing for tiny or fast runs.
_SLOWEST_MIN_TESTS = 10


_SLOWEST_MIN_SECONDS = 0.01


def slow_rows(report: Report) -> list[SlowTest]:
    """Hidden for 10 tests or fewer or when all are under 10 ms; no 0 ms rows; ties in input
    order (the parser's order)."""
    if report.totals.tests <= _SLOWEST_MIN_TESTS:
        return []
    rows = [slow for slow in report.slowest if slow.duration_seconds >= 0.00005]
    if not any(slow.duration_seconds >= _SLOWEST_MIN_SECONDS for slow in rows):
        return []
    return rows


def slowest_table(rows: list[SlowTest]) -> str:
    if not rows:
        return ""
    # The suite column only when it tells something the class does not.
    with_suite = any(not same_name(slow.suite, slow.classname) for slow in rows)
    lines = ["## Slowest tests\n"]
    if with_suite:
        lines += ["| # | Test | Suite | Time |", "|---:|---|---|---:|"]
    else:
        lines += ["| # | Test | Time |", "|---:|---|---:|"]
    for number, slow in enumerate(rows, 1):
        label = case_title(slow.classname, slow.name, slow.suite if with_suite else "")
        suite = f" {inline(slow.suite, 120)} |" if with_suite else ""
        lines.append(f"| {number} | {label} |{suite} {seconds_text(slow.duration_seconds)} |")
    return block(lines)


def suites_head(report: Report, shown: int, rows: int = 0) -> str:
    named = sum(1 for row in report.suites if row.name != OTHER_SUITES)
    total = named + report.suites_folded
    shown_named = min(shown, named)
    count = f"{total:,}" if shown_named >= total else f"{total:,}; {shown_named:,} shown"
    return (
        f"## Suites ({count})\n\n"
        "| Suite | Tests | Passed | Failed | Errors | Skipped | Time |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n"
    )


def suite_row(row: SuiteRow) -> str:
    if row.name == OTHER_SUITES:
        name = "(other suites)"
    else:
        name = inline(row.name, 150) + (" (declared counts)" if row.from_declared_counts else "")
    return (
        f"| {name} | {row.tests:,} | {row.passed:,} | {row.failed:,} | {row.errors:,} "
        f"| {row.skipped:,} | {seconds_text(row.duration_seconds)} |\n"
    )


def ordered_suites(rows: tuple[SuiteRow, ...]) -> list[SuiteRow]:
    """Failing first, then the slowest; the folded row last."""
    return sorted(
        rows,
        key=lambda row: (
            row.name == OTHER_SUITES,
            -(row.failed + row.errors),
            -row.duration_seconds,
        ),
    )


def history_entries(section: HistorySection | None) -> int:
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


def history_section(report: Report, entries: int) -> str:
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


def block(lines: list[str]) -> str:
    """A list of lines (a trailing "\\n" marks a paragraph end) as one block plus a blank line."""
    return "\n".join(lines).rstrip("\n") + "\n\n"
