"""The parser counts testcases without children in batches: the result must be what counting them
one by one gives, whatever the batch boundaries, attribute orders, times and not-run marks."""

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from report_processor.parse import _PENDING_CASES, MAX_SECONDS, ParseLimits, parse_junit

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
    cases = 6 * _PENDING_CASES + 17
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
