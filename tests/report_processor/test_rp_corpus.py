"""Conformance over the shared corpus of real runners' reports (../shared/junit-samples).

Every file not marked malformed parses, except the few the processor refuses on purpose (named
below with the reason); where the source project recorded its own counts, the totals agree, or the
intended difference is named here per file and in the README (Count rule).
"""

import csv
import json
import os
import re
from pathlib import Path

import pytest

from report_processor import build_report

REPO_ROOT = Path(__file__).resolve().parents[2]
# A git worktree is not beside shared/: JUNIT_CORPUS points at the corpus from anywhere.
CORPUS = Path(os.environ.get("JUNIT_CORPUS") or REPO_ROOT.parent / "shared" / "junit-samples")
ENRICO = "EnricoMi__publish-unit-test-result-action__python__test__files__junit-xml__"

# Not malformed XML, but refused on purpose: file -> fragment of our error message.
REFUSED_ON_PURPOSE = {
    # A DOCTYPE with external parameter entities: DTDs are refused outright (XXE defence).
    "jenkinsci__junit-plugin__src__test__resources__hudson__tasks__junit__testXxe-xxe.xml": (
        "DOCTYPE"
    ),
    # <suites>/<suite>/<case>: not JUnit. The source project also reports it as an error.
    f"{ENRICO}non-junit.xml": "root element is <suites>",
}

# Files whose expected counts we contradict on purpose: file -> (our totals, why).
INTENDED_DIFFERENCES = {
    f"{ENRICO}junit.multiresult.xml": (
        {"tests": 4, "passed": 1, "failed": 1, "errors": 1, "skipped": 1},
        "the action counts every result element of a testcase (runs_succ=-2, runs_skip=3); "
        "we count each testcase once, error > failure > skipped",
    ),
}

pytestmark = pytest.mark.skipif(
    not (CORPUS / "INDEX.tsv").exists(),
    reason=f"JUnit corpus not found at {CORPUS} (a sibling 'shared/junit-samples' of the repo); "
    "the hand-written fixtures still run",
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _index() -> dict[str, str]:
    if not (CORPUS / "INDEX.tsv").exists():
        return {}
    return {row["file"]: row["notes"] for row in _rows(CORPUS / "INDEX.tsv")}


def _expectations() -> dict[str, Path]:
    """Input file -> its .results.json, else its .results (the source project's own counts)."""
    index = CORPUS / "expected" / "INDEX.tsv"
    if not index.exists():
        return {}
    found: dict[str, Path] = {}
    for row in _rows(index):
        path = CORPUS / row["file"]
        if row["file"].endswith(".results.json"):
            found[row["corresponds_to"]] = path
        elif row["file"].endswith(".results"):
            found.setdefault(row["corresponds_to"], path)
    return found


NOTES = _index()
EXPECTED = _expectations()
WELL_FORMED = sorted(name for name, notes in NOTES.items() if "malformed" not in notes.lower())
MALFORMED = sorted(name for name, notes in NOTES.items() if "malformed" in notes.lower())


def _expected_totals(path: Path) -> tuple[dict[str, int], bool]:
    """(per-testcase counts, whether the source project reported a parse error)."""
    if path.name.endswith(".json"):
        stats = json.loads(path.read_text(encoding="utf-8"))["stats"]
        totals = {
            "tests": stats["runs"],
            "passed": stats["runs_succ"],
            "failed": stats["runs_fail"],
            "errors": stats["runs_error"],
            "skipped": stats["runs_skip"],
        }
        return totals, bool(stats["errors"])
    text = path.read_text(encoding="utf-8")
    results = re.findall(r"result='(\w+)'", text)
    totals = {
        "tests": len(results),
        "passed": results.count("success"),
        "failed": results.count("failure"),
        "errors": results.count("error"),
        "skipped": results.count("skipped"),
    }
    return totals, not re.search(r"errors=\[\]", text)


def _totals(name: str) -> dict[str, int]:
    totals = build_report([CORPUS / name]).totals
    return {
        "tests": totals.tests,
        "passed": totals.passed,
        "failed": totals.failed,
        "errors": totals.errors,
        "skipped": totals.skipped,
    }


def test_corpus_is_big_enough_to_mean_something():
    assert len(WELL_FORMED) >= 100
    assert len(EXPECTED) >= 20


@pytest.mark.parametrize("name", WELL_FORMED)
def test_every_well_formed_file_parses(name):
    report = build_report([CORPUS / name])
    result = report.inputs[0]
    if name in REFUSED_ON_PURPOSE:
        assert not result.ok
        assert REFUSED_ON_PURPOSE[name] in result.error
        return
    assert result.ok, f"{name}: {result.error}"
    totals = report.totals
    assert totals.passed + totals.failed + totals.errors + totals.skipped == totals.tests


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_files_give_a_clear_per_file_error(name):
    report = build_report([CORPUS / name, CORPUS / WELL_FORMED[0]])
    bad, good = report.inputs
    assert not bad.ok
    assert bad.error.startswith(("not well-formed XML", "the file is empty"))
    assert "line" in bad.error or "empty" in bad.error
    assert good.ok


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_totals_agree_with_the_source_projects_counts(name):
    expected, source_reported_error = _expected_totals(EXPECTED[name])
    if source_reported_error:
        assert name in REFUSED_ON_PURPOSE, f"{name}: the source rejects it, we do not"
        assert not build_report([CORPUS / name]).inputs[0].ok
        return
    if name in INTENDED_DIFFERENCES:
        ours, why = INTENDED_DIFFERENCES[name]
        assert expected != ours, f"{name} no longer differs; drop it from INTENDED_DIFFERENCES"
        assert _totals(name) == ours, why
        return
    assert _totals(name) == expected


def test_declared_counts_fallback_matches_the_source_on_a_suite_without_cases():
    name = f"{ENRICO}no-cases-but-tests.xml"
    report = build_report([CORPUS / name])
    assert [row.from_declared_counts for row in report.suites] == [True]
    assert report.totals.tests == 6


def test_flaky_surefire_reports_are_recognised():
    flaky = [
        "jenkinsci__junit-plugin__src__test__resources__hudson__tasks__junit__gh-237__"
        "TEST-io.olamy.FlakyTest.xml",
        "mikepenz__action-junit-report__test_results__maven_surefire_flaky__surefire-report.xml",
    ]
    for name in flaky:
        totals = build_report([CORPUS / name]).totals
        assert (totals.flaky, totals.failed) == (1, 0), name
    rerun = (
        "jenkinsci__junit-plugin__src__test__resources__hudson__tasks__junit__gh-237__"
        "TEST-io.olamy.AlwaysFailTest.xml"
    )
    totals = build_report([CORPUS / rerun]).totals
    assert (totals.flaky, totals.failed) == (0, 1)


def test_whole_corpus_merges_as_shards():
    usable = [CORPUS / name for name in WELL_FORMED if name not in REFUSED_ON_PURPOSE]
    merged = build_report(usable)
    assert merged.totals.tests == sum(_totals(path.name)["tests"] for path in usable)
    assert all(item.ok for item in merged.inputs)
