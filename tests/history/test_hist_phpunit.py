"""Real PHPUnit output: the same tests get the same ids from two checkouts in different folders.

Runs Debian's phpunit on the fixture app's Unit suite (data provider with named data sets, one
failure, one error, one skip) from two copies of the app, as two shards on two machines would.
The feeder below is what the parser hook will do at each </testcase> (see the integration notes).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from xml.parsers import expat

import pytest

from report_processor.history.records import HistoryConfig, RunInfo
from report_processor.history.rows import ERROR, FAILED, PASSED, SKIPPED, iter_rows
from report_processor.history.session import HistorySession
from report_processor.history.storage import MemoryStore
from tests.history.helpers import SCOPE, START

APP = Path(__file__).resolve().parent.parent / "laravel_app"
RANKS = {"skipped": SKIPPED, "failure": FAILED, "error": ERROR}


def feed(xml: bytes, on_case) -> None:
    case: dict[str, str] = {}
    state = {"rank": PASSED, "flaky": False}
    parser = expat.ParserCreate()

    def start(name, attrs):
        if name == "testcase":
            case.clear()
            case.update(attrs)
            state.update(rank=PASSED, flaky=False)
        elif name in RANKS:
            state["rank"] = max(state["rank"], RANKS[name])
        elif name in ("flakyFailure", "flakyError"):
            state["flaky"] = True

    def end(name):
        if name == "testcase":
            seconds = float(case.get("time") or 0)
            classname = case.get("classname") or case.get("class") or ""
            on_case(case.get("file"), classname, case.get("name", ""), state["rank"], seconds,
                    state["flaky"])  # fmt: skip

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(xml, True)


def phpunit_junit(workdir: Path) -> bytes:
    phpunit = shutil.which("phpunit")
    if phpunit is None:
        pytest.skip("phpunit is not installed (apt-get install phpunit php-laravel-framework)")
    app = workdir / "app"
    shutil.copytree(APP, app)
    out = workdir / "junit.xml"
    subprocess.run(
        [phpunit, "--testsuite", "Unit", "--log-junit", str(out)],
        cwd=app, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    return out.read_bytes()


def test_ids_from_phpunit_are_stable_across_checkouts(tmp_path):
    first = phpunit_junit(tmp_path / "machine-a" / "build-17")
    second = phpunit_junit(tmp_path / "machine-b")
    assert b"/machine-a/build-17/app/tests/Unit/SlugTest.php" in first
    store = MemoryStore()
    config = HistoryConfig(wholesale_min_tests=100)
    sections = []
    for night, xml in enumerate((first, second), start=1):
        info = RunInfo(f"n{night}", START + timedelta(days=night), "v1", "img", "failed")
        session = HistorySession.open(store, SCOPE, info, config)
        feed(xml, session.on_case)
        sections.append(session.finish())
    one, two = sections
    assert two.counts.new_tests == 0 and two.counts.disappeared == 0
    slug = "tests/Unit/SlugTest.php::Tests.Unit.SlugTest::"
    outcomes = "tests/Unit/OutcomesTest.php::Tests.Unit.OutcomesTest::"
    assert {t.test_id for t in two.still_failing} == {
        outcomes + "test_a_failing_assertion",
        outcomes + "test_an_error",
    }
    rows_key = next(k for k in store.objects if k.endswith("rows.tsv.gz"))
    with store.open(rows_key) as stream:
        recorded = {test_id: code for test_id, code, _ms in iter_rows(stream)}
    assert recorded[slug + 'test_slug_of_a_title with data set "plain"'] == PASSED
    assert recorded[slug + 'test_slug_of_a_title with data set "accents"'] == PASSED
    assert recorded[outcomes + "test_a_skip"] == SKIPPED
    assert recorded[outcomes + "test_an_error"] == ERROR
    assert one.tests == two.tests == len(recorded)
