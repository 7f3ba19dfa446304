"""Render a Report as JSON (complete, versioned) and as markdown (for people, under a byte cap).

The markdown cap is met by rendering again with less detail, least important first (shorter
traces, fewer suite rows, no flaky list, no slowest tests, no traces, fewer failures, fewer input
errors), and a note says what was cut. Whole items are dropped, never bytes, so the output never
ends inside a UTF-8 character, an HTML block or a table.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

from report_processor.headline import failure_headline
from report_processor.model import Failure, Report, ShardRow, SuiteRow, Totals

DEFAULT_MAX_BYTES = 60 * 1024
MIN_MAX_BYTES = 1024
_TRACE_STEPS = (4000, 1500, 500)
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
    trace_chars: int
    failures: int
    flaky: int
    slowest: int
    suites: int
    input_errors: int


def to_markdown(report: Report, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Markdown no longer than `max_bytes` UTF-8 bytes (at least MIN_MAX_BYTES)."""
    if max_bytes < MIN_MAX_BYTES:
        raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}, got {max_bytes}")
    full = _Plan(
        trace_chars=_TRACE_STEPS[0],
        failures=len(report.failures),
        flaky=len(report.flaky_tests),
        slowest=len(report.slowest),
        suites=len(report.suites),
        input_errors=len(report.unusable_inputs),
    )
    for plan in _plans(full):
        text = _render(report, plan, full, max_bytes)
        if _utf8_size(text) <= max_bytes:
            return _valid_utf8(text)
    # Even the headline alone is too long (huge metadata values): cut whole lines.
    text = _valid_utf8(_render(report, replace(full, **_NOTHING), full, max_bytes))
    kept = text.encode("utf-8")[:max_bytes]
    return kept[: kept.rfind(b"\n") + 1].decode("utf-8")


_NOTHING = {"trace_chars": 0, "failures": 0, "flaky": 0, "slowest": 0, "suites": 0}


def _plans(full: _Plan) -> Iterator[_Plan]:
    plan = full
    yield plan
    for chars in _TRACE_STEPS[1:]:
        plan = replace(plan, trace_chars=chars)
        yield plan
    steps: tuple[tuple[str, list[int]], ...] = (
        ("suites", _halvings(full.suites)),
        ("flaky", [0]),
        ("slowest", [0]),
        ("trace_chars", [0]),
        ("failures", _halvings(full.failures)),
        ("input_errors", _halvings(full.input_errors, floor=1)),
    )
    for field, values in steps:
        for value in values:
            if value < getattr(plan, field):
                plan = replace(plan, **{field: value})
                yield plan


def _halvings(count: int, floor: int = 0) -> list[int]:
    values = []
    while count > floor:
        count = max(count // 2, floor) if count > 1 else 0
        values.append(count)
    return values


def _render(report: Report, plan: _Plan, full: _Plan, max_bytes: int) -> str:
    out: list[str] = []
    out.extend(_headline(report))
    out.extend(_shard_table(report))
    note = _cut_note(plan, full, max_bytes)
    if note:
        out.append(f"> ✂️ {note}\n")
    out.extend(_input_errors(report, plan.input_errors))
    out.extend(_failures(report, plan))
    if plan.flaky and report.flaky_tests:
        out.append(f"## Flaky tests ({report.totals.flaky})\n")
        for flaky in report.flaky_tests[: plan.flaky]:
            message = f": {_inline(flaky.message, 200)}" if flaky.message else ""
            out.append(f"- {_test_label(flaky.classname, flaky.name)}{message}")
        out.append("")
    if plan.slowest and report.slowest:
        out.append("## Slowest tests\n")
        out.append("| # | Test | Suite | Time |")
        out.append("|---:|---|---|---:|")
        for index, slow in enumerate(report.slowest[: plan.slowest], 1):
            label = _test_label(slow.classname, slow.name)
            suite = _inline(slow.suite, 120)
            out.append(f"| {index} | {label} | {suite} | {_seconds(slow.duration_seconds)} |")
        out.append("")
    if plan.suites and report.suites:
        out.extend(_suite_table(report, plan.suites))
    return "\n".join(out).rstrip("\n") + "\n"


def _headline(report: Report) -> list[str]:
    totals = report.totals
    status = report.status
    lines = [f"# {_HEADLINE_ICONS[status]} Test report: {_STATUS_WORDS[status]}\n"]
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
    rate = "n/a" if report.pass_rate is None else f"{report.pass_rate * 100:.2f} %"
    lines.append(
        f"**Pass rate {rate}** · {_count(totals.tests, 'test')}: {totals.passed:,} passed, "
        f"{totals.failed:,} failed, {_count(totals.errors, 'error')}, {totals.skipped:,} skipped, "
        f"{totals.flaky:,} flaky · {_durations(totals)}\n"
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
    if runner == "failed" and report.report_status == "passed":
        return f"⚠️ The command failed{code}, but the report holds no failing test."
    if report.report_status == "no_tests":
        skipped = report.totals.skipped
        why = f"all {_count(skipped, 'test')} skipped" if skipped else "the report has no testcase"
        return f"⚪ Nothing executed ({why}): a run that tests nothing is not a pass."
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


def _cut_note(plan: _Plan, full: _Plan, max_bytes: int) -> str:
    cuts = []
    if plan.trace_chars < full.trace_chars:
        cuts.append(
            f"traces shortened to {plan.trace_chars} characters"
            if plan.trace_chars
            else "traces left out"
        )
    for field, noun in (
        ("failures", "failures"),
        ("suites", "suite rows"),
        ("flaky", "flaky tests"),
        ("slowest", "slowest tests"),
        ("input_errors", "unusable inputs"),
    ):
        kept, total = getattr(plan, field), getattr(full, field)
        if kept < total:
            cuts.append(f"{noun}: {kept} of {total} shown")
    if not cuts:
        return ""
    return f"Cut to fit {max_bytes:,} bytes: " + "; ".join(cuts) + ". summary.json has the rest."


def _input_errors(report: Report, limit: int) -> list[str]:
    bad = report.unusable_inputs
    if not bad:
        return []
    lines = [f"## Unusable inputs ({len(bad)} of {len(report.inputs)})\n"]
    for item in bad[:limit]:
        lines.append(f"- {_inline(item.path, 200)}: {_inline(item.error or 'unusable', 500)}")
    return [*lines, ""]


def _failures(report: Report, plan: _Plan) -> list[str]:
    totals = report.totals
    failing = totals.failed + totals.errors
    if not failing:
        return []
    lines = [f"## Failures ({failing:,})\n"]
    shown = report.failures[: plan.failures]
    # Cases that share suite, class and name (one test on several platforms) need their context.
    same = Counter((failure.suite, failure.classname, failure.name) for failure in shown)
    seen: Counter[tuple[str, str, str]] = Counter()
    for index, failure in enumerate(shown, 1):
        key = (failure.suite, failure.classname, failure.name)
        variant = ""
        if same[key] > 1:
            seen[key] += 1
            variant = _variant(failure, seen[key])
        lines.extend(_failure(index, failure, plan.trace_chars, variant))
    hidden = failing - min(plan.failures, len(report.failures))
    if hidden:
        lines.append(f"_…and {hidden:,} more not shown here._\n")
    return lines


def _variant(failure: Failure, occurrence: int) -> str:
    if failure.context:
        return failure.context
    if failure.file:
        return failure.file + (f":{failure.line}" if failure.line else "")
    return f"occurrence {occurrence}"


def _failure(index: int, failure: Failure, trace_chars: int, variant: str = "") -> list[str]:
    icon = "💥" if failure.kind == "error" else "❌"
    label = _test_label(failure.classname, failure.name)
    if variant:
        label += f" [{_inline(variant, 200)}]"
    lines = [f"### {index}. {icon} {label} ({failure.kind})\n"]
    where = [f"Suite: {_inline(failure.suite, 200)}"]
    if failure.file:
        location = failure.file + (f":{failure.line}" if failure.line else "")
        where.append(f"File: {_inline(location, 300)}")
    if failure.type:
        where.append(f"Type: {_inline(failure.type, 200)}")
    lines.append(" · ".join(where) + "\n")
    message = failure.message or failure_headline(failure.details, failure.name)
    if message:
        lines.append(f"> {_inline(message, 500)}\n")
    if trace_chars and failure.details:
        details = failure.details
        if len(details) > trace_chars:
            details = details[: trace_chars - 1] + "…"
        lines.append("<details><summary>Details</summary>\n")
        lines.append(f"<pre>{html.escape(details, quote=False)}</pre>\n")
        lines.append("</details>\n")
    return lines


def _suite_table(report: Report, limit: int) -> list[str]:
    rows = _ordered_suites(report.suites)
    lines = [f"## Suites ({len(rows):,})\n"]
    lines.append("| Suite | Tests | Passed | Failed | Errors | Skipped | Time |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows[:limit]:
        name = _inline(row.name, 150) + (" (declared counts)" if row.from_declared_counts else "")
        lines.append(
            f"| {name} | {row.tests:,} | {row.passed:,} | {row.failed:,} | {row.errors:,} "
            f"| {row.skipped:,} | {_seconds(row.duration_seconds)} |"
        )
    if report.suites_folded:
        lines.append(f"\n_{report.suites_folded:,} further suites are counted in (other suites)._")
    return [*lines, ""]


def _ordered_suites(rows: tuple[SuiteRow, ...]) -> list[SuiteRow]:
    return sorted(rows, key=lambda row: (-(row.failed + row.errors), -row.duration_seconds))


def _test_label(classname: str, name: str) -> str:
    if classname and name:
        return f"{_inline(classname, 150)} › {_inline(name, 200)}"
    return _inline(classname or name or "(unnamed test)", 200)


def _inline(text: str | None, limit: int) -> str:
    """Untrusted text as one line of markdown: no structure can leak out of it."""
    if not text:
        return ""
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(text, quote=False))


def _seconds(value: float) -> str:
    if value >= 120:
        minutes, seconds = divmod(value, 60)
        return f"{int(minutes)} min {seconds:.0f} s"
    return f"{value:.2f} s" if value >= 0.01 else f"{value * 1000:.1f} ms"


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "replace"))


def _valid_utf8(text: str) -> str:
    """Lone surrogates (from hostile metadata) become '?' so the text always encodes."""
    return text.encode("utf-8", "replace").decode("utf-8")
