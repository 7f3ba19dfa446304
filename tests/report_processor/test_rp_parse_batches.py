"""The parser counts testcases without children in batches: the result must be what counting them
one by one gives, whatever the batch boundaries, attribute orders, times and not-run marks."""

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from report_processor.case_fields import MAX_SECONDS
from report_processor.fold import PENDING_CASES
from report_processor.parse import parse_junit
from report_processor.tally import ParseLimits

REPO_ROOT = Path(__file__).resolve().parents[2]
# Times a runner may write; the junk ones count as 0 (lenient_seconds).
TIMES = ["0.001234", "1.5", "0", "nan", "inf", "-1", "1e308", "junk", "1,234.5", " 2 ", ""]


def one_by_one_seconds(raw: str | None) -> float:
    """The per-testcase rule, written out independently of the parser."""
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        try:
            value = float(raw.strip().replace(",", ""))
        except ValueError:
            return 0.0
    return value if 0.0 <= value <= MAX_SECONDS else 0.0


def make_report(rng: random.Random, cases: int) -> tuple[bytes, list[tuple[dict[str, str], bool]]]:
    """A report of `cases` testcases in one suite; the attributes and failure of each."""
    written: list[tuple[dict[str, str], bool]] = []
    lines = ['<testsuites><testsuite name="S" file="/s.php">']
    for index in range(cases):
        # Mostly one attribute layout (the batched path), now and then another (case by case).
        attrs = {"name": f"t{index}", "classname": rng.choice(["C", "", "D"])}
        attrs["file"] = f"/f{index % 3}.php" if rng.random() < 0.7 else ""
        attrs["time"] = rng.choice(TIMES) if rng.random() < 0.01 else f"{rng.random():.6f}"
        if rng.random() < 0.002:
            del attrs["classname"]
            attrs["class"] = "K"
        if rng.random() < 0.002:
            del attrs["time"]
        if rng.random() < 0.002:
            attrs["status"] = rng.choice(["run", "notrun"])
        items = list(attrs.items())
        if rng.random() < 0.002:
            rng.shuffle(items)
        text = " ".join(f'{key}="{value}"' for key, value in items)
        failing = rng.random() < 0.002
        if failing:
            lines.append(f"<testcase {text}><failure>boom</failure></testcase>")
        else:
            lines.append(f"<testcase {text}/>")
        written.append((attrs, failing))
    lines.append("</testsuite></testsuites>")
    return "\n".join(lines).encode(), written


def test_batches_count_exactly_what_one_by_one_counting_gives():
    rng = random.Random(7)
    cases = 6 * PENDING_CASES + 17
    data, written = make_report(rng, cases)
    calls: list[tuple] = []
    acc = parse_junit(
        io.BytesIO(data), ParseLimits(slowest=25), on_case=lambda *args: calls.append(args)
    )

    total = 0.0
    expected_calls = []
    for attrs, failing in written:
        seconds = one_by_one_seconds(attrs.get("time"))
        total += seconds  # the same additions in the same order
        rank = 2 if failing else 1 if attrs.get("status") == "notrun" else 0
        expected_calls.append(
            (
                attrs["file"],
                attrs.get("classname") or attrs.get("class") or "",
                attrs["name"],
                rank,
                seconds,
                False,
            )
        )
    failed = sum(1 for call in expected_calls if call[3] == 2)
    skipped = sum(1 for call in expected_calls if call[3] == 1)
    assert failed and skipped  # the report exercises both

    assert calls == expected_calls
    assert acc.duration_seconds == total
    assert acc.suite_rows()[0].duration_seconds == round(total, 6)
    assert (acc.tests, acc.failed, acc.skipped) == (cases, failed, skipped)
    assert acc.passed == cases - failed - skipped
    slowest = sorted((call[4] for call in expected_calls), reverse=True)[:25]
    assert [slow.duration_seconds for slow in acc.slowest()] == slowest


# 100 testcases with a 2 MiB attribute each (200 MiB), generated as they are read: queued
# testcases must not hold them all (the queue is counted after every chunk).
BIG_TESTCASES_SCRIPT = """
import io, json, sys
from report_processor.parse import parse_junit

class BigTestcases(io.RawIOBase):
    def __init__(self, cases, size):
        self.parts = [b'<testsuite name="s">']
        self.cases, self.size = cases, size
    def readable(self):
        return True
    def read(self, n=-1):
        if not self.parts and self.cases:
            self.cases -= 1
            self.parts = [b'<testcase name="t" time="0.5" data="', b'A' * self.size, b'"/>']
            if not self.cases:
                self.parts.append(b'</testsuite>')
        return self.parts.pop(0) if self.parts else b''

acc = parse_junit(BigTestcases(int(sys.argv[1]), 2 << 20))
with open("/proc/self/status") as status:
    peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
result = {"tests": acc.tests, "seconds": acc.duration_seconds, "peak_mib": peak_kib / 1024}
print(json.dumps(result))
"""


def test_queued_testcases_with_huge_attributes_stay_at_flat_memory():
    completed = subprocess.run(
        [sys.executable, "-c", BIG_TESTCASES_SCRIPT, "100"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    result = json.loads(completed.stdout)
    assert (result["tests"], result["seconds"]) == (100, 50.0)
    assert result["peak_mib"] < 128, result


def mixed_report(rng: random.Random, suites: int, cases: int, one_by_one: bool) -> bytes:
    """Testcases of every kind in several suites. With `one_by_one`, every testcase without
    children gets an empty <system-out/>, which changes no outcome but takes it off the
    batched path: the two parses must then agree on everything."""
    lines = ["<testsuites>"]
    for suite in range(suites):
        lines.append(f'<testsuite name="S{suite % 3}" file="/s{suite}.php">')
        for index in range(cases):
            attrs = {"name": f"t{index % 40}", "classname": rng.choice(["C", "", "S0", "D"])}
            if rng.random() < 0.5:
                attrs["file"] = rng.choice(["/a.php", "/b.php", ""])
            attrs["time"] = rng.choice(TIMES) if rng.random() < 0.02 else f"{rng.random():.6f}"
            if rng.random() < 0.01:
                # Google Test: a not-run mark without a child is a skip with no reason.
                attrs["status"] = rng.choice(["run", "notrun"])
                attrs["result"] = rng.choice(["completed", "skipped", "suppressed"])
            text = " ".join(f'{key}="{value}"' for key, value in attrs.items())
            draw = rng.random()
            message = rng.choice(["", ' message="disk full"', ' message="expected 1 got 2"'])
            if draw < 0.02:
                child = f"<skipped{message}/>"
            elif draw < 0.04:
                child = f'<failure{message} type="E">boom\n at /a.php:{index}</failure>'
            elif draw < 0.05:
                child = f"<error{message}>crash {index}</error>"
            elif draw < 0.06:
                child = f"<flakyFailure{message}/>"
            elif draw < 0.07:
                child = "<warning>deprecated call</warning>"
            else:
                child = "<system-out/>" if one_by_one else ""
            lines.append(f"<testcase {text}>{child}</testcase>" if child else f"<testcase {text}/>")
        lines.append("</testsuite>")
    lines.append("</testsuites>")
    return "\n".join(lines).encode()


def everything(data: bytes, limits: ParseLimits) -> tuple:
    calls: list[tuple] = []
    acc = parse_junit(io.BytesIO(data), limits, lambda *args: calls.append(args))
    return (
        calls,
        acc.totals(),
        acc.duration_seconds,
        acc.suite_rows(),
        acc.failures,
        acc.failures_not_detailed,
        acc.flaky_tests,
        acc.slowest(),
        acc.groups.result(),
        acc.skip_reasons.result(),
        acc.test_warnings,
    )


def test_batches_give_every_per_case_effect_of_one_by_one_counting():
    # Skip reasons (also of not-run marks), failure groups past the listed failures, the slowest
    # tests with their ties in input order, suite rows, flaky tests, warnings and on_case.
    limits = ParseLimits(slowest=40, max_failures_listed=20, max_warnings_listed=5)
    batched = mixed_report(random.Random(11), 5, 2 * PENDING_CASES + 3, one_by_one=False)
    single = mixed_report(random.Random(11), 5, 2 * PENDING_CASES + 3, one_by_one=True)
    assert b"<system-out/>" not in batched and b"<system-out/>" in single
    expected = everything(single, limits)
    got = everything(batched, limits)
    reasons = {reason.reason: reason.count for reason in expected[9]}
    assert reasons["no reason given"] > 0 and reasons["disk full"] > 0  # both kinds of skip
    assert len(expected[8]) >= 2 and expected[5] > 0  # groups, failures past the listed ones
    # Ties: many testcases share a time of 0 (junk times), and more than `slowest` are offered.
    assert sum(1 for call in expected[0] if call[4] == 0.0) > 40
    for index, (got_part, expected_part) in enumerate(zip(got, expected, strict=True)):
        assert got_part == expected_part, index


def test_a_testcase_nested_in_another_is_counted_as_one_by_one_counting_did():
    # Not JUnit, but untrusted input: the inner testcase restarts the case state, the outer end
    # counts the inner attributes again, and the outer flaky rerun's message does not leak into
    # a later flaky testcase (the queued cases end it, as a counted case always did).
    doc = (
        b'<testsuite name="s"><testcase name="a"><flakyFailure message="first"/>'
        b'<testcase name="b"/></testcase>'
        b'<testcase name="c"><flakyFailure message="second"/></testcase></testsuite>'
    )
    calls: list[tuple] = []
    acc = parse_junit(io.BytesIO(doc), None, lambda *args: calls.append(args))
    assert calls == [
        (None, "", "b", 0, 0.0, False),
        (None, "", "b", 0, 0.0, False),
        (None, "", "c", 0, 0.0, True),
    ]
    assert (acc.tests, acc.passed, acc.flaky) == (3, 3, 1)
    assert [flaky.message for flaky in acc.flaky_tests] == ["second"]
