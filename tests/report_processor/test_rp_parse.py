"""The parser against hand-written reports in the shapes real runners write."""

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from report_processor import JUnitError, ParseLimits, build_report, to_json
from report_processor.case_fields import lenient_count, lenient_seconds
from report_processor.parse import parse_junit

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench" / "report_processor_bench.py"

# fixture: (tests, passed, failed, errors, skipped, flaky)
EXPECTED_TOTALS = {
    "phpunit9_nested.xml": (9, 4, 2, 1, 2, 0),
    "pest.xml": (4, 2, 1, 0, 1, 0),
    "pytest.xml": (5, 2, 1, 1, 1, 0),
    "jest.xml": (4, 2, 1, 0, 1, 0),
    "surefire_flaky.xml": (3, 2, 1, 0, 0, 1),
    "go.xml": (4, 2, 1, 0, 1, 0),
    "dotnet.xml": (3, 1, 1, 0, 1, 0),
    "no_root.xml": (2, 2, 0, 0, 0, 0),
    "declared_counts_only.xml": (7, 4, 1, 0, 2, 0),
    "multiresult_and_times.xml": (7, 5, 1, 1, 0, 0),
}


def parse_file(name: str, limits: ParseLimits | None = None):
    with (FIXTURES / name).open("rb") as stream:
        return parse_junit(stream, limits)


@pytest.mark.parametrize("name", sorted(EXPECTED_TOTALS))
def test_totals_follow_the_count_rule(name):
    acc = parse_file(name)
    totals = acc.totals()
    got = (totals.tests, totals.passed, totals.failed, totals.errors, totals.skipped, totals.flaky)
    assert got == EXPECTED_TOTALS[name]
    assert totals.passed + totals.failed + totals.errors + totals.skipped == totals.tests


def test_phpunit_data_provider_suites_fold_into_their_class_row():
    report = build_report([FIXTURES / "phpunit9_nested.xml"])
    rows = {row.name: row for row in report.suites}
    assert set(rows) == {"Tests\\Feature\\InvoiceApiTest", "Tests\\Feature\\HealthTest"}
    invoice = rows["Tests\\Feature\\InvoiceApiTest"]
    assert (invoice.tests, invoice.passed, invoice.failed, invoice.errors, invoice.skipped) == (
        6,
        3,
        1,
        1,
        1,
    )
    assert invoice.file == "/var/task/app/tests/Feature/InvoiceApiTest.php"
    assert invoice.duration_seconds == pytest.approx(0.6012)


def test_phpunit_failures_carry_file_line_kind_and_trace():
    report = build_report([FIXTURES / "phpunit9_nested.xml"])
    by_name = {failure.name: failure for failure in report.failures}
    assert set(by_name) == {
        "test_creates_invoice",
        "test_without_assertions",
        "test_database_is_reachable",
    }
    created = by_name["test_creates_invoice"]
    assert created.kind == "failed"
    # Shown relative to the app root (the runner's app directory by default).
    assert created.file == "tests/Feature/InvoiceApiTest.php"
    assert created.line == 31
    assert created.classname == "Tests.Feature.InvoiceApiTest"
    assert created.suite == "Tests\\Feature\\InvoiceApiTest"
    assert created.type == "PHPUnit\\Framework\\ExpectationFailedException"
    assert "Expected response status code [201] but received 500." in created.details
    assert by_name["test_without_assertions"].kind == "error"


def test_pytest_messages_and_error_outrank_nothing_else():
    report = build_report([FIXTURES / "pytest.xml"])
    by_name = {failure.name: failure for failure in report.failures}
    assert by_name["test_discount[10-0.9]"].message == "assert 0.8 == 0.9"
    assert "assert apply(pct) == factor" in by_name["test_discount[10-0.9]"].details
    assert by_name["test_connect"].kind == "error"
    assert report.slowest[0].name == "test_connect"
    assert report.slowest[0].duration_seconds == pytest.approx(1.2)


def test_surefire_flaky_failure_counts_as_passed_and_flaky_rerun_failure_stays_failed():
    report = build_report([FIXTURES / "surefire_flaky.xml"])
    assert [flaky.name for flaky in report.flaky_tests] == ["chargesCard"]
    assert "503" in report.flaky_tests[0].message
    assert [failure.name for failure in report.failures] == ["refunds"]
    assert report.suites[0].flaky == 1


def test_several_results_of_one_case_count_once_with_error_first():
    report = build_report([FIXTURES / "multiresult_and_times.xml"])
    kinds = {failure.name: failure.kind for failure in report.failures}
    assert kinds == {"all three kinds": "error", "skipped and failure": "failed"}
    assert {failure.name: failure.message for failure in report.failures} == {
        "all three kinds": "boom",
        "skipped and failure": "late failure",
    }


def test_lenient_times_never_crash_and_sum_what_is_usable():
    totals = build_report([FIXTURES / "multiresult_and_times.xml"]).totals
    assert totals.duration_seconds == pytest.approx(1234.5 + 4.5e-05)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("1.5", 1.5),
        ("1,234.5", 1234.5),
        (" 2,503.1 ", 2503.1),
        ("", 0.0),
        (None, 0.0),
        ("-3", 0.0),
        ("NaN", 0.0),
        ("inf", 0.0),
        ("<<computed>>", 0.0),
        ("1.4e-05", 1.4e-05),
    ],
)
def test_lenient_seconds(raw, seconds):
    assert lenient_seconds(raw) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("raw", "count"), [("6", 6), ("", 0), (None, 0), ("-1", 0), ("3 total", 0), ("2.0", 2)]
)
def test_lenient_count(raw, count):
    assert lenient_count(raw) == count


def test_suite_without_testcases_falls_back_to_declared_counts_and_is_flagged():
    report = build_report([FIXTURES / "declared_counts_only.xml"])
    rows = {row.name: row for row in report.suites}
    assert rows["summary-only"].from_declared_counts is True
    assert (rows["summary-only"].tests, rows["summary-only"].passed) == (6, 3)
    assert rows["with-cases"].from_declared_counts is False
    assert report.failures_not_detailed == 1  # the declared failure has no detail to show


def test_parent_suite_declared_test_count_is_ignored_when_children_have_cases():
    xml = b"""<testsuites><testsuite name="outer" tests="50" skipped="9">
      <testsuite name="inner"><testcase name="a"/></testsuite></testsuite></testsuites>"""
    totals = parse_junit(io.BytesIO(xml)).totals()
    assert (totals.tests, totals.passed, totals.skipped) == (1, 1, 0)


def test_declared_failures_no_testcase_carries_are_counted_as_errors_with_a_warning():
    xml = b"""<testsuites><testsuite name="outer" tests="50" failures="9">
      <testsuite name="inner"><testcase name="a"/></testsuite></testsuite></testsuites>"""
    acc = parse_junit(io.BytesIO(xml))
    totals = acc.totals()
    assert (totals.tests, totals.passed, totals.errors) == (10, 1, 9)
    row = acc.rows["outer (declared by <testsuite>, carried by no testcase)"]
    assert (row.tests, row.errors, row.from_declared_counts) == (9, 9, True)
    assert acc.warnings == [
        "<testsuite> 'outer' declares 9 failure(s)/error(s) but its testcases carry 0: the 9 "
        "missing counted as errors in the row 'outer (declared by <testsuite>, carried by no "
        "testcase)'"
    ]


def test_go_build_failure_declared_only_on_the_root_is_an_error_not_a_pass():
    # go-junit-report style: the package that failed to build has no testcase at all.
    xml = b"""<testsuites tests="2" failures="0" errors="1">
      <testsuite name="example.com/ok" tests="2" failures="0" errors="0">
        <testcase classname="ok" name="TestA"/><testcase classname="ok" name="TestB"/>
      </testsuite></testsuites>"""
    report = build_report([("go.xml", io.BytesIO(xml))])
    assert (report.totals.tests, report.totals.errors) == (3, 1)
    assert report.status == "failed"
    assert len(report.warnings) == 1 and "<testsuites>" in report.warnings[0]


def test_declared_counts_match_result_elements_not_cases():
    # Surefire counts every rerun in `failures`; other tools every <failure> of a case.
    xml = b"""<testsuite name="s" tests="2" failures="4">
      <testcase name="flaky"><flakyFailure/><flakyFailure/></testcase>
      <testcase name="broken"><failure/><rerunFailure/></testcase></testsuite>"""
    acc = parse_junit(io.BytesIO(xml))
    assert (acc.tests, acc.failed, acc.errors, acc.warnings) == (2, 1, 0, [])


def test_nested_shortfall_is_counted_once():
    xml = b"""<testsuites errors="1"><testsuite name="pkg" tests="0" errors="1"/></testsuites>"""
    acc = parse_junit(io.BytesIO(xml))
    assert (acc.tests, acc.errors, len(acc.warnings)) == (1, 1, 1)


def test_google_test_not_run_and_suppressed_cases_are_skipped():
    xml = b"""<testsuites tests="5" disabled="1"><testsuite name="Math" tests="5" disabled="1">
      <testcase name="Adds" status="run" result="completed" classname="Math"/>
      <testcase name="DISABLED_Divides" status="notrun" result="suppressed" classname="Math"/>
      <testcase name="Old" status="notrun" classname="Math"/>
      <testcase name="Skips" status="run" result="skipped" classname="Math"><skipped/></testcase>
      <testcase name="Filtered" status="run" result="suppressed" classname="Math"/>
    </testsuite></testsuites>"""
    totals = parse_junit(io.BytesIO(xml)).totals()
    assert (totals.tests, totals.passed, totals.skipped) == (5, 1, 4)


def test_google_test_disabled_count_is_skipped_in_a_declared_only_suite():
    xml = b'<testsuites><testsuite name="g" tests="4" failures="1" disabled="2"/></testsuites>'
    totals = parse_junit(io.BytesIO(xml)).totals()
    assert (totals.tests, totals.passed, totals.failed, totals.skipped) == (4, 1, 1, 2)


def test_suite_level_error_outside_any_testcase_is_an_error_case_named_after_its_suite():
    # TAP/prove: the file died before its plan; no testcase carries the error.
    xml = b"""<testsuites><testsuite name="t/orders.t" tests="0" errors="1">
        <error message="Dubious, test returned 255 (wstat 65280, 0xff00)">
            Can't locate Orders.pm in @INC
              at t/orders.t line 3.
        </error>
      </testsuite>
      <testsuite name="t/ok.t" tests="1"><testcase name="ok 1"/></testsuite></testsuites>"""
    report = build_report([("prove.xml", io.BytesIO(xml))])
    assert (report.totals.tests, report.totals.errors, report.totals.passed) == (2, 1, 1)
    (failure,) = report.failures
    assert (failure.suite, failure.name, failure.kind) == ("t/orders.t", "t/orders.t", "error")
    assert failure.message == "Dubious, test returned 255 (wstat 65280, 0xff00)"
    assert failure.details == "Can't locate Orders.pm in @INC\n  at t/orders.t line 3."
    assert report.warnings == ()
    assert report.status == "failed"


def test_suite_level_failure_after_cases_counts_too():
    xml = b"""<testsuite name="Setup" tests="1" failures="1"><testcase name="a"/>
      <failure message="setUpBeforeClass failed" type="RuntimeException"/></testsuite>"""
    acc = parse_junit(io.BytesIO(xml))
    assert (acc.tests, acc.passed, acc.errors) == (2, 1, 1)
    assert acc.failures[0].type == "RuntimeException"


def test_testcases_nested_at_any_depth_count_once():
    depth = 40
    xml = (
        "<testsuites>"
        + "".join(f'<testsuite name="level{i}">' for i in range(depth))
        + '<testcase name="deep"><failure/></testcase>'
        + "</testsuite>" * depth
        + '<testsuite name="top"><testcase name="shallow"/></testsuite></testsuites>'
    ).encode()
    totals = parse_junit(io.BytesIO(xml)).totals()
    assert (totals.tests, totals.passed, totals.failed) == (2, 1, 1)


def test_unicode_and_escaped_names_survive():
    report = build_report([FIXTURES / "pest.xml"])
    names = {row.name for row in report.suites}
    assert names == {"Tests\\Unit\\MoneyTest", "Tests\\Feature\\LoginTest"}
    jest = build_report([FIXTURES / "jest.xml"])
    assert jest.failures[0].name == "Cart applies a <Coupon />"


def test_dotnet_file_with_byte_order_mark_parses():
    report = build_report([FIXTURES / "dotnet.xml"])
    assert report.inputs[0].ok
    assert report.failures[0].message.startswith("Assert.Throws() Failure")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("billion_laughs.xml", "DOCTYPE"),
        ("xxe_file.xml", "DOCTYPE"),
        ("xxe_parameter_entity.xml", "DOCTYPE"),
        ("undeclared_entity.xml", "undefined entity"),
        ("truncated.xml", "ends early"),
        ("empty.xml", "empty"),
        ("not_xml.xml", "not well-formed XML"),
        ("not_junit.xml", "root element is <checkstyle>"),
    ],
)
def test_unusable_inputs_raise_a_clear_error(name, fragment):
    with pytest.raises(JUnitError, match=fragment.replace("(", r"\(")):
        parse_file(name)


def test_entities_are_never_expanded_nor_fetched(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the parser tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name in ("billion_laughs.xml", "xxe_file.xml", "xxe_parameter_entity.xml"):
        report = build_report([FIXTURES / name])
        assert not report.inputs[0].ok
        assert "root:" not in (report.inputs[0].error or "")


def test_a_broken_file_does_not_stop_the_others():
    report = build_report(
        [FIXTURES / "truncated.xml", FIXTURES / "go.xml", FIXTURES / "missing.xml"]
    )
    assert [item.ok for item in report.inputs] == [False, True, False]
    assert "cannot read the file" in report.inputs[2].error
    assert report.totals.tests == 4  # only go.xml; the truncated file adds nothing


def test_shards_merge_into_one_report():
    report = build_report([FIXTURES / "go.xml", FIXTURES / "pytest.xml", FIXTURES / "jest.xml"])
    assert report.totals.tests == 13
    assert report.totals.failed == 3
    assert [item.tests for item in report.inputs] == [4, 5, 4]


def test_memory_bounds_keep_counts_exact():
    cases = "".join(
        f'<testsuite name="S{i}"><testcase classname="C" name="t{i}" time="{i}">'
        f'<failure message="m{i}">{"x" * 10_000}</failure></testcase></testsuite>'
        for i in range(60)
    )
    xml = f"<testsuites>{cases}</testsuites>".encode()
    limits = ParseLimits(
        max_failures_detailed=5,
        max_failures_listed=8,
        max_details_chars=100,
        max_suite_rows=10,
        max_suite_rows_parsed=20,
        slowest=3,
    )
    report = build_report([("memory.xml", io.BytesIO(xml))], limits=limits)
    assert report.totals.failed == 60
    assert len(report.failures) == 8
    assert [bool(failure.details) for failure in report.failures] == [True] * 5 + [False] * 3
    assert report.failures_not_detailed == 52
    assert all(len(failure.details) <= 100 for failure in report.failures)
    # Every failure is in a group, however many are listed.
    assert sum(group.count for group in report.failure_groups) == 60
    assert [group.pattern for group in report.failure_groups] == ["mN"]
    assert sum(row.tests for row in report.suites) == 60
    assert len(report.suites) == 11  # 10 named rows + "(other suites)"
    assert report.suites[-1].name == "(other suites)"
    # 40 folded while parsing (over 20 rows), 10 more by importance: the slowest 10 stay.
    assert report.suites_folded == 50
    assert {row.name for row in report.suites[:-1]} == {f"S{i}" for i in range(10, 20)}
    assert [slow.name for slow in report.slowest] == ["t59", "t58", "t57"]


def test_input_size_limit_gives_a_clear_error():
    xml = (
        b"<testsuites>"
        + b"<testsuite name='s'><testcase name='t'/></testsuite>" * 1000
        + b"</testsuites>"
    )
    with pytest.raises(JUnitError, match="larger than the 1000 byte limit"):
        parse_junit(io.BytesIO(xml), ParseLimits(max_input_bytes=1000, chunk_bytes=256))


def test_chunk_boundaries_do_not_change_the_result():
    data = (FIXTURES / "phpunit9_nested.xml").read_bytes()
    whole = parse_junit(io.BytesIO(data)).totals()
    for chunk in (1, 7, 64):
        acc = parse_junit(io.BytesIO(data), ParseLimits(chunk_bytes=chunk))
        assert acc.totals() == whole
        assert "received 500" in acc.failures[0].details


def test_a_testcase_directly_under_the_testsuites_root_counts():
    xml = b"""<testsuites name="loose" tests="9"><testcase name="a"><failure/></testcase>
      <testsuite name="s"><testcase name="b"/></testsuite></testsuites>"""
    report = build_report([("loose.xml", io.BytesIO(xml))])
    assert (report.totals.tests, report.totals.failed) == (2, 1)
    assert {row.name for row in report.suites} == {"loose", "s"}
    assert not any(row.from_declared_counts for row in report.suites)


def test_empty_testsuites_root_never_falls_back_to_its_declared_counts():
    xml = b'<testsuites tests="15515" skipped="3"></testsuites>'
    assert parse_junit(io.BytesIO(xml)).totals().tests == 0
    # Its declared failures are not carried by any testcase: they count as errors.
    xml = b'<testsuites tests="15515" failures="3"></testsuites>'
    assert parse_junit(io.BytesIO(xml)).totals().errors == 3


def test_the_pure_core_imports_no_aws_code():
    import subprocess
    import sys

    code = (
        "import sys, report_processor, report_processor.cli, report_processor.routing\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'aws_lambda_powertools')]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_utf16_reports_with_a_byte_order_mark_parse():
    text = (FIXTURES / "go.xml").read_text(encoding="utf-8")
    data = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert parse_junit(io.BytesIO(data)).totals().tests == 4


@pytest.mark.parametrize(
    ("name", "suite"),
    [("shift_jis.xml", "注文テスト"), ("utf32.xml", "注文テスト"), ("gbk.xml", "订单测试")],
)
def test_reports_in_encodings_expat_does_not_know_are_transcoded(name, suite):
    report = build_report([FIXTURES / name])
    assert report.inputs[0].ok, report.inputs[0].error
    assert (report.totals.tests, report.totals.failed) == (2, 1)
    assert [row.name for row in report.suites] == [suite]
    assert report.failures[0].message in ("期待値と一致しません", "期望值不一致")


@pytest.mark.parametrize("encoding", ["big5", "euc-kr", "utf-32-be", "cp1252", "iso-8859-15"])
def test_any_encoding_python_decodes_parses_across_chunk_boundaries(encoding):
    name = {"big5": "測試", "euc-kr": "시험", "cp1252": "café €"}.get(encoding, "naïve")
    cases = "".join(f'<testcase classname="c" name="{name} {i}"/>' for i in range(300))
    xml = f'<?xml version="1.0" encoding="{encoding}"?><testsuite name="{name}">{cases}</testsuite>'
    data = xml.encode(encoding)
    # Tiny chunks split multi-byte characters: the incremental decoder must carry them over.
    acc = parse_junit(io.BytesIO(data), ParseLimits(chunk_bytes=7))
    assert acc.tests == 300
    assert list(acc.rows) == [name]


def test_unknown_or_wrong_encodings_are_per_file_errors_never_tracebacks():
    report = build_report(
        [
            FIXTURES / "unknown_encoding.xml",
            ("base64.xml", io.BytesIO(b'<?xml version="1.0" encoding="base64"?><testsuite/>')),
            ("lies.xml", io.BytesIO(b'<?xml version="1.0" encoding="utf-32-le"?>')),
            ("bad-bytes.xml", io.BytesIO(b'<?xml version="1.0" encoding="shift_jis"?><a\x82>')),
            FIXTURES / "go.xml",
        ]
    )
    unknown, base64, lies, bad_bytes, good = report.inputs
    assert "'x-no-such-encoding', which is not a known text encoding" in unknown.error
    assert "'base64', which is not a known text encoding" in base64.error
    assert not lies.ok and not bad_bytes.ok
    assert "not valid shift_jis" in bad_bytes.error
    assert good.ok


def test_huge_infinite_and_nan_times_never_make_an_infinite_total():
    report = build_report([FIXTURES / "huge_times.xml"])
    totals = report.totals
    assert totals.tests == 6
    assert totals.testcase_seconds == 1.5
    assert totals.duration_seconds == 1.5  # the root's 1e308 is junk: not a wall time
    document = json.loads(
        to_json(report),
        parse_constant=lambda constant: pytest.fail(f"non-finite {constant} in JSON"),
    )
    assert document["totals"]["duration_seconds"] == 1.5


def test_absurd_declared_counts_count_as_zero():
    xml = b'<testsuite name="s" tests="1e308" failures="1e12"/>'
    acc = parse_junit(io.BytesIO(xml))
    assert (acc.tests, acc.failed, acc.errors) == (0, 0, 0)


def test_details_lose_the_indentation_the_xml_gave_them():
    report = build_report([FIXTURES / "browsers.xml"])
    assert report.failures[0].details == (
        "Error: Timed out waiting for #pay\n"
        "    at waitFor (support/wait.js:12:9)\n"
        "    at Context.it (checkout.spec.js:30:5)"
    )


def test_same_test_on_two_platforms_keeps_what_tells_them_apart():
    failures = build_report([FIXTURES / "browsers.xml"]).failures
    assert [failure.context for failure in failures] == [
        "hostname=runner-chrome, browser=chrome 120",
        "hostname=runner-firefox, browser=firefox 121",
    ]
    xml = b"""<testsuite name="s"><properties><property name="os" value="linux"/></properties>
      <testcase name="t"><properties><property name="shard" value="2"/></properties>
      <failure/></testcase></testsuite>"""
    (failure,) = parse_junit(io.BytesIO(xml)).failures
    assert failure.context == "shard=2, os=linux"


def test_a_token_over_the_limit_is_refused_with_a_clear_error():
    limits = ParseLimits(max_token_bytes=1000, chunk_bytes=64)
    attribute = b'<testsuite name="s"><testcase name="' + b"a" * 5000 + b'"/></testsuite>'
    text = b'<testsuite name="s"><system-out>' + b"x > y " * 1000 + b"</system-out></testsuite>"
    for xml in (attribute, text):
        with pytest.raises(JUnitError, match="longer than the 1000 byte limit"):
            parse_junit(io.BytesIO(xml), limits)
    fine = b"<testsuite>" + b'<testcase name="n"/>' * 1000 + b"</testsuite>"
    assert parse_junit(io.BytesIO(fine), limits).tests == 1000


def load_bench():
    spec = importlib.util.spec_from_file_location("report_processor_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_256_mb_attribute_is_refused_at_flat_memory():
    # The benchmark's own script; it also times the refusal (bench/, not a timed test).
    completed = subprocess.run(
        [sys.executable, "-c", load_bench().HUGE_ATTRIBUTE_SCRIPT, "256"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    result = json.loads(completed.stdout)
    assert "longer than the 8388608 byte limit" in result["error"]
    assert result["peak_mib"] < 128, result
