"""What the report says about history: a JSON-serialisable section, its headline and the
notification (subject, e-mail body, SNS message attributes) — all pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from report_processor.markdown_text import code_span, inline

SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters, no line breaks
SUMMARY_LINK_PLACEHOLDER = "{summary_url}"


@dataclass(frozen=True)
class RunRef:
    run_id: str
    run_key: str
    started_at: str
    app_version: str | None = None


@dataclass(frozen=True)
class FailingTest:
    test_id: str
    outcome: str  # failed / error
    message: str  # first line of the failure message, when the report kept it
    failed_runs: int  # "failed k of the last N runs"
    of_runs: int
    last_passed: RunRef | None
    failing_since: RunRef | None
    since_is_lower_bound: bool


@dataclass(frozen=True)
class FlakyTestInfo:
    test_id: str
    flips: int
    runs: int
    rule: str  # same_version / rerun / flips
    app_version: str | None


@dataclass(frozen=True)
class QuarantinedTest:
    test_id: str
    reason: str
    owner: str
    added: str
    expires: str
    state: str  # active / expired
    outcome: str | None  # tonight's outcome, None when the test did not run


@dataclass(frozen=True)
class Counts:
    failing: int = 0  # failed or errored tonight, not protected by quarantine
    new_failures: int = 0
    fixed: int = 0
    still_failing: int = 0
    new_tests: int = 0
    disappeared: int = 0
    flaky: int = 0
    quarantined: int = 0  # active entries whose test ran tonight
    quarantine_expired: int = 0


@dataclass(frozen=True)
class Notification:
    subject: str
    body: str
    attributes: dict[str, dict[str, str]]  # SNS MessageAttributes, as boto3 takes them


@dataclass(frozen=True)
class HistorySection:
    run: RunRef
    status: str  # passed / failed / no_tests, with active quarantine applied
    previous: RunRef | None  # the run that started just before (status change)
    previous_status: str | None
    baseline: RunRef | None  # what the diff compares with: previous not failed wholesale
    superseded: bool  # a run that started later is already recorded (late arrival)
    wholesale_reason: str | None
    tests: int
    tests_before: int | None
    tests_dropped: bool
    pass_rate: float | None  # with active-quarantined tests left out
    counts: Counts
    new_failures: tuple[FailingTest, ...] = ()
    still_failing: tuple[FailingTest, ...] = ()
    fixed: tuple[str, ...] = ()
    new_tests: tuple[str, ...] = ()
    disappeared: tuple[str, ...] = ()
    flaky: tuple[FlakyTestInfo, ...] = ()
    quarantine: tuple[QuarantinedTest, ...] = ()
    notes: tuple[str, ...] = ()
    headline: str = ""
    notification: Notification | None = None
    duplicates: int = 0
    schema: dict[str, int] = field(default_factory=lambda: {"history": 1})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def headline(section: HistorySection) -> str:
    """'2 new failures · 1 fixed · 4 still failing · 3 flaky' (+ drops, quarantine, first run)."""
    if section.baseline is None:
        first = "first recorded run: nothing to compare yet"
        parts = [first]
    else:
        counts = section.counts
        parts = [
            _plural(counts.new_failures, "new failure"),
            f"{counts.fixed} fixed",
            f"{counts.still_failing} still failing",
            f"{counts.flaky} flaky",
        ]
        if section.tests_dropped and section.tests_before is not None:
            parts.append(f"⚠ tests dropped {section.tests_before:,} → {section.tests:,}")
    if section.counts.flaky and section.baseline is None:
        parts.append(f"{section.counts.flaky} flaky")
    if section.counts.quarantined:
        parts.append(f"{section.counts.quarantined} quarantined")
    if section.counts.quarantine_expired:
        parts.append(
            _plural(section.counts.quarantine_expired, "quarantine expired", "quarantines expired")
        )
    if section.wholesale_reason:
        parts.append(f"failed wholesale: {section.wholesale_reason}")
    return " · ".join(parts)


def should_notify(section: HistorySection) -> bool:
    """One message per run, only when the status changed since the previous run or there are new
    failures. A first run notifies only when it failed; a late run (superseded) never does."""
    if section.superseded:
        return False
    if section.previous_status is None:
        return section.status != "passed"
    return section.status != section.previous_status or section.counts.new_failures > 0


def _ascii(text: str) -> str:
    return "".join(char if 32 <= ord(char) < 127 else "?" for char in text)


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


def subject(section: HistorySection, command: str, environment: str) -> str:
    counts = section.counts
    if section.wholesale_reason and section.tests == 0:
        what = "run failed before any test ran"
    elif section.wholesale_reason and section.status != "passed":
        what = f"failed wholesale ({_plural(counts.failing, 'test')} failing)"
    elif counts.new_failures:
        what = _plural(counts.new_failures, "new failure")
    elif section.status == "passed" and section.previous_status not in (None, "passed"):
        what = "all tests pass again"
    elif section.status == "failed" and section.previous_status == "failed":
        what = f"still failing ({_plural(counts.failing, 'test')})"
    elif section.status == "failed":
        what = f"{_plural(counts.failing, 'test')} failing"
    else:
        what = section.status.replace("_", " ")
    tail = f": {what}, pass rate {_percent(section.pass_rate)}"
    head = f"[ltr] {_ascii(command)} on {_ascii(environment)}"
    room = SUBJECT_LIMIT - len(tail)
    if len(head) > room:
        head = head[: max(room - 3, 10)] + "..."
    return (head + tail)[:SUBJECT_LIMIT]


def body(section: HistorySection, project: str, command: str, environment: str) -> str:
    lines: list[str] = []
    lines.append(f"{project} / {environment} / {command}: run {section.run.run_id}")
    lines.append(f"started {section.run.started_at}; status {section.status}")
    if section.previous is not None:
        lines.append(f"previous run {section.previous.run_id}: {section.previous_status}")
    lines.append("")
    if section.new_failures:
        lines.append(f"NEW FAILURES ({section.counts.new_failures})")
        for test in section.new_failures:
            lines.append(f"- {test.test_id}")
            if test.message:
                lines.append(f"    {test.message}")
        if section.counts.new_failures > len(section.new_failures):
            lines.append(
                f"- ... and {section.counts.new_failures - len(section.new_failures)} more"
            )
        lines.append("")
    counts = section.counts
    lines.append(f"Tests: {section.tests:,}; pass rate {_percent(section.pass_rate)}")
    lines.append(
        f"Failing: {counts.failing}; new failures: {counts.new_failures}; fixed: {counts.fixed}; "
        f"still failing: {counts.still_failing}; flaky: {counts.flaky}; "
        f"quarantined: {counts.quarantined}"
    )
    if section.tests_dropped and section.tests_before is not None:
        lines.append(f"Test count dropped: {section.tests_before:,} -> {section.tests:,}")
    if section.wholesale_reason:
        lines.append(f"The run failed wholesale: {section.wholesale_reason}")
    if counts.quarantine_expired:
        lines.append(f"Expired quarantine entries: {counts.quarantine_expired} (they count again)")
    lines.append("")
    lines.append(f"Summary: {SUMMARY_LINK_PLACEHOLDER}")
    return "\n".join(lines) + "\n"


def notification(
    section: HistorySection, project: str, command: str, environment: str
) -> Notification | None:
    if not should_notify(section):
        return None

    def attribute(value: str) -> dict[str, str]:
        return {"DataType": "String", "StringValue": value or "unknown"}

    return Notification(
        subject=subject(section, command, environment),
        body=body(section, project, command, environment),
        attributes={
            "project": attribute(project),
            "environment": attribute(environment),
            "command": attribute(command),
            "status": attribute(section.status),
        },
    )


def _id_cell(test_id: str) -> str:
    return code_span(test_id, in_table=True)


def _plain(text: str | None) -> str:
    """Untrusted text (run ids, versions, owners, reasons from manifests and the quarantine
    list) as one line of markdown that no structure or HTML can leak out of."""
    return inline(text, 500)


def _when(ref: RunRef | None) -> str:
    return "—" if ref is None else f"{_plain(ref.run_id)} ({_plain(ref.started_at[:10])})"


def markdown(section: HistorySection) -> str:
    """The "Since the previous run" part of the summary (the headline goes on top)."""
    lines = ["## Since the previous run", ""]
    if section.baseline is None:
        lines += ["First recorded run of this command here: nothing to compare yet.", ""]
    else:
        lines += [f"Compared with run {_when(section.baseline)}.", ""]
    for note in section.notes:
        lines.append(f"> {_plain(note)}")
    if section.notes:
        lines.append("")
    lines += _failing_tables(section)
    lines += _test_lists(section)
    if section.flaky:
        lines += _flaky_table(section.flaky)
    if section.quarantine:
        lines += _quarantine_table(section.quarantine)
    return "\n".join(lines)


def _failing_tables(section: HistorySection) -> list[str]:
    lines: list[str] = []
    for title, tests in (
        ("New failures", section.new_failures),
        ("Still failing", section.still_failing),
    ):
        if not tests:
            continue
        lines += [
            f"### {title}",
            "",
            "| Test | Failed | Last passed | Failing since |",
            "|---|---|---|---|",
        ]
        for test in tests:
            since = _when(test.failing_since) + (" or earlier" if test.since_is_lower_bound else "")
            lines.append(
                f"| {_id_cell(test.test_id)} | "
                f"{test.failed_runs} of the last {test.of_runs} runs | "
                f"{_when(test.last_passed)} | {since} |"
            )
        lines.append("")
    return lines


def _test_lists(section: HistorySection) -> list[str]:
    lines: list[str] = []
    for title, items, total in (
        ("Fixed", section.fixed, section.counts.fixed),
        ("New tests", section.new_tests, section.counts.new_tests),
        ("Disappeared tests", section.disappeared, section.counts.disappeared),
    ):
        if total:
            lines += [f"### {title} ({total})", ""]
            lines += [f"- {code_span(item)}" for item in items]
            if total > len(items):
                lines.append(f"- … and {total - len(items)} more")
            lines.append("")
    return lines


def _flaky_table(tests: tuple[FlakyTestInfo, ...]) -> list[str]:
    lines = ["### Flaky", "", "| Test | Flips | Runs | Why |", "|---|---|---|---|"]
    for flaky in tests:
        why = {
            "same_version": f"passed and failed on {_plain(flaky.app_version)}",
            "rerun": "passed on a rerun",
        }.get(flaky.rule, f"{flaky.flips} outcome changes")
        lines.append(f"| {_id_cell(flaky.test_id)} | {flaky.flips} | {flaky.runs} | {why} |")
    lines.append("")
    return lines


def _quarantine_table(entries: tuple[QuarantinedTest, ...]) -> list[str]:
    lines = ["### Quarantine", "", "| Test | State | Tonight | Owner | Reason | Expires |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for entry in entries:
        state = "active" if entry.state == "active" else "**expired: counts again**"
        lines.append(
            f"| {_id_cell(entry.test_id)} | {state} | {entry.outcome or 'did not run'} | "
            f"{_plain(entry.owner)} | {_plain(entry.reason)} | "
            f"{entry.expires[:10]} |"
        )
    lines.append("")
    return lines
