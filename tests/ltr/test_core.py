"""The pure core of `ltr`: no AWS, no emulator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runner.layout import ResultKey, RunLocation, days_from_prefixes, parse_result_key

from ltr.core import (
    DocsObject,
    ExitCode,
    LtrError,
    Observation,
    Phase,
    candidate_days,
    endpoint_problem,
    exit_code_for,
    format_duration,
    format_pass_rate,
    format_started,
    group_docs,
    outcome_line,
    phase_of,
    render_runs,
    run_record,
    split_run_argv,
    summary_counts,
    terminal_safe,
    unreadable_record,
    validate_run_id,
    validate_run_request,
    wait_for_run,
)

ALLOWED = ("test", "scribe:generate", "api:export-markdown")
KEY = RunLocation("2025-03-01", "r1", "test")


def manifest(**overrides):
    value = {
        "run_id": "r1",
        "command": "test",
        "args": [],
        "status": "passed",
        "exit_code": 0,
        "started_at": "2025-03-01T02:00:01+00:00",
        "finished_at": "2025-03-01T02:00:13+00:00",
        "duration_seconds": 12.5,
        "artifacts": ["runs/2025-03-01/r1/test/output.log", "runs/2025-03-01/r1/test/junit.xml"],
    }
    value.update(overrides)
    return value


def summary(tests=10, passed=8, failed=1, errors=0, skipped=1, status=None):
    runnable = tests - skipped
    if status is None:
        status = "failed" if failed or errors else ("passed" if passed else "no_tests")
    return {
        "status": status,
        "totals": {
            "tests": tests,
            "passed": passed,
            "failed": failed,
            "errors": errors,
            "skipped": skipped,
        },
        "pass_rate": passed / runnable if runnable else None,
    }


# --------------------------------------------------------------------------- requests


def test_run_request_event_carries_the_client_run_id():
    request = validate_run_request("test", ["--filter", "Unit"], ALLOWED, "20250301T020000Z-ab")
    assert request.event() == {
        "command": "test",
        "args": ["--filter", "Unit"],
        "run_id": "20250301T020000Z-ab",
    }
    assert request.slug == "test"


@pytest.mark.parametrize(
    ("command", "args", "fragment"),
    [
        ("migrate:fresh", [], "'migrate:fresh' is not allowed: choose one of test, scribe"),
        ("test", ["--filter", "X\nY"], "contains a control character"),
        ("test", ["--filter", "a\x00"], "contains a control character"),
        ("test", ["--filter", "x" * 600], "argument of 600 characters; at most 512"),
        ("test", ["--testdox"] * 40, "too many arguments (40); at most 32"),
        ("test", ["--log-junit=/etc/passwd"], "--log-junit is set by the runner"),
    ],
)
def test_bad_run_requests_name_the_problem(command, args, fragment):
    with pytest.raises(LtrError, match=None) as caught:
        validate_run_request(command, args, ALLOWED, "r1")
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value).replace("\\n", "")


@pytest.mark.parametrize("run_id", ["../etc", "a/b", "", "-x", "a" * 65, "a b", "r1\n", "a..b"])
def test_run_ids_that_could_escape_a_prefix_are_rejected(run_id):
    with pytest.raises(LtrError, match="invalid run_id .*as printed by `ltr runs`"):
        validate_run_id(run_id)


def test_argument_check_errors_become_one_line():
    with pytest.raises(LtrError, match=r"^test: option '--bogus' is not accepted for test"):
        validate_run_request("test", ["--bogus"], ALLOWED, "r1")


# --------------------------------------------------------------------------- argv


def test_ltr_options_may_follow_the_command_arguments():
    parsed = split_run_argv(["test", "--filter", "Integration", "--env", "dev", "--wait"])
    assert parsed.command == "test"
    assert parsed.args == ("--filter", "Integration")
    assert parsed.env == "dev" and parsed.wait and parsed.timeout is None


def test_double_dash_passes_everything_after_it_to_the_command():
    parsed = split_run_argv(["test", "--timeout=60", "--", "--env", "testing", "--wait"])
    assert parsed.args == ("--env", "testing", "--wait")
    assert parsed.timeout == 60.0 and not parsed.wait and parsed.env is None


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "which command?"),
        (["--wait"], "which command?"),
        (["test", "--env"], "--env needs a value"),
        (["test", "--timeout", "soon"], "--timeout 'soon'"),
        (["test", "--timeout", "0"], "between 1 and 86400"),
    ],
)
def test_bad_run_argv(argv, fragment):
    with pytest.raises(LtrError) as caught:
        split_run_argv(argv)
    assert fragment in str(caught.value)


# --------------------------------------------------------------------------- keys


def test_result_keys_parse_and_junk_is_ignored():
    assert parse_result_key("reports/2025-03-01/r1/test/summary.md") == ResultKey(
        "reports", RunLocation("2025-03-01", "r1", "test"), "summary.md"
    )
    assert parse_result_key("runs/2025-03-01/r1/scribe-generate/public/docs/index.html").name == (
        "public/docs/index.html"
    )
    for junk in ("runs/x/r1/test/a", "docs/latest/a", "runs/2025-03-01/../test/a", "runs/a"):
        assert parse_result_key(junk) is None


def test_candidate_days_cover_midnight_and_skew_start_day_first():
    started = datetime(2025, 3, 1, 23, 59, 50, tzinfo=UTC)
    days = candidate_days(started, datetime(2025, 3, 2, 0, 0, 30, tzinfo=UTC))
    assert days[0] == "2025-03-01"
    assert set(days) >= {"2025-02-28", "2025-03-01", "2025-03-02"}


def test_newest_days_first_ignores_foreign_prefixes():
    prefixes = ["runs/2025-01-02/", "runs/latest/", "runs/2025-03-01/", "runs/../"]
    assert days_from_prefixes(prefixes) == ["2025-03-01", "2025-01-02"]


# --------------------------------------------------------------------------- records


def test_records_from_untrusted_manifests_never_crash():
    record = run_record(
        {"status": 5, "exit_code": True, "artifacts": "x", "duration_seconds": "9"}, KEY
    )
    assert (record.status, record.exit_code, record.artifacts, record.duration_seconds) == (
        "unknown",
        None,
        (),
        None,
    )
    assert record.command == "test"  # the path it was found under
    huge = 10**400  # JSON allows it; float() of it raised OverflowError
    assert run_record({"status": "passed", "duration_seconds": huge}, KEY).duration_seconds is None


def test_summary_counts_reject_impossible_values():
    assert summary_counts(summary()).pass_rate == pytest.approx(8 / 9)
    assert summary_counts({"totals": {"tests": -1}}) is None
    assert summary_counts(None) is None
    broken_rate = summary()
    broken_rate["pass_rate"] = 3.0
    assert summary_counts(broken_rate).pass_rate is None
    broken_rate["pass_rate"] = 10**400
    assert summary_counts(broken_rate).pass_rate is None


NO_JUNIT = ["runs/2025-03-01/r1/test/output.log"]


@pytest.mark.parametrize(
    ("status", "artifacts", "counts", "expected"),
    [
        ("passed", None, summary(failed=0, passed=9), ExitCode.OK),
        # A command that uploads no JUnit (docs): the runner's verdict is all there is.
        ("passed", NO_JUNIT, None, ExitCode.OK),
        ("failed", None, summary(), ExitCode.RUN_NOT_PASSED),
        ("error", NO_JUNIT, None, ExitCode.RUN_NOT_PASSED),
        ("timed_out", None, summary(failed=0, passed=9), ExitCode.RUN_NOT_PASSED),
        ("rejected", NO_JUNIT, None, ExitCode.RUN_NOT_PASSED),
        # A manifest that says passed while the JUnit says otherwise does not pass.
        ("passed", None, summary(failed=0, errors=1, passed=8), ExitCode.RUN_NOT_PASSED),
        # Every report status but "passed" is not a pass (issue 9's statuses included).
        ("passed", None, summary(0, 0, 0, 0, 0, status="unusable"), ExitCode.RUN_NOT_PASSED),
        ("passed", None, summary(0, 0, 0, 0, 0), ExitCode.RUN_NOT_PASSED),  # no_tests
        ("passed", None, summary(3, 0, 0, 0, 3), ExitCode.RUN_NOT_PASSED),  # all skipped
        ("passed", None, summary(failed=0, passed=9, status="error"), ExitCode.RUN_NOT_PASSED),
        ("passed", None, summary(failed=0, passed=9, status="timed_out"), ExitCode.RUN_NOT_PASSED),
        ("passed", None, summary(failed=0, passed=9, status="PASSED"), ExitCode.RUN_NOT_PASSED),
        # A report that says passed while its counts say otherwise does not pass either.
        ("passed", None, summary(failed=1, status="passed"), ExitCode.RUN_NOT_PASSED),
        # JUnit uploaded, summary without a status (or none readable): not a pass.
        ("passed", None, {**summary(failed=0, passed=9), "status": None}, ExitCode.RUN_NOT_PASSED),
        ("passed", None, None, ExitCode.RUN_NOT_PASSED),
    ],
)
def test_exit_code_is_0_only_when_run_and_report_passed(status, artifacts, counts, expected):
    overrides = (
        {"status": status} if artifacts is None else {"status": status, "artifacts": artifacts}
    )
    assert exit_code_for(run_record(manifest(**overrides), KEY, counts)) is expected


def test_outcome_line_names_a_report_status_that_differs():
    record = run_record(manifest(), KEY, summary(0, 0, 0, 0, 0))
    assert "run r1 test: passed, exit code 0, report no_tests, 0 passed" in outcome_line(record)


def test_phase_waits_for_the_summary_only_when_junit_was_uploaded():
    with_junit = run_record(manifest(), KEY)
    assert phase_of(Observation(None)) is Phase.RUNNING
    assert phase_of(Observation(with_junit)) is Phase.REPORTING
    assert phase_of(Observation(run_record(manifest(), KEY, summary()), "# s")) is Phase.DONE
    no_junit = run_record(manifest(status="error", artifacts=["runs/x/output.log"]), KEY)
    assert phase_of(Observation(no_junit)) is Phase.DONE


# --------------------------------------------------------------------------- rendering


def test_formatting():
    assert format_pass_rate(None) == "-"
    assert format_pass_rate(8 / 9) == "88.9%"
    assert format_duration(12.34) == "12.3s"
    assert format_duration(125) == "2m05s"
    assert format_duration(7260) == "2h01m"
    assert format_started("2025-03-01T02:00:01Z") == "2025-03-01 02:00:01Z"
    assert format_started("yesterday") == "yesterday"


def test_runs_table_aligns_columns():
    records = [
        run_record(manifest(), KEY, summary()),
        run_record(
            manifest(command="scribe:generate", artifacts=[]),
            RunLocation("2025-03-01", "r2-long-run-id", "scribe-generate"),
        ),
    ]
    lines = render_runs(records).splitlines()
    assert lines[0].split() == [
        "RUN", "ID", "COMMAND", "STATUS", "PASS", "RATE", "TESTS", "DURATION", "STARTED"
    ]  # fmt: skip
    assert lines[2].split()[:5] == ["r1", "test", "passed", "88.9%", "8/9"]
    assert lines[3].split()[:4] == ["r2-long-run-id", "scribe:generate", "passed", "-"]
    assert lines[2].index("test") == lines[3].index("scribe:generate")


def test_outcome_line_carries_the_runners_message():
    record = run_record(
        manifest(status="error", exit_code=None, message="database unreachable\nsecond line"), KEY
    )
    assert outcome_line(record).endswith("(database unreachable)")


def test_outcome_line_says_what_happened():
    line = outcome_line(run_record(manifest(status="failed", exit_code=1), KEY, summary()))
    assert line.startswith("run r1 test: failed, exit code 1, 8 passed, 1 failed, 0 errors")
    assert "pass rate 88.9%" in line


# --------------------------------------------------------------------------- waiting


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_stops_when_done_and_reports_each_phase():
    clock = FakeClock()
    polls = iter(
        [
            Observation(None),
            Observation(run_record(manifest(), KEY)),
            Observation(run_record(manifest(), KEY, summary()), "# summary"),
        ]
    )
    seen = []
    result = wait_for_run(
        lambda: next(polls), clock, clock.sleep, 100, 3, lambda p, e: seen.append(p)
    )
    assert result.phase is Phase.DONE
    assert seen == [Phase.RUNNING, Phase.REPORTING, Phase.DONE]
    assert result.elapsed == 6


def test_wait_gives_up_at_the_timeout_after_a_last_poll():
    clock = FakeClock()
    result = wait_for_run(lambda: Observation(None), clock, clock.sleep, 10, 3, lambda p, e: None)
    assert result.phase is Phase.RUNNING
    assert result.elapsed == 10


# --------------------------------------------------------------------------- docs


def test_docs_grouped_per_command_with_an_entry_page():
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    objects = [
        DocsObject("docs/latest/scribe-generate/.scribe/endpoints.yaml", 1, moment),
        DocsObject("docs/latest/scribe-generate/public/docs/index.html", 1, moment),
        DocsObject("docs/latest/api-export-markdown/docs/api.md", 1, moment),
        DocsObject("docs/latest/stray.txt", 1, moment),
    ]
    sets = group_docs(objects)
    assert [s.slug for s in sets] == ["api-export-markdown", "scribe-generate"]
    assert sets[1].entry.key.endswith("public/docs/index.html")
    assert sets[0].entry.key.endswith("api.md")


def test_progress_off_a_terminal_prints_a_line_per_change():
    import io

    from ltr.cli import Progress

    stream = io.StringIO()
    progress = Progress(stream, "r1", quiet_every=30)
    for phase, elapsed in [
        (Phase.RUNNING, 0),
        (Phase.RUNNING, 3),
        (Phase.RUNNING, 31),
        (Phase.REPORTING, 33),
        (Phase.DONE, 36),
    ]:
        progress(phase, elapsed)
    assert stream.getvalue().splitlines() == [
        "run r1: waiting for the runner's manifest (0.0s)",
        "run r1: waiting for the runner's manifest (31.0s)",
        "run r1: waiting for the report processor's summary (33.0s)",
        "run r1: done (36.0s)",
    ]


@given(
    st.lists(st.text(min_size=1, max_size=12).filter(lambda a: a != "--"), max_size=6),
    st.booleans(),
)
def test_everything_after_double_dash_reaches_the_command_untouched(tail, wait):
    argv = ["test", *(["--wait"] if wait else []), "--", *tail]
    parsed = split_run_argv(argv)
    assert parsed.args == tuple(tail)
    assert parsed.wait is wait


# --------------------------------------------------------------------------- untrusted text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain ünïcode 日本", "plain ünïcode 日本"),
        ("\x1b[31mred\x1b[0m", "\\u001b[31mred\\u001b[0m"),
        ("\x1b]0;pwned\x07", "\\u001b]0;pwned\\u0007"),
        ("one\rtwo", "one\\u000dtwo"),
        ("a\nb\tc", "a\\u000ab\\u0009c"),
        ("\x9b2J", "\\u009b2J"),  # the one-byte CSI
        ("\x7f", "\\u007f"),
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
    ],
)
def test_terminal_safe_shows_controls_instead_of_obeying_them(raw, expected):
    assert terminal_safe(raw) == expected
    assert terminal_safe(expected) == expected  # idempotent


def test_terminal_safe_keeps_lines_and_tabs_of_multiline_text_only():
    assert terminal_safe("# t\n\tx\x1b[2J", multiline=True) == "# t\n\tx\\u001b[2J"


@given(st.text())
def test_nothing_that_acts_on_a_terminal_survives(text):
    for multiline in (False, True):
        safe = terminal_safe(text, multiline=multiline)
        allowed = "\n\t" if multiline else ""
        assert all(
            ord(c) >= 0x20
            and not 0x7F <= ord(c) <= 0x9F
            and c not in "\u2028\u2029"
            and not "\u202a" <= c <= "\u202e"
            and not "\u2066" <= c <= "\u2069"
            or c in allowed
            for c in safe
        )


def test_a_hostile_manifest_cannot_break_the_runs_table():
    hostile = run_record(
        manifest(
            command="test\n\x1b[2Jfake-row  passed",
            status="passed\r\x1b[32mgreen",
            started_at="\x1b]0;title\x07",
            message="x" * 5000,
        ),
        KEY,
    )
    table = render_runs([hostile, run_record(manifest(), KEY)])
    lines = table.splitlines()
    assert len(lines) == 4  # header, separator, one line per record
    assert "\x1b" not in table and "\r" not in table and "\x07" not in table
    assert all(len(line) < 300 for line in lines)
    assert "\x1b" not in outcome_line(hostile) and "\n" not in outcome_line(hostile)


def test_an_unreadable_manifest_becomes_a_listed_record():
    record = unreadable_record(KEY, "s3://b/runs/2025-03-01/r1/test/manifest.json is not JSON")
    assert (record.run_id, record.command, record.status) == ("r1", "test", "unreadable")
    assert exit_code_for(record) is ExitCode.RUN_NOT_PASSED
    assert render_runs([record]).splitlines()[2].split()[:3] == ["r1", "test", "unreadable"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("localhost:4566", "is not an http(s) URL"),
        ("127.0.0.1", "is not an http(s) URL"),
        ("http://", "is not an http(s) URL"),
        ("ftp://host", "is not an http(s) URL"),
        ("http://exa mple", "contains whitespace"),
        ("http://host:99999", "bad port"),
        ("http://host:port", "bad port"),
    ],
)
def test_endpoint_that_is_not_a_url_is_named_with_the_fix(value, fragment):
    problem = endpoint_problem("AWS_ENDPOINT_URL", value)
    assert problem is not None and fragment in problem
    assert "use http(s)://host[:port]" in problem and "unset AWS_ENDPOINT_URL" in problem


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1:5000", "https://s3.eu-west-1.amazonaws.com", "http://[::1]:9000"]
)
def test_real_endpoints_are_accepted(value):
    assert endpoint_problem("AWS_ENDPOINT_URL", value) is None
